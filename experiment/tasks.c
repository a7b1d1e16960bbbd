/* tasks.c: the paper's sequence tasks (N-DMS, N-parity, multitask, switch),
 * the curriculum, the paper's models and optimiser, and one training run of
 * the protocol of issue 5 (Voce, Giannakakis & Clopath 2026; see
 * cbrnn_experiment.h for the definitions), with checkpoints to resume it.
 *
 * Never prints, exits, reads the clock, or draws a random number outside
 * the run's cbrnn_rng: a run is a pure function of its configuration, so
 * two runs with one seed give identical curves and a resumed run continues
 * exactly where the saved one stopped. */
#include "cbrnn/cbrnn_experiment.h"
#include "exp_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const task_names[CBRNN_NTASKS] = {"dms", "parity", "multitask", "switch"};
static const char *const variant_names[CBRNN_NVARIANTS] = {"cbrnn", "rnn", "frozen", "interleaved"};

const char *cbrnn_task_name(int task)
{
    return task >= 0 && task < CBRNN_NTASKS ? task_names[task] : "?";
}

int cbrnn_task_parse(const char *name)
{
    for (int i = 0; name && i < CBRNN_NTASKS; i++)
        if (!strcmp(name, task_names[i]))
            return i;
    return -1;
}

const char *cbrnn_variant_name(int variant)
{
    return variant >= 0 && variant < CBRNN_NVARIANTS ? variant_names[variant] : "?";
}

int cbrnn_variant_parse(const char *name)
{
    for (int i = 0; name && i < CBRNN_NVARIANTS; i++)
        if (!strcmp(name, variant_names[i]))
            return i;
    return -1;
}

int cbrnn_task_n_in(int task) { return task == CBRNN_TASK_SWITCH ? 2 : 1; }
int cbrnn_task_n_heads(int task) { return task == CBRNN_TASK_MULTITASK ? 2 : 1; }
int cbrnn_task_n_out(int task) { return 2 * cbrnn_task_n_heads(task); }

int cbrnn_task_at_level(int task, int N)
{
    if (task != CBRNN_TASK_SWITCH)
        return task;
    int block = N >= CBRNN_PAPER_START_N ? (N - CBRNN_PAPER_START_N) / CBRNN_PAPER_SWITCH_EVERY : 0;
    return block % 2 == 0 ? CBRNN_TASK_DMS : CBRNN_TASK_PARITY;
}

int cbrnn_task_draw_len(cbrnn_rng *r, int N)
{
    /* [N+2, 4N+2): 3N values (N at most INT_MAX / 4: the sequence's length
     * 4N+1 must fit an int). */
    if (!r || N < 1 || N > INT_MAX / 4)
        return N < 1 ? 2 : INT_MAX / 4;
    int span = 3 * N;
    int k = (int)(cbrnn_rng_uniform(r) * span);
    if (k >= span) /* uniform() < 1, but stay safe against rounding */
        k = span - 1;
    return N + 2 + k;
}

int cbrnn_task_batch(float *x, int *labels, cbrnn_rng *r, int task, int N, int B, int M)
{
    if (!x || !labels || !r || task < 0 || task >= CBRNN_NTASKS || N < 1 || B < 1 || M < N + 1)
        return CBRNN_ERR_ARG;
    const int F = cbrnn_task_n_in(task);
    const int single = cbrnn_task_at_level(task, N);
    uint64_t word = 0;
    int left = 0;
    for (int b = 0; b < B; b++) {
        float *xb = x + (size_t)b * M * F;
        int dms_first = 0, parity = 0;
        for (int t = 0; t < M; t++) {
            if (left == 0) {
                word = cbrnn_rng_u64(r);
                left = 64;
            }
            int bit = (int)(word & 1u);
            word >>= 1;
            left--;
            xb[(size_t)t * F] = (float)bit;
            if (F > 1)
                xb[(size_t)t * F + 1] =
                    (single == CBRNN_TASK_PARITY && t < CBRNN_PAPER_PULSE_STEPS) ? 1.0f : 0.0f;
            if (t == M - N)
                dms_first = bit;
            if (t >= M - N)
                parity ^= bit;
            if (t == M - 1) {
                int dms = dms_first == bit;
                if (task == CBRNN_TASK_MULTITASK) {
                    labels[2 * b] = dms;
                    labels[2 * b + 1] = parity;
                } else {
                    labels[b] = single == CBRNN_TASK_DMS ? dms : parity;
                }
            }
        }
    }
    return 0;
}

void cbrnn_task_h0(float *h0, cbrnn_rng *r, int B, int H, float scale)
{
    if (!h0 || !r || B <= 0 || H <= 0)
        return;
    for (size_t i = 0; i < (size_t)B * H; i++)
        h0[i] = scale * (float)cbrnn_rng_uniform(r);
}

int cbrnn_curriculum_next(int N, double accuracy, double threshold, int cap)
{
    if (accuracy >= threshold && (cap <= 0 || N < cap) && N < INT_MAX / 4)
        return N + 1;
    return N;
}

void cbrnn_paper_model_config(cbrnn_model_config *c, int task, int variant)
{
    cbrnn_model_config_default(c);
    c->wiring = CBRNN_WIRING_LOOP;
    c->act = CBRNN_ACT_LEAKY_RELU;
    c->alpha = 1.0f / CBRNN_PAPER_TAU;
    c->n_in = cbrnn_task_n_in(task);
    c->n_out = cbrnn_task_n_out(task);
    if (variant == CBRNN_VARIANT_RNN) {
        /* The baseline keeps the loop wiring's initialisation (core as
         * nn.Linear), it just has no cerebellum. */
        c->arch = CBRNN_ARCH_RNN;
        c->n_hidden = CBRNN_PAPER_RNN_HIDDEN;
        c->n_cb_hidden = 0;
    } else {
        c->arch = CBRNN_ARCH_CBRNN;
        c->n_hidden = CBRNN_PAPER_HIDDEN;
        c->n_cb_hidden = 2;
        c->cb_hidden[0] = CBRNN_PAPER_CB0;
        c->cb_hidden[1] = CBRNN_PAPER_CB1;
    }
}

void cbrnn_paper_optim_config(cbrnn_optim_config *c)
{
    cbrnn_optim_config_default(c, CBRNN_OPT_SGD);
    c->lr = 0.01f;
    c->momentum = 0.1f;
    c->nesterov = 1;
    c->clip_norm = 7.5f;
}

void cbrnn_paper_config_default(cbrnn_paper_config *c, int task, int variant)
{
    memset(c, 0, sizeof *c);
    c->task = task;
    c->variant = variant;
    c->seed = 0;
    c->max_n = 0;
    c->batch = 64;
    c->train_steps = 100;
    c->test_batches = 50;
    c->threshold = CBRNN_PAPER_THRESHOLD;
    cbrnn_paper_optim_config(&c->opt);
}

/* ---- The run ---- */

struct cbrnn_paper_run {
    cbrnn_paper_config cfg;
    cbrnn_model *m;
    cbrnn_optim *o;
    cbrnn_ws *ws;
    int ws_t;                 /* steps the workspace and buffers hold */
    cbrnn_rng rng;            /* data and initial states */
    int epoch, N, phase;
    int n_in, n_out, n_heads, H;
    float *x, *y, *dy, *h0, *grad;
    int *labels, *lab;        /* [batch, heads], one head's [batch] */
    float *lg, *dlg;          /* one head's last-step logits and gradient [batch, 2] */
};

static int config_check(const cbrnn_paper_config *c)
{
    if (!c || c->task < 0 || c->task >= CBRNN_NTASKS || c->variant < 0 ||
        c->variant >= CBRNN_NVARIANTS || c->batch < 1 || c->train_steps < 0 ||
        c->test_batches < 1 || c->max_n == 1 || !(c->threshold > 0 && c->threshold <= 1))
        return CBRNN_ERR_ARG;
    return 0;
}

/* Frozen groups of a variant in a phase. */
static void apply_phase(cbrnn_paper_run *r)
{
    cbrnn_model *m = r->m;
    for (int g = 0; g < CBRNN_NGROUPS; g++)
        m->frozen[g] = 0;
    if (r->cfg.variant != CBRNN_VARIANT_FROZEN && r->cfg.variant != CBRNN_VARIANT_INTERLEAVED)
        return;
    if (r->phase == CBRNN_PHASE_ALL)
        m->frozen[CBRNN_GROUP_CEREBELLUM] = 1; /* warm-up: CB in the loop, not learning */
    else if (r->phase == CBRNN_PHASE_CORE_FROZEN)
        m->frozen[CBRNN_GROUP_CORTEX] = 1;
}

/* Sizes buffers for sequences of up to T steps. */
static int ensure_len(cbrnn_paper_run *r, int T)
{
    if (T <= r->ws_t)
        return 0;
    int cap = r->ws_t > 0 ? r->ws_t : 16;
    while (cap < T)
        cap *= 2;
    if (r->cfg.max_n > 0 && cap > 4 * r->cfg.max_n + 1 && T <= 4 * r->cfg.max_n + 1)
        cap = 4 * r->cfg.max_n + 1;
    int err = 0;
    cbrnn_ws *ws = cbrnn_ws_create(r->m, r->cfg.batch, cap, &err);
    if (!ws)
        return err ? err : CBRNN_ERR_NOMEM;
    size_t bt = (size_t)r->cfg.batch * cap;
    float *x = malloc(bt * r->n_in * sizeof *x);
    float *y = malloc(bt * r->n_out * sizeof *y);
    float *dy = malloc(bt * r->n_out * sizeof *dy);
    if (!x || !y || !dy) {
        free(x);
        free(y);
        free(dy);
        cbrnn_ws_destroy(ws);
        return CBRNN_ERR_NOMEM;
    }
    cbrnn_ws_destroy(r->ws);
    free(r->x);
    free(r->y);
    free(r->dy);
    r->ws = ws;
    r->x = x;
    r->y = y;
    r->dy = dy;
    r->ws_t = cap;
    return 0;
}

void cbrnn_paper_run_destroy(cbrnn_paper_run *r)
{
    if (!r)
        return;
    cbrnn_ws_destroy(r->ws);
    cbrnn_optim_destroy(r->o);
    cbrnn_model_destroy(r->m);
    free(r->x);
    free(r->y);
    free(r->dy);
    free(r->h0);
    free(r->grad);
    free(r->labels);
    free(r->lab);
    free(r->lg);
    free(r->dlg);
    free(r);
}

/* Everything but the initial weights, the data rng and the position. */
static cbrnn_paper_run *run_alloc(const cbrnn_paper_config *c, int *err)
{
    int e = config_check(c);
    if (e) {
        if (err)
            *err = e;
        return NULL;
    }
    cbrnn_paper_run *r = calloc(1, sizeof *r);
    if (!r) {
        if (err)
            *err = CBRNN_ERR_NOMEM;
        return NULL;
    }
    r->cfg = *c;
    cbrnn_model_config mc;
    cbrnn_paper_model_config(&mc, c->task, c->variant);
    r->m = cbrnn_model_create(&mc, &e);
    if (!r->m)
        goto fail;
    /* Inputs are task bits, not audio features: a saved model says so. */
    r->m->target = CBRNN_TARGET_TASK;
    e = cbrnn_model_set_meta(r->m, "task", cbrnn_task_name(c->task));
    if (!e)
        e = cbrnn_model_set_meta(r->m, "variant", cbrnn_variant_name(c->variant));
    if (e)
        goto fail;
    r->o = cbrnn_optim_create(r->m, &c->opt, &e);
    if (!r->o)
        goto fail;
    r->n_in = mc.n_in;
    r->n_out = mc.n_out;
    r->n_heads = cbrnn_task_n_heads(c->task);
    r->H = mc.n_hidden;
    r->h0 = malloc((size_t)c->batch * r->H * sizeof *r->h0);
    r->grad = malloc(r->m->n_params * sizeof *r->grad);
    r->labels = malloc((size_t)c->batch * r->n_heads * sizeof *r->labels);
    r->lab = malloc((size_t)c->batch * sizeof *r->lab);
    r->lg = malloc((size_t)c->batch * 2 * sizeof *r->lg);
    r->dlg = malloc((size_t)c->batch * 2 * sizeof *r->dlg);
    e = CBRNN_ERR_NOMEM;
    if (!r->h0 || !r->grad || !r->labels || !r->lab || !r->lg || !r->dlg)
        goto fail;
    /* Sequences at the start level are at most 4*2+1 steps; grow later. */
    e = ensure_len(r, 4 * CBRNN_PAPER_START_N + 1);
    if (e)
        goto fail;
    r->N = CBRNN_PAPER_START_N;
    r->phase = CBRNN_PHASE_ALL;
    apply_phase(r);
    return r;
fail:
    if (err)
        *err = e ? e : CBRNN_ERR_NOMEM;
    cbrnn_paper_run_destroy(r);
    return NULL;
}

cbrnn_paper_run *cbrnn_paper_run_create(const cbrnn_paper_config *c, int *err)
{
    cbrnn_paper_run *r = run_alloc(c, err);
    if (!r)
        return NULL;
    int e = cbrnn_model_init(r->m, c->seed);
    if (e) {
        if (err)
            *err = e;
        cbrnn_paper_run_destroy(r);
        return NULL;
    }
    apply_phase(r); /* init may set frozen flags of its own (reservoir) */
    /* The data stream is a different stream from the initial weights'. */
    cbrnn_rng_seed(&r->rng, c->seed ^ 0x7461736b73ULL /* "tasks" */);
    return r;
}

/* Copies one head's last-step logits out of y [B, M, O]. */
static void gather_head(cbrnn_paper_run *r, const float *y, const int *labels, int B, int M, int k)
{
    for (int b = 0; b < B; b++) {
        const float *row = y + ((size_t)b * M + (M - 1)) * r->n_out + 2 * k;
        r->lg[2 * b] = row[0];
        r->lg[2 * b + 1] = row[1];
        r->lab[b] = labels[b * r->n_heads + k];
    }
}

int cbrnn_paper_run_train_batch(cbrnn_paper_run *r, const float *x, const int *labels,
                                const float *h0, int B, int M, float *loss)
{
    if (!r || !x || !labels || !h0 || B < 1 || B > r->cfg.batch || M < 1)
        return CBRNN_ERR_ARG;
    int e = ensure_len(r, M);
    if (e)
        return e;
    cbrnn_model *m = r->m;
    e = cbrnn_forward(r->ws, r->y, NULL, m, x, h0, B, M);
    if (e)
        return e;
    /* Cross-entropy on the last step only: dL/dy is zero elsewhere. */
    memset(r->dy, 0, (size_t)B * M * r->n_out * sizeof *r->dy);
    float total = 0.0f;
    for (int k = 0; k < r->n_heads; k++) {
        gather_head(r, r->y, labels, B, M, k);
        /* Multitask: the heads' losses are summed (loss = ce_dms + ce_parity). */
        total += cbrnn_loss_xent(r->dlg, NULL, r->lg, r->lab, B, 2);
        for (int b = 0; b < B; b++) {
            float *d = r->dy + ((size_t)b * M + (M - 1)) * r->n_out + 2 * k;
            d[0] = r->dlg[2 * b];
            d[1] = r->dlg[2 * b + 1];
        }
    }
    if (!isfinite(total))
        return CBRNN_ERR_NONFINITE;
    memset(r->grad, 0, m->n_params * sizeof *r->grad);
    e = cbrnn_backward(r->ws, r->grad, m, r->dy, B, M);
    if (e)
        return e;
    e = cbrnn_optim_step(r->o, m, r->grad, NULL);
    if (e)
        return e;
    if (loss)
        *loss = total;
    return 0;
}

int cbrnn_paper_run_epoch(cbrnn_paper_run *r, cbrnn_paper_epoch *out)
{
    if (!r)
        return CBRNN_ERR_ARG;
    const int B = r->cfg.batch, N = r->N;
    int e = ensure_len(r, 4 * N + 1);
    if (e)
        return e;
    apply_phase(r);
    double loss_sum = 0.0;
    for (int s = 0; s < r->cfg.train_steps; s++) {
        int M = cbrnn_task_draw_len(&r->rng, N);
        cbrnn_task_batch(r->x, r->labels, &r->rng, r->cfg.task, N, B, M);
        cbrnn_task_h0(r->h0, &r->rng, B, r->H, CBRNN_PAPER_H0_SCALE);
        float loss = 0.0f;
        e = cbrnn_paper_run_train_batch(r, r->x, r->labels, r->h0, B, M, &loss);
        if (e)
            return e;
        loss_sum += loss;
    }
    long correct[2] = {0, 0};
    for (int s = 0; s < r->cfg.test_batches; s++) {
        int M = cbrnn_task_draw_len(&r->rng, N);
        cbrnn_task_batch(r->x, r->labels, &r->rng, r->cfg.task, N, B, M);
        cbrnn_task_h0(r->h0, &r->rng, B, r->H, CBRNN_PAPER_H0_SCALE);
        e = cbrnn_forward(r->ws, r->y, NULL, r->m, r->x, r->h0, B, M);
        if (e)
            return e;
        for (int k = 0; k < r->n_heads; k++) {
            gather_head(r, r->y, r->labels, B, M, k);
            for (int b = 0; b < B; b++) {
                /* argmax; a tie counts as class 0, as torch.argmax does */
                int pred = r->lg[2 * b + 1] > r->lg[2 * b] ? 1 : 0;
                correct[k] += pred == r->lab[b];
            }
        }
    }
    const double n_test = (double)r->cfg.test_batches * B;
    double acc[2] = {correct[0] / n_test, correct[1] / n_test};
    double accuracy = r->n_heads == 2 ? fmin(acc[0], acc[1]) : acc[0];
    r->epoch++;
    if (out) {
        out->epoch = r->epoch;
        out->N = N;
        out->phase = r->phase;
        out->train_loss = r->cfg.train_steps > 0 ? loss_sum / r->cfg.train_steps : 0.0;
        out->test_accuracy = accuracy;
        out->head_accuracy[0] = acc[0];
        out->head_accuracy[1] = r->n_heads == 2 ? acc[1] : 0.0;
    }
    /* Next epoch: curriculum, then the phase it implies. */
    int staged = r->cfg.variant == CBRNN_VARIANT_FROZEN ||
                 r->cfg.variant == CBRNN_VARIANT_INTERLEAVED;
    if (staged && r->phase == CBRNN_PHASE_ALL && accuracy >= r->cfg.threshold)
        r->phase = CBRNN_PHASE_CORE_FROZEN; /* warm-up done: the core is frozen from now on */
    r->N = cbrnn_curriculum_next(N, accuracy, r->cfg.threshold, r->cfg.max_n);
    if (r->cfg.variant == CBRNN_VARIANT_INTERLEAVED && r->phase != CBRNN_PHASE_ALL) {
        int every = CBRNN_PAPER_INTERLEAVE;
        int open = r->N > CBRNN_PAPER_START_N && (r->N - CBRNN_PAPER_START_N) % every == 0;
        r->phase = open ? CBRNN_PHASE_INTERLEAVE : CBRNN_PHASE_CORE_FROZEN;
    }
    apply_phase(r);
    return 0;
}

int cbrnn_paper_run_level(const cbrnn_paper_run *r) { return r ? r->N : 0; }
int cbrnn_paper_run_phase(const cbrnn_paper_run *r) { return r ? r->phase : 0; }
int cbrnn_paper_run_epochs(const cbrnn_paper_run *r) { return r ? r->epoch : 0; }
cbrnn_model *cbrnn_paper_run_model(cbrnn_paper_run *r) { return r ? r->m : NULL; }
const cbrnn_paper_config *cbrnn_paper_run_config(const cbrnn_paper_run *r)
{
    return r ? &r->cfg : NULL;
}

int cbrnn_paper_run_set_level(cbrnn_paper_run *r, int N)
{
    if (!r || N < 1 || N > CBRNN_PAPER_MAX_LEVEL || (r->cfg.max_n > 0 && N > r->cfg.max_n))
        return CBRNN_ERR_ARG;
    int e = ensure_len(r, 4 * N + 1);
    if (e)
        return e;
    r->N = N;
    return 0;
}

int cbrnn_paper_run_set_phase(cbrnn_paper_run *r, int phase)
{
    if (!r || phase < CBRNN_PHASE_ALL || phase > CBRNN_PHASE_INTERLEAVE)
        return CBRNN_ERR_ARG;
    r->phase = phase;
    apply_phase(r);
    return 0;
}

/* ---- Checkpoints ----
 * Layout (all little-endian): "CBRNNCKP", u64 version, then u64 fields
 * (configuration, position, random state, sizes), then float32 parameters
 * and optimiser moments, then a u64 FNV-1a checksum of everything before. */
#define CKP_MAGIC "CBRNNCKP"
#define CKP_VERSION 1u

typedef struct {
    unsigned char *p;
    size_t len, cap;
} buf_t;

static int put(buf_t *b, const void *v, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, v, n);
    b->len += n;
    return 0;
}

static int put_u64(buf_t *b, uint64_t v)
{
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(v >> (8 * i));
    return put(b, le, 8);
}

static uint64_t f64_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

static uint64_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static int put_floats(buf_t *b, const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        unsigned char le[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16),
                               (unsigned char)(u >> 24)};
        if (put(b, le, 4))
            return -1;
    }
    return 0;
}

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a 64-bit offset basis and prime */
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* The configuration as u64 fields, in file order. */
#define CKP_NCFG 13
static void cfg_fields(const cbrnn_paper_config *c, uint64_t f[CKP_NCFG])
{
    f[0] = (uint64_t)c->task;
    f[1] = (uint64_t)c->variant;
    f[2] = c->seed;
    f[3] = (uint64_t)(int64_t)c->max_n;
    f[4] = (uint64_t)c->batch;
    f[5] = (uint64_t)c->train_steps;
    f[6] = (uint64_t)c->test_batches;
    f[7] = f64_bits(c->threshold);
    f[8] = (uint64_t)c->opt.kind;
    f[9] = f32_bits(c->opt.lr);
    f[10] = f32_bits(c->opt.momentum);
    f[11] = (uint64_t)c->opt.nesterov;
    f[12] = f32_bits(c->opt.clip_norm);
}

static void set_msg(char *msg, size_t msglen, const char *fmt, ...)
{
    if (!msg || !msglen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
}

/* exp_fill for a checkpoint composed in b. */
static int put_all(FILE *f, void *b)
{
    const buf_t *c = b;
    return fwrite(c->p, 1, c->len, f) == c->len ? 0 : -1;
}

int cbrnn_paper_run_save(const cbrnn_paper_run *r, const char *path, char *msg, size_t msglen)
{
    if (!r || !path) {
        set_msg(msg, msglen, "checkpoint: no run or path");
        return CBRNN_ERR_ARG;
    }
    buf_t b = {0};
    uint64_t f[CKP_NCFG];
    cfg_fields(&r->cfg, f);
    const cbrnn_optim *o = r->o;
    int ok = !put(&b, CKP_MAGIC, 8) && !put_u64(&b, CKP_VERSION);
    for (int i = 0; ok && i < CKP_NCFG; i++)
        ok = !put_u64(&b, f[i]);
    ok = ok && !put_u64(&b, (uint64_t)r->epoch) && !put_u64(&b, (uint64_t)r->N) &&
         !put_u64(&b, (uint64_t)r->phase);
    for (int i = 0; ok && i < 4; i++)
        ok = !put_u64(&b, r->rng.s[i]);
    ok = ok && !put_u64(&b, (uint64_t)o->step) && !put_u64(&b, (uint64_t)r->m->n_params) &&
         !put_u64(&b, o->m ? 1u : 0u) && !put_u64(&b, o->v ? 1u : 0u);
    ok = ok && !put_floats(&b, r->m->params, r->m->n_params);
    if (ok && o->m)
        ok = !put_floats(&b, o->m, o->n);
    if (ok && o->v)
        ok = !put_floats(&b, o->v, o->n);
    ok = ok && !put_u64(&b, fnv1a(b.p, b.len));
    if (!ok) {
        free(b.p);
        set_msg(msg, msglen, "%s: out of memory", path);
        return CBRNN_ERR_NOMEM;
    }
    int e = exp_replace_file(path, put_all, &b, msg, msglen);
    free(b.p);
    return e;
}

typedef struct {
    const unsigned char *p;
    size_t len, pos;
} rd_t;

static int get_u64(rd_t *r, uint64_t *v)
{
    if (r->len - r->pos < 8)
        return -1;
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x |= (uint64_t)r->p[r->pos + i] << (8 * i);
    r->pos += 8;
    *v = x;
    return 0;
}

static int get_floats(rd_t *r, float *v, size_t n)
{
    if ((r->len - r->pos) / 4 < n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *q = r->p + r->pos + 4 * i;
        uint32_t u = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 |
                     (uint32_t)q[3] << 24;
        memcpy(&v[i], &u, 4);
        if (!isfinite(v[i]))
            return -2;
    }
    r->pos += 4 * n;
    return 0;
}

static unsigned char *read_file(const char *path, size_t *len, char *msg, size_t msglen, int *e)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        set_msg(msg, msglen, "%s: cannot open: %s", path, strerror(errno));
        *e = CBRNN_ERR_IO;
        return NULL;
    }
    unsigned char *p = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 65536;
            unsigned char *q = realloc(p, cap);
            if (!q) {
                free(p);
                fclose(fp);
                set_msg(msg, msglen, "%s: out of memory", path);
                *e = CBRNN_ERR_NOMEM;
                return NULL;
            }
            p = q;
        }
        size_t got = fread(p + n, 1, cap - n, fp);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(fp) ? (errno ? errno : EIO) : 0;
    fclose(fp);
    if (bad) {
        free(p);
        set_msg(msg, msglen, "%s: cannot read: %s", path, strerror(bad));
        *e = CBRNN_ERR_IO;
        return NULL;
    }
    *len = n;
    return p;
}

cbrnn_paper_run *cbrnn_paper_run_load(const char *path, const cbrnn_paper_config *expect, int *err,
                                      char *msg, size_t msglen)
{
    int e = 0;
    size_t len = 0;
    cbrnn_paper_run *run = NULL;
    unsigned char *p = path ? read_file(path, &len, msg, msglen, &e) : NULL;
    if (!path) {
        set_msg(msg, msglen, "checkpoint: no path");
        e = CBRNN_ERR_ARG;
    }
    if (!p)
        goto out;
    e = CBRNN_ERR_FORMAT;
    if (len < 8 + 8 + 8 || memcmp(p, CKP_MAGIC, 8)) {
        set_msg(msg, msglen, "%s: not a cbrnn checkpoint (bad magic or too short)", path);
        goto out;
    }
    uint64_t sum = 0;
    for (int i = 0; i < 8; i++)
        sum |= (uint64_t)p[len - 8 + i] << (8 * i);
    if (sum != fnv1a(p, len - 8)) {
        set_msg(msg, msglen, "%s: checksum mismatch (truncated or damaged)", path);
        goto out;
    }
    rd_t rd = {p, len - 8, 8};
    uint64_t v, f[CKP_NCFG];
    if (get_u64(&rd, &v) || v != CKP_VERSION) {
        set_msg(msg, msglen, "%s: checkpoint version %llu, expected %u", path,
                (unsigned long long)v, CKP_VERSION);
        goto out;
    }
    for (int i = 0; i < CKP_NCFG; i++)
        if (get_u64(&rd, &f[i])) {
            set_msg(msg, msglen, "%s: truncated header", path);
            goto out;
        }
    cbrnn_paper_config c;
    cbrnn_paper_config_default(&c, 0, 0);
    c.task = (int)f[0];
    c.variant = (int)f[1];
    c.seed = f[2];
    c.max_n = (int)(int64_t)f[3];
    c.batch = (int)f[4];
    c.train_steps = (int)f[5];
    c.test_batches = (int)f[6];
    memcpy(&c.threshold, &f[7], 8);
    c.opt.kind = (cbrnn_opt_kind)f[8];
    uint32_t u32;
    u32 = (uint32_t)f[9];
    memcpy(&c.opt.lr, &u32, 4);
    u32 = (uint32_t)f[10];
    memcpy(&c.opt.momentum, &u32, 4);
    c.opt.nesterov = (int)f[11];
    u32 = (uint32_t)f[12];
    memcpy(&c.opt.clip_norm, &u32, 4);
    if (f[0] >= CBRNN_NTASKS || f[1] >= CBRNN_NVARIANTS || f[4] > 1u << 20 || f[5] > 1u << 30 ||
        f[6] > 1u << 30 || f[8] > CBRNN_OPT_ADAM || config_check(&c)) {
        set_msg(msg, msglen, "%s: invalid run configuration", path);
        goto out;
    }
    if (expect) {
        uint64_t g[CKP_NCFG];
        cfg_fields(expect, g);
        for (int i = 0; i < CKP_NCFG; i++)
            if (g[i] != f[i]) {
                set_msg(msg, msglen,
                        "%s: checkpoint is of another run (configuration field %d differs)", path, i);
                e = CBRNN_ERR_SHAPE;
                goto out;
            }
    }
    uint64_t epoch, N, phase, rs[4], step, n_params, has_m, has_v;
    if (get_u64(&rd, &epoch) || get_u64(&rd, &N) || get_u64(&rd, &phase) || get_u64(&rd, &rs[0]) ||
        get_u64(&rd, &rs[1]) || get_u64(&rd, &rs[2]) || get_u64(&rd, &rs[3]) ||
        get_u64(&rd, &step) || get_u64(&rd, &n_params) || get_u64(&rd, &has_m) ||
        get_u64(&rd, &has_v)) {
        set_msg(msg, msglen, "%s: truncated header", path);
        goto out;
    }
    if (N < 1 || N > 1u << 20 || (c.max_n > 0 && N > (uint64_t)c.max_n) || phase > 2 ||
        epoch > 1u << 30 || has_m > 1 || has_v > 1 || step > (uint64_t)1 << 40) {
        set_msg(msg, msglen, "%s: invalid run position (N %llu, phase %llu)", path,
                (unsigned long long)N, (unsigned long long)phase);
        goto out;
    }
    run = run_alloc(&c, &e);
    if (!run) {
        set_msg(msg, msglen, "%s: cannot create the run", path);
        goto out;
    }
    e = CBRNN_ERR_FORMAT;
    if (n_params != run->m->n_params || (has_m != 0) != (run->o->m != NULL) ||
        (has_v != 0) != (run->o->v != NULL)) {
        set_msg(msg, msglen, "%s: %llu parameters, the model has %zu", path,
                (unsigned long long)n_params, run->m->n_params);
        goto fail;
    }
    int fe = get_floats(&rd, run->m->params, run->m->n_params);
    if (!fe && has_m)
        fe = get_floats(&rd, run->o->m, run->o->n);
    if (!fe && has_v)
        fe = get_floats(&rd, run->o->v, run->o->n);
    if (fe || rd.pos != rd.len) {
        set_msg(msg, msglen, "%s: %s", path,
                fe == -2 ? "non-finite parameter or moment" : "size does not match its header");
        e = fe == -2 ? CBRNN_ERR_NONFINITE : CBRNN_ERR_FORMAT;
        goto fail;
    }
    for (int i = 0; i < 4; i++)
        run->rng.s[i] = rs[i];
    run->o->step = (long)step;
    run->epoch = (int)epoch;
    run->phase = (int)phase;
    e = cbrnn_paper_run_set_level(run, (int)N);
    if (e)
        goto fail;
    apply_phase(run);
    free(p);
    return run;
fail:
    cbrnn_paper_run_destroy(run);
    run = NULL;
out:
    free(p);
    if (err)
        *err = e;
    return NULL;
}
