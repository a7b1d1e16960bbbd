/* featcache.c: feature frames on disk behind a mapping (see featcache.h).
 * Appends go through a 1 MiB buffer with write(2), so a full disk is
 * reported where it happens (never as SIGBUS through the mapping later):
 * the mapping only ever covers bytes already written. Library code: never
 * prints or exits. */
#define _GNU_SOURCE
#include "featcache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define BUF_FLOATS (1u << 18) /* 1 MiB */

struct feat_cache {
    int fd;
    char *dir;
    size_t n;      /* floats written or buffered */
    size_t n_buf;  /* of which still in buf */
    float *buf;
    float *map;
    size_t map_bytes;
};

static void set_msg(char *msg, size_t msglen, const char *dir, const char *what, int err)
{
    snprintf(msg, msglen, "%s: cannot cache features there: %s%s%s", dir, what,
             err ? ": " : "", err ? strerror(err) : "");
}

feat_cache *feat_cache_open(const char *dir, char *msg, size_t msglen)
{
    int err = ENOMEM;
    feat_cache *c = calloc(1, sizeof *c);
    size_t len = strlen(dir);
    char *tmpl = malloc(len + 32);
    if (!c || !tmpl || !(c->dir = strdup(dir)) ||
        !(c->buf = malloc(BUF_FLOATS * sizeof(float)))) {
        set_msg(msg, msglen, dir, "out of memory", 0);
        goto fail;
    }
    snprintf(tmpl, len + 32, "%s/.cbrnn-features-XXXXXX", dir);
    c->fd = mkstemp(tmpl);
    if (c->fd < 0) {
        err = errno;
        set_msg(msg, msglen, dir, "cannot create a temporary file", err);
        goto fail;
    }
    /* No name from now on: the space is freed when the process ends. */
    unlink(tmpl);
    free(tmpl);
    return c;
fail:
    free(tmpl);
    if (c) {
        free(c->dir);
        free(c->buf);
        free(c);
    }
    errno = err;
    return NULL;
}

static int flush_buf(feat_cache *c, char *msg, size_t msglen)
{
    const char *p = (const char *)c->buf;
    size_t left = c->n_buf * sizeof(float);
    while (left) {
        ssize_t w = write(c->fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            char what[96];
            snprintf(what, sizeof what, "writing %.1f MiB of features",
                     (double)(c->n * sizeof(float)) / 1048576.0);
            set_msg(msg, msglen, c->dir, what, e);
            return -1;
        }
        p += w;
        left -= (size_t)w;
    }
    c->n_buf = 0;
    return 0;
}

int feat_cache_append(feat_cache *c, const float *x, size_t n, char *msg, size_t msglen)
{
    if (c->map) {
        set_msg(msg, msglen, c->dir, "append after map", 0);
        return -1;
    }
    while (n) {
        size_t k = BUF_FLOATS - c->n_buf;
        if (k > n)
            k = n;
        memcpy(c->buf + c->n_buf, x, k * sizeof(float));
        c->n_buf += k;
        c->n += k;
        x += k;
        n -= k;
        if (c->n_buf == BUF_FLOATS && flush_buf(c, msg, msglen))
            return -1;
    }
    return 0;
}

size_t feat_cache_size(const feat_cache *c)
{
    return c->n;
}

float *feat_cache_map(feat_cache *c, char *msg, size_t msglen)
{
    if (c->map)
        return c->map;
    if (flush_buf(c, msg, msglen))
        return NULL;
    free(c->buf);
    c->buf = NULL;
    if (c->n == 0) {
        set_msg(msg, msglen, c->dir, "no frames to map", 0);
        return NULL;
    }
    c->map_bytes = c->n * sizeof(float);
    void *p = mmap(NULL, c->map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
    if (p == MAP_FAILED) {
        set_msg(msg, msglen, c->dir, "cannot map the cache file", errno);
        return NULL;
    }
    c->map = p;
    /* Training reads short windows at random places. Without this hint
     * the kernel maps whole large folios of page cache around each fault
     * (measured on Linux 6.18/ext4: a 66-minute file's training peaked at
     * 88 MB resident instead of 28 MB); with it, only what is read. */
    madvise(p, c->map_bytes, MADV_RANDOM);
    return c->map;
}

void feat_cache_release(feat_cache *c, size_t off, size_t n)
{
    if (!c || !c->map)
        return;
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t a = off * sizeof(float), b = n ? (off + n) * sizeof(float) : c->map_bytes;
    if (b > c->map_bytes)
        b = c->map_bytes;
    a = (a + page - 1) / page * page; /* whole pages inside the range only */
    if (b != c->map_bytes)
        b = b / page * page;
    if (b > a)
        madvise((char *)c->map + a, b - a, MADV_DONTNEED); /* shared file pages: data kept */
}

void feat_cache_close(feat_cache *c)
{
    if (!c)
        return;
    if (c->map)
        munmap(c->map, c->map_bytes);
    close(c->fd);
    free(c->buf);
    free(c->dir);
    free(c);
}
