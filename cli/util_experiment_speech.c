/* util_experiment_speech.c: `cbrnn experiment --task speech`: the paper's
 * comparison carried over to audio. Next-frame prediction of normalised
 * log-mel frames (the readout wiring, the project's live use) on a corpus
 * (default samples/), for:
 *   cbrnn       cortex + cerebellum: warm-up (all trained), then the cortex
 *               frozen and only the cerebellum learning (the paper's claim);
 *   cbrnn-full  the same model, everything trained throughout;
 *   rnn         no cerebellum, linear readout, cortex sized to the cbrnn
 *               model's parameter count (cbrnn_rnn_hidden_for_params);
 *   reservoir   random cortex at a set spectral radius, frozen from the
 *               start (no warm-up), cerebellum readout.
 * Curves of validation loss and skill (1 - MSE / persistence MSE) against
 * training steps and training wall-clock. Validation files are held out by
 * file. Features are computed once, in the parent, by the same streaming
 * front end the live host uses (audio_features); workers inherit them.
 * Resuming: a run whose curve reaches the last step is skipped; a partial
 * run restarts from step 0 (speech runs are minutes, not hours).
 * Must never: normalise with validation statistics, or write outside
 * --out-dir. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cbrnn/cbrnn_model.h"
#include "util_audio.h"
#include "util_corpus.h"
#include "util_experiment.h"
#include "util_parse.h"

#define PROG "cbrnn experiment --task speech"
/* Samples per call of the front end; any size gives the same frames. */
#define FEAT_BLOCK 4096
/* A feature's std floor: digital silence sits at log(1e-6) in every band;
 * 1e-3 is far below speech's 1-3 nat spread (as cbrnn train). */
#define STD_FLOOR 1e-3f

enum { SV_CBRNN, SV_FULL, SV_RNN, SV_RES, SV_N };
static const char *const sv_names[SV_N] = {"cbrnn", "cbrnn-full", "rnn", "reservoir"};

typedef struct sp_opts {
    corpus inputs, vals;
    int n_variants, variants[SV_N];
    int seeds, steps, warmup, eval_every, jobs, figure;
    int hidden, n_cb, cb[CBRNN_MAX_CB_HIDDEN];
    int batch, seq_len;
    double lr, clip, radius;
    const char *out;
} sp_opts;

typedef struct sp_file {
    const char *path;
    int val;
    float *x; /* [T, F], normalised */
    int T;
} sp_file;

typedef struct sp_job {
    int variant, seed;
    char curve[4096], model[4096];
} sp_job;

typedef struct sp_ctx {
    const sp_opts *o;
    sp_file *files;
    int n_files, F;
    cbrnn_seq *train, *val;
    int n_train, n_val;
    const float *mean, *std;
    cbrnn_feat_config fc;
    sp_job *jobs;
} sp_ctx;

static const char curve_header[] =
    "step,phase,train_loss,val_loss,val_persistence_loss,val_skill,wall_s";

static void usage(FILE *f)
{
    fprintf(f,
        "usage: cbrnn experiment --task speech --out-dir D [options]\n"
        "\n"
        "The paper's comparison on audio: next-frame prediction of normalised log-mel\n"
        "frames (40 bands, 25 ms window, 10 ms hop) with the readout wiring, for\n"
        "  cbrnn       warm-up with everything trained, then the cortex frozen\n"
        "  cbrnn-full  everything trained throughout\n"
        "  rnn         no cerebellum, linear readout, parameter-matched cortex\n"
        "  reservoir   random frozen cortex (spectral radius), cerebellum readout\n"
        "Writes D/curves/<variant>-seed<k>.csv (%s;\n"
        "skill = 1 - MSE / MSE of predicting the current frame; wall_s = training\n"
        "seconds so far, validation excluded), D/models/<variant>-seed<k>.safetensors,\n"
        "D/summary.json, D/summary.md and D/figure.png.\n"
        "\n"
        "  --corpus INPUT      audio file, folder or @list (repeatable; default samples/)\n"
        "  --val-files INPUT   held-out files (repeatable; default every 4th file of\n"
        "                      the sorted corpus)\n"
        "  --variants LIST     default cbrnn,cbrnn-full,rnn,reservoir\n"
        "  --seeds S           default 2\n"
        "  --steps N           training steps per run (default 1500)\n"
        "  --warmup-steps W    cbrnn: steps before the cortex freezes (default 300)\n"
        "  --eval-every K      validate every K steps (default 100)\n"
        "  --hidden H          cortex units of the cbrnn models (default 128)\n"
        "  --cb W[,W..]        cerebellum widths (default 256)\n"
        "  --spectral-radius R reservoir (default 0.9)\n"
        "  --batch B --seq-len T   windows per step and frames per window (16, 100)\n"
        "  --lr X --clip C     Adam learning rate (1e-3) and gradient-norm clip (1)\n"
        "  --jobs J            runs in parallel (default: online CPUs)\n"
        "  --no-figure\n"
        "Rerunning with the same D skips finished runs and restarts unfinished ones.\n",
        curve_header);
}

static int parse_double(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, PROG ": %s '%s': expected a number in %g..%g\n", opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_iopt(const char *opt, const char *s, int lo, int hi, int *out)
{
    return experiment_parse_iopt(PROG, opt, s, lo, hi, out);
}

static int parse_variants(sp_opts *o, const char *s)
{
    return experiment_parse_names(PROG, "--variants", s, sv_names, SV_N, o->variants,
                                  &o->n_variants);
}

static int parse_cb(sp_opts *o, const char *s)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    o->n_cb = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (o->n_cb == CBRNN_MAX_CB_HIDDEN || cli_parse_int(tok, 1, 65536, &o->cb[o->n_cb])) {
            fprintf(stderr, PROG ": --cb '%s': expected 1 to %d widths W,W,... each 1..65536\n", s,
                    CBRNN_MAX_CB_HIDDEN);
            return -1;
        }
        o->n_cb++;
    }
    if (!o->n_cb) {
        fprintf(stderr, PROG ": --cb '%s': expected at least one width\n", s);
        return -1;
    }
    return 0;
}

/* The default corpus: samples/ here, else the source tree's. */
static const char *default_corpus(char *buf, size_t len)
{
    if (access("samples", R_OK) == 0)
        return "samples";
    snprintf(buf, len, "%s", __FILE__);
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(buf, '/');
        if (!slash)
            return "samples";
        *slash = 0;
    }
    size_t l = strlen(buf);
    snprintf(buf + l, len - l, "/samples");
    return buf;
}

static void model_config(const sp_ctx *c, int variant, cbrnn_model_config *mc)
{
    const sp_opts *o = c->o;
    cbrnn_model_config_default(mc);
    mc->wiring = CBRNN_WIRING_READOUT;
    mc->act = CBRNN_ACT_TANH;
    mc->alpha = 1.0f;
    mc->n_in = mc->n_out = c->F;
    mc->n_hidden = o->hidden;
    mc->n_cb_hidden = o->n_cb;
    for (int i = 0; i < o->n_cb; i++)
        mc->cb_hidden[i] = o->cb[i];
    mc->spectral_radius = (float)o->radius;
    mc->arch = CBRNN_ARCH_CBRNN;
    if (variant == SV_RES) {
        mc->arch = CBRNN_ARCH_RESERVOIR;
    } else if (variant == SV_RNN) {
        size_t target = cbrnn_model_config_params(mc);
        mc->arch = CBRNN_ARCH_RNN;
        mc->n_cb_hidden = 0;
        mc->n_hidden = cbrnn_rnn_hidden_for_params(c->F, c->F, target);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct vres {
    double loss, persist, skill;
} vres;

static int validate(const sp_ctx *c, const cbrnn_model *m, vres *r)
{
    cbrnn_eval_sums s = {0, 0, 0, 0};
    for (int i = 0; i < c->n_val; i++) {
        int e = cbrnn_eval_seq(m, &c->val[i], NULL, &s);
        if (e)
            return e;
    }
    r->loss = s.count ? s.loss / (double)s.count : NAN;
    r->persist = s.count ? s.persist / (double)s.count : NAN;
    r->skill = s.persist > 0 ? 1.0 - s.loss / s.persist : NAN;
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

static int sp_work(void *ctxp, int k)
{
    sp_ctx *c = ctxp;
    const sp_opts *o = c->o;
    const sp_job *j = &c->jobs[k];
    int last;
    read_curve(j->curve, &last);
    if (last == o->steps)
        return 0;
    cbrnn_model_config mc;
    model_config(c, j->variant, &mc);
    int err = 0, rc = 1;
    cbrnn_trainer *tr = NULL;
    FILE *f = NULL;
    cbrnn_model *m = cbrnn_model_create(&mc, &err);
    if (!m || (err = cbrnn_model_init(m, (uint64_t)j->seed))) {
        fprintf(stderr, PROG ": %s-seed%d: cannot create the model: %s\n", sv_names[j->variant],
                j->seed, cbrnn_strerror(err));
        goto out;
    }
    m->feat = c->fc;
    m->feat.ref_rate = 0; /* not part of a model */
    m->target = CBRNN_TARGET_PREDICT;
    m->horizon = 1;
    if (cbrnn_model_set_norm(m, c->mean, c->std) ||
        cbrnn_model_set_meta(m, "experiment", "speech") ||
        cbrnn_model_set_meta(m, "variant", sv_names[j->variant])) {
        fprintf(stderr, PROG ": out of memory\n");
        goto out;
    }
    f = fopen(j->curve, "w");
    if (!f || fprintf(f, "%s\n", curve_header) < 0) {
        fprintf(stderr, PROG ": %s: cannot write: %s\n", j->curve, strerror(errno));
        goto out;
    }
    vres v;
    if ((err = validate(c, m, &v))) {
        fprintf(stderr, PROG ": validation failed: %s\n", cbrnn_strerror(err));
        goto out;
    }
    fprintf(f, "0,init,,%.9g,%.9g,%.9g,0\n", v.loss, v.persist, v.skill);
    fflush(f);
    /* Phases: cbrnn warms up, then freezes the cortex; the others train
     * one way throughout (reservoir: its cortex is frozen by init). */
    int warm = j->variant == SV_CBRNN ? (o->warmup < o->steps ? o->warmup : o->steps) : 0;
    double wall = 0, acc = 0;
    int since = 0, step = 0;
    for (int phase = 0; phase < 2; phase++) {
        int n = phase == 0 ? warm : o->steps - warm;
        if (n <= 0)
            continue;
        const char *pname = j->variant == SV_CBRNN ? (phase ? "frozen" : "warmup")
                            : j->variant == SV_RES ? "frozen" : "all";
        if (j->variant == SV_CBRNN)
            m->frozen[CBRNN_GROUP_CORTEX] = phase;
        /* A fresh optimiser for a new set of trainable parameters; the
         * second phase draws other windows (seed + phase), as cbrnn train. */
        cbrnn_train_config tc = {.batch = o->batch, .seq_len = o->seq_len, .carry_state = 0,
                                 .seed = (uint64_t)j->seed + (uint64_t)phase};
        cbrnn_optim_config_default(&tc.opt, CBRNN_OPT_ADAM);
        tc.opt.lr = (float)o->lr;
        tc.opt.clip_norm = (float)o->clip;
        cbrnn_trainer_destroy(tr);
        tr = cbrnn_trainer_create(m, &tc, &err);
        if (!tr) {
            fprintf(stderr, PROG ": cannot start training: %s\n", cbrnn_strerror(err));
            goto out;
        }
        for (int s = 0; s < n; s++) {
            float loss = 0;
            double t0 = now_s();
            err = cbrnn_trainer_step(tr, c->train, c->n_train, &loss);
            wall += now_s() - t0;
            if (err || !isfinite(loss)) {
                fprintf(stderr, PROG ": %s-seed%d: training failed at step %d (%s)\n",
                        sv_names[j->variant], j->seed, step + 1,
                        err ? cbrnn_strerror(err) : "non-finite loss");
                goto out;
            }
            step++;
            acc += loss;
            since++;
            if (step % o->eval_every == 0 || step == o->steps || s == n - 1) {
                if ((err = validate(c, m, &v))) {
                    fprintf(stderr, PROG ": validation failed: %s\n", cbrnn_strerror(err));
                    goto out;
                }
                fprintf(f, "%d,%s,%.9g,%.9g,%.9g,%.9g,%.4f\n", step, pname, acc / since, v.loss,
                        v.persist, v.skill, wall);
                if (fflush(f)) {
                    fprintf(stderr, PROG ": %s: %s\n", j->curve, strerror(errno));
                    goto out;
                }
                acc = 0;
                since = 0;
            }
        }
    }
    char msg[8704];
    if (cbrnn_model_save(m, j->model, msg, sizeof msg)) {
        fprintf(stderr, PROG ": %s\n", msg);
        goto out;
    }
    rc = 0;
out:
    if (f && fclose(f) && !rc) {
        fprintf(stderr, PROG ": %s: %s\n", j->curve, strerror(errno));
        rc = 1;
    }
    cbrnn_trainer_destroy(tr);
    cbrnn_model_destroy(m);
    return rc;
}

static long sp_progress(void *ctxp, int k)
{
    sp_ctx *c = ctxp;
    int last;
    read_curve(c->jobs[k].curve, &last);
    return last > 0 ? last : 0;
}

static void sp_name(void *ctxp, int k, char *buf, size_t len)
{
    sp_ctx *c = ctxp;
    snprintf(buf, len, "%s-seed%d", sv_names[c->jobs[k].variant], c->jobs[k].seed);
}

/* ---- summary ---- */

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

static int summarise(const sp_ctx *c, int n_jobs, const char *corpus_desc)
{
    const sp_opts *o = c->o;
    int max_rows = o->steps / o->eval_every + 4;
    row *rows = malloc((size_t)n_jobs * max_rows * sizeof *rows);
    int *nr = calloc((size_t)n_jobs, sizeof *nr);
    if (!rows || !nr) {
        free(rows);
        free(nr);
        return 1;
    }
    double best_final = -INFINITY;
    for (int k = 0; k < n_jobs; k++) {
        nr[k] = load_rows(c->jobs[k].curve, rows + (size_t)k * max_rows, max_rows);
        if (nr[k] < 2) {
            fprintf(stderr, PROG ": %s: no curve to summarise\n", c->jobs[k].curve);
            free(rows);
            free(nr);
            return 1;
        }
        double fs = rows[(size_t)k * max_rows + nr[k] - 1].skill;
        if (fs > best_final)
            best_final = fs;
    }
    /* Steps to 90% of the best final skill of any run of the comparison. */
    double goal = 0.9 * best_final;
    json_t *root = json_object();
    json_object_set_new(root, "task", json_string("speech"));
    json_object_set_new(root, "corpus", json_string(corpus_desc));
    json_object_set_new(root, "steps", json_integer(o->steps));
    json_object_set_new(root, "warmup_steps", json_integer(o->warmup));
    json_object_set_new(root, "train_files", json_integer(c->n_train));
    json_object_set_new(root, "val_files", json_integer(c->n_val));
    json_object_set_new(root, "skill_goal", json_real(goal));
    json_t *vars = json_object();
    json_object_set_new(root, "variants", vars);
    FILE *md = experiment_summary_open(PROG, o->out);
    if (!md) {
        json_decref(root);
        free(rows);
        free(nr);
        return 1;
    }
    fprintf(md, "# speech: next-frame prediction, %d seed%s x %d steps\n\n", o->seeds,
            o->seeds == 1 ? "" : "s", o->steps);
    fprintf(md, "Corpus %s: %d training, %d validation files. Mean (sample sd) over seeds. "
                "Skill = 1 - MSE / persistence MSE on the validation files. Steps to goal: first "
                "validation at skill >= %.4f (90%% of the best final skill here). Wall: training "
                "seconds on this machine (shared, so indicative only).\n\n",
            corpus_desc, c->n_train, c->n_val, goal);
    fprintf(md, "| variant | params | final val loss | final skill | best skill | steps to goal "
                "| wall s |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for (int vi = 0; vi < o->n_variants; vi++) {
        int v = o->variants[vi];
        cbrnn_model_config mc;
        model_config(c, v, &mc);
        double fl[1000], fs[1000], bs[1000], sg[1000], wl[1000];
        int n = 0, ng = 0;
        json_t *jfl = json_array(), *jfs = json_array(), *jbs = json_array(), *jsg = json_array(),
               *jw = json_array();
        for (int k = 0; k < n_jobs && n < 1000; k++) {
            if (c->jobs[k].variant != v)
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
        json_object_set_new(vars, sv_names[v], jv);
        double m1, s1, m2, s2, m3, s3, m4, s4, m5, s5;
        experiment_mean_sd(fl, n, &m1, &s1);
        experiment_mean_sd(fs, n, &m2, &s2);
        experiment_mean_sd(bs, n, &m3, &s3);
        experiment_mean_sd(sg, ng, &m4, &s4);
        experiment_mean_sd(wl, n, &m5, &s5);
        char goal_txt[64];
        if (ng == 0)
            snprintf(goal_txt, sizeof goal_txt, "not reached");
        else
            snprintf(goal_txt, sizeof goal_txt, "%.0f (%.0f)%s", m4, s4, ng < n ? " (some)" : "");
        fprintf(md, "| %s | %zu | %.4f (%.4f) | %.4f (%.4f) | %.4f (%.4f) | %s | %.1f (%.1f) |\n",
                sv_names[v], cbrnn_model_config_params(&mc), m1, s1, m2, s2, m3, s3, goal_txt, m5,
                s5);
    }
    int bad = experiment_summary_close(PROG, o->out, md, root);
    free(rows);
    free(nr);
    return bad;
}

/* The settings the results depend on; a rerun into the same folder must agree. */
static void settings_text(const sp_opts *o, const sp_ctx *c, char *want, size_t len)
{
    int l = snprintf(want, len, "task speech\nsteps %d\nwarmup %d\neval_every %d\nhidden %d\ncb",
                     o->steps, o->warmup, o->eval_every, o->hidden);
    for (int i = 0; i < o->n_cb; i++)
        l += snprintf(want + l, len - (size_t)l, " %d", o->cb[i]);
    l += snprintf(want + l, len - (size_t)l,
                  "\nbatch %d\nseq_len %d\nlr %g\nclip %g\nradius %g\nfiles", o->batch, o->seq_len,
                  o->lr, o->clip, o->radius);
    for (int i = 0; i < c->n_files && l < (int)len - 64; i++)
        l += snprintf(want + l, len - (size_t)l, " %s%s", c->files[i].val ? "val:" : "",
                      c->files[i].path);
    snprintf(want + l, len - (size_t)l, "\n");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int experiment_speech(int argc, char **argv)
{
    sp_opts o = {.seeds = 2, .steps = 1500, .warmup = 300, .eval_every = 100, .jobs = 0,
                 .figure = 1, .hidden = 128, .n_cb = 1, .cb = {256}, .batch = 16,
                 .seq_len = 100, .lr = 1e-3, .clip = 1.0, .radius = 0.9, .out = NULL};
    parse_variants(&o, "cbrnn,cbrnn-full,rnn,reservoir");
    static const struct option lo[] = {
        EXPERIMENT_COMMON_OPTIONS,
        {"corpus", required_argument, 0, 'c'},      {"val-files", required_argument, 0, 'V'},
        {"steps", required_argument, 0, 'n'},       {"warmup-steps", required_argument, 0, 'w'},
        {"eval-every", required_argument, 0, 'e'},  {"hidden", required_argument, 0, 'H'},
        {"cb", required_argument, 0, 'b'},          {"spectral-radius", required_argument, 0, 'r'},
        {"batch", required_argument, 0, 'B'},       {"seq-len", required_argument, 0, 'T'},
        {"lr", required_argument, 0, 'l'},          {"clip", required_argument, 0, 'C'},
        {0, 0, 0, 0}};
    int ch, status = 2;
    char msg[8704];
    sp_ctx c = {0};
    c.o = &o;
    float *mean = NULL, *sd = NULL;
    cbrnn_stats st = {0, 0, NULL, NULL};
    const char **specs = calloc((size_t)argc + 1, sizeof *specs);
    const char **vspecs = calloc((size_t)argc + 1, sizeof *vspecs);
    int n_specs = 0, n_vspecs = 0;
    if (!specs || !vspecs) {
        free(specs);
        free(vspecs);
        return 1;
    }
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        int bad = 0;
        switch (ch) {
        case 't': break; /* speech, or we would not be here */
        case 'c': specs[n_specs++] = optarg; break;
        case 'V': vspecs[n_vspecs++] = optarg; break;
        case 'v': bad = parse_variants(&o, optarg); break;
        case 's': bad = parse_iopt("--seeds", optarg, 1, 1000, &o.seeds); break;
        case 'n': bad = parse_iopt("--steps", optarg, 1, 100000000, &o.steps); break;
        case 'w': bad = parse_iopt("--warmup-steps", optarg, 0, 100000000, &o.warmup); break;
        case 'e': bad = parse_iopt("--eval-every", optarg, 1, 100000000, &o.eval_every); break;
        case 'H': bad = parse_iopt("--hidden", optarg, 1, 65536, &o.hidden); break;
        case 'b': bad = parse_cb(&o, optarg); break;
        case 'r': bad = parse_double("--spectral-radius", optarg, 1e-6, 100, &o.radius); break;
        case 'B': bad = parse_iopt("--batch", optarg, 1, 65536, &o.batch); break;
        case 'T': bad = parse_iopt("--seq-len", optarg, 1, 1000000, &o.seq_len); break;
        case 'l': bad = parse_double("--lr", optarg, 1e-12, 10, &o.lr); break;
        case 'C': bad = parse_double("--clip", optarg, 0, 1e9, &o.clip); break;
        case 'j': bad = parse_iopt("--jobs", optarg, 1, 1024, &o.jobs); break;
        case 'o': o.out = optarg; break;
        case 'F': o.figure = 0; break;
        case 'h': usage(stdout); status = 0; goto out;
        default: usage(stderr); goto out;
        }
        if (bad)
            goto out;
    }
    if (optind < argc) {
        fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
        goto out;
    }
    if (!o.out) {
        fprintf(stderr, PROG ": --out-dir is required (see --help)\n");
        goto out;
    }
    if (o.jobs == 0)
        o.jobs = experiment_default_jobs();
    char defbuf[4096];
    if (!n_specs)
        specs[n_specs++] = default_corpus(defbuf, sizeof defbuf);
    for (int i = 0; i < n_specs; i++)
        if (corpus_add(&o.inputs, specs[i], msg, sizeof msg)) {
            fprintf(stderr, PROG ": %s\n", msg);
            goto out;
        }
    for (int i = 0; i < n_vspecs; i++)
        if (corpus_add(&o.vals, vspecs[i], msg, sizeof msg)) {
            fprintf(stderr, PROG ": --val-files: %s\n", msg);
            goto out;
        }
    /* Files in byte order, each once; validation by --val-files or every 4th. */
    qsort(o.inputs.paths, (size_t)o.inputs.n, sizeof *o.inputs.paths, cmp_str);
    c.files = calloc((size_t)(o.inputs.n + o.vals.n + 1), sizeof *c.files);
    if (!c.files) {
        status = 1;
        goto out;
    }
    for (int i = 0; i < o.inputs.n + o.vals.n; i++) {
        const char *p = i < o.inputs.n ? o.inputs.paths[i] : o.vals.paths[i - o.inputs.n];
        int dup = 0;
        for (int k = 0; k < c.n_files && !dup; k++)
            if (!strcmp(c.files[k].path, p)) {
                dup = 1;
                c.files[k].val |= i >= o.inputs.n;
            }
        if (!dup) {
            c.files[c.n_files].path = p;
            c.files[c.n_files].val = i >= o.inputs.n;
            c.n_files++;
        }
    }
    if (!o.vals.n)
        for (int k = 3; k < c.n_files; k += 4)
            c.files[k].val = 1;
    for (int k = 0; k < c.n_files; k++)
        c.files[k].val ? c.n_val++ : c.n_train++;
    if (c.n_train == 0 || c.n_val == 0) {
        fprintf(stderr, PROG ": need at least one training and one validation file (corpus has "
                             "%d files, %d held out); give more files or --val-files\n",
                c.n_files, c.n_val);
        goto out;
    }
    /* The models are trained at 16 kHz: files at other rates get their
     * features at the 16 kHz level (ref_rate), as the engine would give
     * them to these models live. */
    cbrnn_feat_config_default(&c.fc, 16000);
    c.fc.ref_rate = c.fc.sample_rate;
    for (int k = 0; k < c.n_files; k++) {
        int dim = 0;
        if (audio_features(c.files[k].path, &c.fc, 0, FEAT_BLOCK, &c.files[k].x, &c.files[k].T,
                           &dim, msg, sizeof msg)) {
            fprintf(stderr, PROG ": %s\n", msg);
            goto out;
        }
        c.F = dim;
        if (c.files[k].T < 3) {
            fprintf(stderr, PROG ": %s: only %d feature frames; at least 3 needed\n",
                    c.files[k].path, c.files[k].T);
            goto out;
        }
    }
    /* Normalise with the training files' statistics only. */
    mean = malloc((size_t)c.F * sizeof *mean);
    sd = malloc((size_t)c.F * sizeof *sd);
    c.train = calloc((size_t)c.n_files, sizeof *c.train);
    c.val = calloc((size_t)c.n_files, sizeof *c.val);
    if (!mean || !sd || !c.train || !c.val || cbrnn_stats_init(&st, c.F)) {
        status = 1;
        goto out;
    }
    for (int k = 0; k < c.n_files; k++)
        for (int t = 0; !c.files[k].val && t < c.files[k].T; t++)
            cbrnn_stats_add(&st, c.files[k].x + (size_t)t * c.F);
    cbrnn_stats_result(&st, mean, sd, STD_FLOOR);
    c.n_train = c.n_val = 0;
    for (int k = 0; k < c.n_files; k++) {
        sp_file *fl = &c.files[k];
        for (size_t i = 0; i < (size_t)fl->T * c.F; i++)
            fl->x[i] = (fl->x[i] - mean[i % c.F]) / sd[i % c.F];
        cbrnn_seq s = {.x = fl->x, .y = fl->x + c.F, .labels = NULL, .T = fl->T - 1};
        if (fl->val)
            c.val[c.n_val++] = s;
        else
            c.train[c.n_train++] = s;
    }
    c.mean = mean;
    c.std = sd;

    char settings[2048];
    settings_text(&o, &c, settings, sizeof settings);
    if ((status = experiment_prepare_dir(PROG, o.out, settings, "models")))
        goto out;
    status = 1;
    int n_jobs = o.n_variants * o.seeds;
    c.jobs = calloc((size_t)n_jobs, sizeof *c.jobs);
    if (!c.jobs)
        goto out;
    int k = 0;
    for (int s = 0; s < o.seeds; s++)
        for (int vi = 0; vi < o.n_variants; vi++, k++) {
            sp_job *j = &c.jobs[k];
            j->variant = o.variants[vi];
            j->seed = s;
            snprintf(j->curve, sizeof j->curve, "%s/curves/%s-seed%d.csv", o.out,
                     sv_names[j->variant], s);
            snprintf(j->model, sizeof j->model, "%s/models/%s-seed%d.safetensors", o.out,
                     sv_names[j->variant], s);
        }
    experiment_pool p = {.n_jobs = n_jobs, .jobs = o.jobs, .ctx = &c, .work = sp_work,
                         .progress = sp_progress, .name = sp_name,
                         .total = (long)n_jobs * o.steps};
    if (experiment_run_pool(&p))
        goto out;
    char desc[512];
    int dl = 0;
    for (int i = 0; i < n_specs && dl < (int)sizeof desc - 2; i++)
        dl += snprintf(desc + dl, sizeof desc - (size_t)dl, "%s%s", i ? "," : "", specs[i]);
    if (summarise(&c, n_jobs, desc))
        goto out;
    if (o.figure)
        experiment_figure(o.out);
    experiment_print_summary(o.out);
    status = 0;
out:
    for (int i = 0; c.files && i < c.n_files; i++)
        free(c.files[i].x);
    free(c.files);
    free(c.train);
    free(c.val);
    free(c.jobs);
    free(mean);
    free(sd);
    cbrnn_stats_free(&st);
    corpus_free(&o.inputs);
    corpus_free(&o.vals);
    free(specs);
    free(vspecs);
    return status;
}
