/* engine_kernels.c: the engine's per-frame math at batch 1: cortex step,
 * head forward, head backward (readout: exact; loop: truncated BPTT) and
 * the SGD-with-momentum update. Runs on the audio thread: no allocation,
 * no lock, no CBLAS (OpenBLAS locks a mutex in its buffer allocator); it
 * builds on the plain-loop layer primitives of model/layers.h. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "engine_internal.h"
#include "layers.h"

/* Where head tensor p lives in the head-sized gradient block. */
static float *head_grad(cbrnn_engine *e, const float *p)
{
    return e->grad + (p - e->m->params - (ptrdiff_t)e->head_off);
}

static void head_forward(cbrnn_engine *e, struct slot *sl)
{
    const float *in = sl->in;
    for (int l = 0; l < e->L; l++) {
        cbrnn_linear_forward_ref(sl->a[l], in, e->w[l], e->b[l], 1, e->dim[l], e->dim[l + 1]);
        if (l < e->L - 1)
            cbrnn_relu_forward(sl->a[l], sl->a[l], (size_t)e->dim[l + 1]);
        in = sl->a[l];
    }
}

/* Head backward from da[L-1] (set by the caller); weight and bias
 * gradients added into e->grad; din (may be NULL) += dL/d(head input). */
static void head_backward(cbrnn_engine *e, float *din, const struct slot *sl)
{
    for (int l = e->L - 1; l >= 0; l--) {
        const float *in = l ? sl->a[l - 1] : sl->in;
        float *dprev = l ? e->da[l - 1] : din;
        if (l)
            memset(dprev, 0, (size_t)e->dim[l] * sizeof(float));
        cbrnn_linear_backward_ref(dprev, head_grad(e, e->w[l]), head_grad(e, e->b[l]), e->da[l],
                                  in, e->w[l], 1, e->dim[l], e->dim[l + 1]);
        if (l)
            cbrnn_relu_backward_inplace(dprev, sl->a[l - 1], (size_t)e->dim[l]);
    }
}

void engine_forward(cbrnn_engine *e, struct slot *sl)
{
    const cbrnn_model *m = e->m;
    const int N = e->N, F = e->F;
    memcpy(sl->x, e->xn, (size_t)F * sizeof(float));
    if (e->loop) {
        /* c_t = CB([h_{t-1}, x_t]) joins the drive inside f. */
        memcpy(sl->in, e->h, (size_t)N * sizeof(float));
        memcpy(sl->in + N, e->xn, (size_t)F * sizeof(float));
        memcpy(sl->h_prev, e->h, (size_t)N * sizeof(float));
        head_forward(e, sl);
    }
    cbrnn_linear_forward_ref(e->pre, e->xn, m->w_ih, m->b_ih, 1, F, N);
    const float *c = e->loop ? sl->a[e->L - 1] : NULL;
    for (int i = 0; i < N; i++)
        e->pre[i] += m->b_hh[i] + (c ? c[i] : 0.0f);
    cbrnn_cortex_step_forward_ref(e->h_new, e->act, e->pre, e->h, m->w_hh, e->act_fn, e->alpha, 1,
                                  N);
    /* A state that left the finite range (an unstable relu cortex) would
     * stay non-finite for good: restart it from rest and flag the frame. */
    int ok = 1;
    for (int i = 0; i < N; i++)
        ok &= fabsf(e->h_new[i]) <= FLT_MAX;
    if (!ok) {
        memset(e->h_new, 0, (size_t)N * sizeof(float));
        memset(e->act, 0, (size_t)N * sizeof(float));
        e->flags |= CBRNN_REC_BAD_INPUT;
    }
    memcpy(e->h, e->h_new, (size_t)N * sizeof(float));
    if (e->loop) {
        memcpy(sl->act, e->act, (size_t)N * sizeof(float));
        cbrnn_linear_forward_ref(sl->y, e->h, m->out_w, m->out_b, 1, N, e->O);
    } else {
        memcpy(sl->in, e->h, (size_t)N * sizeof(float));
        head_forward(e, sl);
        memcpy(sl->y, sl->a[e->L - 1], (size_t)e->O * sizeof(float));
    }
}

int engine_backward_readout(cbrnn_engine *e, const struct slot *sl)
{
    memcpy(e->da[e->L - 1], e->dy, (size_t)e->O * sizeof(float));
    head_backward(e, NULL, sl); /* cortex frozen: no input gradient */
    return 1;
}

int engine_backward_loop(cbrnn_engine *e)
{
    const cbrnn_model *m = e->m;
    const int N = e->N;
    /* dL/dh at the scored frame, through the frozen linear readout. */
    memset(e->dh, 0, (size_t)N * sizeof(float));
    cbrnn_linear_backward_ref(e->dh, NULL, NULL, e->dy, e->h, m->out_w, 1, N, e->O);
    /* The scored frame is e->frame - horizon (predict) or e->frame. */
    int64_t s = e->target == CBRNN_TARGET_PREDICT ? e->frame - e->horizon : e->frame;
    for (int j = 0; j < e->cfg.bptt_k && s >= 0; j++, s--) {
        const struct slot *sl = &e->slots[(s % e->n_slots + e->n_slots) % e->n_slots];
        memset(e->dh_prev, 0, (size_t)N * sizeof(float));
        /* scratch_a = dL/dpre_s = dL/dc_s */
        cbrnn_cortex_step_backward_ref(e->scratch_a, e->dh_prev, e->dh, sl->act, m->w_hh, e->act_fn,
                                       e->alpha, 1, N);
        memcpy(e->da[e->L - 1], e->scratch_a, (size_t)N * sizeof(float));
        /* The CB's input gradient reaches h_{s-1} through its first N inputs. */
        memset(e->cbin, 0, (size_t)e->dim[0] * sizeof(float));
        head_backward(e, e->cbin, sl);
        for (int i = 0; i < N; i++)
            e->dh_prev[i] += e->cbin[i];
        memcpy(e->dh, e->dh_prev, (size_t)N * sizeof(float));
    }
    return 1;
}

int engine_update(cbrnn_engine *e)
{
    float *w = e->m->params + e->head_off;
    const float *w0 = e->loaded->params + e->head_off;
    float *g = e->grad, *v = e->vel;
    const float lr = e->lr, mu = e->momentum, wd = e->decay;
    const size_t n = e->head_n;
    int bad = 0;
    /* torch.optim.SGD (dampening 0, no Nesterov): v = mu v + g; w -= lr v,
     * with g += wd (w - w_loaded) pulling toward the warm-up weights. */
    if (wd > 0.0f) {
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] + wd * (w[i] - w0[i]);
            float vi = mu * v[i] + gi;
            float wi = w[i] - lr * vi;
            v[i] = vi;
            w[i] = wi;
            g[i] = 0.0f;
            bad |= !(fabsf(wi) <= FLT_MAX);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            float vi = mu * v[i] + g[i];
            float wi = w[i] - lr * vi;
            v[i] = vi;
            w[i] = wi;
            g[i] = 0.0f;
            bad |= !(fabsf(wi) <= FLT_MAX);
        }
    }
    return !bad;
}
