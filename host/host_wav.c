/* host_wav.c: the float WAV files the hosts write (cbrnn-jack --record,
 * cbrnn run's surprise.wav and feedback.wav; cbrnn_host.h). libsndfile
 * writes 32-bit float WAV with a 16-byte fmt chunk (or as
 * WAVE_FORMAT_EXTENSIBLE), which sox 14.4 reads with the warning "wave
 * header missing extended part of fmt chunk": the spec gives every
 * non-PCM format the 18-byte fmt chunk with cbSize, and a fact chunk.
 * This writes exactly that: RIFF, fmt (18 bytes: IEEE float, 1 channel,
 * cbSize 0), fact (frames), data.
 *
 * A live recording must survive the process that writes it (SIGKILL, a
 * crash, a host that gives up on a stalled disk and exits without
 * closing): every second of audio the samples are written out and the
 * header's sizes rewritten to what has reached the file, so such a file
 * is a complete WAV short of at most about a second. The sizes always
 * come from what write(2) accepted, never from what was handed over, so a
 * full disk leaves a header that does not declare more than the file
 * holds. A RIFF size cannot pass 4 GiB: the writer stops there with
 * EFBIG (6.2 h at 48 kHz; the file stays a valid WAV up to the limit)
 * rather than writing a header that lies.
 *
 * Own buffering over a file descriptor, not stdio: after a failed write
 * stdio may still flush its buffer later, past a header that was already
 * made to match the file.
 *
 * Library code: never prints; not for the audio thread (file I/O). One
 * thread at a time per file. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cbrnn/cbrnn_host.h"

#define HEADER_BYTES 58 /* RIFF 12 + fmt 8+18 + fact 8+4 + data 8 */
/* The most data bytes a RIFF header can declare: the RIFF size (data +
 * HEADER_BYTES - 8) is 32 bits; whole samples. A test build lowers it to
 * reach it without writing 4 GiB (tests/host/wav_writer.c). */
#ifndef CBRNN_WAV_DATA_MAX
#define CBRNN_WAV_DATA_MAX ((0xffffffffull - (HEADER_BYTES - 8)) / 4 * 4)
#endif
#define BUF_BYTES 65536

struct cbrnn_wav {
    int fd;
    int rate;
    int err;          /* errno of the first failure (0: none) */
    uint64_t fed;     /* data bytes handed to write (buffered or written) */
    uint64_t written; /* data bytes write(2) accepted: what the file holds */
    uint64_t since;   /* samples since the header was last brought up to date */
    size_t fill;
    unsigned char buf[BUF_BYTES];
};

static void le16(unsigned char *p, uint32_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static void le32(unsigned char *p, uint32_t v)
{
    le16(p, v & 0xffff);
    le16(p + 2, v >> 16);
}

/* The header of a file whose data chunk holds data bytes (whole samples,
 * at most CBRNN_WAV_DATA_MAX). */
static void header(unsigned char *h, int rate, uint64_t data)
{
    uint32_t d = (uint32_t)data;
    memcpy(h, "RIFF", 4);
    le32(h + 4, d + HEADER_BYTES - 8);
    memcpy(h + 8, "WAVEfmt ", 8);
    le32(h + 16, 18);
    le16(h + 20, 3); /* WAVE_FORMAT_IEEE_FLOAT */
    le16(h + 22, 1);
    le32(h + 24, (uint32_t)rate);
    le32(h + 28, (uint32_t)rate * 4);
    le16(h + 32, 4);
    le16(h + 34, 32);
    le16(h + 36, 0); /* cbSize */
    memcpy(h + 38, "fact", 4);
    le32(h + 42, 4);
    le32(h + 46, d / 4);
    memcpy(h + 50, "data", 4);
    le32(h + 54, d);
}

static void fail(cbrnn_wav *w, int e)
{
    if (!w->err)
        w->err = e ? e : EIO;
}

/* The buffer to the file. What write(2) does not take is dropped (the
 * error is kept): retrying later could put samples after a gap. */
static void flush_buf(cbrnn_wav *w)
{
    size_t off = 0;
    while (off < w->fill && !w->err) {
        ssize_t k = write(w->fd, w->buf + off, w->fill - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            fail(w, k < 0 ? errno : ENOSPC);
            break;
        }
        off += (size_t)k;
        w->written += (uint64_t)k;
    }
    w->fill = 0;
}

/* The header's sizes to what the file holds (whole samples). pwrite
 * leaves the append position alone. 0 or -1. */
static int update_header(cbrnn_wav *w)
{
    unsigned char h[HEADER_BYTES];
    header(h, w->rate, w->written / 4 * 4);
    ssize_t k;
    do
        k = pwrite(w->fd, h, sizeof h, 0);
    while (k < 0 && errno == EINTR);
    if (k != (ssize_t)sizeof h) {
        fail(w, k < 0 ? errno : EIO);
        return -1;
    }
    return 0;
}

cbrnn_wav *cbrnn_wav_create(const char *path, int rate, int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    *err = CBRNN_ERR_ARG;
    if (!path || rate < 1)
        return NULL;
    cbrnn_wav *w = calloc(1, sizeof *w);
    *err = CBRNN_ERR_NOMEM;
    if (!w)
        return NULL;
    w->rate = rate;
    *err = CBRNN_ERR_IO;
    if ((w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)) < 0) {
        free(w);
        return NULL;
    }
    /* A header that cannot be written (a full disk) is the first write's
     * failure, not create's: hosts say a recording's write failure while
     * they run (tests/jack/log_stall.sh records to /dev/full). */
    unsigned char h[HEADER_BYTES];
    header(h, rate, 0);
    ssize_t k;
    do
        k = write(w->fd, h, sizeof h);
    while (k < 0 && errno == EINTR);
    if (k != (ssize_t)sizeof h)
        fail(w, k < 0 ? errno : ENOSPC);
    *err = 0;
    return w;
}

int cbrnn_wav_write(cbrnn_wav *w, const float *x, long n)
{
    if (!w || n < 0 || (n && !x))
        return CBRNN_ERR_ARG;
    /* past the limit nothing more is taken; what fits still goes in */
    uint64_t room = (CBRNN_WAV_DATA_MAX - w->fed) / 4;
    long take = (uint64_t)n > room ? (long)room : n;
    for (long i = 0; i < take; i++) { /* little-endian whatever the machine */
        if (w->fill == BUF_BYTES)
            flush_buf(w);
        uint32_t u;
        memcpy(&u, &x[i], 4);
        le32(w->buf + w->fill, u);
        w->fill += 4;
    }
    w->fed += 4 * (uint64_t)take;
    w->since += (uint64_t)take;
    int full = take < n;
    /* once a second of audio, at the limit, or at once after a failure:
     * the file's header says what the file holds */
    if (w->since >= (uint64_t)w->rate || full || w->err) {
        flush_buf(w);
        update_header(w);
        w->since = 0;
    }
    if (full)
        fail(w, EFBIG);
    if (w->err) {
        errno = w->err;
        return CBRNN_ERR_IO;
    }
    return 0;
}

int cbrnn_wav_close(cbrnn_wav *w)
{
    if (!w)
        return 0;
    flush_buf(w);
    update_header(w);
    /* a sample cut by a full disk: not left after the data the header declares */
    if (w->written % 4 && ftruncate(w->fd, (off_t)(HEADER_BYTES + w->written / 4 * 4)))
        fail(w, errno);
    if (close(w->fd))
        fail(w, errno);
    int e = w->err;
    free(w);
    if (e) {
        errno = e;
        return CBRNN_ERR_IO;
    }
    return 0;
}
