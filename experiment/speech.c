/* speech.c: the speech comparison (cbrnn_exp_speech_create): the paper's
 * comparison carried over to audio. Next-frame prediction of normalised
 * log-mel frames (the readout wiring, the project's live use) on a corpus
 * whose features the host computed with the live front end, validation
 * held out by file. Curves of validation loss and skill (1 - MSE /
 * persistence MSE) against training steps and training wall-clock.
 *
 * The variants are the table `variants` below: a name, a line of help, the
 * model it trains and its phases. A variant that is not one trained model
 * gives its own `run`, which must write the same curve columns and may
 * leave the model file out: the baselines persistence (x_{t+1} = x_t) and
 * linear (least squares on the last LIN_ORDER frames, fitted once on the
 * training files) do, with flat curves (the same value at every step).
 *
 * Test split (optional): files that no unit trains or validates on; each
 * unit scores its final model on them once, per language group and pooled,
 * into test/<unit>.csv, before the unit counts as done.
 *
 * Resuming: a unit whose curve reaches the last step is left alone; a
 * partial one restarts from step 0 (speech runs are minutes, not hours).
 * Must never: print, normalise with validation statistics, or write
 * outside the results folder. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "exp_internal.h"

/* A feature's std floor: digital silence sits at log(1e-6) in every band;
 * 1e-3 is far below speech's 1-3 nat spread (as cbrnn train). */
#define STD_FLOOR 1e-3f
#define MAX_SEEDS 1000
/* The linear baseline's frames (as cbrnn eval --linear-order's default). */
#define LIN_ORDER 8
/* cbrnn eval --linear-fit's ridge, so that the two agree. */
#define LIN_RIDGE 1e-3
/* cbrnn-res: the running normaliser's time constant, seconds. */
#define RES_STREAM_S 1.0f
#define MAX_GROUPS 16

static const char test_header[] = "group,files,count,loss,persistence_loss,skill";

typedef struct speech {
    cbrnn_exp_speech_config c;
    char *corpus;                /* c.corpus, owned */
    int F, n_files, n_train, n_val;
    float *x;                    /* every file's normalised features, one block */
    cbrnn_seq *train, *val, *test;
    int n_test;
    int *test_group;             /* test file -> index in groups, or -1 */
    int n_groups;
    char *groups[MAX_GROUPS];    /* the test split's groups, "other" last */
    /* The running normaliser's z and s over every file (cbrnn-res), and
     * the sequences that feed a model with one. */
    float *zs;
    cbrnn_seq *train_r, *val_r, *test_r;
    float *mean, *std;
    cbrnn_feat_config fc;
} speech;

static const speech *sp(const cbrnn_exp *e) { return e->kind; }

/* ---- The variants ---- */

typedef struct speech_variant {
    const char *name, *help;
    int arch;            /* CBRNN_ARCH_*: CBRNN and RESERVOIR use the cbrnn sizes; RNN
                          * is sized to the cbrnn model's parameter count */
    int warmup;          /* 1: --warmup-steps with everything trained, then the
                          * cortex frozen */
    const char *phase;   /* the curve's phase name when there is no warm-up */
    int residual;        /* residual output, running normaliser RES_STREAM_S */
    /* NULL: train the model; else the variant's own unit. */
    int (*run)(cbrnn_exp *e, int k, const cbrnn_exp_report *r);
} speech_variant;

static int run_baseline(cbrnn_exp *e, int k, const cbrnn_exp_report *r);

static const speech_variant variants[] = {
    {"cbrnn", "warm-up with everything trained, then the cortex frozen", CBRNN_ARCH_CBRNN, 1,
     NULL, 0, NULL},
    {"cbrnn-full", "everything trained throughout", CBRNN_ARCH_CBRNN, 0, "all", 0, NULL},
    {"rnn", "no cerebellum, linear readout, parameter-matched cortex", CBRNN_ARCH_RNN, 0, "all",
     0, NULL},
    {"reservoir", "random frozen cortex (spectral radius), cerebellum readout",
     CBRNN_ARCH_RESERVOIR, 0, "frozen", 0, NULL},
    {"cbrnn-res", "cbrnn with residual output and a 1 s running normaliser", CBRNN_ARCH_CBRNN, 1,
     NULL, 1, NULL},
    {"persistence", "baseline, not trained: predicts x[t+1] = x[t] (skill 0)", -1, 0, "baseline",
     0, run_baseline},
    {"linear", "baseline: least squares on the last 8 frames, fitted on the training files",
     -1, 0, "baseline", 0, run_baseline},
};
#define V_PERSISTENCE 5
#define V_LINEAR 6
#define N_VARIANTS ((int)(sizeof variants / sizeof variants[0]))
_Static_assert(N_VARIANTS <= CBRNN_EXP_SPEECH_MAX_VARIANTS, "raise CBRNN_EXP_SPEECH_MAX_VARIANTS");

int cbrnn_exp_speech_n_variants(void) { return N_VARIANTS; }
const char *cbrnn_exp_speech_variant_name(int v)
{
    return v >= 0 && v < N_VARIANTS ? variants[v].name : NULL;
}
const char *cbrnn_exp_speech_variant_help(int v)
{
    return v >= 0 && v < N_VARIANTS ? variants[v].help : NULL;
}

static int is_baseline(int variant) { return variants[variant].run == run_baseline; }

/* The sequences a variant's model reads: 0 train, 1 validation, 2 test. */
static const cbrnn_seq *seqs_for(const speech *s, int variant, int which)
{
    if (variants[variant].residual)
        return which == 0 ? s->train_r : which == 1 ? s->val_r : s->test_r;
    return which == 0 ? s->train : which == 1 ? s->val : s->test;
}

static void model_config(const speech *s, int variant, cbrnn_model_config *mc)
{
    const cbrnn_exp_speech_config *o = &s->c;
    cbrnn_model_config_default(mc);
    mc->wiring = CBRNN_WIRING_READOUT;
    mc->act = CBRNN_ACT_TANH;
    mc->alpha = 1.0f;
    mc->n_in = mc->n_out = s->F;
    mc->n_hidden = o->hidden;
    mc->n_cb_hidden = o->n_cb;
    for (int i = 0; i < o->n_cb; i++)
        mc->cb_hidden[i] = o->cb[i];
    mc->spectral_radius = (float)o->radius;
    mc->residual = variants[variant].residual;
    mc->arch = CBRNN_ARCH_CBRNN;
    if (variants[variant].arch == CBRNN_ARCH_RESERVOIR) {
        mc->arch = CBRNN_ARCH_RESERVOIR;
    } else if (variants[variant].arch == CBRNN_ARCH_RNN) {
        size_t target = cbrnn_model_config_params(mc);
        mc->arch = CBRNN_ARCH_RNN;
        mc->n_cb_hidden = 0;
        mc->n_hidden = cbrnn_rnn_hidden_for_params(s->F, s->F, target);
    }
}

/* Trained or fitted parameters: the linear baseline's coefficients. */
static size_t variant_params(const speech *s, int variant, int *hidden)
{
    *hidden = 0;
    if (variant == V_PERSISTENCE)
        return 0;
    if (variant == V_LINEAR)
        return ((size_t)LIN_ORDER * (size_t)s->F + 1) * (size_t)s->F;
    cbrnn_model_config mc;
    model_config(s, variant, &mc);
    *hidden = mc.n_hidden;
    return cbrnn_model_config_params(&mc);
}

/* ---- One unit ---- */

static const char curve_header[] =
    "step,phase,train_loss,val_loss,val_persistence_loss,val_skill,wall_s";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct vres {
    double loss, persist, skill;
} vres;

/* What predicts: a model, the linear baseline, or (both NULL) persistence. */
typedef struct predictor {
    const cbrnn_model *m;
    const cbrnn_linpred *lp;
} predictor;

/* Adds one sequence's squared errors to *acc (as cbrnn_eval_seq). */
static int score_seq(const predictor *p, const cbrnn_seq *q, int F, cbrnn_eval_sums *acc)
{
    if (p->m)
        return cbrnn_eval_seq(p->m, q, NULL, acc);
    if (p->lp)
        return cbrnn_linpred_eval(p->lp, q, NULL, acc);
    const float *base = q->base ? q->base : q->x;
    int ys = q->y_stride ? q->y_stride : F;
    double sum = 0;
    for (long t = 0; t < q->T; t++)
        for (int f = 0; f < F; f++) {
            double d = (double)q->y[t * ys + f] - (double)base[t * F + f];
            sum += d * d;
        }
    acc->loss += sum;
    acc->persist += sum;
    acc->count += (long)q->T * F;
    return 0;
}

static vres sums_res(const cbrnn_eval_sums *sums)
{
    vres r;
    r.loss = sums->count ? sums->loss / (double)sums->count : NAN;
    r.persist = sums->count ? sums->persist / (double)sums->count : NAN;
    r.skill = sums->persist > 0 ? 1.0 - sums->loss / sums->persist : NAN;
    return r;
}

static int score_set(const speech *s, const predictor *p, const cbrnn_seq *q, int n, vres *r)
{
    cbrnn_eval_sums sums = {0, 0, 0, 0};
    for (int i = 0; i < n; i++) {
        int e = score_seq(p, &q[i], s->F, &sums);
        if (e)
            return e;
    }
    *r = sums_res(&sums);
    return 0;
}

static int validate(const speech *s, const cbrnn_model *m, int variant, vres *r)
{
    predictor p = {m, NULL};
    return score_set(s, &p, seqs_for(s, variant, 1), s->n_val, r);
}

static void test_path(const cbrnn_exp *e, int k, char *buf, size_t len)
{
    snprintf(buf, len, "%s/test/%s.csv", e->out, e->units[k].name);
}

/* 1 if the unit's test file is complete (its last row is the pooled one),
 * 0 if not (or absent), -1 with msg (may be NULL) if it cannot be read. */
static int test_done(const cbrnn_exp *e, int k, char *msg, size_t msglen)
{
    if (sp(e)->n_test == 0)
        return 1;
    char path[EXP_PATH + 64], line[512], last[512] = "";
    test_path(e, k, path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : exp_fail(msg, msglen, -1, "%s: cannot read: %s", path,
                                              strerror(errno));
    while (fgets(line, sizeof line, f))
        memcpy(last, line, sizeof last);
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (err)
        return exp_fail(msg, msglen, -1, "%s: cannot read: %s", path, strerror(err));
    size_t l = strlen(last);
    return !strncmp(last, "pooled,", 7) && l && last[l - 1] == '\n';
}

/* A test table's sums: per group (MAX_GROUPS: files without a group). */
typedef struct test_table {
    const speech *s;
    cbrnn_eval_sums g[MAX_GROUPS + 1];
    int nf[MAX_GROUPS + 1];
} test_table;

/* exp_fill for test/<unit>.csv: a row per group and the pooled row last. */
static int put_test(FILE *f, void *ctx)
{
    const test_table *t = ctx;
    int bad = fprintf(f, "%s\n", test_header) < 0;
    cbrnn_eval_sums all = {0, 0, 0, 0};
    int files = 0;
    for (int gi = 0; gi <= MAX_GROUPS; gi++) {
        all.loss += t->g[gi].loss;
        all.persist += t->g[gi].persist;
        all.count += t->g[gi].count;
        files += t->nf[gi];
        if (gi == MAX_GROUPS || gi >= t->s->n_groups)
            continue;
        vres v = sums_res(&t->g[gi]);
        bad |= fprintf(f, "%s,%d,%ld,%.9g,%.9g,%.9g\n", t->s->groups[gi], t->nf[gi],
                       t->g[gi].count, v.loss, v.persist, v.skill) < 0;
    }
    vres v = sums_res(&all);
    bad |= fprintf(f, "pooled,%d,%ld,%.9g,%.9g,%.9g\n", files, all.count, v.loss, v.persist,
                   v.skill) < 0;
    return bad ? -1 : 0;
}

/* The final predictor on the test split: test/<unit>.csv (put_test),
 * replaced whole by exp_replace_file. */
static int write_test(const cbrnn_exp *e, int k, const predictor *p, const cbrnn_exp_report *r)
{
    const speech *s = sp(e);
    if (s->n_test == 0)
        return 0;
    const cbrnn_seq *q = p->m || p->lp ? seqs_for(s, e->units[k].variant, 2) : s->test;
    test_table t;
    memset(&t, 0, sizeof t);
    t.s = s;
    for (int i = 0; i < s->n_test; i++) {
        int gi = s->test_group[i] < 0 ? MAX_GROUPS : s->test_group[i];
        int err = score_seq(p, &q[i], s->F, &t.g[gi]);
        if (err) {
            exp_say(r, "%s: test evaluation failed: %s", e->units[k].name, cbrnn_strerror(err));
            return err;
        }
        t.nf[gi]++;
    }
    char dir[EXP_PATH + 64], path[EXP_PATH + 64], msg[EXP_PATH + 512];
    snprintf(dir, sizeof dir, "%s/test", e->out);
    if (mkdir(dir, 0777) && errno != EEXIST) {
        exp_say(r, "%s: cannot create the folder: %s", dir, strerror(errno));
        return CBRNN_ERR_IO;
    }
    test_path(e, k, path, sizeof path);
    int rc = exp_replace_file(path, put_test, &t, msg, sizeof msg);
    if (rc)
        exp_say(r, "%s", msg);
    return rc;
}

/* Complete rows of a speech curve (0 if absent or not a curve: the unit
 * runs again); *last_step gets the last row's step. -1 with msg (may be
 * NULL) if the file cannot be read: a finished unit must not be run again
 * over it because of a permission or an I/O error. */
static int read_curve(const char *path, int *last_step, char *msg, size_t msglen)
{
    FILE *f = fopen(path, "r");
    *last_step = -1;
    if (!f)
        return errno == ENOENT ? 0 : exp_fail(msg, msglen, -1, "%s: cannot read: %s", path,
                                              strerror(errno));
    char line[512];
    int n = 0;
    if (!fgets(line, sizeof line, f) || strncmp(line, curve_header, strlen(curve_header))) {
        int err = ferror(f) ? errno : 0; /* unreadable is not "not a curve" */
        fclose(f);
        return err ? exp_fail(msg, msglen, -1, "%s: cannot read: %s", path, strerror(err)) : 0;
    }
    while (fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        int step;
        if (!len || line[len - 1] != '\n' || sscanf(line, "%d,", &step) != 1)
            break;
        *last_step = step;
        n++;
    }
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (err) {
        *last_step = -1;
        return exp_fail(msg, msglen, -1, "%s: cannot read: %s", path, strerror(err));
    }
    return n;
}

/* exp_fill for a new curve: its header alone. */
static int put_header(FILE *f, void *ctx)
{
    (void)ctx;
    return fprintf(f, "%s\n", curve_header) < 0 ? -1 : 0;
}

/* Unit u's curve started afresh, open to append its rows; NULL after a
 * message. The header replaces the old curve whole (exp_replace_file): a
 * crash leaves the old curve or the new, never an empty file. */
static FILE *new_curve(const exp_unit *u, const cbrnn_exp_report *r)
{
    char msg[EXP_PATH + 512];
    if (exp_replace_file(u->curve, put_header, NULL, msg, sizeof msg)) {
        exp_say(r, "%s", msg);
        return NULL;
    }
    FILE *f = fopen(u->curve, "a");
    if (!f)
        exp_say(r, "%s: cannot append: %s", u->curve, strerror(errno));
    return f;
}

/* The unit's model, initialised, with the front end and normaliser it needs. */
static cbrnn_model *new_model(const cbrnn_exp *e, const exp_unit *u, const cbrnn_exp_report *r)
{
    const speech *s = sp(e);
    cbrnn_model_config mc;
    model_config(s, u->variant, &mc);
    int err = 0;
    cbrnn_model *m = cbrnn_model_create(&mc, &err);
    if (!m || (err = cbrnn_model_init(m, (uint64_t)u->seed))) {
        exp_say(r, "%s: cannot create the model: %s", u->name, cbrnn_strerror(err));
        cbrnn_model_destroy(m);
        return NULL;
    }
    m->feat = s->fc;
    m->feat.ref_rate = 0; /* not part of a model */
    m->target = CBRNN_TARGET_PREDICT;
    m->horizon = 1;
    if (variants[u->variant].residual) {
        m->stream_norm_s = RES_STREAM_S;
        m->stream_norm_floor = CBRNN_STREAM_NORM_FLOOR;
    }
    if (cbrnn_model_set_norm(m, s->mean, s->std) ||
        cbrnn_model_set_meta(m, "experiment", "speech") ||
        cbrnn_model_set_meta(m, "variant", variants[u->variant].name)) {
        exp_say(r, "out of memory");
        cbrnn_model_destroy(m);
        return NULL;
    }
    return m;
}

/* A validation row of the curve. */
static int put_row(FILE *f, const exp_unit *u, int step, const char *pname, double train_loss,
                   double wall, const speech *s, const cbrnn_model *m, const cbrnn_exp_report *r)
{
    vres v;
    int err = validate(s, m, u->variant, &v);
    if (err) {
        exp_say(r, "validation failed: %s", cbrnn_strerror(err));
        return err;
    }
    if (step == 0)
        fprintf(f, "0,init,,%.9g,%.9g,%.9g,0\n", v.loss, v.persist, v.skill);
    else
        fprintf(f, "%d,%s,%.9g,%.9g,%.9g,%.9g,%.4f\n", step, pname, train_loss, v.loss, v.persist,
                v.skill, wall);
    if (fflush(f)) {
        exp_say(r, "%s: %s", u->curve, strerror(errno));
        return CBRNN_ERR_IO;
    }
    return 0;
}

/* Trains m through the variant's phases, a row every eval_every steps. */
static int train_phases(const cbrnn_exp *e, const exp_unit *u, cbrnn_model *m, FILE *f,
                        const cbrnn_exp_report *r)
{
    const speech *s = sp(e);
    const cbrnn_exp_speech_config *o = &s->c;
    const speech_variant *sv = &variants[u->variant];
    /* Phases: a warm-up variant trains everything, then freezes the
     * cortex; the others train one way throughout (reservoir: its cortex
     * is frozen by init). */
    int warm = sv->warmup ? (o->warmup < o->steps ? o->warmup : o->steps) : 0;
    double wall = 0, acc = 0;
    int since = 0, step = 0, err = 0;
    cbrnn_trainer *tr = NULL;
    for (int phase = 0; phase < 2 && !err; phase++) {
        int n = phase == 0 ? warm : o->steps - warm;
        if (n <= 0)
            continue;
        const char *pname = sv->warmup ? (phase ? "frozen" : "warmup") : sv->phase;
        if (sv->warmup)
            m->frozen[CBRNN_GROUP_CORTEX] = phase;
        /* A fresh optimiser for a new set of trainable parameters; the
         * second phase draws other windows (seed + phase), as cbrnn train. */
        cbrnn_train_config tc = {.batch = o->batch, .seq_len = o->seq_len, .carry_state = 0,
                                 .seed = (uint64_t)u->seed + (uint64_t)phase};
        cbrnn_optim_config_default(&tc.opt, CBRNN_OPT_ADAM);
        tc.opt.lr = (float)o->lr;
        tc.opt.clip_norm = (float)o->clip;
        cbrnn_trainer_destroy(tr);
        tr = cbrnn_trainer_create(m, &tc, &err);
        if (!tr) {
            exp_say(r, "cannot start training: %s", cbrnn_strerror(err));
            break;
        }
        for (int i = 0; i < n && !err; i++) {
            float loss = 0;
            double t0 = now_s();
            err = cbrnn_trainer_step(tr, seqs_for(s, u->variant, 0), s->n_train, &loss);
            wall += now_s() - t0;
            if (err || !isfinite(loss)) {
                exp_say(r, "%s: training failed at step %d (%s)", u->name, step + 1,
                        err ? cbrnn_strerror(err) : "non-finite loss");
                err = err ? err : CBRNN_ERR_NONFINITE;
                break;
            }
            step++;
            acc += loss;
            since++;
            if (step % o->eval_every == 0 || step == o->steps || i == n - 1) {
                err = put_row(f, u, step, pname, acc / since, wall, s, m, r);
                acc = 0;
                since = 0;
            }
        }
    }
    cbrnn_trainer_destroy(tr);
    return err;
}

/* The default unit: one trained model, saved at the end. */
static int run_trained(cbrnn_exp *e, int k, const cbrnn_exp_report *r)
{
    const exp_unit *u = &e->units[k];
    cbrnn_model *m = new_model(e, u, r);
    if (!m)
        return CBRNN_ERR_NOMEM;
    int rc = CBRNN_ERR_IO;
    FILE *f = new_curve(u, r);
    if (!f) {
        /* said */
    } else if (!(rc = put_row(f, u, 0, NULL, 0, 0, sp(e), m, r)) &&
               !(rc = train_phases(e, u, m, f, r))) {
        char msg[8704];
        predictor p = {m, NULL};
        if ((rc = cbrnn_model_save(m, u->state, msg, sizeof msg)))
            exp_say(r, "%s", msg);
        else
            rc = write_test(e, k, &p, r);
    }
    if (f && fclose(f) && !rc) {
        exp_say(r, "%s: %s", u->curve, strerror(errno));
        rc = CBRNN_ERR_IO;
    }
    cbrnn_model_destroy(m);
    return rc;
}

/* The baselines' unit: nothing trained; the curve repeats the same
 * validation numbers at every step a trained variant reports (train_loss:
 * on the training files; wall_s: the linear fit's seconds). */
static int run_baseline(cbrnn_exp *e, int k, const cbrnn_exp_report *r)
{
    const speech *s = sp(e);
    const cbrnn_exp_speech_config *o = &s->c;
    const exp_unit *u = &e->units[k];
    predictor p = {NULL, NULL};
    cbrnn_linpred *lp = NULL;
    int err = 0;
    double t0 = now_s();
    if (u->variant == V_LINEAR) {
        lp = cbrnn_linpred_create(s->F, s->F, LIN_ORDER, &err);
        for (int i = 0; lp && !err && i < s->n_train; i++)
            err = cbrnn_linpred_add(lp, &s->train[i]);
        if (lp && !err)
            err = cbrnn_linpred_solve(lp, LIN_RIDGE);
        if (err) {
            exp_say(r, "%s: linear fit failed: %s", u->name, cbrnn_strerror(err));
            cbrnn_linpred_destroy(lp);
            return err;
        }
        p.lp = lp;
    }
    double wall = now_s() - t0;
    vres tr, v;
    FILE *f = NULL;
    if ((err = score_set(s, &p, s->train, s->n_train, &tr)) ||
        (err = score_set(s, &p, s->val, s->n_val, &v))) {
        exp_say(r, "%s: evaluation failed: %s", u->name, cbrnn_strerror(err));
    } else if (!(f = new_curve(u, r))) {
        err = CBRNN_ERR_IO;
    } else {
        fprintf(f, "0,init,,%.9g,%.9g,%.9g,0\n", v.loss, v.persist, v.skill);
        for (int step = o->eval_every; step < o->steps + o->eval_every; step += o->eval_every) {
            step = step > o->steps ? o->steps : step;
            fprintf(f, "%d,%s,%.9g,%.9g,%.9g,%.9g,%.4f\n", step, variants[u->variant].phase,
                    tr.loss, v.loss, v.persist, v.skill, wall);
        }
        err = write_test(e, k, &p, r);
    }
    if (f && fclose(f) && !err) {
        exp_say(r, "%s: %s", u->curve, strerror(errno));
        err = CBRNN_ERR_IO;
    }
    cbrnn_linpred_destroy(lp);
    return err;
}

static int speech_run_unit(cbrnn_exp *e, int k, const cbrnn_exp_report *r)
{
    int last, done = 0;
    char msg[EXP_PATH + 512];
    if (read_curve(e->units[k].curve, &last, msg, sizeof msg) < 0 ||
        (last == sp(e)->c.steps && (done = test_done(e, k, msg, sizeof msg)) < 0)) {
        exp_say(r, "%s; %s not run (its files are kept)", msg, e->units[k].name);
        return CBRNN_ERR_IO;
    }
    if (done)
        return 0;
    /* A stale test result must not outlive the run that made it. */
    char path[EXP_PATH + 64];
    test_path(e, k, path, sizeof path);
    remove(path);
    const speech_variant *sv = &variants[e->units[k].variant];
    return sv->run ? sv->run(e, k, r) : run_trained(e, k, r);
}

/* Steps done; the last one counts only once the test split is scored. */
static long speech_progress(const cbrnn_exp *e, int k)
{
    int last;
    read_curve(e->units[k].curve, &last, NULL, 0);
    if (last == sp(e)->c.steps && test_done(e, k, NULL, 0) != 1)
        last--;
    return last > 0 ? last : 0;
}

/* ---- Summary ---- */

typedef struct row {
    int step;
    double loss, skill, wall;
} row;

static int load_rows(const char *path, row *rows, int max)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[512];
    int n = 0;
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        return -1;
    }
    while (n < max && fgets(line, sizeof line, f)) {
        char phase[32];
        double tl, vl, vp, sk, w;
        int step;
        /* the init row has an empty train_loss */
        if (sscanf(line, "%d,%31[^,],%lf,%lf,%lf,%lf,%lf", &step, phase, &tl, &vl, &vp, &sk, &w) == 7 ||
            sscanf(line, "%d,%31[^,],,%lf,%lf,%lf,%lf", &step, phase, &vl, &vp, &sk, &w) == 6)
            rows[n++] = (row){step, vl, sk, w};
    }
    fclose(f);
    return n;
}

/* One variant's row of the table and its entry in summary.json. */
static void summarise_variant(const cbrnn_exp *e, int v, const row *rows, const int *nr,
                              int max_rows, double goal, FILE *md, json_t *vars)
{
    int hidden;
    size_t params = variant_params(sp(e), v, &hidden);
    double fl[MAX_SEEDS], fs[MAX_SEEDS], bs[MAX_SEEDS], sg[MAX_SEEDS], wl[MAX_SEEDS];
    int n = 0, ng = 0;
    json_t *jfl = json_array(), *jfs = json_array(), *jbs = json_array(), *jsg = json_array(),
           *jw = json_array();
    for (int k = 0; k < e->n_units && n < MAX_SEEDS; k++) {
        if (e->units[k].variant != v || !exp_summary_has(e, k))
            continue;
        const row *r = rows + (size_t)k * max_rows;
        const row *lastr = &r[nr[k] - 1];
        double best = -INFINITY;
        int to_goal = -1;
        for (int i = 0; i < nr[k]; i++) {
            if (r[i].skill > best)
                best = r[i].skill;
            if (to_goal < 0 && r[i].skill >= goal)
                to_goal = r[i].step;
        }
        fl[n] = lastr->loss;
        fs[n] = lastr->skill;
        bs[n] = best;
        wl[n] = lastr->wall;
        if (to_goal >= 0)
            sg[ng++] = to_goal;
        n++;
        json_array_append_new(jfl, exp_json_num(lastr->loss));
        json_array_append_new(jfs, exp_json_num(lastr->skill));
        json_array_append_new(jbs, exp_json_num(best));
        json_array_append_new(jsg, to_goal >= 0 ? json_integer(to_goal) : json_null());
        json_array_append_new(jw, exp_json_num(lastr->wall));
    }
    json_t *jv = json_object();
    json_object_set_new(jv, "kind", json_string(is_baseline(v) ? "baseline" : "trained"));
    json_object_set_new(jv, "params", json_integer((json_int_t)params));
    json_object_set_new(jv, "hidden", json_integer(hidden));
    json_object_set_new(jv, "final_val_loss", jfl);
    json_object_set_new(jv, "final_skill", jfs);
    json_object_set_new(jv, "best_skill", jbs);
    json_object_set_new(jv, "steps_to_goal", jsg);
    json_object_set_new(jv, "wall_s", jw);
    json_object_set_new(vars, variants[v].name, jv);
    if (n == 0) { /* a partial summary without this variant */
        fprintf(md, "| %s | %zu | no finished run | | | | |\n", variants[v].name, params);
        return;
    }
    double m1, s1, m2, s2, m3, s3, m4, s4, m5, s5;
    exp_mean_sd(fl, n, &m1, &s1);
    exp_mean_sd(fs, n, &m2, &s2);
    exp_mean_sd(bs, n, &m3, &s3);
    exp_mean_sd(sg, ng, &m4, &s4);
    exp_mean_sd(wl, n, &m5, &s5);
    char goal_txt[64];
    if (ng == 0)
        snprintf(goal_txt, sizeof goal_txt, "not reached");
    else
        snprintf(goal_txt, sizeof goal_txt, "%.0f (%.0f)%s", m4, s4, ng < n ? " (some)" : "");
    fprintf(md, "| %s | %zu | %.4f (%.4f) | %.4f (%.4f) | %.4f (%.4f) | %s | %.1f (%.1f) |\n",
            variants[v].name, params, m1, s1, m2, s2, m3, s3, goal_txt,
            m5, s5);
}

/* The row of group in unit k's test file; 0 if found. */
static int load_test(const cbrnn_exp *e, int k, const char *group, vres *v, int *files)
{
    char path[EXP_PATH + 64], line[512];
    test_path(e, k, path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int found = -1;
    size_t gl = strlen(group);
    while (found && fgets(line, sizeof line, f)) {
        long count;
        if (!strncmp(line, group, gl) && line[gl] == ',' &&
            sscanf(line + gl + 1, "%d,%ld,%lf,%lf,%lf", files, &count, &v->loss, &v->persist,
                   &v->skill) == 5)
            found = 0;
    }
    fclose(f);
    return found;
}

/* The test split's table (summary.md) and each variant's "test" entry:
 * per group and pooled, per seed, the final loss, persistence and skill. */
static void summarise_test(const cbrnn_exp *e, FILE *md, json_t *vars)
{
    const speech *s = sp(e);
    const cbrnn_exp_speech_config *o = &s->c;
    fprintf(md, "\n## Test split: %d file%s no run trained or validated on\n\n"
                "Final models (baselines: as fitted), scored once. Mean (sample sd) over "
                "seeds.\n\n| variant | group | files | loss | persistence loss | skill |\n"
                "|---|---|---:|---:|---:|---:|\n",
            s->n_test, s->n_test == 1 ? "" : "s");
    for (int vi = 0; vi < o->n_variants; vi++) {
        int v = o->variants[vi];
        json_t *jt = json_object();
        for (int g = 0; g <= s->n_groups; g++) {
            const char *name = g < s->n_groups ? s->groups[g] : "pooled";
            double l[MAX_SEEDS], pe[MAX_SEEDS], sk[MAX_SEEDS];
            int n = 0, files = 0;
            json_t *jl = json_array(), *jp = json_array(), *js = json_array();
            for (int k = 0; k < e->n_units && n < MAX_SEEDS; k++) {
                vres r;
                if (e->units[k].variant != v || !exp_summary_has(e, k) ||
                    load_test(e, k, name, &r, &files))
                    continue;
                l[n] = r.loss;
                pe[n] = r.persist;
                sk[n++] = r.skill;
                json_array_append_new(jl, exp_json_num(r.loss));
                json_array_append_new(jp, exp_json_num(r.persist));
                json_array_append_new(js, exp_json_num(r.skill));
            }
            json_t *jg = json_object();
            json_object_set_new(jg, "files", json_integer(files));
            json_object_set_new(jg, "loss", jl);
            json_object_set_new(jg, "persistence_loss", jp);
            json_object_set_new(jg, "skill", js);
            json_object_set_new(jt, name, jg);
            if (!n)
                continue;
            double m1, s1, m2, s2, m3, s3;
            exp_mean_sd(l, n, &m1, &s1);
            exp_mean_sd(pe, n, &m2, &s2);
            exp_mean_sd(sk, n, &m3, &s3);
            fprintf(md, "| %s | %s | %d | %.4f (%.4f) | %.4f (%.4f) | %.4f (%.4f) |\n",
                    variants[v].name, name, files, m1, s1, m2, s2, m3, s3);
        }
        json_object_set_new(json_object_get(vars, variants[v].name), "test", jt);
    }
}

static int speech_summarise(cbrnn_exp *e, char *msg, size_t msglen)
{
    const speech *s = sp(e);
    const cbrnn_exp_speech_config *o = &s->c;
    int n_units = e->n_units;
    int max_rows = o->steps / o->eval_every + 4;
    row *rows = malloc((size_t)n_units * max_rows * sizeof *rows);
    int *nr = calloc((size_t)n_units, sizeof *nr);
    int rc = CBRNN_ERR_IO;
    if (!rows || !nr) {
        rc = exp_fail(msg, msglen, CBRNN_ERR_NOMEM, "out of memory");
        goto out;
    }
    double best_final = -INFINITY;
    for (int k = 0; k < n_units; k++) {
        if (!exp_summary_has(e, k))
            continue;
        nr[k] = load_rows(e->units[k].curve, rows + (size_t)k * max_rows, max_rows);
        if (nr[k] < 2) {
            rc = exp_fail(msg, msglen, CBRNN_ERR_IO, "%s: no curve to summarise",
                          e->units[k].curve);
            goto out;
        }
        double fs = rows[(size_t)k * max_rows + nr[k] - 1].skill;
        if (fs > best_final)
            best_final = fs;
    }
    /* Steps to 90% of the best final skill of any run of the comparison. */
    double goal = 0.9 * best_final;
    json_t *root = json_object();
    json_object_set_new(root, "task", json_string("speech"));
    json_object_set_new(root, "corpus", json_string(s->corpus));
    json_object_set_new(root, "steps", json_integer(o->steps));
    json_object_set_new(root, "warmup_steps", json_integer(o->warmup));
    json_object_set_new(root, "train_files", json_integer(s->n_train));
    json_object_set_new(root, "val_files", json_integer(s->n_val));
    json_object_set_new(root, "test_files", json_integer(s->n_test));
    json_object_set_new(root, "linear_order", json_integer(LIN_ORDER));
    json_object_set_new(root, "skill_goal", exp_json_num(goal));
    json_t *vars = json_object();
    json_object_set_new(root, "variants", vars);
    exp_summary sum;
    FILE *md = exp_summary_open(e, &sum, msg, msglen);
    if (!md) {
        json_decref(root);
        goto out;
    }
    fprintf(md, "# speech: next-frame prediction, %d seed%s x %d steps\n\n", o->seeds,
            o->seeds == 1 ? "" : "s", o->steps);
    fprintf(md, "Corpus %s: %d training, %d validation files. Mean (sample sd) over seeds. "
                "Skill = 1 - MSE / persistence MSE on the validation files. Steps to goal: first "
                "validation at skill >= %.4f (90%% of the best final skill here). Wall: training "
                "seconds on this machine (shared, so indicative only). persistence and linear "
                "are baselines, not trained: their curves are flat; linear's params are its "
                "least-squares coefficients (last %d frames and a bias, fitted once on the "
                "training files; wall: the fit), persistence has none.\n\n",
            s->corpus, s->n_train, s->n_val, goal, LIN_ORDER);
    exp_summary_partial(e, md, root);
    fprintf(md, "| variant | params | final val loss | final skill | best skill | steps to goal "
                "| wall s |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for (int vi = 0; vi < o->n_variants; vi++)
        summarise_variant(e, o->variants[vi], rows, nr, max_rows, goal, md, vars);
    if (s->n_test)
        summarise_test(e, md, vars);
    rc = exp_summary_close(e, &sum, root, msg, msglen);
out:
    free(rows);
    free(nr);
    return rc;
}

/* ---- The comparison ---- */

static void speech_destroy(cbrnn_exp *e)
{
    speech *s = e->kind;
    if (!s)
        return;
    free(s->corpus);
    free(s->x);
    free(s->train);
    free(s->val);
    free(s->test);
    free(s->test_group);
    for (int g = 0; g < s->n_groups; g++)
        free(s->groups[g]);
    free(s->zs);
    free(s->train_r);
    free(s->val_r);
    free(s->test_r);
    free(s->mean);
    free(s->std);
    free(s);
}

/* No confirmed: a partial speech unit restarts from step 0 (no checkpoint
 * to hold its curve to). */
static const exp_ops speech_ops = {speech_run_unit, speech_progress, speech_summarise,
                                   speech_destroy, NULL};

void cbrnn_exp_speech_config_default(cbrnn_exp_speech_config *c)
{
    *c = (cbrnn_exp_speech_config){.n_variants = N_VARIANTS, .seeds = 2, .steps = 1500,
                                   .warmup = 300, .eval_every = 100, .hidden = 128, .n_cb = 1,
                                   .cb = {256}, .batch = 16, .seq_len = 100, .lr = 1e-3,
                                   .clip = 1.0, .radius = 0.9, .corpus = "", .out_dir = NULL};
    for (int v = 0; v < N_VARIANTS; v++)
        c->variants[v] = v;
}

/* The settings the results depend on; a rerun into the same folder must agree. */
static char *settings_text(const cbrnn_exp_speech_config *o, const cbrnn_exp_speech_file *files,
                           int n_files)
{
    size_t len = 2048;
    for (int i = 0; i < n_files; i++)
        len += strlen(files[i].path) + (files[i].group ? strlen(files[i].group) : 0) + 16;
    char *want = malloc(len);
    if (!want)
        return NULL;
    size_t l = (size_t)snprintf(want, len, "task speech\nsteps %d\nwarmup %d\neval_every %d\nhidden %d\ncb",
                     o->steps, o->warmup, o->eval_every, o->hidden);
    for (int i = 0; i < o->n_cb; i++)
        l += (size_t)snprintf(want + l, len - l, " %d", o->cb[i]);
    l += (size_t)snprintf(want + l, len - l,
                  "\nbatch %d\nseq_len %d\nlr %g\nclip %g\nradius %g\nfiles", o->batch, o->seq_len,
                  o->lr, o->clip, o->radius);
    for (int i = 0; i < n_files; i++) {
        const char *g = files[i].test && files[i].group ? files[i].group : NULL;
        l += (size_t)snprintf(want + l, len - l, " %s%s%s%s%s", files[i].val ? "val:" : "",
                      files[i].test ? "test:" : "", g ? g : "", g ? ":" : "", files[i].path);
    }
    snprintf(want + l, len - l, "\n");
    return want;
}

static int check_config(const cbrnn_exp_speech_config *c, int n_files, int F, char *msg,
                        size_t msglen)
{
    if (!c)
        return exp_fail(msg, msglen, CBRNN_ERR_ARG, "no configuration");
    if (c->n_variants < 1 || c->n_variants > N_VARIANTS)
        return exp_fail(msg, msglen, CBRNN_ERR_ARG, "%d variants", c->n_variants);
    for (int i = 0; i < c->n_variants; i++) {
        if (c->variants[i] < 0 || c->variants[i] >= N_VARIANTS)
            return exp_fail(msg, msglen, CBRNN_ERR_ARG, "unknown variant %d", c->variants[i]);
        for (int j = 0; j < i; j++)
            if (c->variants[j] == c->variants[i])
                return exp_fail(msg, msglen, CBRNN_ERR_ARG, "variant %s given twice",
                                variants[c->variants[i]].name);
    }
    if (c->seeds < 1 || c->seeds > MAX_SEEDS || c->steps < 1 || c->warmup < 0 ||
        c->eval_every < 1 || c->hidden < 1 || c->n_cb < 1 || c->n_cb > CBRNN_MAX_CB_HIDDEN ||
        c->batch < 1 || c->seq_len < 1 || !(c->lr > 0) || !(c->clip >= 0) || !(c->radius > 0))
        return exp_fail(msg, msglen, CBRNN_ERR_ARG, "speech settings out of range");
    if (n_files < 2 || F < 1)
        return exp_fail(msg, msglen, CBRNN_ERR_ARG, "need at least two files");
    return 0;
}

/* Puts "other" after the named groups, the rest in byte order. */
static int cmp_group(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    int ox = !strcmp(x, "other"), oy = !strcmp(y, "other");
    return ox != oy ? ox - oy : strcmp(x, y);
}

/* The test split's groups, sorted, and each test file's. */
static int find_groups(speech *s, const cbrnn_exp_speech_file *files, int n_files, char *msg,
                       size_t msglen)
{
    for (int k = 0; k < n_files; k++) {
        const char *g = files[k].test ? files[k].group : NULL;
        int have = 0;
        for (int i = 0; g && i < s->n_groups && !have; i++)
            have = !strcmp(s->groups[i], g);
        if (!g || have)
            continue;
        if (!*g || !strcmp(g, "pooled") || strpbrk(g, ",\n"))
            return exp_fail(msg, msglen, CBRNN_ERR_ARG, "%s: bad group name '%s'",
                            files[k].path, g);
        if (s->n_groups == MAX_GROUPS)
            return exp_fail(msg, msglen, CBRNN_ERR_ARG, "more than %d groups in the test split",
                            MAX_GROUPS);
        if (!(s->groups[s->n_groups++] = strdup(g)))
            return exp_fail(msg, msglen, CBRNN_ERR_NOMEM, "out of memory");
    }
    qsort(s->groups, (size_t)s->n_groups, sizeof *s->groups, cmp_group);
    for (int k = 0, t = 0; k < n_files; k++) {
        if (!files[k].test)
            continue;
        s->test_group[t] = -1;
        for (int i = 0; files[k].group && i < s->n_groups; i++)
            if (!strcmp(s->groups[i], files[k].group))
                s->test_group[t] = i;
        t++;
    }
    return 0;
}

/* For the residual variants: every file's running-normaliser input z and
 * scale s (a model's own stream_seq, from the file's start), and the
 * sequences that read them. Only when a chosen variant needs them. */
static int stream_features(speech *s, size_t total)
{
    int need = 0;
    for (int i = 0; i < s->c.n_variants; i++)
        need |= variants[s->c.variants[i]].residual;
    if (!need)
        return 0;
    int rv = 0;
    while (!variants[rv].residual)
        rv++;
    cbrnn_model_config mc;
    model_config(s, rv, &mc);
    int err = 0;
    cbrnn_model *m = cbrnn_model_create(&mc, &err);
    s->zs = malloc(2 * total * sizeof *s->zs);
    s->train_r = calloc((size_t)s->n_train + 1, sizeof *s->train_r);
    s->val_r = calloc((size_t)s->n_val + 1, sizeof *s->val_r);
    s->test_r = calloc((size_t)s->n_test + 1, sizeof *s->test_r);
    if (!m || !s->zs || !s->train_r || !s->val_r || !s->test_r) {
        cbrnn_model_destroy(m);
        return CBRNN_ERR_NOMEM;
    }
    m->feat = s->fc;
    m->stream_norm_s = RES_STREAM_S;
    m->stream_norm_floor = CBRNN_STREAM_NORM_FLOOR;
    float *z = s->zs;
    for (int w = 0; w < 3 && !err; w++) {
        const cbrnn_seq *q = w == 0 ? s->train : w == 1 ? s->val : s->test;
        cbrnn_seq *r = w == 0 ? s->train_r : w == 1 ? s->val_r : s->test_r;
        int n = w == 0 ? s->n_train : w == 1 ? s->n_val : s->n_test;
        for (int i = 0; i < n && !err; i++) {
            size_t T = (size_t)q[i].T + 1; /* the file's frames */
            err = cbrnn_model_stream_seq(m, q[i].x, z, z + T * s->F, (long)T);
            r[i] = q[i];
            r[i].x = z;
            r[i].base = q[i].x;
            r[i].scale = z + T * s->F;
            z += 2 * T * s->F;
        }
    }
    cbrnn_model_destroy(m);
    return err;
}

/* Copies the features, normalised with the training files' statistics. */
static int load_features(speech *s, const cbrnn_exp_speech_file *files, int n_files, char *msg,
                         size_t msglen)
{
    size_t total = 0;
    for (int k = 0; k < n_files; k++) {
        if (files[k].T < 3)
            return exp_fail(msg, msglen, CBRNN_ERR_ARG,
                            "%s: only %d feature frames; at least 3 needed", files[k].path,
                            files[k].T);
        if (files[k].val && files[k].test)
            return exp_fail(msg, msglen, CBRNN_ERR_ARG, "%s: in the validation and the test split",
                            files[k].path);
        total += (size_t)files[k].T * (size_t)s->F;
        files[k].test ? s->n_test++ : files[k].val ? s->n_val++ : s->n_train++;
    }
    if (s->n_train == 0 || s->n_val == 0)
        return exp_fail(msg, msglen, CBRNN_ERR_ARG,
                        "need at least one training and one validation file (corpus has "
                        "%d files, %d held out); give more files or --val-files",
                        n_files, s->n_val + s->n_test);
    cbrnn_stats st = {0, 0, NULL, NULL};
    s->x = malloc(total * sizeof *s->x);
    s->mean = malloc((size_t)s->F * sizeof *s->mean);
    s->std = malloc((size_t)s->F * sizeof *s->std);
    s->train = calloc((size_t)n_files, sizeof *s->train);
    s->val = calloc((size_t)n_files, sizeof *s->val);
    s->test = calloc((size_t)n_files, sizeof *s->test);
    s->test_group = calloc((size_t)n_files, sizeof *s->test_group);
    if (!s->x || !s->mean || !s->std || !s->train || !s->val || !s->test || !s->test_group ||
        cbrnn_stats_init(&st, s->F))
        return exp_fail(msg, msglen, CBRNN_ERR_NOMEM, "out of memory");
    int rc = find_groups(s, files, n_files, msg, msglen);
    if (rc) {
        cbrnn_stats_free(&st);
        return rc;
    }
    for (int k = 0; k < n_files; k++)
        for (int t = 0; !files[k].val && !files[k].test && t < files[k].T; t++)
            cbrnn_stats_add(&st, files[k].x + (size_t)t * s->F);
    cbrnn_stats_result(&st, s->mean, s->std, STD_FLOOR);
    cbrnn_stats_free(&st);
    int varying;
    if (cbrnn_std_degenerate(s->std, s->F, STD_FLOOR, &varying)) /* as cbrnn train refuses */
        return exp_fail(msg, msglen, CBRNN_ERR_ARG, "the training files: nothing to learn from: "
                        "%d of the %d feature bands vary (at least 1 in %d must): digital "
                        "silence?", varying, s->F, CBRNN_STD_DEGENERATE_SHARE);
    s->n_train = s->n_val = s->n_test = 0;
    float *x = s->x;
    for (int k = 0; k < n_files; k++) {
        size_t n = (size_t)files[k].T * s->F;
        for (size_t i = 0; i < n; i++)
            x[i] = (files[k].x[i] - s->mean[i % s->F]) / s->std[i % s->F];
        cbrnn_seq q = {.x = x, .y = x + s->F, .labels = NULL, .T = files[k].T - 1};
        if (files[k].test)
            s->test[s->n_test++] = q;
        else if (files[k].val)
            s->val[s->n_val++] = q;
        else
            s->train[s->n_train++] = q;
        x += n;
    }
    if (stream_features(s, total))
        return exp_fail(msg, msglen, CBRNN_ERR_NOMEM, "out of memory");
    return 0;
}

cbrnn_exp *cbrnn_exp_speech_create(const cbrnn_exp_speech_config *c,
                                   const cbrnn_exp_speech_file *files, int n_files, int F,
                                   const cbrnn_feat_config *fc, int *err, char *msg,
                                   size_t msglen)
{
    int rc = check_config(c, n_files, F, msg, msglen);
    for (int i = 0; !rc && i < n_files; i++)
        if (!files || !files[i].path || !files[i].x || files[i].T < 1)
            rc = exp_fail(msg, msglen, CBRNN_ERR_ARG, "file %d has no frames", i);
    if (!rc && (!fc || cbrnn_feat_config_dim(fc) != F))
        rc = exp_fail(msg, msglen, CBRNN_ERR_ARG, "%d features a frame, but the feature "
                      "settings give %d", F, fc ? cbrnn_feat_config_dim(fc) : 0);
    cbrnn_exp *e = NULL;
    if (!rc) {
        e = calloc(1, sizeof *e);
        speech *s = calloc(1, sizeof *s);
        if (e)
            e->kind = s;
        if (!e || !s) {
            free(s);
            rc = exp_fail(msg, msglen, CBRNN_ERR_NOMEM, "out of memory");
            goto out;
        }
        e->ops = &speech_ops;
        s->c = *c;
        s->F = F;
        s->n_files = n_files;
        s->fc = *fc;
        s->corpus = strdup(c->corpus ? c->corpus : "");
        e->settings = settings_text(c, files, n_files);
        e->work_per_unit = c->steps;
        if (!s->corpus || !e->settings) {
            rc = exp_fail(msg, msglen, CBRNN_ERR_NOMEM, "out of memory");
            goto out;
        }
        s->c.corpus = s->corpus;
        if ((rc = load_features(s, files, n_files, msg, msglen)))
            goto out;
        const char *names[N_VARIANTS];
        for (int v = 0; v < N_VARIANTS; v++)
            names[v] = variants[v].name;
        rc = exp_init(e, c->out_dir, "models", c->n_variants, c->variants, names, c->seeds,
                      ".safetensors", msg, msglen);
    }
out:
    if (rc) {
        cbrnn_exp_destroy(e);
        e = NULL;
    }
    if (err)
        *err = rc;
    return e;
}
