/* item_bptt.c: `cbrnn bench --items bptt`: frames per second of warm-up
 * training of the readout-wired model (the seed's CBRNN: cortex N, one
 * cerebellar hidden layer H): per step, forward over B sequences of T
 * frames, MSE, BPTT backward, Adam. frames = B*T per step. Also holds the
 * loop shared with item_cbonly.c (the same with the cortex frozen). The
 * PyTorch peers are bench/peer_bptt.py and bench/peer_cbonly.py.
 *
 * Threads: OpenBLAS is set to OPENBLAS_NUM_THREADS if given, else 1 (the
 * PyTorch peer's default thread count on the 2-core test machine, and the
 * engine's real-time setting); the JSON row says how many were used.
 * Never changes the work to look faster. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cbrnn/cbrnn_model.h"

/* Also called by item_cbonly.c. */
int bench_training_item(const struct bench_args *a, const char *item, int freeze_cortex);

static int blas_threads(void)
{
    const char *s = getenv("OPENBLAS_NUM_THREADS");
    int n = s ? atoi(s) : 1;
    return n > 0 ? n : 1;
}

int bench_training_item(const struct bench_args *a, const char *item, int freeze_cortex)
{
    int threads = blas_threads();
    openblas_set_num_threads(threads);
    for (int k = 0; k < a->n_sizes; k++) {
        const struct bench_size *z = &a->sizes[k];
        int B = a->batch, T = a->seq, err = 0;
        cbrnn_model_config c;
        cbrnn_model_config_default(&c);
        c.n_in = z->F, c.n_hidden = z->N, c.n_out = z->O;
        c.n_cb_hidden = 1, c.cb_hidden[0] = z->H;
        cbrnn_model *m = cbrnn_model_create(&c, &err);
        cbrnn_optim_config oc;
        cbrnn_optim_config_default(&oc, CBRNN_OPT_ADAM);
        cbrnn_optim *o = m ? cbrnn_optim_create(m, &oc, &err) : NULL;
        cbrnn_ws *ws = m ? cbrnn_ws_create(m, B, T, &err) : NULL;
        size_t nx = (size_t)B * T * z->F, ny = (size_t)B * T * z->O;
        float *x = malloc(nx * sizeof(float)), *tgt = malloc(ny * sizeof(float));
        float *y = malloc(ny * sizeof(float)), *dy = malloc(ny * sizeof(float));
        float *g = m ? malloc(m->n_params * sizeof(float)) : NULL;
        if (!m || !o || !ws || !x || !tgt || !y || !dy || !g) {
            fprintf(stderr, "bench %s: %s\n", item, cbrnn_strerror(err ? err : CBRNN_ERR_NOMEM));
            return 1;
        }
        cbrnn_model_init(m, 1);
        m->frozen[CBRNN_GROUP_CORTEX] = freeze_cortex;
        cbrnn_rng r;
        cbrnn_rng_seed(&r, 2);
        for (size_t i = 0; i < nx; i++)
            x[i] = (float)cbrnn_rng_normal(&r);
        for (size_t i = 0; i < ny; i++)
            tgt[i] = (float)cbrnn_rng_normal(&r);
        double best = 0.0;
        float loss = 0.0f;
        for (int rep = 0; rep <= a->repeats; rep++) {
            long steps = 0;
            double t0 = bench_now(), dt;
            do {
                cbrnn_forward(ws, y, NULL, m, x, NULL, B, T);
                loss = cbrnn_loss_mse(dy, y, tgt, B * T, z->O);
                memset(g, 0, m->n_params * sizeof(float));
                cbrnn_backward(ws, g, m, dy, B, T);
                cbrnn_optim_step(o, m, g, NULL);
                steps++;
                dt = bench_now() - t0;
            } while (rep > 0 && dt < a->seconds); /* round 0 is one warm-up step */
            double fps = (double)steps * B * T / dt;
            if (rep > 0 && fps > best)
                best = fps;
        }
        if (!isfinite(loss)) {
            fprintf(stderr, "bench %s: training diverged (loss %g)\n", item, loss);
            return 1;
        }
        if (a->json)
            fprintf(a->out,
                    "{\"item\":\"%s\",\"impl\":\"cbrnn\",\"frames_per_s\":%.1f,\"F\":%d,\"N\":%d,"
                    "\"H\":%d,\"O\":%d,\"B\":%d,\"T\":%d,\"threads\":%d}\n",
                    item, best, z->F, z->N, z->H, z->O, B, T, threads);
        else
            fprintf(a->out, "%-8s cbrnn F=%d N=%d H=%d O=%d B=%d T=%d threads=%d: %.0f frames/s\n",
                    item, z->F, z->N, z->H, z->O, B, T, threads, best);
        fflush(a->out);
        free(x), free(tgt), free(y), free(dy), free(g);
        cbrnn_ws_destroy(ws);
        cbrnn_optim_destroy(o);
        cbrnn_model_destroy(m);
    }
    return 0;
}

int bench_item_bptt(const struct bench_args *a)
{
    return bench_training_item(a, "bptt", 0);
}
