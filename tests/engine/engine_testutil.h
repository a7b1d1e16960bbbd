/* engine_testutil.h: helpers shared by the engine's C tests: real audio
 * from samples/ (libsndfile through host/host_audio), small models with
 * normalisation statistics measured on that audio, and a runner that
 * feeds the engine in a given pattern of block sizes and collects every
 * record and per-frame output. Header-only; tests only. */
#ifndef CBRNN_ENGINE_TESTUTIL_H
#define CBRNN_ENGINE_TESTUTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbrnn/cbrnn_dsp.h"
#include "cbrnn/cbrnn_engine.h"
#include "cbrnn/cbrnn_model.h"
#include "host_audio.h"

#ifndef CBRNN_SAMPLES
#error "CBRNN_SAMPLES (the samples/ folder) must be defined by the build"
#endif

/* Whole file as mono floats at its own rate (or rate > 0), malloc'ed. */
static inline float *tu_load(const char *name, double rate, long *n, double *got_rate)
{
    char path[1024], msg[512];
    snprintf(path, sizeof path, "%s/%s", CBRNN_SAMPLES, name);
    audio_in *a = audio_in_open(path, rate, msg, sizeof msg);
    if (!a) {
        fprintf(stderr, "tu_load: %s\n", msg);
        exit(1);
    }
    long cap = 1 << 16, len = 0;
    float *buf = malloc((size_t)cap * sizeof(float));
    for (;;) {
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, (size_t)cap * sizeof(float));
        }
        long r = audio_in_read(a, buf + len, cap - len, msg, sizeof msg);
        if (r < 0) {
            fprintf(stderr, "tu_load: %s\n", msg);
            exit(1);
        }
        if (r == 0)
            break;
        len += r;
    }
    *got_rate = audio_in_rate(a);
    audio_in_close(a);
    *n = len;
    return buf;
}

/* A small model for rate (features at the model's defaults), randomly
 * initialised with seed, normalised with statistics of `norm_audio`. */
static inline cbrnn_model *tu_model(int wiring, int target, int n_hidden, int cb_width,
                                    uint64_t seed, const float *norm_audio, long n,
                                    double rate)
{
    cbrnn_model_config c;
    cbrnn_model_config_default(&c);
    c.wiring = wiring;
    c.n_hidden = n_hidden;
    c.n_cb_hidden = cb_width > 0 ? 1 : 0;
    c.cb_hidden[0] = cb_width;
    if (target == CBRNN_TARGET_CLASSIFY)
        c.n_out = 3;
    int err;
    cbrnn_model *m = cbrnn_model_create(&c, &err);
    if (!m || cbrnn_model_init(m, seed)) {
        fprintf(stderr, "tu_model: cannot create: %s\n", cbrnn_strerror(err));
        exit(1);
    }
    m->target = target;
    if (target == CBRNN_TARGET_CLASSIFY) {
        const char *names[3] = {"a", "b", "c"};
        cbrnn_model_set_classes(m, 3, names);
    }
    cbrnn_feat_config fc; /* the features the engine will see at rate */
    cbrnn_model_feat_config(m, rate, &fc);
    cbrnn_feat *f = cbrnn_feat_create(&fc, &err);
    cbrnn_stats st;
    cbrnn_stats_init(&st, c.n_in);
    float *fr = malloc((size_t)c.n_in * sizeof(float));
    for (long pos = 0; pos < n;) {
        int used;
        if (cbrnn_feat_push(f, fr, norm_audio + pos, (int)(n - pos > 4096 ? 4096 : n - pos),
                            &used) == 1)
            cbrnn_stats_add(&st, fr);
        pos += used;
    }
    float *mean = malloc((size_t)c.n_in * sizeof(float)), *sd = malloc((size_t)c.n_in * sizeof(float));
    cbrnn_stats_result(&st, mean, sd, 1e-3f);
    cbrnn_model_set_norm(m, mean, sd);
    free(mean);
    free(sd);
    free(fr);
    cbrnn_stats_free(&st);
    cbrnn_feat_destroy(f);
    return m;
}

/* What one run produced. */
struct tu_run {
    long n_rec;
    cbrnn_record *rec;   /* [n_rec] */
    float *y;            /* [n_rec, O] per-frame outputs */
    float *out0;         /* surprise channel, [n samples] */
    float *out1;         /* first output channel, [n samples] */
};

static inline void tu_run_free(struct tu_run *r)
{
    free(r->rec);
    free(r->y);
    free(r->out0);
    free(r->out1);
    memset(r, 0, sizeof *r);
}

/* Runs e over x[0..n) in blocks: block > 0 fixed, block == 0 a varying
 * pseudo-random pattern of 1..1024; drains the records after each block. */
static inline void tu_run(cbrnn_engine *e, const float *x, const float *teacher, long n,
                          int block, struct tu_run *r)
{
    int O = cbrnn_engine_n_outputs(e) - 1;
    long cap = n / cbrnn_engine_hop(e) + 2;
    r->rec = calloc((size_t)cap, sizeof *r->rec);
    r->y = calloc((size_t)cap * O, sizeof(float));
    r->out0 = calloc((size_t)n + 1, sizeof(float));
    r->out1 = calloc((size_t)n + 1, sizeof(float));
    r->n_rec = 0;
    uint32_t lcg = 12345;
    for (long pos = 0; pos < n;) {
        int b = block;
        if (b <= 0) {
            lcg = lcg * 1664525u + 1013904223u;
            b = 1 + (int)((lcg >> 8) % 1024);
        }
        if (b > n - pos)
            b = (int)(n - pos);
        float *outs[2] = {r->out0 + pos, r->out1 + pos};
        int rc = cbrnn_engine_process(e, outs, 2, x + pos, teacher ? teacher + pos : NULL, b);
        if (rc) {
            fprintf(stderr, "tu_run: process returned %d\n", rc);
            exit(1);
        }
        pos += b;
        while (r->n_rec < cap && cbrnn_engine_read_record(e, &r->rec[r->n_rec], r->y + r->n_rec * O))
            r->n_rec++;
    }
}

/* Counts entries with |got - want| > tol * max(|want|, 1e-2 max|want|),
 * printing the first five as what/where[index]: expected, got. */
static inline int check_close(const char *what, const char *where, const double *want,
                              const float *got, size_t n, double tol)
{
    double mx = 0;
    for (size_t i = 0; i < n; i++)
        mx = fmax(mx, fabs(want[i]));
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double lim = tol * fmax(fabs(want[i]), 1e-2 * mx + 1e-30);
        if (!(fabs(got[i] - want[i]) <= lim)) {
            if (bad < 5)
                fprintf(stderr, "%s: %s[%zu]: expected %.9g, got %.9g\n", what, where, i, want[i],
                        (double)got[i]);
            bad++;
        }
    }
    return bad;
}

static inline double tu_mean_loss(const struct tu_run *r, long from, long to)
{
    double s = 0;
    long c = 0;
    for (long i = from; i < to && i < r->n_rec; i++)
        if (isfinite(r->rec[i].loss)) {
            s += r->rec[i].loss;
            c++;
        }
    return c ? s / c : NAN;
}

#endif
