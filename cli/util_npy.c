/* util_npy.c: float32 .npy files (NumPy format version 1.0: magic, 2-byte
 * header length, a Python dict literal padded to a 64-byte boundary, then
 * raw little-endian data; numpy/lib/format.py). The writer streams rows to
 * a temporary file beside the target (util_output.h: PATH.tmp.HOST.PID, synced
 * to disk) and renames it into place on close, so a failed run never
 * leaves a half-written OUT.npy and never loses the earlier one. Host-side code: it
 * may allocate and do I/O, never on an audio thread. */
#include "util_npy.h"
#include "util_output.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fixed header size (magic + length + dict + padding). 128 bytes hold the
 * dict with a 20-digit row count, so patching the shape on close never
 * changes the header's length; 128 is a multiple of 64 as NumPy asks. */
#define NPY_HEADER_BYTES 128

struct npy_writer {
    cli_outfile *o; /* the temporary until close; o->f the stream */
    FILE *f;
    int cols;
    long rows;
    int failed;     /* an append failed: close reports and removes */
    int err;        /* errno of the first failure */
};

static int host_is_le(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

static void bswap32(void *p, size_t n)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++, b += 4) {
        unsigned char t = b[0];
        b[0] = b[3];
        b[3] = t;
        t = b[1];
        b[1] = b[2];
        b[2] = t;
    }
}

/* The complete header block for shape (rows, cols) (cols < 0: 1-D). */
static void make_header(char *h, long rows, int cols)
{
    char dict[NPY_HEADER_BYTES];
    int len;
    if (cols < 0)
        len = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%ld,), }",
                       rows);
    else
        len = snprintf(dict, sizeof dict,
                       "{'descr': '<f4', 'fortran_order': False, 'shape': (%ld, %d), }", rows, cols);
    int hlen = NPY_HEADER_BYTES - 10;
    memcpy(h, "\x93NUMPY\x01\x00", 8);
    h[8] = (char)(hlen & 0xff);
    h[9] = (char)(hlen >> 8);
    memcpy(h + 10, dict, (size_t)len);
    memset(h + 10 + len, ' ', (size_t)(hlen - len - 1));
    h[NPY_HEADER_BYTES - 1] = '\n';
}

npy_writer *npy_open(const char *path, int cols, char *msg, size_t msglen)
{
    npy_writer *w = calloc(1, sizeof *w);
    if (!w || cols <= 0) {
        snprintf(msg, msglen, "%s: %s", path, w ? "invalid column count" : "out of memory");
        free(w);
        return NULL;
    }
    w->cols = cols;
    if (!(w->o = cli_out_open(path, msg, msglen))) {
        free(w);
        return NULL;
    }
    w->f = w->o->f;
    char h[NPY_HEADER_BYTES];
    make_header(h, 0, cols);
    if (fwrite(h, 1, sizeof h, w->f) != sizeof h) {
        snprintf(msg, msglen, "%s: cannot write: %s", path, strerror(errno));
        npy_abort(w);
        return NULL;
    }
    return w;
}

int npy_append(npy_writer *w, const float *rows, long n_rows)
{
    if (!w || w->failed)
        return -1;
    if (n_rows <= 0)
        return 0;
    size_t n = (size_t)n_rows * (size_t)w->cols;
    if (host_is_le()) {
        if (fwrite(rows, sizeof *rows, n, w->f) != n)
            goto fail;
    } else {
        float buf[1024];
        for (size_t i = 0; i < n; i += 1024) {
            size_t m = n - i < 1024 ? n - i : 1024;
            memcpy(buf, rows + i, m * sizeof *buf);
            bswap32(buf, m);
            if (fwrite(buf, sizeof *buf, m, w->f) != m)
                goto fail;
        }
    }
    w->rows += n_rows;
    return 0;
fail:
    w->failed = 1;
    w->err = errno;
    return -1;
}

const char *npy_tmp_path(const npy_writer *w)
{
    return w->o->tmp;
}

void npy_abort(npy_writer *w)
{
    if (!w)
        return;
    cli_out_abort(w->o);
    free(w);
}

int npy_close(npy_writer *w, char *msg, size_t msglen)
{
    if (!w)
        return -1;
    if (w->failed) {
        snprintf(msg, msglen, "%s: cannot write: %s", w->o->path, strerror(w->err));
        npy_abort(w);
        return -1;
    }
    char h[NPY_HEADER_BYTES];
    make_header(h, w->rows, w->cols);
    if (fseek(w->f, 0, SEEK_SET) != 0 || fwrite(h, 1, sizeof h, w->f) != sizeof h) {
        snprintf(msg, msglen, "%s: cannot write: %s", w->o->path, strerror(errno));
        npy_abort(w);
        return -1;
    }
    int rc = cli_out_commit(w->o, msg, msglen); /* flushed, synced, renamed; or removed */
    free(w);
    return rc;
}

int npy_write(const char *path, const float *data, long rows, int cols, char *msg, size_t msglen)
{
    npy_writer *w = npy_open(path, cols, msg, msglen);
    if (!w)
        return -1;
    if (npy_append(w, data, rows) != 0) {
        snprintf(msg, msglen, "%s: cannot write: %s", path, strerror(w->err));
        npy_abort(w);
        return -1;
    }
    return npy_close(w, msg, msglen);
}
