/* host_wav.c: the float WAV files the hosts write (cbrnn-jack --record,
 * cbrnn run's surprise.wav and feedback.wav; cbrnn_host.h). libsndfile
 * writes 32-bit float WAV with a 16-byte fmt chunk (or as
 * WAVE_FORMAT_EXTENSIBLE), which sox 14.4 reads with the warning "wave
 * header missing extended part of fmt chunk": the spec gives every
 * non-PCM format the 18-byte fmt chunk with cbSize, and a fact chunk.
 * This writes exactly that: RIFF, fmt (18 bytes: IEEE float, 1 channel,
 * cbSize 0), fact (frames), data; the sizes are filled in at close.
 * Library code: never prints; not for the audio thread (file I/O). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbrnn/cbrnn_host.h"

struct cbrnn_wav {
    FILE *f;
    uint64_t frames;
    int rate, failed;
};

#define HEADER_BYTES 58 /* RIFF 12 + fmt 8+18 + fact 8+4 + data 8 */

static void le16(unsigned char *p, uint32_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static void le32(unsigned char *p, uint32_t v)
{
    le16(p, v & 0xffff);
    le16(p + 2, v >> 16);
}

static void header(unsigned char *h, int rate, uint64_t frames)
{
    uint64_t data = frames * 4;
    /* past 4 GiB a RIFF size cannot be said; readers then take the data to
     * the end of the file */
    uint32_t d = data > 0xffffffffu - HEADER_BYTES ? 0xffffffffu - HEADER_BYTES : (uint32_t)data;
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
    le32(h + 46, frames > 0xffffffffu ? 0xffffffffu : (uint32_t)frames);
    memcpy(h + 50, "data", 4);
    le32(h + 54, d);
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
    unsigned char h[HEADER_BYTES];
    header(h, rate, 0);
    *err = CBRNN_ERR_IO;
    if (!(w->f = fopen(path, "wb")) || fwrite(h, 1, sizeof h, w->f) != sizeof h) {
        if (w->f)
            fclose(w->f);
        free(w);
        return NULL;
    }
    w->rate = rate;
    *err = 0;
    return w;
}

int cbrnn_wav_write(cbrnn_wav *w, const float *x, long n)
{
    if (!w || n < 0 || (n && !x))
        return CBRNN_ERR_ARG;
    unsigned char buf[4096];
    long done = 0;
    while (done < n) {
        long k = n - done < 1024 ? n - done : 1024;
        for (long i = 0; i < k; i++) { /* little-endian whatever the machine */
            uint32_t u;
            memcpy(&u, &x[done + i], 4);
            le32(buf + 4 * i, u);
        }
        if (fwrite(buf, 4, (size_t)k, w->f) != (size_t)k) {
            w->failed = 1;
            return CBRNN_ERR_IO;
        }
        done += k;
    }
    w->frames += (uint64_t)n;
    return 0;
}

int cbrnn_wav_close(cbrnn_wav *w)
{
    if (!w)
        return 0;
    unsigned char h[HEADER_BYTES];
    header(h, w->rate, w->frames);
    int rc = w->failed;
    rc |= fseek(w->f, 0, SEEK_SET) || fwrite(h, 1, sizeof h, w->f) != sizeof h;
    rc |= fclose(w->f) != 0;
    free(w);
    return rc ? CBRNN_ERR_IO : 0;
}
