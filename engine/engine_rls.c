/* engine_rls.c: recursive least squares for the cerebellum's last layer,
 * the engine's CBRNN_RULE_RLS (cbrnn_model.h).
 *
 * The head's last layer maps phi (the last hidden layer after its ReLU,
 * plus a 1 for the bias) to the head output. RLS keeps P, the inverse of
 *   prior * I + sum_t forget^(T-t) w_t phi_t phi_t^T,
 * and after each scored frame moves every output row to the weights that
 * minimise the discounted, weighted squared error of all frames heard so
 * far plus prior * |row - loaded row|^2: the exact least-squares answer
 * on the new voice, where SGD takes one small step a frame. The earlier
 * layers keep their loaded weights.
 *
 * Per frame, with u = P phi, c = forget / w + phi^T u, e_o the head-space
 * error of output o with the current weights (residual models: the change
 * the head should have given, (target - base) / scale):
 *   row_o += (e_o / c) u;   P = (P - u u^T / c) / forget.
 * w is the frame's weight in the loss: the mean squared running scale of a
 * residual model (its loss is in the corpus-normalised space, scale^2
 * times the head's), else 1; times RLS_HUBER_K / sqrt(surprise) when the
 * frame's surprise (its loss over the running mean, cbrnn_engine.h) is
 * above RLS_HUBER_K^2: a Huber weight, so a burst of hostile input (a
 * clipped or far over full-scale signal) does not rewrite the layer: with
 * it, 16 s of such input leave the loss on speech afterwards 1.11x the
 * undisturbed loss, without it 1.77x (tests/hardening); on the validation
 * voices it changes the gain by +0.001. Forgetting never makes P less certain than
 * the prior in total (trace(P) <= n / prior): an input that stays silent
 * for hours cannot blow P up.
 *
 * Work per frame: O x nnz + O x n + n^2 (two passes over P's upper
 * triangle: P is symmetric and only j >= i is kept), in double; n = the
 * last hidden width + 1 (at most CBRNN_RLS_MAX_DIM).
 * Nothing here allocates after engine_rls_alloc. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "engine_internal.h"

#define RLS_HUBER_K 3.0 /* frames with a loss above 9x the running mean are outliers */

int engine_rls_alloc(cbrnn_engine *e)
{
    const int n = e->dim[e->L - 1] + 1;
    e->rls_n = n;
    const size_t tri = (size_t)n * (size_t)(n + 1) / 2;
    e->rls_P = malloc((size_t)n * (size_t)n * sizeof(double));
    e->rls_u = malloc((size_t)n * sizeof(double));
    e->rls_nz = malloc((size_t)n * sizeof(int));
    e->rls_pd = malloc((size_t)n * sizeof(double));
    for (int s = 0; s < 2; s++)
        e->rls_snap[s] = malloc(tri * sizeof(float));
    if (!e->rls_P || !e->rls_u || !e->rls_nz || !e->rls_pd || !e->rls_snap[0] || !e->rls_snap[1])
        return -1;
    /* touched now: no page fault in the audio thread (a snapshot, a frame) */
    rt_touch_zero(e->rls_P, (size_t)n * (size_t)n * sizeof(double));
    rt_touch_zero(e->rls_u, (size_t)n * sizeof(double));
    rt_touch_zero(e->rls_nz, (size_t)n * sizeof(int));
    rt_touch_zero(e->rls_pd, (size_t)n * sizeof(double));
    for (int s = 0; s < 2; s++)
        rt_touch_zero(e->rls_snap[s], tri * sizeof(float));
    engine_rls_begin(e);
    return 0;
}

int engine_rls_set(cbrnn_engine *e, const cbrnn_model *src)
{
    const int n = e->rls_n;
    if (!src->rls_P || src->rls_n != n)
        return 0;
    for (size_t k = 0; k < (size_t)n * (size_t)n; k++)
        e->rls_P[k] = src->rls_P[k];
    return 1;
}

void engine_rls_begin(cbrnn_engine *e)
{
    const int n = e->rls_n;
    if (e->rls_saved && engine_rls_set(e, e->loaded)) /* learning goes on where it stopped */
        return;
    memset(e->rls_P, 0, (size_t)n * (size_t)n * sizeof(double));
    for (int i = 0; i < n; i++)
        e->rls_P[(size_t)i * n + i] = 1.0 / e->rls_prior;
}

void engine_rls_pack(const cbrnn_engine *e, float *packed)
{
    const int n = e->rls_n;
    for (int i = 0; i < n; i++) {
        const double *Pi = e->rls_P + (size_t)i * n;
        for (int j = i; j < n; j++)
            *packed++ = (float)Pi[j];
    }
}

int engine_rls_export(const cbrnn_engine *e, const float *packed, cbrnn_model *dst)
{
    const int n = e->rls_n; /* dst has the engine's layout: its rls_dim is n */
    float *P = cbrnn_model_rls_state(dst);
    if (!P)
        return CBRNN_ERR_NOMEM;
    for (int i = 0; i < n; i++)
        for (int j = i; j < n; j++) {
            const float v = packed ? *packed++ : (float)e->rls_P[(size_t)i * n + j];
            P[(size_t)i * n + j] = P[(size_t)j * n + i] = v;
        }
    return 0;
}

/* The frame's weight in the loss (see the top). */
static double frame_weight(const cbrnn_engine *e, const struct slot *sl)
{
    if (!e->m->cfg.residual)
        return 1.0;
    double s2 = 0.0;
    for (int o = 0; o < e->O; o++)
        s2 += (double)sl->scale[o] * sl->scale[o];
    return s2 / e->O;
}

/* u = P phi from P's upper triangle (P is symmetric and only its upper
 * triangle, j >= i, is kept: half the bytes a frame reads and writes),
 * in one pass over it, row by row; returns phi^T P phi. pd: phi with the
 * bias's 1, in double. */
static double gain_vector(cbrnn_engine *e, const double *pd)
{
    const int n = e->rls_n;
    double *u = e->rls_u;
    memset(u, 0, (size_t)n * sizeof(double));
    for (int i = 0; i < n; i++) {
        const double *Pi = e->rls_P + (size_t)i * n;
        const double pi = pd[i];
        double acc = Pi[i] * pi;
        for (int j = i + 1; j < n; j++) {
            acc += Pi[j] * pd[j];
            u[j] += Pi[j] * pi;
        }
        u[i] += acc;
    }
    double q = 0.0;
    for (int i = 0; i < n; i++)
        q += pd[i] * u[i];
    return q;
}

/* Every output row toward its least-squares answer; 1 if all finite. */
static int update_rows(cbrnn_engine *e, const struct slot *sl, const float *target,
                       const float *phi, int nnz, double c)
{
    const int H = e->rls_n - 1, L = e->L;
    const int *nz = e->rls_nz;
    const double *u = e->rls_u;
    float *W = e->w[L - 1], *b = e->b[L - 1];
    const int residual = e->m->cfg.residual;
    int ok = 1;
    for (int o = 0; o < e->O; o++) {
        float *Wo = W + (size_t)o * H;
        double head = b[o];
        for (int k = 0; k < nnz; k++)
            head += (double)Wo[nz[k]] * phi[nz[k]];
        double want = residual ? ((double)target[o] - sl->base[o]) / sl->scale[o] : target[o];
        double g = (want - head) / c;
        for (int j = 0; j < H; j++) {
            Wo[j] = (float)(Wo[j] + g * u[j]);
            ok &= isfinite(Wo[j]) != 0;
        }
        b[o] = (float)(b[o] + g * u[H]);
        ok &= isfinite(b[o]) != 0;
    }
    return ok;
}

int engine_rls_update(cbrnn_engine *e, const struct slot *sl, const float *target, float loss)
{
    const int n = e->rls_n, H = n - 1, L = e->L;
    const float *phi = L > 1 ? sl->a[L - 2] : sl->in;
    int nnz = 0;
    for (int j = 0; j < H; j++)
        if (phi[j] != 0.0f)
            e->rls_nz[nnz++] = j;
    double *pd = e->rls_pd;
    for (int j = 0; j < H; j++)
        pd[j] = phi[j];
    pd[H] = 1.0;
    const double q = gain_vector(e, pd);
    const double forget = e->rls_forget;
    double w = frame_weight(e, sl);
    if (e->have_mean) { /* an outlier frame counts less (see the top) */
        const double f = e->cfg.surprise_floor;
        const double surprise = ((double)loss + f) / ((double)e->mean_loss + f);
        if (surprise > RLS_HUBER_K * RLS_HUBER_K)
            w *= RLS_HUBER_K / sqrt(surprise);
    }
    const double c = forget / w + q;
    if (!(c > 0.0) || !isfinite(c)) { /* P lost its positivity: start over */
        engine_rls_begin(e);
        return 0;
    }
    if (!update_rows(e, sl, target, phi, nnz, c))
        return 0;
    /* P = (P - u u^T / c) / forget, forgetting only while trace(P) stays
     * within the prior's */
    const double *u = e->rls_u;
    double tr = 0.0;
    for (int i = 0; i < n; i++)
        tr += e->rls_P[(size_t)i * n + i] - u[i] * u[i] / c;
    const double f = (forget < 1.0 && tr / forget <= n / (double)e->rls_prior) ? 1.0 / forget : 1.0;
    for (int i = 0; i < n; i++) { /* the upper triangle only */
        double *Pi = e->rls_P + (size_t)i * n;
        const double ui = u[i] / c;
        for (int j = i; j < n; j++)
            Pi[j] = (Pi[j] - ui * u[j]) * f;
    }
    return 1;
}
