/* forward.c: the whole network over B sequences of T steps and its
 * backward pass (BPTT), for both wirings and every architecture, with the
 * activations in a workspace. Not for the audio thread (the engine uses
 * layers.h per frame); nothing here allocates after cbrnn_ws_create.
 *
 * Inside the workspace everything is time-major (row r = t*B + b) although
 * the API is batch-major like PyTorch's batch_first: then one time step is
 * one contiguous [B, *] block for the per-step GEMMs, and the work over all
 * steps (input drive, cerebellum in the readout wiring, readout, weight
 * gradients) is a single GEMM over T*B contiguous rows. Transposing the
 * inputs and outputs costs B*T*(F+O) copies, nothing next to the GEMMs. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cbrnn/cbrnn_model.h"
#include "layers.h"
#include "model_internal.h"

struct cbrnn_ws {
    int max_b, max_t;
    int B, T;        /* of the last forward; 0 before the first */
    int loop, has_cb, L, N, F, O;
    cbrnn_act f;
    float alpha;
    float *xt;       /* [T*B, F] inputs */
    float *hs;       /* [(T+1)*B, N]: hs[0] = h0, hs[t+1] = h_t */
    float *act;      /* [T*B, N] f(pre) when alpha < 1; else NULL (act = h) */
    float *pre;      /* [T*B, N] forward: drive/pre-activation; backward: dpre */
    float *z;        /* loop: [T*B, N+F] CB inputs [h_{t-1}, x_t] */
    float *a[CBRNN_MAX_CB_HIDDEN + 1];  /* [T*B, cb_dim[l+1]] CB layer outputs */
    float *da[CBRNN_MAX_CB_HIDDEN + 1]; /* their gradients */
    float *out;      /* [T*B, O] outputs (time-major); the CB's last a[] in readout */
    float *dout;     /* [T*B, O] dL/dy (time-major) */
    float *dh;       /* [T*B, N] dL/dh_t */
    float *dz;       /* loop: [B, N+F] one step's CB input gradient */
    float *block;    /* everything above, one allocation */
};

void cbrnn_ws_destroy(cbrnn_ws *ws)
{
    if (!ws)
        return;
    free(ws->block);
    free(ws);
}

cbrnn_ws *cbrnn_ws_create(const cbrnn_model *m, int max_b, int max_t, int *err)
{
    /* B*T rows go to CBLAS as an int. */
    if (!m || max_b < 1 || max_t < 1 || (size_t)max_b * (size_t)max_t > (size_t)INT_MAX) {
        if (err)
            *err = CBRNN_ERR_ARG;
        return NULL;
    }
    cbrnn_ws *ws = calloc(1, sizeof *ws);
    if (!ws) {
        if (err)
            *err = CBRNN_ERR_NOMEM;
        return NULL;
    }
    ws->max_b = max_b;
    ws->max_t = max_t;
    ws->loop = m->n_cb_layers > 0 && m->cfg.wiring == CBRNN_WIRING_LOOP;
    ws->has_cb = m->n_cb_layers > 0;
    ws->L = m->n_cb_layers;
    ws->N = m->cfg.n_hidden;
    ws->F = m->cfg.n_in;
    ws->O = m->cfg.n_out;
    ws->f = m->cfg.act;
    ws->alpha = m->cfg.alpha;
    size_t R = (size_t)max_b * max_t, N = ws->N, F = ws->F, O = ws->O, B = max_b;
    /* Sizes rounded to 16 floats keep every buffer 64-byte aligned. */
#define RND(n) (((n) + 15) & ~(size_t)15)
    size_t sz_x = RND(R * F), sz_hs = RND((R + B) * N), sz_rn = RND(R * N), sz_ro = RND(R * O);
    int own_out = !(ws->has_cb && !ws->loop);
    size_t total = sz_x + sz_hs + 2 * sz_rn + (own_out ? 2 : 1) * sz_ro;
    if (ws->alpha != 1.0f)
        total += sz_rn;
    if (ws->loop)
        total += RND(R * (N + F)) + RND(B * (N + F));
    for (int l = 0; l < ws->L; l++)
        total += 2 * RND(R * (size_t)m->cb_dim[l + 1]);
    ws->block = cbrnn_alloc_floats(total);
    if (!ws->block) {
        free(ws);
        if (err)
            *err = CBRNN_ERR_NOMEM;
        return NULL;
    }
    float *p = ws->block;
#define TAKE(dst, n)                                                                              \
    do {                                                                                          \
        (dst) = p;                                                                                \
        p += RND(n);                                                                              \
    } while (0)
    TAKE(ws->xt, R * F);
    TAKE(ws->hs, (R + B) * N);
    TAKE(ws->pre, R * N);
    TAKE(ws->dh, R * N);
    if (ws->alpha != 1.0f)
        TAKE(ws->act, R * N);
    if (ws->loop) {
        TAKE(ws->z, R * (N + F));
        TAKE(ws->dz, B * (N + F));
    }
    for (int l = 0; l < ws->L; l++) {
        TAKE(ws->a[l], R * (size_t)m->cb_dim[l + 1]);
        TAKE(ws->da[l], R * (size_t)m->cb_dim[l + 1]);
    }
    /* The readout wiring's CB output is the model output; other
     * architectures have their own output buffer. */
    if (own_out)
        TAKE(ws->out, R * O);
    else
        ws->out = ws->a[ws->L - 1];
    TAKE(ws->dout, R * O);
    (void)p;
#undef TAKE
#undef RND
    if (err)
        *err = 0;
    return ws;
}

/* dst[t*B + b] = src[b*T + t], rows of d floats (and back with swapped roles). */
static void bt_to_tb(float *dst, const float *src, int B, int T, int d)
{
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            memcpy(dst + ((size_t)t * B + b) * d, src + ((size_t)b * T + t) * d,
                   (size_t)d * sizeof(float));
}

static void tb_to_bt(float *dst, const float *src, int B, int T, int d)
{
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++)
            memcpy(dst + ((size_t)b * T + t) * d, src + ((size_t)t * B + b) * d,
                   (size_t)d * sizeof(float));
}

/* A model the workspace was not made for would read out of bounds. */
static int ws_fits(const cbrnn_ws *ws, const cbrnn_model *m)
{
    return ws->N == m->cfg.n_hidden && ws->F == m->cfg.n_in && ws->O == m->cfg.n_out &&
           ws->L == m->n_cb_layers && ws->f == m->cfg.act && ws->alpha == m->cfg.alpha &&
           ws->loop == (m->n_cb_layers > 0 && m->cfg.wiring == CBRNN_WIRING_LOOP);
}

int cbrnn_forward(cbrnn_ws *ws, float *y, float *h_last, const cbrnn_model *m, const float *x,
                  const float *h0, int B, int T)
{
    if (!ws || !m || !x || B < 1 || T < 1 || B > ws->max_b || T > ws->max_t || !ws_fits(ws, m))
        return CBRNN_ERR_ARG;
    int N = ws->N, F = ws->F, O = ws->O, L = ws->L;
    size_t R = (size_t)B * T, BN = (size_t)B * N;
    ws->B = B;
    ws->T = T;
    bt_to_tb(ws->xt, x, B, T, F);
    if (h0)
        memcpy(ws->hs, h0, BN * sizeof(float));
    else
        memset(ws->hs, 0, BN * sizeof(float));
    /* The input part of every step's drive at once: x W_ih^T + b_ih + b_hh. */
    cbrnn_cortex_drive(ws->pre, ws->xt, NULL, m->w_ih, m->b_ih, m->b_hh, (int)R, F, N);
    for (int t = 0; t < T; t++) {
        float *hp = ws->hs + (size_t)t * BN, *h = hp + BN, *pre = ws->pre + (size_t)t * BN;
        float *act = ws->act ? ws->act + (size_t)t * BN : h;
        if (ws->loop) {
            /* c_t = CB([h_{t-1}, x_t]) joins the drive. */
            int Z = N + F;
            float *z = ws->z + (size_t)t * B * Z;
            const float *xr = ws->xt + (size_t)t * B * F;
            for (int b = 0; b < B; b++) {
                memcpy(z + (size_t)b * Z, hp + (size_t)b * N, (size_t)N * sizeof(float));
                memcpy(z + (size_t)b * Z + N, xr + (size_t)b * F, (size_t)F * sizeof(float));
            }
            float *at[CBRNN_MAX_CB_HIDDEN + 1];
            for (int l = 0; l < L; l++)
                at[l] = ws->a[l] + (size_t)t * B * m->cb_dim[l + 1];
            cbrnn_cb_forward(at, z, m, B);
            const float *c = at[L - 1];
            for (size_t i = 0; i < BN; i++)
                pre[i] += c[i];
        }
        cbrnn_cortex_step_forward(h, act, pre, hp, m->w_hh, ws->f, ws->alpha, B, N);
    }
    const float *H = ws->hs + BN; /* h_1..h_T, [T*B, N] */
    if (ws->has_cb && !ws->loop)
        cbrnn_cb_forward(ws->a, H, m, (int)R);
    else
        cbrnn_linear_forward(ws->out, H, m->out_w, m->out_b, (int)R, N, O);
    if (y) /* the head's output (a residual model's: cbrnn_model_output) */
        tb_to_bt(y, ws->out, B, T, O);
    if (h_last)
        memcpy(h_last, ws->hs + (size_t)T * BN, BN * sizeof(float));
    return 0;
}

/* BPTT through the cortex, given dh[t] = dL/dh_t from the output path.
 * Leaves dpre (in ws->pre) for the weight gradients. In the loop wiring
 * each step also goes back through the cerebellum into h_{t-1}, keeping
 * the CB's layer gradients (ws->da) for its weight gradients. */
static void bptt(cbrnn_ws *ws, const cbrnn_model *m)
{
    int B = ws->B, T = ws->T, N = ws->N, F = ws->F, L = ws->L;
    size_t BN = (size_t)B * N;
    for (int t = T - 1; t >= 0; t--) {
        float *dh = ws->dh + (size_t)t * BN, *dpre = ws->pre + (size_t)t * BN;
        float *dh_prev = t > 0 ? dh - BN : NULL; /* dL/dh0 is not wanted */
        const float *act = ws->act ? ws->act + (size_t)t * BN : ws->hs + (size_t)(t + 1) * BN;
        cbrnn_cortex_step_backward(dpre, dh_prev, dh, act, m->w_hh, ws->f, ws->alpha, B, N);
        if (ws->loop) {
            /* dL/dc_t = dpre; back through the CB to its input [h_{t-1}, x_t]. */
            int Z = N + F;
            float *dat[CBRNN_MAX_CB_HIDDEN + 1];
            const float *at[CBRNN_MAX_CB_HIDDEN + 1];
            for (int l = 0; l < L; l++) {
                dat[l] = ws->da[l] + (size_t)t * B * m->cb_dim[l + 1];
                at[l] = ws->a[l] + (size_t)t * B * m->cb_dim[l + 1];
            }
            memcpy(dat[L - 1], dpre, BN * sizeof(float));
            const float *z = ws->z + (size_t)t * B * Z;
            if (dh_prev) {
                memset(ws->dz, 0, (size_t)B * Z * sizeof(float));
                cbrnn_cb_backward(ws->dz, NULL, dat, z, at, m, B);
                for (int b = 0; b < B; b++) {
                    const float *s = ws->dz + (size_t)b * Z;
                    float *d = dh_prev + (size_t)b * N;
                    for (int j = 0; j < N; j++)
                        d[j] += s[j];
                }
            } else {
                cbrnn_cb_backward(NULL, NULL, dat, z, at, m, B);
            }
        }
    }
}

int cbrnn_backward(cbrnn_ws *ws, float *grad, const cbrnn_model *m, const float *dy, int B,
                   int T)
{
    if (!ws || !grad || !m || !dy || B != ws->B || T != ws->T || B < 1 || !ws_fits(ws, m))
        return CBRNN_ERR_ARG;
    int N = ws->N, F = ws->F, O = ws->O, L = ws->L;
    size_t R = (size_t)B * T, BN = (size_t)B * N;
    int tr_cortex = !m->frozen[CBRNN_GROUP_CORTEX];
    int tr_cb = ws->has_cb && !m->frozen[CBRNN_GROUP_CEREBELLUM];
    int tr_out = m->out_w && !m->frozen[CBRNN_GROUP_READOUT];
    /* BPTT is needed when a parameter upstream of h is trained: the cortex,
     * or (loop wiring) the cerebellum inside it. */
    int need_bptt = tr_cortex || (ws->loop && tr_cb);
    const float *H = ws->hs + BN;
    float *gcb = tr_cb ? grad : NULL;

    if (ws->has_cb && !ws->loop) {
        if (!tr_cb && !need_bptt)
            return 0; /* everything frozen: nothing to compute */
        /* The CB is the readout: its last layer's gradient is dL/dy. */
        bt_to_tb(ws->da[L - 1], dy, B, T, O);
        if (need_bptt)
            memset(ws->dh, 0, R * N * sizeof(float));
        cbrnn_cb_backward(need_bptt ? ws->dh : NULL, gcb, ws->da, H, (const float *const *)ws->a,
                          m, (int)R);
    } else {
        bt_to_tb(ws->dout, dy, B, T, O);
        if (need_bptt)
            memset(ws->dh, 0, R * N * sizeof(float));
        cbrnn_linear_backward(need_bptt ? ws->dh : NULL,
                              tr_out ? cbrnn_same_place(grad, m, m->out_w) : NULL,
                              tr_out ? cbrnn_same_place(grad, m, m->out_b) : NULL, ws->dout, H,
                              m->out_w, (int)R, N, O);
    }
    if (!need_bptt)
        return 0;
    bptt(ws, m);
    const float *dpre = ws->pre;
    if (tr_cortex) {
        cbrnn_linear_backward(NULL, cbrnn_same_place(grad, m, m->w_ih),
                              cbrnn_same_place(grad, m, m->b_ih), dpre, ws->xt, m->w_ih, (int)R,
                              F, N);
        cbrnn_linear_backward(NULL, cbrnn_same_place(grad, m, m->w_hh),
                              cbrnn_same_place(grad, m, m->b_hh), dpre, ws->hs, m->w_hh, (int)R,
                              N, N);
    }
    if (ws->loop && tr_cb) {
        for (int l = 0; l < L; l++) {
            const float *in = l ? ws->a[l - 1] : ws->z;
            cbrnn_linear_backward(NULL, cbrnn_same_place(grad, m, m->cb_w[l]),
                                  cbrnn_same_place(grad, m, m->cb_b[l]), ws->da[l], in,
                                  m->cb_w[l], (int)R, m->cb_dim[l], m->cb_dim[l + 1]);
        }
    }
    return 0;
}
