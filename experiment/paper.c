/* paper.c: the comparison on the paper's sequence tasks (Voce, Giannakakis
 * & Clopath 2026; protocol of issue 5, one run of it in tasks.c): its
 * units, their curves and checkpoints, and its summary.
 *
 * Resuming: each unit appends one CSV row per epoch and saves a checkpoint
 * (model, optimiser moments, random state, level, phase) every
 * checkpoint_every epochs and at its end. A unit whose curve has all
 * epochs is left alone; a partial one continues from its checkpoint
 * bit-identically (its curve is cut back to the checkpoint's epoch); a
 * partial one without a checkpoint, or with one of another configuration,
 * restarts from epoch 1. A checkpoint that cannot be read or is damaged
 * fails the unit and is kept: only the user throws training away.
 *
 * Must never: print, or write outside the results folder. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exp_internal.h"

#define MAX_SEEDS 1000

typedef struct paper {
    cbrnn_exp_paper_config c;
} paper;

static const cbrnn_exp_paper_config *cfg(const cbrnn_exp *e)
{
    return &((const paper *)e->kind)->c;
}

/* ---- Curves ---- */

static const char curve_header[] = "epoch,N,train_loss,test_accuracy,phase";

/* Reads the complete rows of a curve (a partial last line, from an
 * interrupted write, is not a row). Returns rows read (0 if absent), or -1
 * with msg saying why (the file cannot be read: its errno; or it is not a
 * curve). rows may be NULL (count only), msg too. */
static int read_curve(const char *path, cbrnn_paper_epoch *rows, int max_rows, char *msg,
                      size_t msglen)
{
    FILE *f = fopen(path, "r");
    if (!f && errno == ENOENT)
        return 0;
    if (!f)
        return exp_fail(msg, msglen, -1, "%s: cannot read: %s", path, strerror(errno));
    char line[512];
    int n = 0;
    if (!fgets(line, sizeof line, f) || strncmp(line, curve_header, strlen(curve_header))) {
        int err = ferror(f) ? errno : 0;
        fclose(f);
        if (err)
            return exp_fail(msg, msglen, -1, "%s: cannot read: %s", path, strerror(err));
        return exp_fail(msg, msglen, -1, "%s: not a curve file (header must be '%s')", path,
                        curve_header);
    }
    while (n < max_rows && fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        if (len == 0 || line[len - 1] != '\n')
            break; /* partial */
        cbrnn_paper_epoch e = {0};
        int used = 0;
        if (sscanf(line, "%d,%d,%lf,%lf,%d%n", &e.epoch, &e.N, &e.train_loss, &e.test_accuracy,
                   &e.phase, &used) != 5 || e.epoch != n + 1 || line[used] != '\n')
            break;
        if (rows)
            rows[n] = e;
        n++;
    }
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (err)
        return exp_fail(msg, msglen, -1, "%s: cannot read: %s", path, strerror(err));
    return n;
}

static int write_row(FILE *f, const cbrnn_paper_epoch *e)
{
    /* %.9g keeps float32 losses exact enough to compare runs bit for bit. */
    fprintf(f, "%d,%d,%.9g,%.6f,%d\n", e->epoch, e->N, e->train_loss, e->test_accuracy, e->phase);
    return fflush(f) == 0 ? 0 : -1;
}

typedef struct {
    const cbrnn_paper_epoch *rows;
    int n;
} curve_rows;

/* exp_fill for a curve: its header and rows. */
static int put_curve(FILE *f, void *ctx)
{
    const curve_rows *c = ctx;
    int bad = fprintf(f, "%s\n", curve_header) < 0;
    for (int i = 0; i < c->n && !bad; i++)
        bad = write_row(f, &c->rows[i]) != 0;
    return bad ? -1 : 0;
}

/* Rewrites path with its header and first n rows (exp_replace_file). */
static int cut_curve(const char *path, int n, char *msg, size_t msglen)
{
    cbrnn_paper_epoch *rows = malloc((size_t)(n > 0 ? n : 1) * sizeof *rows);
    if (!rows)
        return exp_fail(msg, msglen, CBRNN_ERR_NOMEM, "%s: out of memory", path);
    int got = read_curve(path, rows, n, msg, msglen);
    if (got < n) {
        free(rows);
        return got < 0 ? CBRNN_ERR_IO
                       : exp_fail(msg, msglen, CBRNN_ERR_FORMAT,
                                  "%s: has %d complete rows, expected at least %d", path, got, n);
    }
    curve_rows c = {rows, n};
    int rc = exp_replace_file(path, put_curve, &c, msg, msglen);
    free(rows);
    return rc;
}

/* ---- One unit ---- */

static void unit_config(const cbrnn_exp *e, const exp_unit *u, cbrnn_paper_config *c)
{
    const cbrnn_exp_paper_config *o = cfg(e);
    cbrnn_paper_config_default(c, o->task, u->variant);
    c->seed = (uint64_t)u->seed;
    c->max_n = o->max_n;
    c->train_steps = o->train_steps;
    c->test_batches = o->test_batches;
}

/* Unit u's checkpoint for configuration c. 0 with *run the checkpoint, or
 * NULL where unit u starts afresh: there is none, or it is readable but of
 * another configuration (said). Otherwise the error after a message, the
 * file left as it is: one that cannot be read (permissions, an I/O error)
 * may be fine once it can, and a damaged one is hours of training that
 * only the user may throw away. */
static int load_checkpoint(const exp_unit *u, const cbrnn_paper_config *c, cbrnn_paper_run **run,
                           const cbrnn_exp_report *r)
{
    char msg[8704];
    int err = 0;
    struct stat st;
    *run = NULL;
    if (stat(u->state, &st)) {
        if (errno == ENOENT)
            return 0;
        exp_say(r, "%s: cannot read: %s", u->state, strerror(errno));
        return CBRNN_ERR_IO;
    }
    *run = cbrnn_paper_run_load(u->state, c, &err, msg, sizeof msg);
    if (*run)
        return 0;
    if (err == CBRNN_ERR_SHAPE) {
        exp_say(r, "%s; restarting %s from epoch 1", msg, u->name);
        return 0;
    }
    if (err == CBRNN_ERR_IO || err == CBRNN_ERR_NOMEM)
        exp_say(r, "%s; %s not run (the checkpoint is kept)", msg, u->name);
    else
        exp_say(r, "%s; %s not run: the checkpoint is kept; to restart %s from epoch 1, "
                   "remove it", msg, u->name, u->name);
    return err ? err : CBRNN_ERR_IO;
}

/* The run to continue unit u with: its checkpoint if usable (the curve cut
 * back to it), else a new run and a new curve (exp_replace_file: a crash
 * leaves the old curve or the new, never a cut one). *start gets its
 * epoch. NULL after a message on failure, *rc its error. */
static cbrnn_paper_run *open_run(const cbrnn_exp *e, const exp_unit *u, const cbrnn_paper_config *c,
                                 int have, int *start, int *rc, const cbrnn_exp_report *r)
{
    char msg[8704];
    cbrnn_paper_run *run = NULL;
    int err = 0, epochs = cfg(e)->epochs;
    *start = 0;
    *rc = CBRNN_ERR_IO;
    if ((err = load_checkpoint(u, c, &run, r))) {
        *rc = err;
        return NULL;
    }
    if (run && cbrnn_paper_run_epochs(run) > have) {
        /* the curve lost rows (the checkpoint is written after them, and
         * they are synced first): neither file is ours to throw away */
        exp_say(r, "%s: holds %d epochs, %s %d; %s not run: both are kept; to restart %s "
                   "from epoch 1, remove it", u->state, cbrnn_paper_run_epochs(run), u->curve,
                have, u->name, u->name);
        cbrnn_paper_run_destroy(run);
        *rc = CBRNN_ERR_FORMAT;
        return NULL;
    }
    if (run) {
        *start = cbrnn_paper_run_epochs(run);
        if (*start >= epochs)
            *start = epochs; /* the checkpoint already covers the budget: keep its rows */
        if (cut_curve(u->curve, *start, msg, sizeof msg)) {
            exp_say(r, "%s", msg);
            cbrnn_paper_run_destroy(run);
            return NULL;
        }
        return run;
    }
    run = cbrnn_paper_run_create(c, &err);
    if (!run) {
        exp_say(r, "cannot create run %s: %s", u->name, cbrnn_strerror(err));
        return NULL;
    }
    curve_rows none = {NULL, 0};
    if (exp_replace_file(u->curve, put_curve, &none, msg, sizeof msg)) {
        exp_say(r, "%s", msg);
        cbrnn_paper_run_destroy(run);
        return NULL;
    }
    return run;
}

/* The epochs unit k's checkpoint holds (0 if it has none usable). */
static long paper_confirmed(const cbrnn_exp *e, int k)
{
    const exp_unit *u = &e->units[k];
    cbrnn_paper_config c;
    unit_config(e, u, &c);
    char msg[8704];
    int err = 0;
    cbrnn_paper_run *run = access(u->state, F_OK) == 0
                               ? cbrnn_paper_run_load(u->state, &c, &err, msg, sizeof msg)
                               : NULL;
    long n = run ? cbrnn_paper_run_epochs(run) : 0;
    cbrnn_paper_run_destroy(run);
    return n;
}

/* Runs (or resumes) unit k to the configured number of epochs. */
static int paper_run_unit(cbrnn_exp *e, int k, const cbrnn_exp_report *r)
{
    const exp_unit *u = &e->units[k];
    const cbrnn_exp_paper_config *o = cfg(e);
    char msg[8704];
    cbrnn_paper_config c;
    unit_config(e, u, &c);
    int have = read_curve(u->curve, NULL, o->epochs, msg, sizeof msg);
    if (have < 0) {
        exp_say(r, "%s", msg);
        return CBRNN_ERR_FORMAT;
    }
    if (have >= o->epochs && paper_confirmed(e, k) >= o->epochs)
        return 0; /* else resumed from the checkpoint: its curve is cut back to it */
    int start = 0, rc = 0;
    cbrnn_paper_run *run = open_run(e, u, &c, have, &start, &rc, r);
    if (!run)
        return rc;
    rc = 0;
    FILE *f = fopen(u->curve, "a");
    if (!f) {
        exp_say(r, "%s: cannot append: %s", u->curve, strerror(errno));
        cbrnn_paper_run_destroy(run);
        return CBRNN_ERR_IO;
    }
    for (int ep = start; ep < o->epochs && !rc; ep++) {
        cbrnn_paper_epoch row;
        rc = cbrnn_paper_run_epoch(run, &row);
        if (rc) {
            exp_say(r, "%s epoch %d: %s", u->name, ep + 1, cbrnn_strerror(rc));
        } else if (write_row(f, &row)) {
            exp_say(r, "%s: write failed: %s", u->curve, strerror(errno));
            rc = CBRNN_ERR_IO;
        } else if ((ep + 1) % o->checkpoint_every == 0 || ep + 1 == o->epochs) {
            /* the rows on disk before the checkpoint that counts them, so a
             * crash never leaves a checkpoint ahead of its curve */
            if (fsync(fileno(f))) {
                exp_say(r, "%s: cannot flush to disk: %s", u->curve, strerror(errno));
                rc = CBRNN_ERR_IO;
            } else if ((rc = cbrnn_paper_run_save(run, u->state, msg, sizeof msg))) {
                exp_say(r, "%s", msg);
            }
        }
    }
    if (fclose(f) && !rc) {
        exp_say(r, "%s: %s", u->curve, strerror(errno));
        rc = CBRNN_ERR_IO;
    }
    cbrnn_paper_run_destroy(run);
    return rc;
}

static long paper_progress(const cbrnn_exp *e, int k)
{
    int n = read_curve(e->units[k].curve, NULL, cfg(e)->epochs, NULL, 0);
    return n > 0 ? n : 0;
}

/* ---- Summary ---- */

/* One variant's row of the table and its entry in summary.json. */
static void summarise_variant(const cbrnn_exp *e, int v, cbrnn_paper_epoch *const *curves,
                              double half, FILE *md, json_t *vars)
{
    const cbrnn_exp_paper_config *o = cfg(e);
    cbrnn_model_config mc;
    cbrnn_paper_model_config(&mc, o->task, v);
    double maxn[MAX_SEEDS], half_e[MAX_SEEDS], auc[MAX_SEEDS], fin[MAX_SEEDS];
    int n = 0, n_half = 0;
    json_t *jm = json_array(), *jh = json_array(), *ja = json_array(), *jf = json_array(),
           *js = json_array();
    for (int k = 0; k < e->n_units; k++) {
        if (e->units[k].variant != v || !exp_summary_has(e, k))
            continue;
        const cbrnn_paper_epoch *c = curves[k];
        int mx = 0, he = -1;
        double area = 0;
        for (int ep = 0; ep < o->epochs; ep++) {
            if (c[ep].N > mx)
                mx = c[ep].N;
            if (he < 0 && c[ep].N >= half)
                he = ep + 1;
            area += c[ep].N;
        }
        maxn[n] = mx;
        auc[n] = area;
        fin[n] = c[o->epochs - 1].N;
        if (he > 0)
            half_e[n_half++] = he;
        n++;
        json_array_append_new(js, json_integer(e->units[k].seed));
        json_array_append_new(jm, json_integer(mx));
        json_array_append_new(jh, he > 0 ? json_integer(he) : json_null());
        json_array_append_new(ja, exp_json_num(area));
        json_array_append_new(jf, json_integer(c[o->epochs - 1].N));
    }
    json_t *jv = json_object();
    json_object_set_new(jv, "params", json_integer((json_int_t)cbrnn_model_config_params(&mc)));
    json_object_set_new(jv, "seeds", js);
    json_object_set_new(jv, "max_N", jm);
    json_object_set_new(jv, "epochs_to_half_max", jh);
    json_object_set_new(jv, "auc", ja);
    json_object_set_new(jv, "final_N", jf);
    json_object_set_new(vars, cbrnn_variant_name(v), jv);
    if (n == 0) { /* a partial summary without this variant */
        fprintf(md, "| %s | %zu | no finished run | | | |\n", cbrnn_variant_name(v),
                cbrnn_model_config_params(&mc));
        return;
    }
    double m1, s1, m2, s2, m3, s3, m4, s4;
    exp_mean_sd(maxn, n, &m1, &s1);
    exp_mean_sd(half_e, n_half, &m2, &s2);
    exp_mean_sd(auc, n, &m3, &s3);
    exp_mean_sd(fin, n, &m4, &s4);
    char he_txt[96];
    if (n_half == n)
        snprintf(he_txt, sizeof he_txt, "%.1f (%.1f)", m2, s2);
    else if (n_half > 0)
        snprintf(he_txt, sizeof he_txt, "%.1f (%.1f), %d of %d runs", m2, s2, n_half, n);
    else
        snprintf(he_txt, sizeof he_txt, "not reached");
    fprintf(md, "| %s | %zu | %.2f (%.2f) | %s | %.0f (%.0f) | %.2f (%.2f) |\n",
            cbrnn_variant_name(v), cbrnn_model_config_params(&mc), m1, s1, he_txt, m3, s3, m4, s4);
}

/* The table's title and notes. */
static void summary_head(const cbrnn_exp *e, double half, FILE *md, json_t *root)
{
    const cbrnn_exp_paper_config *o = cfg(e);
    fprintf(md, "# %s: %d seed%s x %d epochs%s\n\n", cbrnn_task_name(o->task), o->seeds,
            o->seeds == 1 ? "" : "s", o->epochs, o->max_n > 0 ? "" : " (no cap)");
    if (o->max_n > 0)
        fprintf(md, "Curriculum capped at N = %d.\n\n", o->max_n);
    if (o->train_steps != 100 || o->test_batches != 50)
        fprintf(md, "Not the paper's protocol: %d training steps and %d test batches per "
                    "epoch (the paper: 100 and 50).\n\n", o->train_steps, o->test_batches);
    fprintf(md, "Mean (sample sd) over seeds. Epochs to half max: first epoch at N >= %.1f "
                "(half of the highest N of any run here); runs that never got there are left "
                "out and counted. AUC: sum of N over epochs.\n\n", half);
    exp_summary_partial(e, md, root);
    fprintf(md, "| variant | params | max N | epochs to half max | AUC | final N |\n"
                "|---|---:|---:|---:|---:|---:|\n");
}

static int paper_summarise(cbrnn_exp *e, char *msg, size_t msglen)
{
    const cbrnn_exp_paper_config *o = cfg(e);
    int n_runs = e->n_units;
    cbrnn_paper_epoch **curves = calloc((size_t)n_runs, sizeof *curves);
    int rc = CBRNN_ERR_NOMEM;
    if (!curves)
        return exp_fail(msg, msglen, rc, "out of memory");
    int best = 0;
    for (int k = 0; k < n_runs; k++) {
        if (!exp_summary_has(e, k))
            continue;
        curves[k] = malloc((size_t)o->epochs * sizeof **curves);
        if (!curves[k]) {
            exp_fail(msg, msglen, rc, "out of memory");
            goto out;
        }
        int len = read_curve(e->units[k].curve, curves[k], o->epochs, msg, msglen);
        if (len < o->epochs) {
            rc = CBRNN_ERR_IO;
            if (len >= 0)
                exp_fail(msg, msglen, rc, "%s: %d of %d epochs; cannot summarise",
                         e->units[k].curve, len, o->epochs);
            goto out;
        }
        for (int ep = 0; ep < len; ep++)
            if (curves[k][ep].N > best)
                best = curves[k][ep].N;
    }
    /* Epochs to half of the highest level any run of the comparison reached. */
    const double half = 0.5 * best;
    json_t *root = json_object();
    json_object_set_new(root, "task", json_string(cbrnn_task_name(o->task)));
    json_object_set_new(root, "epochs", json_integer(o->epochs));
    json_object_set_new(root, "max_n_cap", o->max_n > 0 ? json_integer(o->max_n) : json_null());
    json_object_set_new(root, "half_max_N", exp_json_num(half));
    json_object_set_new(root, "train_steps", json_integer(o->train_steps));
    json_object_set_new(root, "test_batches", json_integer(o->test_batches));
    json_t *vars = json_object();
    json_object_set_new(root, "variants", vars);
    exp_summary sum;
    FILE *md = exp_summary_open(e, &sum, msg, msglen);
    if (!md) {
        json_decref(root);
        rc = CBRNN_ERR_IO;
        goto out;
    }
    summary_head(e, half, md, root);
    for (int vi = 0; vi < o->n_variants; vi++)
        summarise_variant(e, o->variants[vi], curves, half, md, vars);
    rc = exp_summary_close(e, &sum, root, msg, msglen);
out:
    for (int k = 0; k < n_runs; k++)
        free(curves[k]);
    free(curves);
    return rc;
}

/* ---- The comparison ---- */

static void paper_destroy(cbrnn_exp *e) { free(e->kind); }

static const exp_ops paper_ops = {paper_run_unit, paper_progress, paper_summarise, paper_destroy,
                                  paper_confirmed};

void cbrnn_exp_paper_config_default(cbrnn_exp_paper_config *c, int task)
{
    *c = (cbrnn_exp_paper_config){.task = task, .n_variants = CBRNN_NVARIANTS, .seeds = 4,
                                  .epochs = 1000, .max_n = 0, .checkpoint_every = 10,
                                  .train_steps = 100, .test_batches = 50, .out_dir = NULL};
    for (int v = 0; v < CBRNN_NVARIANTS; v++)
        c->variants[v] = v;
}

static int check_config(const cbrnn_exp_paper_config *c, char *msg, size_t msglen)
{
    if (!c)
        return exp_fail(msg, msglen, CBRNN_ERR_ARG, "no configuration");
    if (c->task < 0 || c->task >= CBRNN_NTASKS)
        return exp_fail(msg, msglen, CBRNN_ERR_ARG, "unknown task %d", c->task);
    if (c->n_variants < 1 || c->n_variants > CBRNN_NVARIANTS)
        return exp_fail(msg, msglen, CBRNN_ERR_ARG, "%d variants", c->n_variants);
    for (int i = 0; i < c->n_variants; i++) {
        if (c->variants[i] < 0 || c->variants[i] >= CBRNN_NVARIANTS)
            return exp_fail(msg, msglen, CBRNN_ERR_ARG, "unknown variant %d", c->variants[i]);
        for (int j = 0; j < i; j++)
            if (c->variants[j] == c->variants[i])
                return exp_fail(msg, msglen, CBRNN_ERR_ARG, "variant %s given twice",
                                cbrnn_variant_name(c->variants[i]));
    }
    if (c->seeds < 1 || c->seeds > MAX_SEEDS || c->epochs < 1 || c->checkpoint_every < 1 ||
        c->train_steps < 1 || c->test_batches < 1 || (c->max_n > 0 && c->max_n < 2))
        return exp_fail(msg, msglen, CBRNN_ERR_ARG,
                        "seeds 1..%d, epochs, checkpoint interval, training steps and test "
                        "batches >= 1, cap 0 or >= 2", MAX_SEEDS);
    return 0;
}

cbrnn_exp *cbrnn_exp_paper_create(const cbrnn_exp_paper_config *c, int *err, char *msg,
                                  size_t msglen)
{
    int rc = check_config(c, msg, msglen);
    cbrnn_exp *e = NULL;
    if (!rc) {
        e = calloc(1, sizeof *e);
        paper *p = calloc(1, sizeof *p);
        char *settings = malloc(256);
        if (!e || !p || !settings) {
            free(e);
            free(p);
            free(settings);
            e = NULL;
            rc = exp_fail(msg, msglen, CBRNN_ERR_NOMEM, "out of memory");
        } else {
            p->c = *c;
            e->ops = &paper_ops;
            e->kind = p;
            e->work_per_unit = c->epochs;
            /* The settings the results depend on; a rerun into the folder must agree. */
            snprintf(settings, 256,
                     "task %s\nmax_n %d\ntrain_steps %d\ntest_batches %d\nprotocol issue-5 v1\n",
                     cbrnn_task_name(c->task), c->max_n, c->train_steps, c->test_batches);
            e->settings = settings;
            const char *names[CBRNN_NVARIANTS];
            for (int v = 0; v < CBRNN_NVARIANTS; v++)
                names[v] = cbrnn_variant_name(v);
            rc = exp_init(e, c->out_dir, "checkpoints", c->n_variants, c->variants, names,
                          c->seeds, ".ckpt", msg, msglen);
            if (rc) {
                cbrnn_exp_destroy(e);
                e = NULL;
            }
        }
    }
    if (err)
        *err = rc;
    return e;
}
