/* speech.c: the speech comparison (cbrnn_exp_speech_create): the paper's
 * comparison carried over to audio. Next-frame prediction of normalised
 * log-mel frames (the readout wiring, the project's live use) on a corpus
 * whose features the host computed with the live front end, validation
 * held out by file. Curves of validation loss and skill (1 - MSE /
 * persistence MSE) against training steps and training wall-clock.
 *
 * The variants are the table `variants` below: a name, a line of help, the
 * model it trains and its phases. A variant that is not one trained model
 * (a baseline computed in closed form, say) gives its own `run`, which
 * must write the same curve columns and may leave the model file out.
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
#include <time.h>

#include "exp_internal.h"

/* A feature's std floor: digital silence sits at log(1e-6) in every band;
 * 1e-3 is far below speech's 1-3 nat spread (as cbrnn train). */
#define STD_FLOOR 1e-3f
#define MAX_SEEDS 1000

typedef struct speech {
    cbrnn_exp_speech_config c;
    char *corpus;                /* c.corpus, owned */
    int F, n_files, n_train, n_val;
    float *x;                    /* every file's normalised features, one block */
    cbrnn_seq *train, *val;
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
    /* NULL: train the model; else the variant's own unit. */
    int (*run)(cbrnn_exp *e, int k, const cbrnn_exp_report *r);
} speech_variant;

static const speech_variant variants[] = {
    {"cbrnn", "warm-up with everything trained, then the cortex frozen", CBRNN_ARCH_CBRNN, 1,
     NULL, NULL},
    {"cbrnn-full", "everything trained throughout", CBRNN_ARCH_CBRNN, 0, "all", NULL},
    {"rnn", "no cerebellum, linear readout, parameter-matched cortex", CBRNN_ARCH_RNN, 0, "all",
     NULL},
    {"reservoir", "random frozen cortex (spectral radius), cerebellum readout",
     CBRNN_ARCH_RESERVOIR, 0, "frozen", NULL},
};
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

static int validate(const speech *s, const cbrnn_model *m, vres *r)
{
    cbrnn_eval_sums sums = {0, 0, 0, 0};
    for (int i = 0; i < s->n_val; i++) {
        int e = cbrnn_eval_seq(m, &s->val[i], NULL, &sums);
        if (e)
            return e;
    }
    r->loss = sums.count ? sums.loss / (double)sums.count : NAN;
    r->persist = sums.count ? sums.persist / (double)sums.count : NAN;
    r->skill = sums.persist > 0 ? 1.0 - sums.loss / sums.persist : NAN;
    return 0;
}

/* Complete rows of a speech curve; *last_step gets the last row's step. */
static int read_curve(const char *path, int *last_step)
{
    FILE *f = fopen(path, "r");
    *last_step = -1;
    if (!f)
        return 0;
    char line[512];
    int n = 0;
    if (!fgets(line, sizeof line, f) || strncmp(line, curve_header, strlen(curve_header))) {
        fclose(f);
        return 0;
    }
    while (fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        int step;
        if (!len || line[len - 1] != '\n' || sscanf(line, "%d,", &step) != 1)
            break;
        *last_step = step;
        n++;
    }
    fclose(f);
    return n;
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
    int err = validate(s, m, &v);
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
            err = cbrnn_trainer_step(tr, s->train, s->n_train, &loss);
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
    FILE *f = fopen(u->curve, "w");
    if (!f || fprintf(f, "%s\n", curve_header) < 0) {
        exp_say(r, "%s: cannot write: %s", u->curve, strerror(errno));
    } else if (!(rc = put_row(f, u, 0, NULL, 0, 0, sp(e), m, r)) &&
               !(rc = train_phases(e, u, m, f, r))) {
        char msg[8704];
        if ((rc = cbrnn_model_save(m, u->state, msg, sizeof msg)))
            exp_say(r, "%s", msg);
    }
    if (f && fclose(f) && !rc) {
        exp_say(r, "%s: %s", u->curve, strerror(errno));
        rc = CBRNN_ERR_IO;
    }
    cbrnn_model_destroy(m);
    return rc;
}

static int speech_run_unit(cbrnn_exp *e, int k, const cbrnn_exp_report *r)
{
    int last;
    read_curve(e->units[k].curve, &last);
    if (last == sp(e)->c.steps)
        return 0;
    const speech_variant *sv = &variants[e->units[k].variant];
    return sv->run ? sv->run(e, k, r) : run_trained(e, k, r);
}

static long speech_progress(const cbrnn_exp *e, int k)
{
    int last;
    read_curve(e->units[k].curve, &last);
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
    cbrnn_model_config mc;
    model_config(sp(e), v, &mc);
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
        json_array_append_new(jfl, json_real(lastr->loss));
        json_array_append_new(jfs, json_real(lastr->skill));
        json_array_append_new(jbs, json_real(best));
        json_array_append_new(jsg, to_goal >= 0 ? json_integer(to_goal) : json_null());
        json_array_append_new(jw, json_real(lastr->wall));
    }
    json_t *jv = json_object();
    json_object_set_new(jv, "params", json_integer((json_int_t)cbrnn_model_config_params(&mc)));
    json_object_set_new(jv, "hidden", json_integer(mc.n_hidden));
    json_object_set_new(jv, "final_val_loss", jfl);
    json_object_set_new(jv, "final_skill", jfs);
    json_object_set_new(jv, "best_skill", jbs);
    json_object_set_new(jv, "steps_to_goal", jsg);
    json_object_set_new(jv, "wall_s", jw);
    json_object_set_new(vars, variants[v].name, jv);
    if (n == 0) { /* a partial summary without this variant */
        fprintf(md, "| %s | %zu | no finished run | | | | |\n", variants[v].name,
                cbrnn_model_config_params(&mc));
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
            variants[v].name, cbrnn_model_config_params(&mc), m1, s1, m2, s2, m3, s3, goal_txt,
            m5, s5);
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
    json_object_set_new(root, "skill_goal", json_real(goal));
    json_t *vars = json_object();
    json_object_set_new(root, "variants", vars);
    FILE *md = exp_summary_open(e, msg, msglen);
    if (!md) {
        json_decref(root);
        goto out;
    }
    fprintf(md, "# speech: next-frame prediction, %d seed%s x %d steps\n\n", o->seeds,
            o->seeds == 1 ? "" : "s", o->steps);
    fprintf(md, "Corpus %s: %d training, %d validation files. Mean (sample sd) over seeds. "
                "Skill = 1 - MSE / persistence MSE on the validation files. Steps to goal: first "
                "validation at skill >= %.4f (90%% of the best final skill here). Wall: training "
                "seconds on this machine (shared, so indicative only).\n\n",
            s->corpus, s->n_train, s->n_val, goal);
    exp_summary_partial(e, md, root);
    fprintf(md, "| variant | params | final val loss | final skill | best skill | steps to goal "
                "| wall s |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for (int vi = 0; vi < o->n_variants; vi++)
        summarise_variant(e, o->variants[vi], rows, nr, max_rows, goal, md, vars);
    rc = exp_summary_close(e, md, root, msg, msglen);
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
    free(s->mean);
    free(s->std);
    free(s);
}

static const exp_ops speech_ops = {speech_run_unit, speech_progress, speech_summarise,
                                   speech_destroy};

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
    char *want = malloc(len);
    if (!want)
        return NULL;
    int l = snprintf(want, len, "task speech\nsteps %d\nwarmup %d\neval_every %d\nhidden %d\ncb",
                     o->steps, o->warmup, o->eval_every, o->hidden);
    for (int i = 0; i < o->n_cb; i++)
        l += snprintf(want + l, len - (size_t)l, " %d", o->cb[i]);
    l += snprintf(want + l, len - (size_t)l,
                  "\nbatch %d\nseq_len %d\nlr %g\nclip %g\nradius %g\nfiles", o->batch, o->seq_len,
                  o->lr, o->clip, o->radius);
    for (int i = 0; i < n_files && l < (int)len - 64; i++)
        l += snprintf(want + l, len - (size_t)l, " %s%s", files[i].val ? "val:" : "",
                      files[i].path);
    snprintf(want + l, len - (size_t)l, "\n");
    return want;
}

static int check_config(const cbrnn_exp_speech_config *c, int n_files, int F, char *msg,
                        size_t msglen)
{
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
        total += (size_t)files[k].T * (size_t)s->F;
        files[k].val ? s->n_val++ : s->n_train++;
    }
    if (s->n_train == 0 || s->n_val == 0)
        return exp_fail(msg, msglen, CBRNN_ERR_ARG,
                        "need at least one training and one validation file (corpus has "
                        "%d files, %d held out); give more files or --val-files",
                        n_files, s->n_val);
    cbrnn_stats st = {0, 0, NULL, NULL};
    s->x = malloc(total * sizeof *s->x);
    s->mean = malloc((size_t)s->F * sizeof *s->mean);
    s->std = malloc((size_t)s->F * sizeof *s->std);
    s->train = calloc((size_t)n_files, sizeof *s->train);
    s->val = calloc((size_t)n_files, sizeof *s->val);
    if (!s->x || !s->mean || !s->std || !s->train || !s->val || cbrnn_stats_init(&st, s->F))
        return exp_fail(msg, msglen, CBRNN_ERR_NOMEM, "out of memory");
    for (int k = 0; k < n_files; k++)
        for (int t = 0; !files[k].val && t < files[k].T; t++)
            cbrnn_stats_add(&st, files[k].x + (size_t)t * s->F);
    cbrnn_stats_result(&st, s->mean, s->std, STD_FLOOR);
    cbrnn_stats_free(&st);
    s->n_train = s->n_val = 0;
    float *x = s->x;
    for (int k = 0; k < n_files; k++) {
        size_t n = (size_t)files[k].T * s->F;
        for (size_t i = 0; i < n; i++)
            x[i] = (files[k].x[i] - s->mean[i % s->F]) / s->std[i % s->F];
        cbrnn_seq q = {.x = x, .y = x + s->F, .labels = NULL, .T = files[k].T - 1};
        if (files[k].val)
            s->val[s->n_val++] = q;
        else
            s->train[s->n_train++] = q;
        x += n;
    }
    return 0;
}

cbrnn_exp *cbrnn_exp_speech_create(const cbrnn_exp_speech_config *c,
                                   const cbrnn_exp_speech_file *files, int n_files, int F,
                                   const cbrnn_feat_config *fc, int *err, char *msg,
                                   size_t msglen)
{
    int rc = check_config(c, n_files, F, msg, msglen);
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
