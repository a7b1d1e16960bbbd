/* item_features.c: `cbrnn bench --items features`: microseconds per frame
 * of the streaming front end (default configuration: 40-band log-mel) at
 * --rate, fed one hop at a time as a live stream would feed it. The audio
 * is a few seconds of deterministic pink-ish noise with a gliding tone, so
 * every band carries energy. Compare with bench/peer_features.py
 * (torchaudio doing the same streaming work). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "bench.h"
#include "cbrnn/cbrnn_dsp.h"

/* Seconds of audio per pass: long enough that every frame sees fresh
 * samples and the caches see a realistic stream. */
#define AUDIO_SECONDS 4

static void make_audio(float *x, long n, double rate)
{
    /* xorshift32 noise through a one-pole low-pass (roughly 1/f above a
     * few hundred Hz) plus a tone gliding from 200 Hz to 4 kHz. */
    uint32_t s = 0x12345678u;
    double lp = 0.0, phase = 0.0;
    const double pi = 3.14159265358979323846;
    for (long i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        double white = (double)s / 4294967296.0 * 2.0 - 1.0;
        lp = 0.95 * lp + 0.05 * white;
        double f = 200.0 + 3800.0 * (double)i / (double)n;
        phase += 2.0 * pi * f / rate;
        x[i] = (float)(0.5 * lp + 0.2 * sin(phase));
    }
}

int bench_item_features(const struct bench_args *a)
{
    cbrnn_feat_config c;
    cbrnn_feat_config_default(&c, a->rate);
    int err = 0;
    cbrnn_feat *f = cbrnn_feat_create(&c, &err);
    if (!f) {
        fprintf(stderr, "bench features: %s\n", cbrnn_strerror(err));
        return 1;
    }
    int hop = cbrnn_feat_hop(f);
    long n = (long)(AUDIO_SECONDS * a->rate);
    n -= n % hop;
    float *x = malloc((size_t)n * sizeof *x);
    float *frame = malloc((size_t)cbrnn_feat_dim(f) * sizeof *frame);
    if (!x || !frame) {
        fprintf(stderr, "bench features: out of memory\n");
        free(x);
        free(frame);
        cbrnn_feat_destroy(f);
        return 1;
    }
    make_audio(x, n, a->rate);

    double best = INFINITY;
    volatile float sink = 0.0f; /* keeps the work observable */
    for (int r = 0; r < a->repeats; r++) {
        long frames = 0;
        double t0 = bench_now(), t;
        do {
            cbrnn_feat_reset(f);
            for (long i = 0; i < n; i += hop) {
                /* One hop arrives; a frame completes somewhere in it. */
                const float *p = x + i;
                int left = hop;
                while (left > 0) {
                    int used;
                    if (cbrnn_feat_push(f, frame, p, left, &used) == 1) {
                        frames++;
                        sink += frame[0];
                    }
                    p += used;
                    left -= used;
                }
            }
            t = bench_now() - t0;
        } while (t < a->seconds);
        double us = 1e6 * t / (double)frames;
        if (us < best)
            best = us;
    }
    (void)sink;
    if (a->json)
        fprintf(a->out, "{\"item\":\"features\",\"rate\":%.0f,\"us_per_frame\":%.4f,\"impl\":\"cbrnn\"}\n",
                a->rate, best);
    else
        fprintf(a->out, "features: %.0f Hz, %d-sample hop, %d-point FFT, %d features: %.3f us/frame\n",
                a->rate, hop, cbrnn_feat_nfft(f), cbrnn_feat_dim(f), best);
    free(x);
    free(frame);
    cbrnn_feat_destroy(f);
    return 0;
}
