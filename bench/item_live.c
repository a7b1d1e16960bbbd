/* item_live.c: `cbrnn bench --items live`: the whole real-time engine as
 * cbrnn-jack runs it, at --rate (default 48 kHz) in 64-sample periods,
 * learning on: features (FFT, mel, log), normalisation, the online update
 * and forward, records, the held outputs (surprise + every output
 * channel). Audio: 20 s of deterministic noise with a moving tone (no
 * file needed). Reports the share of one core the engine takes (CPU time
 * per second of audio), the mean and the worst time of one 64-sample
 * period (mean, 99th percentile, worst), and the period itself: a frame's
 * work lands in a single period, so that period must fit in it. Used to find the largest model that
 * runs live; see docs/ADAPTATION.md. Never changes the work to look faster. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cbrnn/cbrnn_engine.h"
#include "cbrnn/cbrnn_model.h"

#define PERIOD 64      /* JACK frames per period, as the issue asks */
#define SECONDS 20.0   /* of audio per round: 2000 frames at a 10 ms hop */
#define TWO_PI 6.283185307179586

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int bench_item_live(const struct bench_args *a)
{
    for (int k = 0; k < a->n_sizes; k++) {
        const struct bench_size *z = &a->sizes[k];
        int err = 0;
        cbrnn_model_config c;
        cbrnn_model_config_default(&c);
        c.n_in = z->F, c.n_hidden = z->N, c.n_out = z->O;
        c.n_cb_hidden = 1, c.cb_hidden[0] = z->H;
        cbrnn_model *m = cbrnn_model_create(&c, &err);
        if (!m || cbrnn_model_init(m, 1) || z->O != z->F) {
            fprintf(stderr, "bench live: needs O == F (predict); %s\n", cbrnn_strerror(err));
            return 1;
        }
        m->feat.n_mels = z->F;
        cbrnn_engine_config ec;
        cbrnn_engine_config_default(&ec, a->rate);
        ec.learn = 1;
        cbrnn_engine *e = cbrnn_engine_create(m, &ec, &err);
        long n = (long)(SECONDS * a->rate);
        float *x = malloc((size_t)n * sizeof(float));
        int n_out = e ? cbrnn_engine_n_outputs(e) : 0;
        float **outs = calloc((size_t)n_out + 1, sizeof(float *));
        if (!e || !x || !outs) {
            fprintf(stderr, "bench live: cannot create the engine: %s\n", cbrnn_strerror(err));
            return 1;
        }
        for (int i = 0; i < n_out; i++)
            outs[i] = calloc(PERIOD, sizeof(float));
        cbrnn_rng r;
        cbrnn_rng_seed(&r, 3);
        double ph = 0;
        for (long i = 0; i < n; i++) {
            double f = 300.0 + 200.0 * sin(TWO_PI * 0.5 * i / a->rate);
            ph += TWO_PI * f / a->rate;
            x[i] = (float)(0.3 * sin(ph) + 0.05 * cbrnn_rng_normal(&r));
        }
        cbrnn_record rec;
        long n_per = n / PERIOD;
        double *per = malloc((size_t)n_per * sizeof(double));
        double best_core = INFINITY, best_mean = 0, worst_of_best = 0, p99_of_best = 0;
        for (int rep = 0; rep < a->repeats; rep++) {
            double t0 = bench_now();
            for (long p = 0; p < n_per; p++) {
                double b0 = bench_now();
                cbrnn_engine_process(e, outs, n_out, x + p * PERIOD, NULL, PERIOD);
                per[p] = bench_now() - b0;
                while (cbrnn_engine_read_record(e, &rec, NULL))
                    ;
            }
            double total = bench_now() - t0;
            double core = total / SECONDS;
            if (core < best_core) {
                /* the 99th percentile: the worst period but for scheduler
                 * preemptions, which a loaded machine adds to any max */
                qsort(per, (size_t)n_per, sizeof(double), cmp_double);
                best_core = core;
                best_mean = 1e6 * total / (double)n_per;
                worst_of_best = 1e6 * per[n_per - 1];
                p99_of_best = 1e6 * per[(long)(0.99 * (double)(n_per - 1))];
            }
        }
        free(per);
        double period_us = 1e6 * PERIOD / a->rate;
        if (a->json)
            fprintf(a->out,
                    "{\"item\":\"live\",\"impl\":\"cbrnn\",\"core\":%.5f,\"period_us\":%.1f,"
                    "\"mean_period_us\":%.2f,\"p99_period_us\":%.1f,\"worst_period_us\":%.1f,"
                    "\"rate\":%g,\"F\":%d,\"N\":%d,\"H\":%d,\"O\":%d,\"params\":%zu}\n",
                    best_core, period_us, best_mean, p99_of_best, worst_of_best, a->rate, z->F,
                    z->N, z->H, z->O, m->n_params);
        else
            fprintf(a->out,
                    "live     cbrnn F=%d N=%d H=%d O=%d at %g Hz, %d-sample periods (%.0f us): "
                    "%.2f%% of a core; per period mean %.1f us, 99th percentile %.0f us, worst "
                    "%.0f us\n",
                    z->F, z->N, z->H, z->O, a->rate, PERIOD, period_us, 100 * best_core,
                    best_mean, p99_of_best, worst_of_best);
        fflush(a->out);
        for (int i = 0; i < n_out; i++)
            free(outs[i]);
        free(outs);
        free(x);
        cbrnn_engine_destroy(e);
        cbrnn_model_destroy(m);
    }
    return 0;
}
