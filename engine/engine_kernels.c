/* engine_kernels.c: the engine's per-frame math at batch 1: cortex step,
 * head forward, head backward (readout: exact; loop: truncated BPTT), the
 * SGD-with-momentum update, and for the default case (readout wiring,
 * predict) the update fused with the next forward in one pass over the
 * weights. Runs on the audio thread: no allocation, no lock, no CBLAS
 * (OpenBLAS locks a mutex in its buffer allocator). Vector kernels live in
 * engine_simd.c; activations, ReLU and the leaky-cortex backward step are
 * model/layers.h's primitives. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "engine_internal.h"
#include "engine_simd.h"
#include "layers.h"

/* Where head tensor p lives in a head-sized block (gradient, momentum). */
static float *head_at(const cbrnn_engine *e, float *block, const float *p)
{
    return block + (p - e->m->params - (ptrdiff_t)e->head_off);
}

static const float *loaded_at(const cbrnn_engine *e, const float *p)
{
    return e->loaded->params + (p - e->m->params);
}

/* The head forward through the weights of src (e->m: as adapted;
 * e->loaded: as loaded), whose layout is e->m's. */
static void head_forward_from(cbrnn_engine *e, struct slot *sl, const cbrnn_model *src)
{
    const float *in = sl->in;
    for (int l = 0; l < e->L; l++) {
        const float *w = src->params + (e->w[l] - e->m->params);
        const float *b = src->params + (e->b[l] - e->m->params);
        k_linear_fwd(sl->a[l], in, w, b, e->dim[l], e->dim[l + 1]);
        if (l < e->L - 1)
            cbrnn_relu_forward(sl->a[l], sl->a[l], (size_t)e->dim[l + 1]);
        in = sl->a[l];
    }
    if (!e->loop) {
        memcpy(sl->y, sl->a[e->L - 1], (size_t)e->O * sizeof(float));
        engine_add_skip(e, sl);
    }
}

void engine_head_forward(cbrnn_engine *e, struct slot *sl)
{
    const int gated = (e->flags & CBRNN_REC_GATED) && !e->loop;
    head_forward_from(e, sl, gated ? e->loaded : e->m);
}

void engine_add_skip(const cbrnn_engine *e, struct slot *sl)
{
    cbrnn_model_output(e->m, sl->y, sl->base, sl->scale, e->F, 1);
}

/* Head backward from da[L-1] (set by the caller) through the current
 * weights; weight and bias gradients added into e->grad when `grads`;
 * din (may be NULL) += dL/d(head input). */
static void head_backward(cbrnn_engine *e, float *din, const struct slot *sl, int grads)
{
    for (int l = e->L - 1; l >= 0; l--) {
        const float *in = l ? sl->a[l - 1] : sl->in;
        float *dprev = l ? e->da[l - 1] : din;
        if (l)
            memset(dprev, 0, (size_t)e->dim[l] * sizeof(float));
        if (dprev)
            k_linear_bwd_in(dprev, e->da[l], e->w[l], e->dim[l], e->dim[l + 1]);
        if (grads)
            k_outer_acc(head_at(e, e->grad, e->w[l]), head_at(e, e->grad, e->b[l]), e->da[l], in,
                        e->dim[l], e->dim[l + 1]);
        if (l)
            cbrnn_relu_backward_inplace(dprev, sl->a[l - 1], (size_t)e->dim[l]);
    }
}

/* pre = W_ih x + b_ih + b_hh [+ c] + W_hh h; then the leaky step. */
static void cortex_step(cbrnn_engine *e, const float *c)
{
    const cbrnn_model *m = e->m;
    const int N = e->N;
    k_linear_fwd(e->pre, e->xn, m->w_ih, m->b_ih, e->F, N);
    for (int i = 0; i < N; i++)
        e->pre[i] += m->b_hh[i] + (c ? c[i] : 0.0f);
    k_linear_fwd_acc(e->pre, e->h, m->w_hh, N, N);
    cbrnn_act_forward(e->act, e->pre, (size_t)N, e->act_fn);
    int ok = 1;
    if (e->alpha == 1.0f) {
        memcpy(e->h_new, e->act, (size_t)N * sizeof(float));
    } else {
        const float keep = 1.0f - e->alpha;
        for (int i = 0; i < N; i++)
            e->h_new[i] = keep * e->h[i] + e->alpha * e->act[i];
    }
    for (int i = 0; i < N; i++)
        ok &= fabsf(e->h_new[i]) <= FLT_MAX;
    if (!ok) {
        /* A state that left the finite range (an unstable relu cortex)
         * would stay non-finite for good: restart it from rest. */
        memset(e->h_new, 0, (size_t)N * sizeof(float));
        memset(e->act, 0, (size_t)N * sizeof(float));
        e->flags |= CBRNN_REC_BAD_INPUT;
    }
    memcpy(e->h, e->h_new, (size_t)N * sizeof(float));
}

void engine_cortex_step(cbrnn_engine *e, struct slot *sl)
{
    memcpy(sl->x, e->xn, (size_t)e->F * sizeof(float));
    memcpy(sl->base, e->xg, (size_t)e->F * sizeof(float));
    memcpy(sl->scale, e->sc, (size_t)e->F * sizeof(float));
    cortex_step(e, NULL);
    memcpy(sl->in, e->h, (size_t)e->N * sizeof(float));
}

void engine_forward(cbrnn_engine *e, struct slot *sl)
{
    const int N = e->N, F = e->F;
    if (!e->loop) {
        engine_cortex_step(e, sl);
        engine_head_forward(e, sl);
        return;
    }
    /* Loop wiring: c_t = CB([h_{t-1}, x_t]) joins the drive inside f. */
    memcpy(sl->x, e->xn, (size_t)F * sizeof(float));
    memcpy(sl->base, e->xg, (size_t)F * sizeof(float));
    memcpy(sl->scale, e->sc, (size_t)F * sizeof(float));
    memcpy(sl->in, e->h, (size_t)N * sizeof(float));
    memcpy(sl->in + N, e->xn, (size_t)F * sizeof(float));
    memcpy(sl->h_prev, e->h, (size_t)N * sizeof(float));
    engine_head_forward(e, sl);
    cortex_step(e, sl->a[e->L - 1]);
    memcpy(sl->act, e->act, (size_t)N * sizeof(float));
    k_linear_fwd(sl->y, e->h, e->m->out_w, e->m->out_b, N, e->O);
    engine_add_skip(e, sl);
}

int engine_backward_readout(cbrnn_engine *e, const struct slot *sl)
{
    memcpy(e->da[e->L - 1], e->dy, (size_t)e->O * sizeof(float));
    head_backward(e, NULL, sl, 1); /* cortex frozen: no input gradient */
    return 1;
}

int engine_backward_loop(cbrnn_engine *e)
{
    const cbrnn_model *m = e->m;
    const int N = e->N;
    /* dL/dh at the scored frame, through the frozen linear readout. */
    memset(e->dh, 0, (size_t)N * sizeof(float));
    k_linear_bwd_in(e->dh, e->dy, m->out_w, N, e->O);
    /* The scored frame is e->frame - horizon (predict) or e->frame. */
    int64_t s = e->target == CBRNN_TARGET_PREDICT ? e->frame - e->horizon : e->frame;
    for (int j = 0; j < e->cfg.bptt_k && s >= 0; j++, s--) {
        const struct slot *sl = &e->slots[s % e->n_slots];
        memset(e->dh_prev, 0, (size_t)N * sizeof(float));
        /* scratch_a = dL/dpre_s = dL/dc_s; dh_prev += (1 - a) dh + dpre W_hh */
        cbrnn_cortex_step_backward_ref(e->scratch_a, e->dh_prev, e->dh, sl->act, m->w_hh,
                                       e->act_fn, e->alpha, 1, N);
        memcpy(e->da[e->L - 1], e->scratch_a, (size_t)N * sizeof(float));
        /* The CB's input gradient reaches h_{s-1} through its first N inputs. */
        memset(e->cbin, 0, (size_t)e->dim[0] * sizeof(float));
        head_backward(e, e->cbin, sl, 1);
        for (int i = 0; i < N; i++)
            e->dh_prev[i] += e->cbin[i];
        memcpy(e->dh, e->dh_prev, (size_t)N * sizeof(float));
    }
    return 1;
}

int engine_update(cbrnn_engine *e)
{
    return k_sgd(e->m->params + e->head_off, e->vel, e->grad, e->loaded->params + e->head_off,
                 e->head_n, e->lr, e->momentum, e->decay);
}

int engine_fused_update_forward(cbrnn_engine *e, const struct slot *old, struct slot *cur)
{
    /* Output gradients of every layer through the weights as they were
     * when `old` was predicted (nothing has changed them since). */
    memcpy(e->da[e->L - 1], e->dy, (size_t)e->O * sizeof(float));
    head_backward(e, NULL, old, 0);
    int ok = 1;
    const int wd = e->decay > 0.0f;
    for (int l = 0; l < e->L; l++) {
        const float *x_old = l ? old->a[l - 1] : old->in;
        const float *x_new = l ? cur->a[l - 1] : cur->in;
        ok &= k_sgd_fwd(cur->a[l], e->w[l], e->b[l], head_at(e, e->vel, e->w[l]),
                        head_at(e, e->vel, e->b[l]), wd ? loaded_at(e, e->w[l]) : NULL,
                        wd ? loaded_at(e, e->b[l]) : NULL, e->da[l], x_old, x_new, e->dim[l],
                        e->dim[l + 1], e->lr, e->momentum, e->decay);
        if (l < e->L - 1)
            cbrnn_relu_forward(cur->a[l], cur->a[l], (size_t)e->dim[l + 1]);
    }
    memcpy(cur->y, cur->a[e->L - 1], (size_t)e->O * sizeof(float));
    engine_add_skip(e, cur);
    return ok;
}
