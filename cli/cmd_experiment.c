/* cmd_experiment.c: `cbrnn experiment`: reproduces the paper's comparison
 * (Voce, Giannakakis & Clopath 2026; protocol of issue 5, implemented in
 * model/tasks.c) on its sequence tasks, every (variant, seed) in its own
 * forked worker process, and writes per-run curves, a summary (JSON and
 * Markdown) and a figure. `--task speech` runs the comparison on audio
 * (util_experiment_speech.c).
 *
 * Resuming: each run appends one CSV row per epoch and saves a checkpoint
 * (model, optimiser moments, random state, level, phase) every
 * --checkpoint-every epochs and at its end. A run whose curve has all
 * epochs is skipped; a partial run continues from its checkpoint
 * bit-identically (its curve is cut back to the checkpoint's epoch); a
 * partial run without a usable checkpoint restarts from epoch 1.
 *
 * The worker pool (one BLAS thread per worker), option parsing, the
 * results folder and the figure are shared with the speech comparison
 * (util_experiment.c).
 *
 * Must never: write outside --out-dir. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cbrnn/cbrnn_tasks.h"
#include "util_experiment.h"

const char cmd_experiment_summary[] =
    "reproduce the paper: CB-RNN vs RNN on N-DMS, N-parity, ... or speech";

#define PROG "cbrnn experiment"
#define MAX_SEEDS 1000

static void usage(FILE *f)
{
    fprintf(f,
        "usage: cbrnn experiment --task dms|parity|multitask|switch --out-dir D\n"
        "                        [--variants cbrnn,rnn,frozen,interleaved] [--seeds S]\n"
        "                        [--epochs E] [--max-n CAP] [--jobs J] [--checkpoint-every K]\n"
        "       cbrnn experiment --task speech --out-dir D [speech options]\n"
        "\n"
        "Trains every (variant, seed) with the paper's protocol (Voce, Giannakakis &\n"
        "Clopath 2026): batch 64; an epoch is 100 SGD steps (Nesterov momentum 0.1,\n"
        "lr 0.01, gradient norm clipped at 7.5) then 50 test batches; the level N\n"
        "starts at 2 and rises by one after an epoch with test accuracy >= 98%%.\n"
        "Variants: cbrnn (64 units + cerebellum 256,64; 41,922 parameters),\n"
        "rnn (202 units; 41,816), frozen (core trained at N = 2 with the cerebellum\n"
        "frozen until 98%%, then the core frozen for good), interleaved (as frozen,\n"
        "the core trains again at N = 12, 22, ...).\n"
        "\n"
        "  --task T            dms, parity, multitask (both on one sequence, a head\n"
        "                      each; N rises when both heads reach 98%%), switch\n"
        "                      (DMS at N = 2..11, parity at 12..21, ...; parity\n"
        "                      trials carry a 3-step pulse on a second input), speech\n"
        "  --variants LIST     comma-separated (default cbrnn,rnn,frozen,interleaved)\n"
        "  --seeds S           seeds 0..S-1 per variant (default 4)\n"
        "  --epochs E          epochs per run (default 1000, as the authors)\n"
        "  --max-n CAP         highest level (default: none)\n"
        "  --jobs J            runs in parallel (default: online CPUs)\n"
        "  --checkpoint-every K  epochs between checkpoints (default 10)\n"
        "  --train-steps S     training steps per epoch (default 100, the protocol's)\n"
        "  --test-batches T    test batches per epoch (default 50, the protocol's);\n"
        "                      other values are for quick checks, not the paper\n"
        "  --no-figure         skip figure.png\n"
        "  --out-dir D         results: D/curves/<variant>-seed<k>.csv\n"
        "                      (epoch,N,train_loss,test_accuracy,phase), D/summary.json,\n"
        "                      D/summary.md, D/figure.png; D/checkpoints/ to resume\n"
        "\n"
        "Rerunning with the same D resumes: finished runs are skipped, unfinished\n"
        "ones continue from their last checkpoint with identical results.\n"
        "The phase column: 0 all trained (frozen/interleaved: warm-up, cerebellum\n"
        "frozen), 1 core frozen, 2 interleaved level (core and cerebellum train).\n"
        "Speech: cbrnn experiment --task speech --help.\n");
}

/* ---- Curves ---- */

static const char curve_header[] = "epoch,N,train_loss,test_accuracy,phase";

/* Reads the complete rows of a curve (a partial last line, from an
 * interrupted write, is not a row). Returns rows read (0 if absent), -1 if
 * the file exists but is not a curve. rows may be NULL (count only). */
static int experiment_read_curve(const char *path, cbrnn_paper_epoch *rows, int max_rows)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    char line[512];
    int n = 0;
    if (!fgets(line, sizeof line, f) || strncmp(line, curve_header, strlen(curve_header))) {
        fclose(f);
        return -1;
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
    fclose(f);
    return n;
}

static int write_row(FILE *f, const cbrnn_paper_epoch *e)
{
    /* %.9g keeps float32 losses exact enough to compare runs bit for bit. */
    fprintf(f, "%d,%d,%.9g,%.6f,%d\n", e->epoch, e->N, e->train_loss, e->test_accuracy, e->phase);
    return fflush(f) == 0 ? 0 : -1;
}

/* Rewrites path with its header and first n rows (atomic rename). */
static int cut_curve(const char *path, int n, char *msg, size_t msglen)
{
    cbrnn_paper_epoch *rows = malloc((size_t)(n > 0 ? n : 1) * sizeof *rows);
    if (!rows) {
        snprintf(msg, msglen, "%s: out of memory", path);
        return -1;
    }
    int got = experiment_read_curve(path, rows, n);
    if (got < n) {
        free(rows);
        snprintf(msg, msglen, "%s: has %d complete rows, expected at least %d", path, got, n);
        return -1;
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int ok = f != NULL;
    if (ok) {
        fprintf(f, "%s\n", curve_header);
        for (int i = 0; i < n && ok; i++)
            ok = !write_row(f, &rows[i]);
        ok = (fclose(f) == 0) && ok;
    }
    free(rows);
    if (!ok || rename(tmp, path)) {
        snprintf(msg, msglen, "%s: cannot rewrite: %s", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

/* ---- One run, in a worker process ---- */

typedef struct job {
    int variant, seed;
    char curve[4096], ckpt[4096];
} job;

typedef struct opts {
    int task, epochs, max_n, jobs, ckpt_every, figure;
    int train_steps, test_batches; /* the protocol's 100 and 50 unless changed */
    int n_variants, variants[CBRNN_NVARIANTS];
    int seeds;
    const char *out;
} opts;

static void job_config(const opts *o, const job *j, cbrnn_paper_config *c)
{
    cbrnn_paper_config_default(c, o->task, j->variant);
    c->seed = (uint64_t)j->seed;
    c->max_n = o->max_n;
    c->train_steps = o->train_steps;
    c->test_batches = o->test_batches;
}

/* Runs (or resumes) one job to o->epochs. Prints its own errors. */
static int run_job(const opts *o, const job *j)
{
    char msg[8704];
    cbrnn_paper_config c;
    job_config(o, j, &c);
    int have = experiment_read_curve(j->curve, NULL, o->epochs);
    if (have < 0) {
        fprintf(stderr, "cbrnn experiment: %s: not a curve file (header must be '%s')\n",
                j->curve, curve_header);
        return 2;
    }
    if (have >= o->epochs)
        return 0;
    cbrnn_paper_run *run = NULL;
    int start = 0, err = 0;
    if (access(j->ckpt, F_OK) == 0) {
        run = cbrnn_paper_run_load(j->ckpt, &c, &err, msg, sizeof msg);
        if (!run)
            fprintf(stderr, "cbrnn experiment: %s; restarting %s-seed%d from epoch 1\n", msg,
                    cbrnn_variant_name(j->variant), j->seed);
        else if (cbrnn_paper_run_epochs(run) > have) {
            fprintf(stderr, "cbrnn experiment: %s is ahead of %s; restarting from epoch 1\n",
                    j->ckpt, j->curve);
            cbrnn_paper_run_destroy(run);
            run = NULL;
        }
    }
    if (run) {
        start = cbrnn_paper_run_epochs(run);
        if (start >= o->epochs) {
            /* the checkpoint already covers the budget: keep its rows */
            start = o->epochs;
        }
        if (cut_curve(j->curve, start, msg, sizeof msg)) {
            fprintf(stderr, "cbrnn experiment: %s\n", msg);
            cbrnn_paper_run_destroy(run);
            return 1;
        }
    } else {
        run = cbrnn_paper_run_create(&c, &err);
        if (!run) {
            fprintf(stderr, "cbrnn experiment: cannot create run %s-seed%d: %s\n",
                    cbrnn_variant_name(j->variant), j->seed, cbrnn_strerror(err));
            return 1;
        }
        FILE *f = fopen(j->curve, "w");
        if (!f || fprintf(f, "%s\n", curve_header) < 0 || fclose(f)) {
            fprintf(stderr, "cbrnn experiment: %s: cannot write: %s\n", j->curve, strerror(errno));
            cbrnn_paper_run_destroy(run);
            return 1;
        }
    }
    FILE *f = fopen(j->curve, "a");
    if (!f) {
        fprintf(stderr, "cbrnn experiment: %s: cannot append: %s\n", j->curve, strerror(errno));
        cbrnn_paper_run_destroy(run);
        return 1;
    }
    int rc = 0;
    for (int e = start; e < o->epochs; e++) {
        cbrnn_paper_epoch ep;
        err = cbrnn_paper_run_epoch(run, &ep);
        if (err) {
            fprintf(stderr, "cbrnn experiment: %s-seed%d epoch %d: %s\n",
                    cbrnn_variant_name(j->variant), j->seed, e + 1, cbrnn_strerror(err));
            rc = 1;
            break;
        }
        if (write_row(f, &ep)) {
            fprintf(stderr, "cbrnn experiment: %s: write failed: %s\n", j->curve, strerror(errno));
            rc = 1;
            break;
        }
        if ((e + 1) % o->ckpt_every == 0 || e + 1 == o->epochs) {
            if (cbrnn_paper_run_save(run, j->ckpt, msg, sizeof msg)) {
                fprintf(stderr, "cbrnn experiment: %s\n", msg);
                rc = 1;
                break;
            }
        }
    }
    if (fclose(f) && !rc) {
        fprintf(stderr, "cbrnn experiment: %s: %s\n", j->curve, strerror(errno));
        rc = 1;
    }
    cbrnn_paper_run_destroy(run);
    return rc;
}

/* The paper tasks' jobs for the pool. */
typedef struct task_ctx {
    const opts *o;
    job *jobs;
} task_ctx;

static int task_work(void *ctx, int k)
{
    task_ctx *c = ctx;
    return run_job(c->o, &c->jobs[k]);
}

static long task_progress(void *ctx, int k)
{
    task_ctx *c = ctx;
    int r = experiment_read_curve(c->jobs[k].curve, NULL, c->o->epochs);
    return r > 0 ? r : 0;
}

static void task_name(void *ctx, int k, char *buf, size_t len)
{
    task_ctx *c = ctx;
    snprintf(buf, len, "%s-seed%d", cbrnn_variant_name(c->jobs[k].variant), c->jobs[k].seed);
}

static int run_all(const opts *o, job *jobs, int n_jobs)
{
    task_ctx ctx = {o, jobs};
    experiment_pool p = {.n_jobs = n_jobs, .jobs = o->jobs, .ctx = &ctx, .work = task_work,
                         .progress = task_progress, .name = task_name,
                         .total = (long)n_jobs * o->epochs};
    return experiment_run_pool(&p);
}

/* ---- Summary ---- */

static int write_summary(const opts *o, job *jobs, int n_jobs)
{
    int n_runs = n_jobs;
    cbrnn_paper_epoch **curves = calloc((size_t)n_runs, sizeof *curves);
    int *len = calloc((size_t)n_runs, sizeof *len);
    int rc = 1;
    if (!curves || !len)
        goto out;
    int best = 0;
    for (int k = 0; k < n_runs; k++) {
        curves[k] = malloc((size_t)o->epochs * sizeof **curves);
        if (!curves[k])
            goto out;
        len[k] = experiment_read_curve(jobs[k].curve, curves[k], o->epochs);
        if (len[k] < o->epochs) {
            fprintf(stderr, "cbrnn experiment: %s: %d of %d epochs; cannot summarise\n",
                    jobs[k].curve, len[k] < 0 ? 0 : len[k], o->epochs);
            goto out;
        }
        for (int e = 0; e < len[k]; e++)
            if (curves[k][e].N > best)
                best = curves[k][e].N;
    }
    /* Epochs to half of the highest level any run of the comparison reached. */
    const double half = 0.5 * best;
    json_t *root = json_object();
    json_object_set_new(root, "task", json_string(cbrnn_task_name(o->task)));
    json_object_set_new(root, "epochs", json_integer(o->epochs));
    json_object_set_new(root, "max_n_cap", o->max_n > 0 ? json_integer(o->max_n) : json_null());
    json_object_set_new(root, "half_max_N", json_real(half));
    json_object_set_new(root, "train_steps", json_integer(o->train_steps));
    json_object_set_new(root, "test_batches", json_integer(o->test_batches));
    json_t *vars = json_object();
    json_object_set_new(root, "variants", vars);
    FILE *md = experiment_summary_open(PROG, o->out);
    if (!md) {
        json_decref(root);
        goto out;
    }
    fprintf(md, "# %s: %d seed%s x %d epochs%s\n\n", cbrnn_task_name(o->task), o->seeds,
            o->seeds == 1 ? "" : "s", o->epochs,
            o->max_n > 0 ? "" : " (no cap)");
    if (o->max_n > 0)
        fprintf(md, "Curriculum capped at N = %d.\n\n", o->max_n);
    if (o->train_steps != 100 || o->test_batches != 50)
        fprintf(md, "Not the paper's protocol: %d training steps and %d test batches per "
                    "epoch (the paper: 100 and 50).\n\n", o->train_steps, o->test_batches);
    fprintf(md, "Mean (sample sd) over seeds. Epochs to half max: first epoch at N >= %.1f "
                "(half of the highest N of any run here); runs that never got there are left "
                "out and counted. AUC: sum of N over epochs.\n\n", half);
    fprintf(md, "| variant | params | max N | epochs to half max | AUC | final N |\n"
                "|---|---:|---:|---:|---:|---:|\n");
    for (int vi = 0; vi < o->n_variants; vi++) {
        int v = o->variants[vi];
        cbrnn_model_config mc;
        cbrnn_paper_model_config(&mc, o->task, v);
        double maxn[MAX_SEEDS], half_e[MAX_SEEDS], auc[MAX_SEEDS], fin[MAX_SEEDS];
        int n = 0, n_half = 0;
        json_t *jm = json_array(), *jh = json_array(), *ja = json_array(), *jf = json_array(),
               *js = json_array();
        for (int k = 0; k < n_runs; k++) {
            if (jobs[k].variant != v)
                continue;
            const cbrnn_paper_epoch *c = curves[k];
            int mx = 0, he = -1;
            double area = 0;
            for (int e = 0; e < o->epochs; e++) {
                if (c[e].N > mx)
                    mx = c[e].N;
                if (he < 0 && c[e].N >= half)
                    he = e + 1;
                area += c[e].N;
            }
            maxn[n] = mx;
            auc[n] = area;
            fin[n] = c[o->epochs - 1].N;
            if (he > 0)
                half_e[n_half++] = he;
            n++;
            json_array_append_new(js, json_integer(jobs[k].seed));
            json_array_append_new(jm, json_integer(mx));
            json_array_append_new(jh, he > 0 ? json_integer(he) : json_null());
            json_array_append_new(ja, json_real(area));
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
        double m1, s1, m2, s2, m3, s3, m4, s4;
        experiment_mean_sd(maxn, n, &m1, &s1);
        experiment_mean_sd(half_e, n_half, &m2, &s2);
        experiment_mean_sd(auc, n, &m3, &s3);
        experiment_mean_sd(fin, n, &m4, &s4);
        char he_txt[96];
        if (n_half == n)
            snprintf(he_txt, sizeof he_txt, "%.1f (%.1f)", m2, s2);
        else if (n_half > 0)
            snprintf(he_txt, sizeof he_txt, "%.1f (%.1f), %d of %d runs", m2, s2, n_half, n);
        else
            snprintf(he_txt, sizeof he_txt, "not reached");
        fprintf(md, "| %s | %zu | %.2f (%.2f) | %s | %.0f (%.0f) | %.2f (%.2f) |\n",
                cbrnn_variant_name(v), cbrnn_model_config_params(&mc), m1, s1, he_txt, m3, s3, m4,
                s4);
    }
    rc = experiment_summary_close(PROG, o->out, md, root);
out:
    for (int k = 0; curves && k < n_runs; k++)
        free(curves[k]);
    free(curves);
    free(len);
    return rc;
}

/* ---- Options ---- */

static int parse_variants(opts *o, const char *s)
{
    const char *names[CBRNN_NVARIANTS];
    for (int v = 0; v < CBRNN_NVARIANTS; v++)
        names[v] = cbrnn_variant_name(v);
    return experiment_parse_names(PROG, "--variants", s, names, CBRNN_NVARIANTS, o->variants,
                                  &o->n_variants);
}

int cmd_experiment(int argc, char **argv)
{
    opts o = {.task = -1, .epochs = 1000, .max_n = 0, .jobs = 0, .ckpt_every = 10,
              .figure = 1, .seeds = 4, .out = NULL, .train_steps = 100, .test_batches = 50};
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--task") && !strcmp(argv[i + 1], "speech"))
            return experiment_speech(argc, argv);
    parse_variants(&o, "cbrnn,rnn,frozen,interleaved");
    static const struct option lo[] = {
        EXPERIMENT_COMMON_OPTIONS,
        {"epochs", required_argument, 0, 'e'},      {"max-n", required_argument, 0, 'n'},
        {"checkpoint-every", required_argument, 0, 'k'},
        {"train-steps", required_argument, 0, 'S'}, {"test-batches", required_argument, 0, 'T'},
        {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 't':
            o.task = cbrnn_task_parse(optarg);
            if (o.task < 0) {
                fprintf(stderr, PROG ": --task: unknown task '%s' "
                                "(dms, parity, multitask, switch, speech)\n", optarg);
                return 2;
            }
            break;
        case 'v': bad = parse_variants(&o, optarg); break;
        case 's': bad = experiment_parse_iopt(PROG, "--seeds", optarg, 1, MAX_SEEDS, &o.seeds); break;
        case 'e': bad = experiment_parse_iopt(PROG, "--epochs", optarg, 1, 1000000, &o.epochs); break;
        case 'n': bad = experiment_parse_iopt(PROG, "--max-n", optarg, 2, 100000, &o.max_n); break;
        case 'j': bad = experiment_parse_iopt(PROG, "--jobs", optarg, 1, 1024, &o.jobs); break;
        case 'k':
            bad = experiment_parse_iopt(PROG, "--checkpoint-every", optarg, 1, 1000000, &o.ckpt_every);
            break;
        case 'S':
            bad = experiment_parse_iopt(PROG, "--train-steps", optarg, 1, 100000, &o.train_steps);
            break;
        case 'T':
            bad = experiment_parse_iopt(PROG, "--test-batches", optarg, 1, 100000, &o.test_batches);
            break;
        case 'o': o.out = optarg; break;
        case 'F': o.figure = 0; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (bad)
            return 2;
    }
    if (optind < argc) {
        fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (o.task < 0 || !o.out) {
        fprintf(stderr, PROG ": --task and --out-dir are required (see --help)\n");
        return 2;
    }
    if (o.jobs == 0)
        o.jobs = experiment_default_jobs();
    /* The settings the results depend on; a rerun into the folder must agree. */
    char settings[256];
    snprintf(settings, sizeof settings,
             "task %s\nmax_n %d\ntrain_steps %d\ntest_batches %d\nprotocol issue-5 v1\n",
             cbrnn_task_name(o.task), o.max_n, o.train_steps, o.test_batches);
    int rc = experiment_prepare_dir(PROG, o.out, settings, "checkpoints");
    if (rc)
        return rc;
    int n_jobs = o.n_variants * o.seeds;
    job *jobs = calloc((size_t)n_jobs, sizeof *jobs);
    if (!jobs)
        return 1;
    /* Seeds outer, variants inner: a partial run has every variant. */
    int k = 0;
    for (int s = 0; s < o.seeds; s++)
        for (int vi = 0; vi < o.n_variants; vi++, k++) {
            jobs[k].variant = o.variants[vi];
            jobs[k].seed = s;
            snprintf(jobs[k].curve, sizeof jobs[k].curve, "%s/curves/%s-seed%d.csv", o.out,
                     cbrnn_variant_name(o.variants[vi]), s);
            snprintf(jobs[k].ckpt, sizeof jobs[k].ckpt, "%s/checkpoints/%s-seed%d.ckpt", o.out,
                     cbrnn_variant_name(o.variants[vi]), s);
        }
    rc = run_all(&o, jobs, n_jobs);
    if (!rc)
        rc = write_summary(&o, jobs, n_jobs);
    if (!rc && o.figure)
        experiment_figure(o.out);
    if (!rc)
        experiment_print_summary(o.out);
    free(jobs);
    return rc;
}
