/* wav_writer.c: a recording process for tests/host/wav_crash.sh, driving
 * the float WAV writer (cbrnn_wav_*, host/host_wav.c) as cbrnn-jack's disk
 * thread does, without JACK:
 *
 *   wav_writer PATH RATE SAMPLES [close|wait]
 *
 * writes SAMPLES samples of a known signal (sample i is
 * wav_writer_sample(i, RATE)) in blocks of 1024, then closes the file
 * (close, the default) or, to be killed like a crashed host, prints
 * "waiting" and sleeps without closing (wait). A write that fails stops
 * the writing (as cbrnn-jack does); either way stdout gets one line
 * "written K failed ERRNO-NAME" (K: samples accepted before the failure;
 * "failed 0" when none failed). Exit 0 when everything was written and
 * closed, 1 after a failure, 2 on bad arguments.
 *
 * Built twice: as is, and as wav_writer_limit with CBRNN_WAV_DATA_MAX
 * lowered so the 4 GiB limit is reached after a few kilobytes. */
#define _XOPEN_SOURCE 700 /* M_PI, pause */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cbrnn/cbrnn_host.h"

/* 440 Hz at 0.5 with a slow ramp, so that no two seconds are alike */
static float wav_writer_sample(long i, int rate)
{
    double t = (double)i / rate;
    return (float)((0.25 + 0.05 * fmod(t, 4.0)) * sin(2 * M_PI * 440 * t));
}

static const char *errname(int e)
{
    switch (e) {
    case 0: return "0";
    case ENOSPC: return "ENOSPC";
    case EFBIG: return "EFBIG";
    case EIO: return "EIO";
    default: return strerror(e);
    }
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: wav_writer PATH RATE SAMPLES [close|wait]\n");
        return 2;
    }
    int rate = atoi(argv[2]);
    long total = atol(argv[3]);
    int wait = argc == 5 && !strcmp(argv[4], "wait");
    int err = 0;
    cbrnn_wav *w = cbrnn_wav_create(argv[1], rate, &err);
    if (!w) {
        fprintf(stderr, "wav_writer: %s: cannot create: %s\n", argv[1], strerror(errno));
        return 1;
    }
    float buf[1024];
    long done = 0;
    int failed = 0;
    while (done < total) {
        long k = total - done < 1024 ? total - done : 1024;
        for (long i = 0; i < k; i++)
            buf[i] = wav_writer_sample(done + i, rate);
        errno = 0;
        if (cbrnn_wav_write(w, buf, k)) {
            failed = errno ? errno : EIO;
            break;
        }
        done += k;
    }
    printf("written %ld failed %s\n", done, errname(failed));
    fflush(stdout);
    if (wait) {
        printf("waiting\n");
        fflush(stdout);
        for (;;)
            pause();
    }
    errno = 0;
    if (cbrnn_wav_close(w)) {
        fprintf(stderr, "wav_writer: %s: close: %s\n", argv[1], strerror(errno));
        return 1;
    }
    return failed ? 1 : 0;
}
