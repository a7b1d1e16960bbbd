/* item_online.c: `cbrnn bench --items online` (and item_infer.c's
 * `infer`): the real-time engine's per-frame work at batch 1, without the
 * feature front end (bench --items features times that): normalise, score
 * the previous prediction, learn from it (online: exact gradient on the
 * cerebellum, SGD with momentum 0.9), cortex step, cerebellum forward,
 * record. infer is the same with learning off (scoring, step, forward).
 * The engine runs exactly as in cbrnn-jack (engine_run_frame); the
 * features fed to it are fixed random frames, so no audio is involved.
 * Reports microseconds per frame and the share of one core that takes at
 * a 10 ms hop, and the memory floor (memory_floor_us: the time to read
 * and write the cerebellum's weights and momentum once and read the rest,
 * measured alongside). The PyTorch peers are bench/peer_online.py and
 * bench/peer_infer.py (the seed's CBRNN doing the same per frame).
 * Never changes the work to look faster. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cbrnn/cbrnn_engine.h"
#include "cbrnn/cbrnn_model.h"
#include "engine_internal.h"

typedef float v4f __attribute__((vector_size(16)));

/* The memory floor of one frame, measured on this machine in the same run:
 * microseconds for a pass that reads and writes rw floats twice over (each
 * learning weight and its momentum) and reads ro floats (the rest), the
 * least traffic a frame can cause: once the weights outgrow the caches,
 * online learning cannot be faster than this whatever the arithmetic. */
static double memory_floor_us(const struct bench_args *a, size_t rw, size_t ro)
{
    rw &= ~(size_t)3, ro &= ~(size_t)3;
    v4f *w = aligned_alloc(64, (rw + 16) * sizeof(float));
    v4f *v = aligned_alloc(64, (rw + 16) * sizeof(float));
    v4f *r = aligned_alloc(64, (ro + 16) * sizeof(float));
    if (!w || !v || !r) {
        free(w), free(v), free(r);
        return NAN;
    }
    memset(w, 0, (rw ? rw : 4) * sizeof(float));
    memset(v, 0, (rw ? rw : 4) * sizeof(float));
    memset(r, 0, (ro ? ro : 4) * sizeof(float));
    const v4f mu = {0.9f, 0.9f, 0.9f, 0.9f}, lr = {1e-3f, 1e-3f, 1e-3f, 1e-3f};
    double best = INFINITY;
    volatile float sink = 0;
    for (int rep = 0; rep <= a->repeats; rep++) {
        long passes = 0;
        double t0 = bench_now(), dt;
        do {
            /* eight sums in flight, so the reads are not bound by the
             * latency of one chain of additions */
            v4f s0 = {0, 0, 0, 0}, s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
            size_t i = 0, n = ro / 4;
            for (; i + 8 <= n; i += 8) {
                s0 += r[i], s1 += r[i + 1], s2 += r[i + 2], s3 += r[i + 3];
                s4 += r[i + 4], s5 += r[i + 5], s6 += r[i + 6], s7 += r[i + 7];
            }
            for (; i < n; i++)
                s0 += r[i];
            for (i = 0; i < rw / 4; i++) {
                v[i] = mu * v[i];
                w[i] -= lr * v[i];
            }
            v4f s = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
            sink += s[0] + s[1] + s[2] + s[3] + w[0][0];
            passes++;
            dt = bench_now() - t0;
        } while (dt < (rep ? a->seconds : 0.05));
        if (rep)
            best = fmin(best, 1e6 * dt / (double)passes);
    }
    (void)sink; /* read once: the sums above must not be optimised away */
    free(w), free(v), free(r);
    return best;
}

/* Also called by item_infer.c (learn 0) and item_online_rls.c (learn 2:
 * the RLS rule). */
int bench_engine_item(const struct bench_args *a, const char *item, int learn);

#define N_FRAMES 64 /* distinct input frames cycled through */

int bench_engine_item(const struct bench_args *a, const char *item, int learn)
{
    for (int k = 0; k < a->n_sizes; k++) {
        const struct bench_size *z = &a->sizes[k];
        int err = 0;
        cbrnn_model_config c;
        cbrnn_model_config_default(&c);
        c.n_in = z->F, c.n_hidden = z->N, c.n_out = z->O;
        c.n_cb_hidden = 1, c.cb_hidden[0] = z->H;
        cbrnn_model *m = cbrnn_model_create(&c, &err);
        if (!m || cbrnn_model_init(m, 1)) {
            fprintf(stderr, "bench %s: %s\n", item, cbrnn_strerror(err ? err : CBRNN_ERR_NOMEM));
            return 1;
        }
        m->feat.n_mels = z->F; /* the engine checks the feature dimension */
        if (z->O != z->F) {    /* predict needs O == F; otherwise classify */
            static const char *names[CBRNN_MAX_CLASSES];
            static char buf[CBRNN_MAX_CLASSES][16]; /* "c" and any int: no truncation warning */
            if (z->O > CBRNN_MAX_CLASSES) {
                fprintf(stderr, "bench %s: O != F needs O <= %d classes\n", item,
                        CBRNN_MAX_CLASSES);
                return 1;
            }
            for (int i = 0; i < z->O; i++) {
                snprintf(buf[i], sizeof buf[i], "c%d", i);
                names[i] = buf[i];
            }
            m->target = CBRNN_TARGET_CLASSIFY;
            cbrnn_model_set_classes(m, z->O, names);
        }
        if (learn == 2 && z->H + 1 > CBRNN_RLS_MAX_DIM) {
            fprintf(stderr, "bench %s: %d,%d,%d,%d: RLS takes a last layer of at most %d inputs "
                            "(this one has %d)\n", item, z->F, z->N, z->H, z->O,
                    CBRNN_RLS_MAX_DIM - 1, z->H);
            return 1;
        }
        cbrnn_engine_config ec;
        cbrnn_engine_config_default(&ec, 48000.0);
        ec.learn = learn != 0;
        ec.rule = learn == 2 ? CBRNN_RULE_RLS : CBRNN_RULE_SGD; /* 2: online-rls */
        ec.record_capacity = 16;
        cbrnn_engine *e = cbrnn_engine_create(m, &ec, &err);
        float *x = malloc((size_t)N_FRAMES * z->F * sizeof(float));
        if (!e || !x) {
            fprintf(stderr, "bench %s: cannot create the engine: %s\n", item, cbrnn_strerror(err));
            return 1;
        }
        if (m->target == CBRNN_TARGET_CLASSIFY)
            cbrnn_engine_set_label(e, 0);
        cbrnn_rng r;
        cbrnn_rng_seed(&r, 2);
        for (int i = 0; i < N_FRAMES * z->F; i++)
            x[i] = (float)cbrnn_rng_normal(&r);
        double best = INFINITY;
        long frame = 0;
        cbrnn_record rec;
        for (int rep = 0; rep <= a->repeats; rep++) {
            long frames = 0;
            double t0 = bench_now(), dt;
            do {
                for (int i = 0; i < 16; i++, frame++, frames++) {
                    memcpy(e->x, x + (size_t)(frame % N_FRAMES) * z->F, (size_t)z->F * sizeof(float));
                    engine_run_frame(e);
                    cbrnn_engine_read_record(e, &rec, NULL);
                }
                dt = bench_now() - t0;
            } while (rep > 0 && dt < a->seconds); /* round 0: 16 warm-up frames */
            double us = 1e6 * dt / (double)frames;
            if (rep > 0 && us < best)
                best = us;
        }
        cbrnn_engine_stats st;
        cbrnn_engine_get_stats(e, &st);
        if (learn && (st.updates < frame - 2 || st.restores)) {
            fprintf(stderr, "bench %s: the engine did not learn on every frame (%lld updates, %lld "
                            "restores in %ld frames)\n",
                    item, (long long)st.updates, (long long)st.restores, frame);
            return 1;
        }
        /* One frame per 10 ms hop: the share of one core the work takes. */
        double core = best / 10000.0;
        size_t head = learn ? e->head_n : 0;
        double floor_us = memory_floor_us(a, head, m->n_params - head);
        if (a->json)
            fprintf(a->out,
                    "{\"item\":\"%s\",\"impl\":\"cbrnn\",\"us_per_frame\":%.3f,\"core_at_10ms_hop\":"
                    "%.5f,\"memory_floor_us\":%.3f,\"F\":%d,\"N\":%d,\"H\":%d,\"O\":%d,"
                    "\"params\":%zu,\"threads\":1}\n",
                    item, best, core, floor_us, z->F, z->N, z->H, z->O, m->n_params);
        else
            fprintf(a->out,
                    "%-8s cbrnn F=%d N=%d H=%d O=%d: %.2f us/frame (%.2f%% of a core at a 10 ms "
                    "hop; touching the weights once takes %.2f us)\n",
                    item, z->F, z->N, z->H, z->O, best, 100 * core, floor_us);
        fflush(a->out);
        free(x);
        cbrnn_engine_destroy(e);
        cbrnn_model_destroy(m);
    }
    return 0;
}

int bench_item_online(const struct bench_args *a)
{
    return bench_engine_item(a, "online", 1);
}
