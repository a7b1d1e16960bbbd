/* test_model_grad.c: every layer's backward and the whole model's gradient
 * (both wirings, the three cortex activations, alpha < 1, cerebellum of
 * depth 1 and 2, the rnn and reservoir baselines, frozen groups) against
 * central finite differences computed in DOUBLE precision by an independent
 * re-implementation of the forward pass written here from the equations in
 * DESIGN.md; and each CBLAS kernel against its plain-loop twin.
 *
 * Why a double re-implementation: finite differences of the float model
 * itself would have errors of ~1e-3 and hide real mistakes. Here the
 * analytic float gradient must agree with the exact (double) derivative to
 * float rounding. A control case perturbs one gradient entry and checks the
 * comparison then fails, so the check can fail. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "testutil.h"

/* Analytic float gradients vs double finite differences: float rounding
 * through a few layers and steps stays below 1e-4 of the larger of the
 * entry and 1% of the tensor's largest entry (measured worst 2.1e-5 over
 * all cases; a 1e-3 relative error in one entry is caught). */
#define GRAD_TOL 1e-4
#define GRAD_FLOOR 1e-2
/* Central-difference step in double: truncation ~eps^2, rounding ~1e-16/eps. */
#define FD_EPS 1e-6

/* ---------------- double reference of the whole model ---------------- */

static double act_d(double v, cbrnn_act f)
{
    switch (f) {
    case CBRNN_ACT_TANH: return tanh(v);
    case CBRNN_ACT_RELU: return v > 0 ? v : 0;
    default: return v > 0 ? v : 0.01 * v;
    }
}

static size_t off(const cbrnn_model *m, const float *p)
{
    return (size_t)(p - m->params);
}

/* out = CB(in) in double, params p of the model's layout. */
static void cb_d(double *out, const double *in, const cbrnn_model *m, const double *p)
{
    double buf[2][256];
    const double *x = in;
    for (int l = 0; l < m->n_cb_layers; l++) {
        int di = m->cb_dim[l], dout = m->cb_dim[l + 1];
        double *o = l == m->n_cb_layers - 1 ? out : buf[l & 1];
        const double *w = p + off(m, m->cb_w[l]), *b = p + off(m, m->cb_b[l]);
        for (int j = 0; j < dout; j++) {
            double s = b[j];
            for (int k = 0; k < di; k++)
                s += w[(size_t)j * di + k] * x[k];
            o[j] = l < m->n_cb_layers - 1 && s < 0 ? 0 : s;
        }
        x = o;
    }
}

/* y [B,T,O] from x [B,T,F], h0 [B,N] (NULL: zeros). */
static void model_d(double *y, const cbrnn_model *m, const double *p, const double *x,
                    const double *h0, int B, int T)
{
    int F = m->cfg.n_in, N = m->cfg.n_hidden, O = m->cfg.n_out;
    double a = m->cfg.alpha;
    int loop = m->n_cb_layers > 0 && m->cfg.wiring == CBRNN_WIRING_LOOP;
    const double *wih = p + off(m, m->w_ih), *whh = p + off(m, m->w_hh);
    const double *bih = p + off(m, m->b_ih), *bhh = p + off(m, m->b_hh);
    double h[64], hn[64], z[128], c[64];
    for (int b = 0; b < B; b++) {
        for (int j = 0; j < N; j++)
            h[j] = h0 ? h0[(size_t)b * N + j] : 0.0;
        for (int t = 0; t < T; t++) {
            const double *xt = x + ((size_t)b * T + t) * F;
            if (loop) {
                memcpy(z, h, N * sizeof(double));
                memcpy(z + N, xt, F * sizeof(double));
                cb_d(c, z, m, p);
            }
            for (int j = 0; j < N; j++) {
                double s = bih[j] + bhh[j] + (loop ? c[j] : 0.0);
                for (int k = 0; k < F; k++)
                    s += wih[j * F + k] * xt[k];
                for (int k = 0; k < N; k++)
                    s += whh[j * N + k] * h[k];
                hn[j] = (1 - a) * h[j] + a * act_d(s, m->cfg.act);
            }
            memcpy(h, hn, N * sizeof(double));
            double *yt = y + ((size_t)b * T + t) * O;
            if (m->n_cb_layers > 0 && !loop) {
                cb_d(yt, h, m, p);
            } else {
                const double *w = p + off(m, m->out_w), *bo = p + off(m, m->out_b);
                for (int o = 0; o < O; o++) {
                    double s = bo[o];
                    for (int k = 0; k < N; k++)
                        s += w[o * N + k] * h[k];
                    yt[o] = s;
                }
            }
        }
    }
}

/* cbrnn_model_output in double: y = base + scale * y for a residual model. */
static void output_d(double *y, const cbrnn_model *m, const float *base, const float *sc, int rows)
{
    int F = m->cfg.n_in, O = m->cfg.n_out;
    for (int r = 0; m->cfg.residual && r < rows; r++)
        for (int o = 0; o < O; o++)
            y[(size_t)r * O + o] = base[(size_t)r * F + o] + (double)sc[(size_t)r * F + o] *
                                   y[(size_t)r * O + o];
}

static double dot_d(const double *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* ---------------- whole-model gradient check ---------------- */

typedef struct {
    cbrnn_wiring wiring;
    cbrnn_arch arch;
    cbrnn_act act;
    float alpha;
    int depth;   /* CB hidden layers */
    int frozen[CBRNN_NGROUPS];
    int use_h0;
    int residual; /* y = base + scale * head (cbrnn_model_output), random base and scale */
} gcase;

static const char *act_name(cbrnn_act a)
{
    return a == CBRNN_ACT_TANH ? "tanh" : a == CBRNN_ACT_RELU ? "relu" : "leaky_relu";
}

/* Runs one case; returns failing entries. perturb >= 0: adds an error to
 * that gradient entry first (the control that shows the check can fail). */
static int run_case(const gcase *gc, long perturb)
{
    const int F = 3, N = 5, O = 2, B = 2, T = 4;
    cbrnn_model_config c;
    cbrnn_model_config_default(&c);
    c.arch = gc->arch;
    c.wiring = gc->wiring;
    c.act = gc->act;
    c.alpha = gc->alpha;
    c.residual = gc->residual;
    c.n_in = F;
    c.n_hidden = N;
    c.n_out = O;
    c.n_cb_hidden = gc->depth;
    c.cb_hidden[0] = 7;
    c.cb_hidden[1] = 4;
    int err;
    cbrnn_model *m = cbrnn_model_create(&c, &err);
    assert_non_null(m);
    assert_int_equal(cbrnn_model_init(m, 1234), 0);
    /* Loop-wiring CB starts near zero; give it real weights so its
     * gradient paths are exercised at a generic point. */
    cbrnn_rng r;
    cbrnn_rng_seed(&r, 99);
    for (int l = 0; l < m->n_cb_layers; l++) {
        fill_u(m->cb_w[l], (size_t)m->cb_dim[l + 1] * m->cb_dim[l], -0.6f, 0.6f, &r);
        fill_u(m->cb_b[l], (size_t)m->cb_dim[l + 1], -0.3f, 0.3f, &r);
    }
    /* Recurrent weights large enough that BPTT terms matter. */
    fill_u(m->w_hh, (size_t)N * N, -0.7f, 0.7f, &r);
    memcpy(m->frozen, gc->frozen, sizeof m->frozen);
    if (gc->arch == CBRNN_ARCH_RESERVOIR)
        m->frozen[CBRNN_GROUP_CORTEX] = 1;

    size_t nx = (size_t)B * T * F, ny = (size_t)B * T * O, nh = (size_t)B * N, P = m->n_params;
    float *x = malloc(nx * sizeof(float)), *h0 = malloc(nh * sizeof(float));
    float *y = malloc(ny * sizeof(float)), *dy = malloc(ny * sizeof(float));
    float *hl = malloc(nh * sizeof(float)), *g = malloc(P * sizeof(float));
    double *xd = malloc(nx * sizeof(double)), *h0d = malloc(nh * sizeof(double));
    double *yd = malloc(ny * sizeof(double)), *pd = malloc(P * sizeof(double));
    double *fd = malloc(P * sizeof(double));
    fill_u(x, nx, -1.5f, 1.5f, &r);
    fill_u(h0, nh, -0.8f, 0.8f, &r);
    fill_u(dy, ny, -1.0f, 1.0f, &r);
    float *base = malloc(nx * sizeof(float)), *sc = malloc(nx * sizeof(float));
    float *dnet = malloc(ny * sizeof(float));
    fill_u(base, nx, -1.0f, 1.0f, &r);
    fill_u(sc, nx, 0.3f, 2.0f, &r);
    memcpy(dnet, dy, ny * sizeof(float));
    cbrnn_model_output_backward(m, dnet, sc, F, (long)B * T); /* dL/d(head output) */
    for (size_t i = 0; i < nx; i++)
        xd[i] = x[i];
    for (size_t i = 0; i < nh; i++)
        h0d[i] = h0[i];
    for (size_t i = 0; i < P; i++)
        pd[i] = m->params[i];

    cbrnn_ws *ws = cbrnn_ws_create(m, B, T + 2, &err);
    assert_non_null(ws);
    assert_int_equal(cbrnn_forward(ws, y, hl, m, x, gc->use_h0 ? h0 : NULL, B, T), 0);
    cbrnn_model_output(m, y, base, sc, F, (long)B * T);
    /* Gradients are added: start from a sentinel and subtract it after. */
    const float sentinel = 0.25f;
    for (size_t i = 0; i < P; i++)
        g[i] = sentinel;
    assert_int_equal(cbrnn_backward(ws, g, m, dnet, B, T), 0);

    char what[200];
    snprintf(what, sizeof what,
             "arch %d wiring %s act %s alpha %g depth %d frozen %d%d%d h0 %d residual %d",
             gc->arch, gc->wiring == CBRNN_WIRING_LOOP ? "loop" : "readout", act_name(gc->act),
             gc->alpha, gc->depth, m->frozen[0], m->frozen[1], m->frozen[2], gc->use_h0,
             gc->residual);
    int bad = 0;
    /* The float forward against the double one. */
    model_d(yd, m, pd, xd, gc->use_h0 ? h0d : NULL, B, T);
    output_d(yd, m, base, sc, B * T);
    bad += check_array(what, "forward y", yd, y, ny, 1e-5, 1e-2);

    /* L = sum(y * dy), so dL/dy = dy exactly. */
    for (size_t i = 0; i < P; i++) {
        double keep = pd[i];
        pd[i] = keep + FD_EPS;
        model_d(yd, m, pd, xd, gc->use_h0 ? h0d : NULL, B, T);
        output_d(yd, m, base, sc, B * T);
        double lp = dot_d(yd, dy, ny);
        pd[i] = keep - FD_EPS;
        model_d(yd, m, pd, xd, gc->use_h0 ? h0d : NULL, B, T);
        output_d(yd, m, base, sc, B * T);
        double lm = dot_d(yd, dy, ny);
        pd[i] = keep;
        fd[i] = (lp - lm) / (2 * FD_EPS);
    }
    if (perturb >= 0)
        g[perturb] += 1e-3f * (float)fabs(fd[perturb]);
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const cbrnn_tensor *t = &m->tensors[ti];
        float *gt = malloc(t->size * sizeof(float));
        for (size_t i = 0; i < t->size; i++)
            gt[i] = g[t->offset + i] - sentinel;
        if (m->frozen[t->group]) {
            /* A frozen group's gradient is not touched at all. */
            for (size_t i = 0; i < t->size; i++)
                if (g[t->offset + i] != sentinel) {
                    print_error("%s: frozen %s[%zu] was written (%.9g)\n", what, t->name, i,
                                g[t->offset + i]);
                    bad++;
                    break;
                }
        } else {
            bad += check_array(what, t->name, fd + t->offset, gt, t->size, GRAD_TOL, GRAD_FLOOR);
        }
        free(gt);
    }
    cbrnn_ws_destroy(ws);
    cbrnn_model_destroy(m);
    free(x), free(h0), free(y), free(dy), free(hl), free(g), free(base), free(sc), free(dnet);
    free(xd), free(h0d), free(yd), free(pd), free(fd);
    return bad;
}

static void test_model_gradients(void **state)
{
    (void)state;
    int bad = 0, cases = 0;
    const cbrnn_act acts[3] = {CBRNN_ACT_TANH, CBRNN_ACT_RELU, CBRNN_ACT_LEAKY_RELU};
    for (int w = 0; w < 2; w++)
        for (int a = 0; a < 3; a++)
            for (int al = 0; al < 2; al++)
                for (int d = 1; d <= 2; d++) {
                    gcase gc = {.wiring = w, .arch = CBRNN_ARCH_CBRNN, .act = acts[a],
                                .alpha = al ? 0.6f : 1.0f, .depth = d, .use_h0 = (a + d) & 1};
                    bad += run_case(&gc, -1);
                    cases++;
                }
    /* Baselines: rnn (linear readout) in both wirings, reservoir with a
     * CB and with a linear readout. */
    for (int w = 0; w < 2; w++) {
        gcase gc = {.wiring = w, .arch = CBRNN_ARCH_RNN, .act = CBRNN_ACT_TANH, .alpha = 0.8f,
                    .depth = 0, .use_h0 = 1};
        bad += run_case(&gc, -1);
        gcase rs = {.wiring = w, .arch = CBRNN_ARCH_RESERVOIR, .act = CBRNN_ACT_TANH,
                    .alpha = 1.0f, .depth = w, .use_h0 = 0};
        bad += run_case(&rs, -1);
        cases += 2;
    }
    /* The residual output y = base + s * head (the running normaliser's
     * scale s) in both wirings: the parameter gradients through it. */
    for (int w = 0; w < 2; w++) {
        gcase gc = {.wiring = w, .arch = CBRNN_ARCH_CBRNN, .act = CBRNN_ACT_TANH, .alpha = 0.7f,
                    .depth = 1, .use_h0 = 1, .residual = 1};
        bad += run_case(&gc, -1);
        cases++;
    }
    assert_true(cases == 30);
    assert_int_equal(bad, 0);
}

static void test_frozen_groups(void **state)
{
    (void)state;
    int bad = 0;
    for (int w = 0; w < 2; w++)
        for (int fz = 1; fz < 8; fz++) {
            gcase gc = {.wiring = w, .arch = CBRNN_ARCH_CBRNN, .act = CBRNN_ACT_TANH,
                        .alpha = 0.7f, .depth = 2, .use_h0 = 1,
                        .frozen = {fz & 1, (fz >> 1) & 1, (fz >> 2) & 1}};
            bad += run_case(&gc, -1);
        }
    assert_int_equal(bad, 0);
}

static void test_check_can_fail(void **state)
{
    (void)state;
    gcase gc = {.wiring = CBRNN_WIRING_LOOP, .arch = CBRNN_ARCH_CBRNN, .act = CBRNN_ACT_TANH,
                .alpha = 0.6f, .depth = 1, .use_h0 = 1};
    print_message("(control: the following mismatch report is expected)\n");
    assert_true(run_case(&gc, 17) > 0);
}

/* ---------------- layer-level checks ---------------- */

/* Linear: L = sum(r * (in W^T + b)). */
static void test_linear_backward_fd(void **state)
{
    (void)state;
    const int R = 3, I = 4, O = 5;
    cbrnn_rng r;
    cbrnn_rng_seed(&r, 5);
    float in[12], w[20], b[5], dout[15], din[12] = {0}, dw[20] = {0}, db[5] = {0};
    fill_u(in, 12, -1, 1, &r);
    fill_u(w, 20, -1, 1, &r);
    fill_u(b, 5, -1, 1, &r);
    fill_u(dout, 15, -1, 1, &r);
    cbrnn_linear_backward(din, dw, db, dout, in, w, R, I, O);
    double fin[12], fw[20], fb[5];
    /* The loss is linear in each argument: its derivative is exact. */
    for (int k = 0; k < 12; k++) {
        int rr = k / I, i = k % I;
        double s = 0;
        for (int o = 0; o < O; o++)
            s += dout[rr * O + o] * w[o * I + i];
        fin[k] = s;
    }
    for (int k = 0; k < 20; k++) {
        int o = k / I, i = k % I;
        double s = 0;
        for (int rr = 0; rr < R; rr++)
            s += dout[rr * O + o] * in[rr * I + i];
        fw[k] = s;
    }
    for (int o = 0; o < O; o++) {
        double s = 0;
        for (int rr = 0; rr < R; rr++)
            s += dout[rr * O + o];
        fb[o] = s;
    }
    int bad = check_array("linear backward", "din", fin, din, 12, 1e-5, 1e-3) +
              check_array("linear backward", "dw", fw, dw, 20, 1e-5, 1e-3) +
              check_array("linear backward", "db", fb, db, 5, 1e-5, 1e-3);
    assert_int_equal(bad, 0);
}

/* Activations: L = sum(r * f(pre)), FD in double per element. */
static void test_act_backward_fd(void **state)
{
    (void)state;
    const cbrnn_act acts[3] = {CBRNN_ACT_TANH, CBRNN_ACT_RELU, CBRNN_ACT_LEAKY_RELU};
    cbrnn_rng r;
    cbrnn_rng_seed(&r, 6);
    int bad = 0;
    for (int a = 0; a < 3; a++) {
        float pre[40], out[40], dout[40], dpre[40];
        double fd[40];
        fill_u(pre, 40, -2, 2, &r);
        fill_u(dout, 40, -1, 1, &r);
        cbrnn_act_forward(out, pre, 40, acts[a]);
        for (int i = 0; i < 40; i++)
            dpre[i] = 0.5f; /* backward accumulates */
        cbrnn_act_backward(dpre, dout, out, 40, acts[a]);
        for (int i = 0; i < 40; i++) {
            fd[i] = 0.5 + dout[i] * (act_d(pre[i] + FD_EPS, acts[a]) -
                                     act_d(pre[i] - FD_EPS, acts[a])) / (2 * FD_EPS);
            double fwd = act_d(pre[i], acts[a]);
            bad += !close_rel(act_name(acts[a]), "forward", (size_t)i, fwd, out[i], 1e-6, 1e-3);
        }
        bad += check_array(act_name(acts[a]), "dpre", fd, dpre, 40, 1e-5, 1e-3);
        /* ReLU of the cerebellum (same derivative as act relu, separate code). */
        if (acts[a] == CBRNN_ACT_RELU) {
            float d2[40], d3[40];
            memcpy(d3, dout, sizeof d3);
            for (int i = 0; i < 40; i++)
                d2[i] = 0.5f;
            cbrnn_relu_backward(d2, dout, out, 40);
            cbrnn_relu_backward_inplace(d3, out, 40);
            for (int i = 0; i < 40; i++)
                fd[i] -= 0.5;
            bad += check_array("relu", "backward_inplace", fd, d3, 40, 1e-5, 1e-3);
            for (int i = 0; i < 40; i++)
                fd[i] += 0.5;
            bad += check_array("relu", "backward", fd, d2, 40, 1e-5, 1e-3);
        }
    }
    assert_int_equal(bad, 0);
}

/* Cortex step: L = sum(r * h), h = (1-a) h_prev + a f(drive + h_prev W^T).
 * Checks dpre (= dL/d drive) and dh_prev against double FD. */
static void test_cortex_step_fd(void **state)
{
    (void)state;
    const int R = 2, N = 6;
    const cbrnn_act acts[3] = {CBRNN_ACT_TANH, CBRNN_ACT_RELU, CBRNN_ACT_LEAKY_RELU};
    cbrnn_rng r;
    cbrnn_rng_seed(&r, 7);
    int bad = 0;
    for (int a = 0; a < 3; a++)
        for (int al = 0; al < 2; al++) {
            float alpha = al ? 0.35f : 1.0f;
            float drive[12], hp[12], w[36], dh[12], h[12], act[12], pre[12], dpre[12], dhp[12];
            fill_u(drive, 12, -1, 1, &r);
            fill_u(hp, 12, -1, 1, &r);
            fill_u(w, 36, -0.8f, 0.8f, &r);
            fill_u(dh, 12, -1, 1, &r);
            memcpy(pre, drive, sizeof pre);
            cbrnn_cortex_step_forward(h, act, pre, hp, w, acts[a], alpha, R, N);
            for (int i = 0; i < 12; i++)
                dhp[i] = 0.125f;
            cbrnn_cortex_step_backward(dpre, dhp, dh, act, w, acts[a], alpha, R, N);
            /* double reference of L as a function of drive and h_prev */
            double fdd[12], fdh[12];
            for (int which = 0; which < 2; which++)
                for (int k = 0; k < 12; k++) {
                    double L[2];
                    for (int s = 0; s < 2; s++) {
                        double dd[12], hh[12];
                        for (int i = 0; i < 12; i++) {
                            dd[i] = drive[i];
                            hh[i] = hp[i];
                        }
                        (which ? hh : dd)[k] += s ? -FD_EPS : FD_EPS;
                        double tot = 0;
                        for (int rr = 0; rr < R; rr++)
                            for (int j = 0; j < N; j++) {
                                double p = dd[rr * N + j];
                                for (int q = 0; q < N; q++)
                                    p += w[j * N + q] * hh[rr * N + q];
                                double hn = (1 - alpha) * hh[rr * N + j] + alpha * act_d(p, acts[a]);
                                tot += dh[rr * N + j] * hn;
                            }
                        L[s] = tot;
                    }
                    (which ? fdh : fdd)[k] = (L[0] - L[1]) / (2 * FD_EPS) + (which ? 0.125 : 0);
                }
            char what[64];
            snprintf(what, sizeof what, "cortex step %s alpha %g", act_name(acts[a]), alpha);
            bad += check_array(what, "dpre", fdd, dpre, 12, 1e-4, 1e-3);
            bad += check_array(what, "dh_prev", fdh, dhp, 12, 1e-4, 1e-3);
        }
    assert_int_equal(bad, 0);
}

/* Cerebellum of depth 1 and 2 as a standalone layer: L = sum(r * CB(in));
 * checks din and every weight and bias gradient. */
static void test_cb_fd(void **state)
{
    (void)state;
    int bad = 0;
    for (int depth = 1; depth <= 2; depth++) {
        cbrnn_model_config c;
        cbrnn_model_config_default(&c);
        c.n_in = 3, c.n_hidden = 4, c.n_out = 3, c.n_cb_hidden = depth;
        c.cb_hidden[0] = 6, c.cb_hidden[1] = 5;
        cbrnn_model *m = cbrnn_model_create(&c, NULL);
        assert_non_null(m);
        cbrnn_model_init(m, 3);
        const int R = 3, I = 4, L = m->n_cb_layers, Od = m->cb_dim[L];
        float in[12], a0[18], a1[15], a2[9], da0[18], da1[15], da2[9], din[12];
        float *a[3] = {a0, a1, a2}, *da[3] = {da0, da1, da2};
        float *g = calloc(m->n_params, sizeof(float));
        double *pd = malloc(m->n_params * sizeof(double)), fdin[12];
        double *fd = calloc(m->n_params, sizeof(double));
        cbrnn_rng r;
        cbrnn_rng_seed(&r, 8);
        fill_u(in, 12, -1, 1, &r);
        float dout[9];
        fill_u(dout, (size_t)R * Od, -1, 1, &r);
        cbrnn_cb_forward(a, in, m, R);
        memcpy(da[L - 1], dout, (size_t)R * Od * sizeof(float));
        memset(din, 0, sizeof din);
        cbrnn_cb_backward(din, g, da, in, (const float *const *)a, m, R);
        for (size_t i = 0; i < m->n_params; i++)
            pd[i] = m->params[i];
        double ind[12], o[3];
        for (int i = 0; i < 12; i++)
            ind[i] = in[i];
        /* L(pd, ind) in double */
#define LOSS(res)                                                                                 \
    do {                                                                                          \
        res = 0;                                                                                  \
        for (int rr = 0; rr < R; rr++) {                                                          \
            cb_d(o, ind + rr * I, m, pd);                                                         \
            for (int q = 0; q < Od; q++)                                                          \
                res += o[q] * dout[rr * Od + q];                                                  \
        }                                                                                         \
    } while (0)
        double lp, lm;
        size_t first_cb = m->tensors[4].offset, end_cb = first_cb + cbrnn_model_group_params(m, 1);
        for (size_t i = first_cb; i < end_cb; i++) {
            double k = pd[i];
            pd[i] = k + FD_EPS;
            LOSS(lp);
            pd[i] = k - FD_EPS;
            LOSS(lm);
            pd[i] = k;
            fd[i] = (lp - lm) / (2 * FD_EPS);
        }
        for (int i = 0; i < 12; i++) {
            double k = ind[i];
            ind[i] = k + FD_EPS;
            LOSS(lp);
            ind[i] = k - FD_EPS;
            LOSS(lm);
            ind[i] = k;
            fdin[i] = (lp - lm) / (2 * FD_EPS);
        }
#undef LOSS
        char what[32];
        snprintf(what, sizeof what, "cerebellum depth %d", depth);
        bad += check_array(what, "din", fdin, din, 12, 1e-4, 1e-2);
        for (int ti = 4; ti < m->n_tensors; ti++) {
            const cbrnn_tensor *t = &m->tensors[ti];
            bad += check_array(what, t->name, fd + t->offset, g + t->offset, t->size, 1e-4, 1e-2);
        }
        free(g), free(pd), free(fd);
        cbrnn_model_destroy(m);
    }
    assert_int_equal(bad, 0);
}

/* ---------------- fast kernels against their plain twins ---------------- */

static void test_kernels_vs_ref(void **state)
{
    (void)state;
    cbrnn_rng r;
    cbrnn_rng_seed(&r, 9);
    int bad = 0;
    const int shapes[][3] = {{1, 7, 5}, {9, 13, 11}, {33, 40, 64}};
    for (int s = 0; s < 3; s++) {
        int R = shapes[s][0], I = shapes[s][1], O = shapes[s][2];
        size_t ni = (size_t)R * I, no = (size_t)R * O, nw = (size_t)O * I;
        float *in = malloc(ni * 4), *w = malloc(nw * 4), *b = malloc(O * 4), *d = malloc(no * 4);
        float *o1 = malloc(no * 4), *o2 = malloc(no * 4);
        float *di1 = malloc(ni * 4), *di2 = malloc(ni * 4), *dw1 = malloc(nw * 4),
              *dw2 = malloc(nw * 4), *db1 = malloc(O * 4), *db2 = malloc(O * 4);
        double *want = malloc((ni + nw + no) * sizeof(double));
        fill_u(in, ni, -1, 1, &r);
        fill_u(w, nw, -1, 1, &r);
        fill_u(b, O, -1, 1, &r);
        fill_u(d, no, -1, 1, &r);
        cbrnn_linear_forward(o1, in, w, b, R, I, O);
        cbrnn_linear_forward_ref(o2, in, w, b, R, I, O);
        for (size_t i = 0; i < no; i++)
            want[i] = o2[i];
        bad += check_array("linear_forward vs ref", "out", want, o1, no, 1e-4, 5e-2);
        fill_u(di1, ni, -1, 1, &r);
        memcpy(di2, di1, ni * 4);
        fill_u(dw1, nw, -1, 1, &r);
        memcpy(dw2, dw1, nw * 4);
        fill_u(db1, O, -1, 1, &r);
        memcpy(db2, db1, O * 4);
        cbrnn_linear_backward(di1, dw1, db1, d, in, w, R, I, O);
        cbrnn_linear_backward_ref(di2, dw2, db2, d, in, w, R, I, O);
        for (size_t i = 0; i < ni; i++)
            want[i] = di2[i];
        bad += check_array("linear_backward vs ref", "din", want, di1, ni, 1e-4, 5e-2);
        for (size_t i = 0; i < nw; i++)
            want[i] = dw2[i];
        bad += check_array("linear_backward vs ref", "dw", want, dw1, nw, 1e-4, 5e-2);
        for (int i = 0; i < O; i++)
            want[i] = db2[i];
        bad += check_array("linear_backward vs ref", "db", want, db1, (size_t)O, 1e-4, 5e-2);
        /* Cortex step: rows R, N = I. */
        int N = I;
        size_t nn = (size_t)R * N;
        float *hp = malloc(nn * 4), *wh = malloc((size_t)N * N * 4), *p1 = malloc(nn * 4),
              *p2 = malloc(nn * 4), *h1 = malloc(nn * 4), *h2 = malloc(nn * 4),
              *a1 = malloc(nn * 4), *a2 = malloc(nn * 4), *dh = malloc(nn * 4),
              *dp1 = malloc(nn * 4), *dp2 = malloc(nn * 4), *dq1 = malloc(nn * 4),
              *dq2 = malloc(nn * 4);
        fill_u(hp, nn, -1, 1, &r);
        fill_u(wh, (size_t)N * N, -0.5f, 0.5f, &r);
        fill_u(p1, nn, -1, 1, &r);
        memcpy(p2, p1, nn * 4);
        fill_u(dh, nn, -1, 1, &r);
        cbrnn_cortex_step_forward(h1, a1, p1, hp, wh, CBRNN_ACT_TANH, 0.5f, R, N);
        cbrnn_cortex_step_forward_ref(h2, a2, p2, hp, wh, CBRNN_ACT_TANH, 0.5f, R, N);
        for (size_t i = 0; i < nn; i++)
            want[i] = h2[i];
        bad += check_array("cortex_step_forward vs ref", "h", want, h1, nn, 1e-4, 5e-2);
        memset(dq1, 0, nn * 4);
        memset(dq2, 0, nn * 4);
        cbrnn_cortex_step_backward(dp1, dq1, dh, a1, wh, CBRNN_ACT_TANH, 0.5f, R, N);
        cbrnn_cortex_step_backward_ref(dp2, dq2, dh, a2, wh, CBRNN_ACT_TANH, 0.5f, R, N);
        for (size_t i = 0; i < nn; i++)
            want[i] = dq2[i];
        bad += check_array("cortex_step_backward vs ref", "dh_prev", want, dq1, nn, 1e-4, 5e-2);
        for (size_t i = 0; i < nn; i++)
            want[i] = dp2[i];
        bad += check_array("cortex_step_backward vs ref", "dpre", want, dp1, nn, 1e-4, 5e-2);
        free(hp), free(wh), free(p1), free(p2), free(h1), free(h2), free(a1), free(a2);
        free(dh), free(dp1), free(dp2), free(dq1), free(dq2);
        free(in), free(w), free(b), free(d), free(o1), free(o2), free(di1), free(di2);
        free(dw1), free(dw2), free(db1), free(db2), free(want);
    }
    assert_int_equal(bad, 0);
}

/* The vectorised activations against double precision over a sweep of float bit
 * patterns (every 512th positive float from 1e-8 to 12, both signs: about
 * 4 million values) plus special values. */
static void test_act_fast_vs_ref(void **state)
{
    (void)state;
    enum { CH = 4095 }; /* odd: exercises the vector tail */
    static float in[CH], fast[CH], ref[CH];
    const cbrnn_act acts[3] = {CBRNN_ACT_TANH, CBRNN_ACT_RELU, CBRNN_ACT_LEAKY_RELU};
    const float lo = 1e-8f, hi = 12.0f;
    uint32_t blo, bhi;
    memcpy(&blo, &lo, 4);
    memcpy(&bhi, &hi, 4);
    int bad = 0;
    double worst = 0;
    for (int a = 0; a < 3; a++) {
        uint32_t b = blo;
        int sign = 0;
        while (b < bhi && bad < 5) {
            size_t n = 0;
            for (; n < CH && b < bhi; n++, b += 512) {
                uint32_t u = b | (sign ? 0x80000000u : 0);
                memcpy(&in[n], &u, 4);
                sign ^= 1;
            }
            cbrnn_act_forward(fast, in, n, acts[a]);
            cbrnn_act_forward_ref(ref, in, n, acts[a]);
            for (size_t i = 0; i < n; i++) {
                float ulp = nextafterf(fabsf(ref[i]), INFINITY) - fabsf(ref[i]);
                double e = fabs((double)fast[i] - ref[i]) / ulp;
                if (a == 0)
                    worst = fmax(worst, e);
                if (!(e <= (a == 0 ? 1.5 : 0.0))) {
                    print_error("%s fast vs double at x = %.9g: expected %.9g, got %.9g\n",
                                act_name(acts[a]), in[i], ref[i], fast[i]);
                    bad++;
                }
            }
        }
        const float sp[7] = {NAN, INFINITY, -INFINITY, 0.0f, 1e-30f, -3e-39f, 1e30f};
        float o[7];
        cbrnn_act_forward(o, sp, 7, acts[a]);
        cbrnn_act_forward_ref(ref, sp, 7, acts[a]);
        for (int i = 0; i < 7; i++)
            if (!(o[i] == ref[i] || (isnan(o[i]) && isnan(ref[i])))) {
                print_error("%s at %g: expected %.9g, got %.9g\n", act_name(acts[a]), sp[i],
                            ref[i], o[i]);
                bad++;
            }
    }
    print_message("fast tanh: worst %.3f ulp from double tanh\n", worst);
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_backward_fd), cmocka_unit_test(test_act_backward_fd),
        cmocka_unit_test(test_cortex_step_fd),     cmocka_unit_test(test_cb_fd),
        cmocka_unit_test(test_kernels_vs_ref),     cmocka_unit_test(test_act_fast_vs_ref),
        cmocka_unit_test(test_model_gradients),
        cmocka_unit_test(test_frozen_groups),      cmocka_unit_test(test_check_can_fail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
