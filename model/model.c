/* model.c: creating a model: configuration defaults and checks, the
 * parameter layout (one aligned block, tensors named as the PyTorch
 * state_dict) and the non-trained attachments (normaliser, class names,
 * metadata). Random initialisation is in init.c: this file needs no BLAS
 * or LAPACK, so the engine and the LV2 plugin can link it alone. It never prints and never exits;
 * it must never allocate a block whose size it has not bounded first
 * (the loader feeds it configurations read from untrusted files). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "cbrnn/cbrnn_model.h"
#include "model_internal.h"

/* Largest accepted dimension and parameter count. 1 << 28 floats is 1 GiB,
 * far beyond any model that runs live, and small enough that no size
 * computation below can overflow. */
#define MAX_DIM (1 << 16)
#define MAX_PARAMS ((size_t)1 << 28)

void cbrnn_model_config_default(cbrnn_model_config *c)
{
    memset(c, 0, sizeof *c);
    c->arch = CBRNN_ARCH_CBRNN;
    c->wiring = CBRNN_WIRING_READOUT;
    c->act = CBRNN_ACT_TANH;
    c->alpha = 1.0f;
    c->n_in = 40;
    c->n_hidden = 256;
    c->n_out = 40;
    c->n_cb_hidden = 1;
    c->cb_hidden[0] = 512; /* the seed's fc1 width */
    c->spectral_radius = 0.9f;
}

/* Does this configuration have a cerebellum? */
static int has_cb(const cbrnn_model_config *c)
{
    return c->arch != CBRNN_ARCH_RNN && c->n_cb_hidden > 0;
}

/* Fills the tensor table and CB dimensions of m from m->cfg (which must
 * have passed the check); views are set later by set_views(). */
static void build_layout(cbrnn_model *m)
{
    const cbrnn_model_config *c = &m->cfg;
    int F = c->n_in, N = c->n_hidden, O = c->n_out;
    size_t off = 0;
    m->n_tensors = 0;
#define ADD(nm, grp, r, cl)                                                                       \
    do {                                                                                          \
        cbrnn_tensor *t_ = &m->tensors[m->n_tensors++];                                           \
        snprintf(t_->name, sizeof t_->name, "%s", nm);                                            \
        t_->group = (grp);                                                                        \
        t_->ndim = (cl) > 0 ? 2 : 1;                                                              \
        t_->shape[0] = (r);                                                                       \
        t_->shape[1] = (cl) > 0 ? (cl) : 0;                                                       \
        t_->offset = off;                                                                         \
        t_->size = (size_t)(r) * (size_t)((cl) > 0 ? (cl) : 1);                                   \
        off += t_->size;                                                                          \
    } while (0)
    ADD("cortex.rnn.weight_ih_l0", CBRNN_GROUP_CORTEX, N, F);
    ADD("cortex.rnn.weight_hh_l0", CBRNN_GROUP_CORTEX, N, N);
    ADD("cortex.rnn.bias_ih_l0", CBRNN_GROUP_CORTEX, N, 0);
    ADD("cortex.rnn.bias_hh_l0", CBRNN_GROUP_CORTEX, N, 0);
    m->n_cb_layers = 0;
    if (has_cb(c)) {
        int L = c->n_cb_hidden + 1;
        m->n_cb_layers = L;
        m->cb_dim[0] = c->wiring == CBRNN_WIRING_LOOP ? N + F : N;
        for (int i = 0; i < c->n_cb_hidden; i++)
            m->cb_dim[i + 1] = c->cb_hidden[i];
        m->cb_dim[L] = c->wiring == CBRNN_WIRING_LOOP ? N : O;
        for (int i = 0; i < L; i++) {
            char nm[48];
            snprintf(nm, sizeof nm, "cerebellum.fc%d.weight", i + 1);
            ADD(nm, CBRNN_GROUP_CEREBELLUM, m->cb_dim[i + 1], m->cb_dim[i]);
            snprintf(nm, sizeof nm, "cerebellum.fc%d.bias", i + 1);
            ADD(nm, CBRNN_GROUP_CEREBELLUM, m->cb_dim[i + 1], 0);
        }
    }
    if (cbrnn_model_has_readout(m)) {
        ADD("readout.weight", CBRNN_GROUP_READOUT, O, N);
        ADD("readout.bias", CBRNN_GROUP_READOUT, O, 0);
    }
#undef ADD
    m->n_params = off;
}

int cbrnn_model_has_readout(const cbrnn_model *m)
{
    return !has_cb(&m->cfg) || m->cfg.wiring == CBRNN_WIRING_LOOP;
}

static void set_views(cbrnn_model *m)
{
    float *p = m->params;
    int k = 0;
    m->w_ih = p + m->tensors[k++].offset;
    m->w_hh = p + m->tensors[k++].offset;
    m->b_ih = p + m->tensors[k++].offset;
    m->b_hh = p + m->tensors[k++].offset;
    for (int i = 0; i < CBRNN_MAX_CB_HIDDEN + 1; i++)
        m->cb_w[i] = m->cb_b[i] = NULL;
    for (int i = 0; i < m->n_cb_layers; i++) {
        m->cb_w[i] = p + m->tensors[k++].offset;
        m->cb_b[i] = p + m->tensors[k++].offset;
    }
    m->out_w = m->out_b = NULL;
    if (cbrnn_model_has_readout(m)) {
        m->out_w = p + m->tensors[k++].offset;
        m->out_b = p + m->tensors[k++].offset;
    }
}

static int bad(char *msg, size_t msglen, const char *fmt, int v)
{
    if (msg && msglen)
        snprintf(msg, msglen, fmt, v);
    return CBRNN_ERR_ARG;
}

int cbrnn_model_config_check(const cbrnn_model_config *c, char *msg, size_t msglen)
{
    if (msg && msglen)
        msg[0] = 0;
    if (!c)
        return bad(msg, msglen, "no configuration%.0d", 0);
    if (c->arch < CBRNN_ARCH_CBRNN || c->arch > CBRNN_ARCH_RESERVOIR)
        return bad(msg, msglen, "unknown architecture %d", (int)c->arch);
    if (c->wiring < CBRNN_WIRING_READOUT || c->wiring > CBRNN_WIRING_LOOP)
        return bad(msg, msglen, "unknown wiring %d", (int)c->wiring);
    if (c->act < CBRNN_ACT_TANH || c->act > CBRNN_ACT_LEAKY_RELU)
        return bad(msg, msglen, "unknown activation %d", (int)c->act);
    if (!(c->alpha > 0.0f && c->alpha <= 1.0f))
        return bad(msg, msglen, "alpha must be in (0, 1]%.0d", 0);
    if (c->n_in < 1 || c->n_in > MAX_DIM)
        return bad(msg, msglen, "input size %d outside 1..65536", c->n_in);
    if (c->n_hidden < 1 || c->n_hidden > MAX_DIM)
        return bad(msg, msglen, "cortex size %d outside 1..65536", c->n_hidden);
    if (c->n_out < 1 || c->n_out > MAX_DIM)
        return bad(msg, msglen, "output size %d outside 1..65536", c->n_out);
    if (c->arch != CBRNN_ARCH_RNN) {
        if (c->n_cb_hidden < 0 || c->n_cb_hidden > CBRNN_MAX_CB_HIDDEN)
            return bad(msg, msglen, "cerebellum hidden layers %d outside 0..6", c->n_cb_hidden);
        if (c->arch == CBRNN_ARCH_CBRNN && c->n_cb_hidden < 1)
            return bad(msg, msglen, "arch cbrnn needs at least one cerebellum hidden layer%.0d", 0);
        for (int i = 0; i < c->n_cb_hidden; i++)
            if (c->cb_hidden[i] < 1 || c->cb_hidden[i] > MAX_DIM)
                return bad(msg, msglen, "cerebellum layer width %d outside 1..65536",
                           c->cb_hidden[i]);
    }
    if (c->arch == CBRNN_ARCH_RESERVOIR &&
        !(c->spectral_radius > 0.0f && isfinite(c->spectral_radius)))
        return bad(msg, msglen, "reservoir spectral radius must be positive and finite%.0d", 0);
    if (c->residual != 0 && c->residual != 1)
        return bad(msg, msglen, "residual must be 0 or 1, got %d", c->residual);
    if (c->residual && c->n_out > c->n_in)
        return bad(msg, msglen, "a residual output needs n_out <= n_in (it adds the input's "
                                "first n_out features); n_out is %d", c->n_out);
    /* Each term is below 2^32 * 8, so the sum cannot overflow a 64-bit
     * size_t before it is compared with the bound. */
    if (cbrnn_model_config_params(c) > MAX_PARAMS)
        return bad(msg, msglen, "more than %d parameters", (int)MAX_PARAMS);
    return 0;
}

size_t cbrnn_model_config_params(const cbrnn_model_config *c)
{
    size_t F = (size_t)c->n_in, N = (size_t)c->n_hidden, O = (size_t)c->n_out;
    size_t n = N * F + N * N + 2 * N;
    int cb = has_cb(c);
    if (cb) {
        size_t prev = c->wiring == CBRNN_WIRING_LOOP ? N + F : N;
        for (int i = 0; i < c->n_cb_hidden; i++) {
            size_t w = (size_t)c->cb_hidden[i];
            n += w * prev + w;
            prev = w;
        }
        size_t out = c->wiring == CBRNN_WIRING_LOOP ? N : O;
        n += out * prev + out;
    }
    if (!cb || c->wiring == CBRNN_WIRING_LOOP)
        n += O * N + O;
    return n;
}

int cbrnn_rnn_hidden_for_params(int n_in, int n_out, size_t target_params)
{
    /* params(N) = N^2 + N (F + O + 2) + O; solve the quadratic and take the
     * nearer of the two integers around the root. */
    double F = n_in, O = n_out, b = F + O + 2.0, t = (double)target_params;
    double r = (-b + sqrt(b * b + 4.0 * (t - O))) / 2.0;
    int best = 1;
    double best_err = INFINITY;
    for (int N = (int)floor(r) - 1; N <= (int)floor(r) + 2; N++) {
        if (N < 1)
            continue;
        double p = (double)N * N + N * b + O;
        double err = fabs(p - t);
        if (err < best_err) {
            best_err = err;
            best = N;
        }
    }
    return best;
}

float *cbrnn_alloc_floats(size_t n)
{
    /* 64 bytes: a cache line and an AVX-512 register; rounded up so the
     * tail is addressable by vector loads too. */
    size_t bytes = ((n ? n : 1) * sizeof(float) + 63) & ~(size_t)63;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes))
        return NULL;
    memset(p, 0, bytes);
    return p;
}

cbrnn_model *cbrnn_model_create(const cbrnn_model_config *c, int *err)
{
    int e = cbrnn_model_config_check(c, NULL, 0);
    if (e) {
        if (err)
            *err = e;
        return NULL;
    }
    cbrnn_model *m = calloc(1, sizeof *m);
    if (!m) {
        if (err)
            *err = CBRNN_ERR_NOMEM;
        return NULL;
    }
    m->cfg = *c;
    if (m->cfg.arch == CBRNN_ARCH_RNN) {
        /* The rnn baseline has no cerebellum whatever the widths say. */
        m->cfg.n_cb_hidden = 0;
        memset(m->cfg.cb_hidden, 0, sizeof m->cfg.cb_hidden);
    }
    build_layout(m);
    m->params = cbrnn_alloc_floats(m->n_params);
    if (!m->params) {
        free(m);
        if (err)
            *err = CBRNN_ERR_NOMEM;
        return NULL;
    }
    set_views(m);
    if (m->cfg.arch == CBRNN_ARCH_RESERVOIR)
        m->frozen[CBRNN_GROUP_CORTEX] = 1;
    cbrnn_feat_config_default(&m->feat, 16000.0);
    m->target = CBRNN_TARGET_PREDICT;
    m->horizon = 1;
    m->stream_norm_floor = CBRNN_STREAM_NORM_FLOOR;
    m->online_rule = CBRNN_RULE_SGD;
    m->rls_prior = CBRNN_RLS_PRIOR;
    m->rls_forget = CBRNN_RLS_FORGET;
    if (err)
        *err = 0;
    return m;
}

void cbrnn_model_destroy(cbrnn_model *m)
{
    if (!m)
        return;
    free(m->params);
    free(m->norm_mean);
    free(m->norm_std);
    free(m->rls_P);
    for (int i = 0; i < m->n_classes; i++)
        free(m->class_names[i]);
    for (int i = 0; i < m->n_meta; i++) {
        free(m->meta_key[i]);
        free(m->meta_val[i]);
    }
    free(m);
}

void cbrnn_model_feat_config(const cbrnn_model *m, double rate, cbrnn_feat_config *out)
{
    if (!m || !out)
        return;
    *out = m->feat;
    out->sample_rate = rate;
    out->ref_rate = m->feat.sample_rate;
}

static char *dupstr(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

int cbrnn_rule_rls_fits(cbrnn_wiring wiring, cbrnn_target target)
{
    return wiring == CBRNN_WIRING_READOUT &&
           (target == CBRNN_TARGET_PREDICT || target == CBRNN_TARGET_MAP);
}

cbrnn_model *cbrnn_model_clone(const cbrnn_model *m, int *err)
{
    int e = 0;
    cbrnn_model *d = cbrnn_model_create(&m->cfg, &e);
    if (!d) {
        if (err)
            *err = e;
        return NULL;
    }
    memcpy(d->params, m->params, m->n_params * sizeof(float));
    memcpy(d->frozen, m->frozen, sizeof d->frozen);
    d->feat = m->feat;
    d->target = m->target;
    d->stream_norm_s = m->stream_norm_s;
    d->stream_norm_floor = m->stream_norm_floor;
    d->online_rule = m->online_rule;
    d->rls_prior = m->rls_prior;
    d->rls_forget = m->rls_forget;
    d->horizon = m->horizon;
    d->file_format = m->file_format;
    if (m->norm_mean && m->norm_std)
        e = cbrnn_model_set_norm(d, m->norm_mean, m->norm_std);
    if (!e && m->n_classes)
        e = cbrnn_model_set_classes(d, m->n_classes, (const char *const *)m->class_names);
    if (!e && m->rls_P) {
        float *P = cbrnn_model_rls_state(d);
        if (P)
            memcpy(P, m->rls_P, (size_t)d->rls_n * (size_t)d->rls_n * sizeof(float));
        else
            e = CBRNN_ERR_NOMEM;
    }
    for (int i = 0; !e && i < m->n_meta; i++)
        e = cbrnn_model_set_meta(d, m->meta_key[i], m->meta_val[i]);
    if (e) {
        cbrnn_model_destroy(d);
        if (err)
            *err = e;
        return NULL;
    }
    if (err)
        *err = 0;
    return d;
}

size_t cbrnn_model_group_params(const cbrnn_model *m, int group)
{
    size_t n = 0;
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].group == group)
            n += m->tensors[i].size;
    return n;
}

const cbrnn_tensor *cbrnn_model_tensor(const cbrnn_model *m, const char *name)
{
    if (!m || !name)
        return NULL;
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name))
            return &m->tensors[i];
    return NULL;
}

int cbrnn_model_rls_dim(const cbrnn_model *m)
{
    if (!m)
        return 0;
    return (m->n_cb_layers > 0 ? m->cb_dim[m->n_cb_layers - 1] : m->cfg.n_hidden) + 1;
}

float *cbrnn_model_rls_state(cbrnn_model *m)
{
    if (!m)
        return NULL;
    if (!m->rls_P) {
        const int n = cbrnn_model_rls_dim(m);
        m->rls_P = malloc((size_t)n * (size_t)n * sizeof(float));
        m->rls_n = m->rls_P ? n : 0;
    }
    return m->rls_P;
}

void cbrnn_model_drop_rls_state(cbrnn_model *m)
{
    if (!m)
        return;
    free(m->rls_P);
    m->rls_P = NULL;
    m->rls_n = 0;
}

int cbrnn_model_set_norm(cbrnn_model *m, const float *mean, const float *std)
{
    if (!m || !mean || !std)
        return CBRNN_ERR_ARG;
    int F = m->cfg.n_in;
    for (int i = 0; i < F; i++) {
        if (!isfinite(mean[i]) || !isfinite(std[i]))
            return CBRNN_ERR_NONFINITE;
        if (!(std[i] > 0.0f))
            return CBRNN_ERR_ARG;
    }
    if (!m->norm_mean) {
        float *a = malloc((size_t)F * sizeof(float)), *b = malloc((size_t)F * sizeof(float));
        if (!a || !b) {
            free(a);
            free(b);
            return CBRNN_ERR_NOMEM;
        }
        m->norm_mean = a;
        m->norm_std = b;
    }
    memmove(m->norm_mean, mean, (size_t)F * sizeof(float));
    memmove(m->norm_std, std, (size_t)F * sizeof(float));
    return 0;
}

void cbrnn_model_norm_begin(const cbrnn_model *m, float *run_mean, float *run_var)
{
    if (!m || !(m->stream_norm_s > 0.0f))
        return;
    for (int i = 0; i < m->cfg.n_in; i++) {
        run_mean[i] = 0.0f;
        run_var[i] = 1.0f;
    }
}

/* The running normaliser on one corpus-normalised frame x: z and s. */
static void stream_step(const cbrnn_model *m, float *run_mean, float *run_var, const float *x,
                        float *z, float *scale)
{
    /* a = hop / tau: the share of a new frame in the running statistics. */
    float a = (float)(m->feat.hop_ms / (1000.0 * (double)m->stream_norm_s));
    a = a < 1.0f ? a : 1.0f;
    const float fl2 = m->stream_norm_floor * m->stream_norm_floor;
    for (int i = 0; i < m->cfg.n_in; i++) {
        float d = x[i] - run_mean[i];
        run_mean[i] += a * d;
        run_var[i] = (1.0f - a) * (run_var[i] + a * d * d);
        float s = fminf(sqrtf(run_var[i] + fl2), CBRNN_STREAM_NORM_CAP);
        z[i] = (x[i] - run_mean[i]) / s;
        if (scale)
            scale[i] = s;
    }
}

int cbrnn_model_normalise(const cbrnn_model *m, float *run_mean, float *run_var, float *x,
                          float *z, float *scale)
{
    const int F = m->cfg.n_in;
    int bad = 0;
    for (int i = 0; i < F; i++) {
        float v = m->norm_mean ? (x[i] - m->norm_mean[i]) / m->norm_std[i] : x[i];
        if (!isfinite(v)) {
            v = 0.0f;
            bad = 1;
        }
        x[i] = v;
    }
    if (m->stream_norm_s > 0.0f) {
        stream_step(m, run_mean, run_var, x, z, scale);
    } else {
        memcpy(z, x, (size_t)F * sizeof(float));
        for (int i = 0; scale && i < F; i++)
            scale[i] = 1.0f;
    }
    return bad;
}

int cbrnn_model_stream_seq(const cbrnn_model *m, const float *x, float *z, float *scale, long T)
{
    const int F = m->cfg.n_in;
    const size_t n = (size_t)T * F;
    if (!(m->stream_norm_s > 0.0f)) {
        memmove(z, x, n * sizeof(float));
        for (size_t i = 0; scale && i < n; i++)
            scale[i] = 1.0f;
        return 0;
    }
    float *st = malloc(2 * (size_t)F * sizeof(float));
    if (!st)
        return CBRNN_ERR_NOMEM;
    cbrnn_model_norm_begin(m, st, st + F);
    for (long t = 0; t < T; t++)
        stream_step(m, st, st + F, x + (size_t)t * F, z + (size_t)t * F,
                    scale ? scale + (size_t)t * F : NULL);
    free(st);
    return 0;
}

void cbrnn_model_normalise_seq(const cbrnn_model *m, float *x, long T)
{
    const int F = m->cfg.n_in;
    if (m->norm_mean)
        for (long t = 0; t < T; t++)
            for (int i = 0; i < F; i++) {
                size_t j = (size_t)t * F + (size_t)i;
                x[j] = (x[j] - m->norm_mean[i]) / m->norm_std[i];
            }
}

void cbrnn_model_output(const cbrnn_model *m, float *y, const float *base, const float *scale,
                        int ld, long rows)
{
    if (!m->cfg.residual)
        return;
    const int O = m->cfg.n_out;
    for (long r = 0; r < rows; r++) {
        float *yr = y + (size_t)r * O;
        const float *br = base + (size_t)r * ld, *sr = scale ? scale + (size_t)r * ld : NULL;
        for (int o = 0; o < O; o++)
            yr[o] = br[o] + (sr ? sr[o] * yr[o] : yr[o]);
    }
}

void cbrnn_model_output_backward(const cbrnn_model *m, float *dy, const float *scale, int ld,
                                 long rows)
{
    if (!m->cfg.residual || !scale)
        return;
    const int O = m->cfg.n_out;
    for (long r = 0; r < rows; r++)
        for (int o = 0; o < O; o++)
            dy[(size_t)r * O + o] *= scale[(size_t)r * ld + o];
}

/* The free-form keys cbrnn's tools write (docs/FORMATS.md): cbrnn train's
 * provenance (train/provenance.c, train/fit.c), the hosts' record of an
 * adapted model (host/host.c, cli/cmd_run.c) and the experiments' labels
 * (experiment/). A tool that writes a new key adds it here. */
static const char *const tool_keys[] = {
    "command", "date", "cbrnn_version", "train_files", "speed_perturb", "val_files",
    "held_out_dir", "held_out", "held_out_truncated", "train_set_sha256", "val_set_sha256",
    "skipped_files", "train_frames", "seed",
    "optimizer", "lr", "batch", "seq_len", "windows", "steps_warmup", "steps_frozen",
    "steps_done", "average", "final_train_loss", "final_val_loss", "final_val_accuracy",
    "final_val_persistence_loss", "final_skill", "interrupted", "init_from",
    "adapted_by", "adapted_from", "adapted_frames", "adapted_updates",
    "experiment", "task", "variant"};
_Static_assert(sizeof tool_keys / sizeof tool_keys[0] == CBRNN_META_TOOL_KEYS,
               "CBRNN_META_TOOL_KEYS counts tool_keys");

int cbrnn_meta_is_tool_key(const char *key)
{
    for (size_t i = 0; key && i < sizeof tool_keys / sizeof tool_keys[0]; i++)
        if (!strcmp(key, tool_keys[i]))
            return 1;
    return 0;
}

int cbrnn_model_set_meta(cbrnn_model *m, const char *key, const char *val)
{
    if (!m || !key || !*key || !val)
        return CBRNN_ERR_ARG;
    char *v = dupstr(val);
    if (!v)
        return CBRNN_ERR_NOMEM;
    int own = 0;
    for (int i = 0; i < m->n_meta; i++) {
        if (!strcmp(m->meta_key[i], key)) {
            free(m->meta_val[i]);
            m->meta_val[i] = v;
            return 0;
        }
        own += !cbrnn_meta_is_tool_key(m->meta_key[i]);
    }
    /* Own keys are bounded so the tool keys always fit beside them. */
    if (m->n_meta >= CBRNN_MAX_META ||
        (!cbrnn_meta_is_tool_key(key) && own >= CBRNN_MAX_META_OWN)) {
        free(v);
        return CBRNN_ERR_FULL;
    }
    char *k = dupstr(key);
    if (!k) {
        free(v);
        return CBRNN_ERR_NOMEM;
    }
    m->meta_key[m->n_meta] = k;
    m->meta_val[m->n_meta] = v;
    m->n_meta++;
    return 0;
}

void cbrnn_model_del_meta(cbrnn_model *m, const char *key)
{
    for (int i = 0; m && key && i < m->n_meta; i++)
        if (!strcmp(m->meta_key[i], key)) {
            free(m->meta_key[i]);
            free(m->meta_val[i]);
            for (int j = i + 1; j < m->n_meta; j++) { /* keeps the order */
                m->meta_key[j - 1] = m->meta_key[j];
                m->meta_val[j - 1] = m->meta_val[j];
            }
            m->n_meta--;
            m->meta_key[m->n_meta] = m->meta_val[m->n_meta] = NULL;
            return;
        }
}

void cbrnn_model_drop_tool_meta(cbrnn_model *m)
{
    for (size_t i = 0; m && i < sizeof tool_keys / sizeof tool_keys[0]; i++)
        cbrnn_model_del_meta(m, tool_keys[i]);
}

int cbrnn_model_format_version(const cbrnn_model *m)
{
    return m->cfg.residual || m->stream_norm_s > 0.0f || m->online_rule == CBRNN_RULE_RLS ||
                   m->rls_P
               ? 2
               : 1;
}

const char *cbrnn_model_get_meta(const cbrnn_model *m, const char *key)
{
    for (int i = 0; m && key && i < m->n_meta; i++)
        if (!strcmp(m->meta_key[i], key))
            return m->meta_val[i];
    return NULL;
}

int cbrnn_model_set_classes(cbrnn_model *m, int n, const char *const *names)
{
    if (!m || n < 0 || n > CBRNN_MAX_CLASSES || (n > 0 && !names))
        return CBRNN_ERR_ARG;
    char *copy[CBRNN_MAX_CLASSES];
    for (int i = 0; i < n; i++) {
        copy[i] = names[i] ? dupstr(names[i]) : NULL;
        if (!copy[i]) {
            for (int j = 0; j < i; j++)
                free(copy[j]);
            return names[i] ? CBRNN_ERR_NOMEM : CBRNN_ERR_ARG;
        }
    }
    for (int i = 0; i < m->n_classes; i++)
        free(m->class_names[i]);
    for (int i = 0; i < n; i++)
        m->class_names[i] = copy[i];
    for (int i = n; i < CBRNN_MAX_CLASSES; i++)
        m->class_names[i] = NULL;
    m->n_classes = n;
    return 0;
}
