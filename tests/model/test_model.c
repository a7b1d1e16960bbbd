/* test_model.c: the model library apart from gradients (test_model_grad.c)
 * and PyTorch parity (parity_torch.py): configuration checks, the tensor
 * layout, initialisation, the reservoir's spectral radius, attachments,
 * losses, optimisers against a double re-implementation of torch.optim's
 * formulas, batch and chunk invariance of the forward pass, the trainer
 * (carried state, determinism, learning) and whole-sequence evaluation. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "testutil.h"

static cbrnn_model *make(cbrnn_wiring w, cbrnn_arch a, int F, int N, int O, int d0, int d1)
{
    cbrnn_model_config c;
    cbrnn_model_config_default(&c);
    c.wiring = w, c.arch = a, c.n_in = F, c.n_hidden = N, c.n_out = O;
    c.n_cb_hidden = d1 ? 2 : d0 ? 1 : 0;
    c.cb_hidden[0] = d0, c.cb_hidden[1] = d1;
    int err = 1;
    cbrnn_model *m = cbrnn_model_create(&c, &err);
    assert_non_null(m);
    assert_int_equal(err, 0);
    return m;
}

/* ---------------- configuration and layout ---------------- */

/* Misuse: NULL names and matrices are refused, not dereferenced. */
static void test_api_misuse(void **state)
{
    (void)state;
    cbrnn_model_config c;
    cbrnn_model_config_default(&c);
    c.n_hidden = 4;
    c.cb_hidden[0] = 4;
    int err;
    cbrnn_model *m = cbrnn_model_create(&c, &err);
    assert_non_null(m);
    assert_null(cbrnn_model_tensor(m, NULL));
    assert_null(cbrnn_model_tensor(NULL, "cortex.weight_hh_l0"));
    assert_true(cbrnn_spectral_radius(NULL, 3) < 0);
    assert_true(cbrnn_spectral_radius(NULL, 0) == 0.0);
    cbrnn_model_destroy(m);
}

static void test_config_check(void **state)
{
    (void)state;
    cbrnn_model_config c;
    char msg[128];
    cbrnn_model_config_default(&c);
    assert_int_equal(cbrnn_model_config_check(&c, msg, sizeof msg), 0);
    static const char *bad[] = {"alpha 0",          "alpha 1.5",  "alpha NaN",
                                "n_in 0",           "N huge",     "act 7",
                                "cbrnn without CB", "CB width 0", "reservoir radius 0",
                                "too many params"};
    for (int k = 0; k < (int)(sizeof bad / sizeof bad[0]); k++) {
        cbrnn_model_config_default(&c);
        switch (k) {
        case 0: c.alpha = 0.0f; break;
        case 1: c.alpha = 1.5f; break;
        case 2: c.alpha = NAN; break;
        case 3: c.n_in = 0; break;
        case 4: c.n_hidden = 1 << 20; break;
        case 5: c.act = (cbrnn_act)7; break;
        case 6: c.n_cb_hidden = 0; break;
        case 7: c.cb_hidden[0] = 0; break;
        case 8: c.arch = CBRNN_ARCH_RESERVOIR; c.spectral_radius = 0.0f; break;
        case 9: c.n_hidden = 30000; c.cb_hidden[0] = 60000; break;
        }
        msg[0] = 0;
        int e = cbrnn_model_config_check(&c, msg, sizeof msg);
        if (e != CBRNN_ERR_ARG || !msg[0])
            fail_msg("config check, %s: expected CBRNN_ERR_ARG with a message, got %d '%s'",
                     bad[k], e, msg);
        int err = 0;
        assert_null(cbrnn_model_create(&c, &err));
        assert_int_equal(err, CBRNN_ERR_ARG);
    }
}

static void test_layout_readout(void **state)
{
    (void)state;
    cbrnn_model *m = make(CBRNN_WIRING_READOUT, CBRNN_ARCH_CBRNN, 40, 256, 40, 512, 0);
    static const char *names[] = {"cortex.rnn.weight_ih_l0", "cortex.rnn.weight_hh_l0",
                                  "cortex.rnn.bias_ih_l0",   "cortex.rnn.bias_hh_l0",
                                  "cerebellum.fc1.weight",   "cerebellum.fc1.bias",
                                  "cerebellum.fc2.weight",   "cerebellum.fc2.bias"};
    static const int shapes[][2] = {{256, 40}, {256, 256}, {256, 0}, {256, 0},
                                    {512, 256}, {512, 0},  {40, 512}, {40, 0}};
    assert_int_equal(m->n_tensors, 8);
    size_t off = 0;
    for (int i = 0; i < 8; i++) {
        const cbrnn_tensor *t = &m->tensors[i];
        if (strcmp(t->name, names[i]) || t->shape[0] != shapes[i][0] ||
            t->shape[1] != shapes[i][1] || t->offset != off)
            fail_msg("tensor %d: expected %s [%d,%d] at %zu, got %s [%d,%d] at %zu", i, names[i],
                     shapes[i][0], shapes[i][1], off, t->name, t->shape[0], t->shape[1],
                     t->offset);
        off += t->size;
    }
    /* torch: sum(p.numel() for p in CBRNN(40, 256, 512, 40).parameters()) */
    size_t torch_count = 256 * 40 + 256 * 256 + 256 + 256 + 512 * 256 + 512 + 40 * 512 + 40;
    assert_int_equal(m->n_params, torch_count);
    assert_int_equal(cbrnn_model_config_params(&m->cfg), torch_count);
    assert_int_equal((uintptr_t)m->params % 64, 0);
    assert_ptr_equal(m->cb_w[1], m->params + m->tensors[6].offset);
    assert_null(m->out_w);
    assert_int_equal(cbrnn_model_group_params(m, CBRNN_GROUP_READOUT), 0);
    assert_int_equal(cbrnn_model_group_params(m, CBRNN_GROUP_CORTEX) +
                         cbrnn_model_group_params(m, CBRNN_GROUP_CEREBELLUM),
                     m->n_params);
    assert_ptr_equal(cbrnn_model_tensor(m, "cerebellum.fc2.bias"), &m->tensors[7]);
    assert_null(cbrnn_model_tensor(m, "readout.weight"));
    /* Creation defaults: zero parameters, feature defaults at 16 kHz. */
    for (size_t i = 0; i < m->n_params; i++)
        assert_true(m->params[i] == 0.0f);
    assert_true(m->feat.sample_rate == 16000.0 && m->feat.n_mels == 40);
    assert_int_equal(m->target, CBRNN_TARGET_PREDICT);
    assert_int_equal(m->horizon, 1);
    cbrnn_model_destroy(m);
}

static void test_layout_loop_and_baselines(void **state)
{
    (void)state;
    cbrnn_model *m = make(CBRNN_WIRING_LOOP, CBRNN_ARCH_CBRNN, 3, 100, 4, 256, 64);
    assert_int_equal(m->n_tensors, 12);
    assert_string_equal(m->tensors[4].name, "cerebellum.fc1.weight");
    assert_int_equal(m->tensors[4].shape[0], 256);
    assert_int_equal(m->tensors[4].shape[1], 103); /* [h_{t-1}, x_t] */
    assert_string_equal(m->tensors[8].name, "cerebellum.fc3.weight");
    assert_int_equal(m->tensors[8].shape[0], 100); /* c_t joins the cortex */
    assert_string_equal(m->tensors[10].name, "readout.weight");
    assert_int_equal(m->tensors[10].shape[0], 4);
    assert_int_equal(m->tensors[11].group, CBRNN_GROUP_READOUT);
    assert_int_equal(m->n_params, cbrnn_model_config_params(&m->cfg));
    cbrnn_model_destroy(m);

    /* rnn: no cerebellum whatever the widths say. */
    m = make(CBRNN_WIRING_READOUT, CBRNN_ARCH_RNN, 40, 300, 40, 512, 0);
    assert_int_equal(m->n_cb_layers, 0);
    assert_int_equal(m->cfg.n_cb_hidden, 0);
    assert_int_equal(m->n_tensors, 6);
    assert_string_equal(m->tensors[4].name, "readout.weight");
    assert_int_equal(m->n_params, 300 * 40 + 300 * 300 + 600 + 40 * 300 + 40);
    cbrnn_model_destroy(m);

    /* reservoir with a linear readout: frozen cortex from creation. */
    m = make(CBRNN_WIRING_READOUT, CBRNN_ARCH_RESERVOIR, 5, 20, 3, 0, 0);
    assert_int_equal(m->frozen[CBRNN_GROUP_CORTEX], 1);
    assert_non_null(m->out_w);
    cbrnn_model_destroy(m);
}

static void test_rnn_hidden_for_params(void **state)
{
    (void)state;
    const size_t targets[] = {1000, 10000, 282920, 1234567};
    for (int k = 0; k < 4; k++) {
        int got = cbrnn_rnn_hidden_for_params(40, 40, targets[k]);
        long best = 1;
        double best_err = INFINITY;
        for (long n = 1; n < 5000; n++) {
            double p = (double)n * n + n * 82.0 + 40.0, e = fabs(p - (double)targets[k]);
            if (e < best_err)
                best_err = e, best = n;
        }
        if (got != best)
            fail_msg("rnn_hidden_for_params(40, 40, %zu): expected %ld (brute force), got %d",
                     targets[k], best, got);
        /* and the count formula agrees with the model it describes */
        cbrnn_model *m = make(CBRNN_WIRING_READOUT, CBRNN_ARCH_RNN, 40, got, 40, 0, 0);
        assert_true(fabs((double)m->n_params - (double)targets[k]) == best_err);
        cbrnn_model_destroy(m);
    }
}

/* ---------------- initialisation ---------------- */

static void check_uniform(const char *what, const float *p, size_t n, double bound)
{
    double s2 = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        s2 += (double)p[i] * p[i];
        mx = fmax(mx, fabs(p[i]));
    }
    double sd = sqrt(s2 / n), want = bound / sqrt(3.0);
    if (mx > bound || fabs(sd - want) > 0.08 * want)
        fail_msg("%s: expected U(-%g, %g) (sd %g), got max |w| %g, sd %g", what, bound, bound,
                 want, mx, sd);
}

static void test_init(void **state)
{
    (void)state;
    cbrnn_model *a = make(CBRNN_WIRING_READOUT, CBRNN_ARCH_CBRNN, 40, 256, 40, 512, 0);
    cbrnn_model *b = make(CBRNN_WIRING_READOUT, CBRNN_ARCH_CBRNN, 40, 256, 40, 512, 0);
    assert_int_equal(cbrnn_model_init(a, 7), 0);
    assert_int_equal(cbrnn_model_init(b, 7), 0);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    cbrnn_model_init(b, 8);
    assert_memory_not_equal(a->params, b->params, a->n_params * sizeof(float));
    check_uniform("readout cortex w_hh (nn.RNN)", a->w_hh, 256 * 256, 1 / 16.0);
    check_uniform("readout cortex w_ih (nn.RNN)", a->w_ih, 256 * 40, 1 / 16.0);
    check_uniform("fc1.weight (nn.Linear)", a->cb_w[0], 512 * 256, 1 / 16.0);
    check_uniform("fc2.weight (nn.Linear)", a->cb_w[1], 40 * 512, 1 / sqrt(512.0));
    cbrnn_model_destroy(a);
    cbrnn_model_destroy(b);

    cbrnn_model *m = make(CBRNN_WIRING_LOOP, CBRNN_ARCH_CBRNN, 4, 200, 4, 256, 64);
    cbrnn_model_init(m, 3);
    check_uniform("loop w_ih (nn.Linear, fan-in F)", m->w_ih, 200 * 4, 0.5);
    check_uniform("loop w_hh (nn.Linear, fan-in N)", m->w_hh, 200 * 200, 1 / sqrt(200.0));
    check_uniform("loop readout", m->out_w, 4 * 200, 1 / sqrt(200.0));
    const double sds[3] = {0.01, 0.1, 0.1};
    for (int l = 0; l < 3; l++) {
        size_t n = (size_t)m->cb_dim[l + 1] * m->cb_dim[l];
        double s2 = 0;
        for (size_t i = 0; i < n; i++)
            s2 += (double)m->cb_w[l][i] * m->cb_w[l][i];
        double sd = sqrt(s2 / n);
        if (fabs(sd - sds[l]) > 0.08 * sds[l])
            fail_msg("loop CB layer %d: expected N(0, %g^2), got sd %g", l + 1, sds[l], sd);
        for (int i = 0; i < m->cb_dim[l + 1]; i++)
            assert_true(m->cb_b[l][i] == 0.0f);
    }
    cbrnn_model_destroy(m);
}

static void test_spectral_radius(void **state)
{
    (void)state;
    /* Known spectra: a scaled rotation (complex pair of modulus 2), a
     * triangular matrix (eigenvalues on the diagonal). */
    const float rot[4] = {0.0f, -2.0f, 2.0f, 0.0f};
    const float tri[9] = {0.5f, 9.0f, 4.0f, 0.0f, -1.25f, 7.0f, 0.0f, 0.0f, 0.75f};
    assert_true(fabs(cbrnn_spectral_radius(rot, 2) - 2.0) < 1e-9);
    assert_true(fabs(cbrnn_spectral_radius(tri, 3) - 1.25) < 1e-9);
    for (int w = 0; w < 2; w++) {
        cbrnn_model *m = make(w, CBRNN_ARCH_RESERVOIR, 10, 120, 10, 64, 0);
        m->cfg.spectral_radius = 1.1f;
        assert_int_equal(cbrnn_model_init(m, 11), 0);
        double rho = cbrnn_spectral_radius(m->w_hh, 120);
        if (fabs(rho - 1.1) > 1e-5)
            fail_msg("reservoir: expected spectral radius 1.1, got %.9g", rho);
        assert_int_equal(m->frozen[CBRNN_GROUP_CORTEX], 1);
        cbrnn_model_destroy(m);
    }
}

static void test_attachments_and_clone(void **state)
{
    (void)state;
    cbrnn_model *m = make(CBRNN_WIRING_READOUT, CBRNN_ARCH_CBRNN, 3, 8, 3, 5, 0);
    cbrnn_model_init(m, 1);
    assert_int_equal(cbrnn_model_set_meta(m, "wiring", "readout"), 0);
    assert_int_equal(cbrnn_model_set_meta(m, "steps", "10"), 0);
    assert_int_equal(cbrnn_model_set_meta(m, "steps", "20"), 0);
    assert_int_equal(m->n_meta, 2);
    assert_string_equal(cbrnn_model_get_meta(m, "steps"), "20");
    assert_null(cbrnn_model_get_meta(m, "nope"));
    const float mean[3] = {1, 2, 3}, sd[3] = {0.5f, 1, 2}, bad_sd[3] = {1, 0, 1};
    const float nan_mean[3] = {1, NAN, 0};
    assert_int_equal(cbrnn_model_set_norm(m, mean, sd), 0);
    assert_int_equal(cbrnn_model_set_norm(m, mean, bad_sd), CBRNN_ERR_ARG);
    assert_int_equal(cbrnn_model_set_norm(m, nan_mean, sd), CBRNN_ERR_NONFINITE);
    assert_true(m->norm_std[1] == 1.0f); /* a refused call changes nothing */
    const char *cls[2] = {"speech", "noise"};
    assert_int_equal(cbrnn_model_set_classes(m, 2, cls), 0);
    assert_int_equal(cbrnn_model_set_classes(m, CBRNN_MAX_CLASSES + 1, cls), CBRNN_ERR_ARG);
    m->frozen[CBRNN_GROUP_CORTEX] = 1;
    m->horizon = 3;
    int err;
    cbrnn_model *c = cbrnn_model_clone(m, &err);
    assert_non_null(c);
    assert_memory_equal(c->params, m->params, m->n_params * sizeof(float));
    assert_ptr_not_equal(c->params, m->params);
    assert_string_equal(c->class_names[1], "noise");
    assert_string_equal(cbrnn_model_get_meta(c, "wiring"), "readout");
    assert_memory_equal(c->norm_mean, mean, sizeof mean);
    assert_int_equal(c->frozen[CBRNN_GROUP_CORTEX], 1);
    assert_int_equal(c->horizon, 3);
    assert_ptr_equal(c->w_hh, c->params + c->tensors[1].offset);
    c->params[0] += 1.0f;
    assert_true(c->params[0] != m->params[0]);
    cbrnn_model_destroy(c);
    for (int i = 0; i < CBRNN_MAX_META_OWN - 2; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        assert_int_equal(cbrnn_model_set_meta(m, k, "v"), 0);
    }
    assert_int_equal(cbrnn_model_set_meta(m, "one-too-many", "v"), CBRNN_ERR_FULL);
    /* the tools' keys still fit beside a full set of the model's own */
    assert_int_equal(cbrnn_model_set_meta(m, "adapted_updates", "7"), 0);
    assert_int_equal(cbrnn_model_set_meta(m, "final_skill", "0.2"), 0);
    cbrnn_model_destroy(m);
}

/* ---------------- losses ---------------- */

static void test_losses(void **state)
{
    (void)state;
    cbrnn_rng r;
    cbrnn_rng_seed(&r, 2);
    enum { R = 6, C = 4 };
    float y[R * C], t[R * C], dy[R * C];
    double want[R * C];
    fill_u(y, R * C, -2, 2, &r);
    fill_u(t, R * C, -2, 2, &r);
    float l = cbrnn_loss_mse(dy, y, t, R, C);
    double s = 0;
    for (int i = 0; i < R * C; i++) {
        s += ((double)y[i] - t[i]) * ((double)y[i] - t[i]);
        want[i] = 2.0 * ((double)y[i] - t[i]) / (R * C);
    }
    assert_true(close_rel("mse", "loss", 0, s / (R * C), l, 1e-6, 0));
    assert_int_equal(check_array("mse", "dy", want, dy, R * C, 1e-6, 1e-3), 0);

    /* Cross-entropy: two ignored rows; loss and gradient against double
     * finite differences of the double loss. */
    int lab[R] = {0, 3, -1, 2, -1, 1};
    float z[R * C], dz[R * C];
    fill_u(z, R * C, -3, 3, &r);
    z[1 * C + 3] = 5.0f; /* row 1: argmax 3 == label: one sure hit */
    int correct = -1;
    float ce = cbrnn_loss_xent(dz, &correct, z, lab, R, C);
    double zd[R * C];
    for (int i = 0; i < R * C; i++)
        zd[i] = z[i];
#define CE_D(out)                                                                                 \
    do {                                                                                          \
        double tot = 0;                                                                           \
        for (int rr = 0; rr < R; rr++) {                                                          \
            if (lab[rr] < 0)                                                                      \
                continue;                                                                         \
            double se = 0;                                                                        \
            for (int q = 0; q < C; q++)                                                           \
                se += exp(zd[rr * C + q]);                                                        \
            tot += log(se) - zd[rr * C + lab[rr]];                                                \
        }                                                                                         \
        out = tot / 4.0;                                                                          \
    } while (0)
    double ce_want;
    CE_D(ce_want);
    assert_true(close_rel("cross-entropy", "loss", 0, ce_want, ce, 1e-6, 0));
    int want_correct = 0;
    for (int rr = 0; rr < R; rr++) {
        int a = 0;
        for (int k = 1; k < C; k++)
            if (z[rr * C + k] > z[rr * C + a])
                a = k;
        want_correct += lab[rr] >= 0 && a == lab[rr];
    }
    assert_int_equal(correct, want_correct);
    assert_true(correct >= 1);
    for (int i = 0; i < R * C; i++) {
        double k = zd[i], lp, lm;
        zd[i] = k + 1e-6;
        CE_D(lp);
        zd[i] = k - 1e-6;
        CE_D(lm);
        zd[i] = k;
        want[i] = (lp - lm) / 2e-6;
    }
#undef CE_D
    assert_int_equal(check_array("cross-entropy", "dlogits", want, dz, R * C, 1e-5, 1e-2), 0);
    /* In place (dy == logits) gives the same gradient. */
    float zz[R * C];
    memcpy(zz, z, sizeof zz);
    assert_true(cbrnn_loss_xent(zz, NULL, zz, lab, R, C) == ce);
    assert_memory_equal(zz, dz, sizeof zz);
    /* No counted row; an out-of-range label. */
    int none[R] = {-1, -1, -1, -1, -1, -1}, oob[R] = {0, 1, 2, 3, 4, 0};
    assert_true(cbrnn_loss_xent(dz, NULL, z, none, R, C) == 0.0f);
    for (int i = 0; i < R * C; i++)
        assert_true(dz[i] == 0.0f);
    assert_true(isnan(cbrnn_loss_xent(dz, NULL, z, oob, R, C)));
}

/* ---------------- optimisers ---------------- */

/* torch.optim's formulas in double over a vector (trainable entries only). */
static void ref_opt(double *p, double *mo, double *v, const double *g0, size_t n,
                    const cbrnn_optim_config *c, long step, const int *train)
{
    double *g = malloc(n * sizeof(double)), ss = 0;
    for (size_t i = 0; i < n; i++) {
        g[i] = g0[i];
        if (train[i])
            ss += g[i] * g[i];
    }
    double norm = sqrt(ss);
    if (c->clip_norm > 0 && c->clip_norm / (norm + 1e-6) < 1)
        for (size_t i = 0; i < n; i++)
            g[i] *= c->clip_norm / (norm + 1e-6);
    for (size_t i = 0; i < n; i++) {
        if (!train[i])
            continue;
        double d = g[i] + c->weight_decay * p[i];
        if (c->kind == CBRNN_OPT_SGD) {
            if (c->momentum > 0) {
                mo[i] = step == 1 ? d : c->momentum * mo[i] + d;
                d = c->nesterov ? d + c->momentum * mo[i] : mo[i];
            }
            p[i] -= c->lr * d;
        } else {
            mo[i] = c->beta1 * mo[i] + (1 - c->beta1) * d;
            v[i] = c->beta2 * v[i] + (1 - c->beta2) * d * d;
            double bc1 = 1 - pow(c->beta1, step), bc2 = 1 - pow(c->beta2, step);
            p[i] -= c->lr / bc1 * mo[i] / (sqrt(v[i]) / sqrt(bc2) + c->eps);
        }
    }
    free(g);
}

/* Weight averaging: the mean of the states added, in double; refused
 * before any state and for a model of another size. */
static void test_param_average(void **state)
{
    (void)state;
    cbrnn_model *m = make(CBRNN_WIRING_READOUT, CBRNN_ARCH_CBRNN, 2, 4, 2, 3, 0);
    cbrnn_model *other = make(CBRNN_WIRING_READOUT, CBRNN_ARCH_CBRNN, 2, 5, 2, 3, 0);
    cbrnn_model_init(m, 3);
    int err = -99;
    cbrnn_param_avg *a = cbrnn_param_avg_create(m, &err);
    assert_non_null(a);
    assert_int_equal(err, 0);
    assert_int_equal(cbrnn_param_avg_apply(a, m), CBRNN_ERR_ARG);
    size_t n = m->n_params;
    double *sum = calloc(n, sizeof *sum);
    for (int k = 0; k < 7; k++) {
        for (size_t i = 0; i < n; i++) {
            m->params[i] = (float)(i % 5) * 0.25f + 1e-4f * (float)(k * k) - (float)k;
            sum[i] += m->params[i];
        }
        cbrnn_param_avg_add(a, m);
    }
    assert_int_equal(cbrnn_param_avg_count(a), 7);
    assert_int_equal(cbrnn_param_avg_apply(a, other), CBRNN_ERR_ARG);
    assert_int_equal(cbrnn_param_avg_apply(a, m), 0);
    for (size_t i = 0; i < n; i++)
        assert_float_equal(m->params[i], (float)(sum[i] / 7), 1e-6);
    free(sum);
    cbrnn_param_avg_destroy(a);
    cbrnn_param_avg_destroy(NULL);
    cbrnn_model_destroy(m);
    cbrnn_model_destroy(other);
}

static void test_optimisers(void **state)
{
    (void)state;
    for (int k = 0; k < 6; k++) {
        cbrnn_model *m = make(CBRNN_WIRING_LOOP, CBRNN_ARCH_CBRNN, 2, 4, 2, 3, 0);
        cbrnn_model_init(m, 5);
        cbrnn_optim_config c;
        cbrnn_optim_config_default(&c, k < 3 ? CBRNN_OPT_SGD : CBRNN_OPT_ADAM);
        const char *what = "sgd";
        if (k == 1)
            c.momentum = 0.9f, what = "sgd momentum, wd";
        if (k == 1)
            c.weight_decay = 0.1f;
        if (k == 2)
            c.momentum = 0.8f, c.nesterov = 1, c.clip_norm = 0.3f, what = "sgd nesterov clip";
        if (k == 3)
            what = "adam";
        if (k == 4)
            c.weight_decay = 0.05f, c.clip_norm = 0.2f, c.lr = 0.1f, what = "adam wd clip";
        if (k == 5)
            c.beta1 = 0.5f, c.beta2 = 0.9f, c.eps = 1e-3f, what = "adam betas eps";
        m->frozen[CBRNN_GROUP_READOUT] = k & 1;
        cbrnn_optim *o = cbrnn_optim_create(m, &c, NULL);
        assert_non_null(o);
        size_t n = m->n_params;
        double *p = malloc(n * 8), *mo = calloc(n, 8), *v = calloc(n, 8), *gd = malloc(n * 8);
        float *g = malloc(n * 4), *frozen_before = malloc(n * 4);
        int *train = malloc(n * sizeof(int));
        for (int ti = 0; ti < m->n_tensors; ti++)
            for (size_t i = 0; i < m->tensors[ti].size; i++)
                train[m->tensors[ti].offset + i] = !m->frozen[m->tensors[ti].group];
        for (size_t i = 0; i < n; i++)
            p[i] = m->params[i];
        memcpy(frozen_before, m->params, n * 4);
        cbrnn_rng r;
        cbrnn_rng_seed(&r, 40 + k);
        for (long s = 1; s <= 4; s++) {
            fill_u(g, n, -0.2f, 0.2f, &r);
            double ss = 0;
            for (size_t i = 0; i < n; i++) {
                gd[i] = g[i];
                ss += train[i] ? gd[i] * gd[i] : 0;
            }
            float norm = -1;
            assert_int_equal(cbrnn_optim_step(o, m, g, &norm), 0);
            assert_true(close_rel(what, "grad norm", (size_t)s, sqrt(ss), norm, 1e-6, 0));
            ref_opt(p, mo, v, gd, n, &c, s, train);
            int bad = check_array(what, "params", p, m->params, n, 1e-5, 1e-2);
            if (bad)
                fail_msg("%s: step %ld differs from the torch.optim formulas", what, s);
        }
        for (size_t i = 0; i < n; i++)
            if (!train[i] && m->params[i] != frozen_before[i])
                fail_msg("%s: frozen parameter %zu changed", what, i);
        /* A non-finite gradient refuses the step and changes nothing. */
        float *keep = malloc(n * 4);
        memcpy(keep, m->params, n * 4);
        long steps = o->step;
        g[0] = NAN;
        assert_int_equal(cbrnn_optim_step(o, m, g, NULL), CBRNN_ERR_NONFINITE);
        assert_memory_equal(keep, m->params, n * 4);
        assert_int_equal(o->step, steps);
        cbrnn_optim_reset(o);
        assert_int_equal(o->step, 0);
        free(keep), free(p), free(mo), free(v), free(gd), free(g), free(frozen_before), free(train);
        cbrnn_optim_destroy(o);
        cbrnn_model_destroy(m);
    }
    /* torch refuses Nesterov without momentum; so do we. */
    cbrnn_model *m = make(CBRNN_WIRING_READOUT, CBRNN_ARCH_CBRNN, 2, 3, 2, 3, 0);
    cbrnn_optim_config c;
    cbrnn_optim_config_default(&c, CBRNN_OPT_SGD);
    c.nesterov = 1;
    int err = 0;
    assert_null(cbrnn_optim_create(m, &c, &err));
    assert_int_equal(err, CBRNN_ERR_ARG);
    cbrnn_model_destroy(m);
}

/* ---------------- forward invariances ---------------- */

static void test_forward_batch_and_chunks(void **state)
{
    (void)state;
    for (int w = 0; w < 2; w++) {
        cbrnn_model *m = make(w, CBRNN_ARCH_CBRNN, 3, 16, 2, 12, w ? 6 : 0);
        m->cfg.alpha = 0.7f;
        m->cfg.act = w ? CBRNN_ACT_LEAKY_RELU : CBRNN_ACT_TANH;
        cbrnn_model_init(m, 4);
        cbrnn_model *mm = cbrnn_model_clone(m, NULL); /* ws must match cfg */
        enum { B = 4, T = 23, F = 3, N = 16, O = 2 };
        cbrnn_rng r;
        cbrnn_rng_seed(&r, 12);
        float x[B * T * F], h0[B * N], y[B * T * O], y1[T * O], hl[B * N], h1[N];
        fill_u(x, sizeof x / 4, -1, 1, &r);
        fill_u(h0, sizeof h0 / 4, -1, 1, &r);
        cbrnn_ws *ws = cbrnn_ws_create(mm, B, T, NULL), *w1 = cbrnn_ws_create(mm, 1, T, NULL);
        assert_non_null(ws);
        assert_int_equal(cbrnn_forward(ws, y, hl, mm, x, h0, B, T), 0);
        for (int b = 0; b < B; b++) {
            /* Row b alone, in three chunks with the state carried. */
            const int cuts[4] = {0, 5, 6, T};
            float hc[N];
            memcpy(hc, h0 + b * N, sizeof hc);
            for (int k = 0; k < 3; k++) {
                int n = cuts[k + 1] - cuts[k];
                assert_int_equal(cbrnn_forward(w1, y1 + cuts[k] * O, h1, mm,
                                               x + ((size_t)b * T + cuts[k]) * F, hc, 1, n), 0);
                memcpy(hc, h1, sizeof hc);
            }
            /* One row goes through sgemv, the batch through sgemm: the
             * rounding differs, so judge against the outputs' scale. */
            double want[T * O];
            for (int i = 0; i < T * O; i++)
                want[i] = y[b * T * O + i];
            if (check_array(w ? "loop" : "readout", "row alone in chunks vs batch", want, y1,
                            T * O, 1e-4, 5e-2))
                fail_msg("batch row %d differs when run alone", b);
            for (int i = 0; i < N; i++)
                assert_true(fabs(h1[i] - hl[b * N + i]) <= 1e-5f);
        }
        /* Argument errors. */
        assert_int_equal(cbrnn_forward(ws, y, NULL, mm, x, NULL, B + 1, T), CBRNN_ERR_ARG);
        assert_int_equal(cbrnn_forward(ws, y, NULL, mm, x, NULL, B, T + 1), CBRNN_ERR_ARG);
        float g[4096] = {0};
        assert_true(mm->n_params <= 4096);
        assert_int_equal(cbrnn_backward(ws, g, mm, y, B - 1, T), CBRNN_ERR_ARG);
        cbrnn_model *other = make(w, CBRNN_ARCH_CBRNN, 3, 17, 2, 12, 0);
        assert_int_equal(cbrnn_forward(ws, y, NULL, other, x, NULL, B, T), CBRNN_ERR_ARG);
        cbrnn_model_destroy(other);
        cbrnn_ws_destroy(ws);
        cbrnn_ws_destroy(w1);
        cbrnn_model_destroy(mm);
        cbrnn_model_destroy(m);
    }
}

/* ---------------- trainer and evaluation ---------------- */

/* A synthetic predict task: x_t = a few sines with per-file phases,
 * y_t = x_{t+1}. */
static float *make_sines(int T, int F, double phase)
{
    float *x = malloc((size_t)(T + 1) * F * sizeof(float));
    for (int t = 0; t <= T; t++)
        for (int f = 0; f < F; f++)
            x[t * F + f] = (float)sin(0.21 * (f + 1) * t + phase + f);
    return x;
}

static void train_setup(cbrnn_train_config *tc, int carry, uint64_t seed)
{
    memset(tc, 0, sizeof *tc);
    tc->batch = 4;
    tc->seq_len = 20;
    tc->carry_state = carry;
    tc->seed = seed;
    cbrnn_optim_config_default(&tc->opt, CBRNN_OPT_ADAM);
    tc->opt.lr = 0.01f;
    tc->opt.clip_norm = 1.0f;
}

static void test_trainer_determinism_and_learning(void **state)
{
    (void)state;
    enum { F = 3, NF = 3 };
    const int lens[NF] = {150, 47, 11}; /* one shorter than a window */
    float *xs[NF];
    cbrnn_seq seqs[NF];
    for (int i = 0; i < NF; i++) {
        xs[i] = make_sines(lens[i], F, 0.7 * i);
        seqs[i] = (cbrnn_seq){.x = xs[i], .y = xs[i] + F, .labels = NULL, .T = lens[i]};
    }
    for (int carry = 0; carry < 2; carry++) {
        float *final[3];
        float first = 0, last = 0;
        for (int run = 0; run < 3; run++) {
            cbrnn_model *m = make(CBRNN_WIRING_READOUT, CBRNN_ARCH_CBRNN, F, 24, F, 32, 0);
            cbrnn_model_init(m, 9);
            cbrnn_train_config tc;
            train_setup(&tc, carry, run == 2 ? 78 : 77);
            cbrnn_trainer *t = cbrnn_trainer_create(m, &tc, NULL);
            assert_non_null(t);
            double early = 0, late = 0;
            for (int s = 0; s < 300; s++) {
                float l;
                assert_int_equal(cbrnn_trainer_step(t, seqs, NF, &l), 0);
                if (s < 10)
                    early += l / 10;
                if (s >= 290)
                    late += l / 10;
            }
            first = (float)early, last = (float)late;
            final[run] = malloc(m->n_params * 4);
            memcpy(final[run], m->params, m->n_params * 4);
            size_t P = m->n_params;
            cbrnn_trainer_destroy(t);
            cbrnn_model_destroy(m);
            if (run == 1) {
                if (memcmp(final[0], final[1], P * 4))
                    fail_msg("carry %d: same seed, different parameters after 300 steps", carry);
            }
            /* The seed draws the random windows; a carried-state walk
             * through the corpus does not depend on it. */
            if (run == 2 && !carry && !memcmp(final[0], final[2], P * 4))
                fail_msg("carry %d: a different seed gave identical parameters", carry);
        }
        /* Next-frame prediction of sines is easy: the loss must fall a lot. */
        if (!(last < 0.2f * first))
            fail_msg("carry %d: training did not learn: mean loss %g over the first 10 steps, "
                     "%g over the last 10", carry, first, last);
        for (int run = 0; run < 3; run++)
            free(final[run]);
    }
    for (int i = 0; i < NF; i++)
        free(xs[i]);
}

/* With lr 0 the model never changes, so each step's loss must equal the
 * loss of that window in a whole-file evaluation (state carried within a
 * file, from zero at each new file): this pins down carry_state. */
static void test_trainer_carry_semantics(void **state)
{
    (void)state;
    enum { F = 2, L = 10 };
    const int lens[2] = {25, 30};
    float *xs[2];
    cbrnn_seq seqs[2];
    for (int i = 0; i < 2; i++) {
        xs[i] = make_sines(lens[i], F, 1.3 * i);
        seqs[i] = (cbrnn_seq){.x = xs[i], .y = xs[i] + F, .T = lens[i]};
    }
    cbrnn_model *m = make(CBRNN_WIRING_LOOP, CBRNN_ARCH_CBRNN, F, 8, F, 6, 0);
    m->cfg.alpha = 0.5f;
    cbrnn_model_init(m, 2);
    cbrnn_train_config tc;
    train_setup(&tc, 1, 5);
    tc.batch = 1;
    tc.seq_len = L;
    cbrnn_optim_config_default(&tc.opt, CBRNN_OPT_SGD);
    tc.opt.lr = 0.0f;
    cbrnn_trainer *t = cbrnn_trainer_create(m, &tc, NULL);
    float *out[2];
    for (int i = 0; i < 2; i++) {
        out[i] = malloc((size_t)lens[i] * F * 4);
        cbrnn_eval_sums acc = {0};
        assert_int_equal(cbrnn_eval_seq(m, &seqs[i], out[i], &acc), 0);
    }
    /* File 0: windows [0,10) [10,20) [20,25); file 1: [0,10) [10,20) [20,30);
     * then the corpus wraps to file 0. */
    const int wf[7] = {0, 0, 0, 1, 1, 1, 0}, ws0[7] = {0, 10, 20, 0, 10, 20, 0};
    for (int s = 0; s < 7; s++) {
        float l;
        assert_int_equal(cbrnn_trainer_step(t, seqs, 2, &l), 0);
        int f = wf[s], a = ws0[s], n = lens[f] - a < L ? lens[f] - a : L;
        double sum = 0;
        for (int i = a * F; i < (a + n) * F; i++) {
            double d = (double)out[f][i] - seqs[f].y[i];
            sum += d * d;
        }
        double want = sum / (n * F);
        if (!close_rel("carry_state window loss", "step", (size_t)s, want, l, 1e-5, 0))
            fail_msg("step %d (file %d frames %d..%d): loss differs from the carried evaluation",
                     s, f, a, a + n);
    }
    cbrnn_trainer_destroy(t);
    cbrnn_model_destroy(m);
    for (int i = 0; i < 2; i++)
        free(xs[i]), free(out[i]);
}

/* How often random windows come from a short file: with lr 0 the model
 * never changes, and a file whose targets are 100 (the outputs are O(1))
 * makes any batch that holds one of its windows show a loss above 100.
 * A 10-frame file beside a 1000-frame one, windows of 20: drawn once per
 * 991 window positions (CBRNN_WINDOWS_POSITIONS, about 8 of 8000 draws),
 * or once per 101 frames (CBRNN_WINDOWS_FRAMES, about 79). */
static void test_trainer_window_draw(void **state)
{
    (void)state;
    enum { F = 2, SHORT = 10, LONG = 1000, STEPS = 2000 };
    float *xs = calloc((SHORT + 1) * F, sizeof(float)), *ys = malloc(SHORT * F * sizeof(float));
    float *xl = make_sines(LONG, F, 0.3);
    for (int i = 0; i < SHORT * F; i++)
        ys[i] = 100.0f;
    cbrnn_seq seqs[2] = {{.x = xl, .y = xl + F, .T = LONG}, {.x = xs, .y = ys, .T = SHORT}};
    int hits[2];
    for (int mode = 0; mode < 2; mode++) {
        cbrnn_model *m = make(CBRNN_WIRING_READOUT, CBRNN_ARCH_CBRNN, F, 8, F, 6, 0);
        cbrnn_model_init(m, 3);
        cbrnn_train_config tc;
        train_setup(&tc, 0, 11);
        tc.seq_len = 20;
        tc.windows = mode ? CBRNN_WINDOWS_FRAMES : CBRNN_WINDOWS_POSITIONS;
        cbrnn_optim_config_default(&tc.opt, CBRNN_OPT_SGD);
        tc.opt.lr = 0.0f;
        cbrnn_trainer *t = cbrnn_trainer_create(m, &tc, NULL);
        assert_non_null(t);
        hits[mode] = 0;
        for (int s = 0; s < STEPS; s++) {
            float l;
            assert_int_equal(cbrnn_trainer_step(t, seqs, 2, &l), 0);
            hits[mode] += l > 100.0f;
        }
        cbrnn_trainer_destroy(t);
        cbrnn_model_destroy(m);
    }
    print_message("short file in %d (positions) and %d (frames) of %d batches\n", hits[0],
                  hits[1], STEPS);
    /* Batches of 4: P(a batch holds the short file) = 1 - (1 - p)^4. */
    if (hits[0] > 25)
        fail_msg("positions: %d of %d batches held the short file (expected about 8)", hits[0],
                 STEPS);
    if (hits[1] < 50 || hits[1] > 110)
        fail_msg("frames: %d of %d batches held the short file (expected about 78)", hits[1],
                 STEPS);
    cbrnn_train_config bad;
    train_setup(&bad, 0, 1);
    bad.windows = 2;
    cbrnn_model *m = make(CBRNN_WIRING_READOUT, CBRNN_ARCH_CBRNN, F, 8, F, 6, 0);
    int err = 0;
    assert_null(cbrnn_trainer_create(m, &bad, &err));
    assert_int_equal(err, CBRNN_ERR_ARG);
    cbrnn_model_destroy(m);
    free(xs), free(ys), free(xl);
}

/* Classification with labels (CE) in the loop wiring. Task: the sign of
 * the input 3 frames ago, so the answer needs the recurrent state. */
static void test_trainer_classify(void **state)
{
    (void)state;
    enum { T = 400, F = 1 };
    float *x = malloc(T * sizeof(float));
    int *lab = malloc(T * sizeof(int));
    cbrnn_rng r;
    cbrnn_rng_seed(&r, 3);
    for (int t = 0; t < T; t++) {
        x[t] = cbrnn_rng_uniform(&r) < 0.5 ? -1.0f : 1.0f;
        lab[t] = t >= 3 ? x[t - 3] > 0 : -1;
    }
    cbrnn_seq s = {.x = x, .labels = lab, .T = T};
    cbrnn_model *m = make(CBRNN_WIRING_LOOP, CBRNN_ARCH_CBRNN, F, 16, 2, 16, 0);
    cbrnn_model_init(m, 1);
    cbrnn_train_config tc;
    train_setup(&tc, 0, 1);
    tc.opt.lr = 0.02f;
    cbrnn_trainer *t = cbrnn_trainer_create(m, &tc, NULL);
    cbrnn_eval_sums before = {0}, after = {0};
    assert_int_equal(cbrnn_eval_seq(m, &s, NULL, &before), 0);
    for (int k = 0; k < 400; k++)
        assert_int_equal(cbrnn_trainer_step(t, &s, 1, NULL), 0);
    assert_int_equal(cbrnn_eval_seq(m, &s, NULL, &after), 0);
    assert_int_equal(after.count, T - 3);
    double acc = (double)after.correct / after.count;
    if (!(acc > 0.95 && after.loss < 0.5 * before.loss))
        fail_msg("delayed-sign task: accuracy %.3f (want > 0.95), loss %g -> %g", acc,
                 before.loss / before.count, after.loss / after.count);
    /* Mixed target kinds and label overflow are refused. */
    float y[T];
    cbrnn_seq both = {.x = x, .y = y, .labels = lab, .T = T};
    assert_int_equal(cbrnn_trainer_step(t, &both, 1, NULL), CBRNN_ERR_ARG);
    lab[10] = 2;
    assert_int_equal(cbrnn_trainer_step(t, &s, 1, NULL), CBRNN_ERR_SHAPE);
    cbrnn_seq empty = {.x = x, .labels = lab, .T = 0};
    assert_int_equal(cbrnn_trainer_step(t, &empty, 1, NULL), CBRNN_ERR_ARG);
    cbrnn_trainer_destroy(t);
    cbrnn_model_destroy(m);
    free(x), free(lab);
}

static void test_eval_seq(void **state)
{
    (void)state;
    enum { T = 1300, F = 4 }; /* longer than the evaluation chunk */
    float *x = make_sines(T, F, 0.1);
    cbrnn_seq s = {.x = x, .y = x + F, .T = T};
    cbrnn_model *m = make(CBRNN_WIRING_READOUT, CBRNN_ARCH_CBRNN, F, 10, F, 8, 0);
    cbrnn_model_init(m, 6);
    float *out = malloc(T * F * 4), *y = malloc(T * F * 4);
    cbrnn_eval_sums acc = {.loss = 1.0, .count = 5}; /* adds to what is there */
    assert_int_equal(cbrnn_eval_seq(m, &s, out, &acc), 0);
    cbrnn_ws *ws = cbrnn_ws_create(m, 1, T, NULL);
    cbrnn_forward(ws, y, NULL, m, x, NULL, 1, T);
    double want[T * F], l = 1.0, p = 0;
    for (int i = 0; i < T * F; i++) {
        want[i] = y[i];
        l += ((double)y[i] - x[i + F]) * ((double)y[i] - x[i + F]);
        p += ((double)x[i] - x[i + F]) * ((double)x[i] - x[i + F]);
    }
    /* Chunks run as B = 1 (sgemv) and the whole as one GEMM: rounding
     * differs, so the tolerance is relative to the outputs' scale. */
    assert_int_equal(check_array("eval_seq", "outputs vs one forward", want, out, T * F, 1e-4,
                                 5e-2), 0);
    assert_int_equal(acc.count, 5 + T * F);
    assert_true(close_rel("eval_seq", "loss sum", 0, l, acc.loss, 1e-5, 0));
    assert_true(close_rel("eval_seq", "persistence sum", 0, p, acc.persist, 1e-6, 0));
    cbrnn_ws_destroy(ws);
    cbrnn_model_destroy(m);
    free(x), free(out), free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_check),
        cmocka_unit_test(test_api_misuse),
        cmocka_unit_test(test_layout_readout),
        cmocka_unit_test(test_layout_loop_and_baselines),
        cmocka_unit_test(test_rnn_hidden_for_params),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_spectral_radius),
        cmocka_unit_test(test_attachments_and_clone),
        cmocka_unit_test(test_losses),
        cmocka_unit_test(test_optimisers),
        cmocka_unit_test(test_param_average),
        cmocka_unit_test(test_forward_batch_and_chunks),
        cmocka_unit_test(test_trainer_determinism_and_learning),
        cmocka_unit_test(test_trainer_carry_semantics),
        cmocka_unit_test(test_trainer_window_draw),
        cmocka_unit_test(test_trainer_classify),
        cmocka_unit_test(test_eval_seq),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
