/* util_experiment.c: what `cbrnn experiment`'s paper tasks
 * (cmd_experiment.c) and its speech comparison (util_experiment_speech.c)
 * share as a host of the experiments module: option parsing, and driving
 * a comparison in one of its modes (a local run, --plan, --unit, --collect,
 * --slurm): its messages on stderr, progress on a terminal, SIGINT and
 * SIGTERM as "stop and keep what is done", the summary on stdout. The work
 * itself is experiment/ (cbrnn_experiment.h).
 * Must never: write outside --out-dir. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util_experiment.h"
#include "util_parse.h"
#include "util_term.h"

/* ---- Options ---- */

int experiment_parse_iopt(const char *prog, const char *opt, const char *s, int lo, int hi, int *out)
{
    if (cli_parse_int(s, lo, hi, out)) {
        fprintf(stderr, "%s: %s '%s': expected an integer in %d..%d\n", prog, opt, s, lo, hi);
        return -1;
    }
    return 0;
}

int experiment_parse_names(const char *prog, const char *opt, const char *s,
                           const char *const *names, int n_names, int *out, int *n_out)
{
    char buf[256];
    if (snprintf(buf, sizeof buf, "%s", s) >= (int)sizeof buf) {
        fprintf(stderr, "%s: %s: list too long\n", prog, opt);
        return -1;
    }
    int n = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int v = 0;
        while (v < n_names && strcmp(tok, names[v]))
            v++;
        if (v == n_names) {
            char known[256];
            int l = 0;
            for (int i = 0; i < n_names && l < (int)sizeof known; i++)
                l += snprintf(known + l, sizeof known - (size_t)l, "%s%s", i ? ", " : "", names[i]);
            fprintf(stderr, "%s: %s: unknown variant '%s' (%s)\n", prog, opt, tok, known);
            return -1;
        }
        for (int i = 0; i < n; i++)
            if (out[i] == v) {
                fprintf(stderr, "%s: %s: '%s' given twice\n", prog, opt, tok);
                return -1;
            }
        out[n++] = v;
    }
    if (n == 0) {
        fprintf(stderr, "%s: %s: empty list\n", prog, opt);
        return -1;
    }
    *n_out = n;
    return 0;
}

int experiment_default_jobs(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* ---- Modes ---- */

int experiment_run_init(experiment_run *how, const char *prog, int argc, char **argv)
{
    *how = (experiment_run){.prog = prog, .jobs = 0, .figure = 1, .mode = EXPERIMENT_LOCAL,
                            .wait = 1, .argc = argc, .argv = argv};
    how->drop = calloc((size_t)argc + 1, 1);
    return how->drop ? 0 : -1;
}

void experiment_run_free(experiment_run *how)
{
    free(how->drop);
    how->drop = NULL;
}

static int set_mode(experiment_run *how, int mode, const char *opt)
{
    if (how->mode != EXPERIMENT_LOCAL && how->mode != mode) {
        fprintf(stderr, "%s: %s: only one of --plan, --unit, --collect and --slurm\n",
                how->prog, opt);
        return -1;
    }
    how->mode = mode;
    return 1;
}

/* Handles one of the mode options ('P', 'U', 'K', 'p', 'L', 'A', 'W', 'Y')
 * that getopt_long returned as ch, having consumed argv[first..optind-1].
 * 1 if handled, 0 if ch is not one of them, -1 after a message. */
static int experiment_mode_option(experiment_run *how, int ch, const char *arg, int first)
{
    int slurm_only = ch == 'L' || ch == 'A' || ch == 'W' || ch == 'Y';
    for (int i = first; slurm_only && i < optind && i < how->argc; i++)
        how->drop[i] = 1; /* the jobs run the command without them */
    switch (ch) {
    case 'P': return set_mode(how, EXPERIMENT_PLAN, "--plan");
    case 'K': return set_mode(how, EXPERIMENT_COLLECT, "--collect");
    case 'L': return set_mode(how, EXPERIMENT_SLURM, "--slurm");
    case 'U':
        if (experiment_parse_iopt(how->prog, "--unit", arg, 0, INT_MAX, &how->unit))
            return -1;
        return set_mode(how, EXPERIMENT_UNIT, "--unit");
    case 'p': how->partial = 1; return 1;
    case 'A': how->sbatch_args = arg; return 1;
    case 'W': how->wait = 0; return 1;
    case 'Y': return experiment_parse_iopt(how->prog, "--array-limit", arg, 1, 1000000,
                                           &how->limit) ? -1 : 1;
    default: return 0;
    }
}

int experiment_common_option(experiment_run *how, int ch, const char *arg, int first,
                             const char **out_dir, void (*usage)(FILE *))
{
    int m = experiment_mode_option(how, ch, arg, first);
    if (m)
        return m;
    switch (ch) {
    case 'j': return experiment_parse_iopt(how->prog, "--jobs", arg, 1, 1024, &how->jobs) ? -1 : 1;
    case 'o': *out_dir = arg; return 1;
    case 'F': how->figure = 0; return 1;
    case 'h': usage(stdout); return EXPERIMENT_HELP;
    case '?': usage(stderr); return -1;
    default: return 0;
    }
}

int experiment_option_result(int ch_result, void (*usage)(FILE *))
{
    if (ch_result == EXPERIMENT_HELP)
        return -1;
    if (ch_result == 0)
        usage(stderr);
    return ch_result == 1 ? 0 : 2;
}

int experiment_no_operands(const char *prog, int argc, char **argv)
{
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
        return 2;
    }
    return 0;
}

int experiment_modes_check(experiment_run *how)
{
    if (how->partial && how->mode != EXPERIMENT_COLLECT) {
        fprintf(stderr, "%s: --partial goes with --collect\n", how->prog);
        return -1;
    }
    if ((how->sbatch_args || !how->wait || how->limit) && how->mode != EXPERIMENT_SLURM) {
        fprintf(stderr, "%s: --sbatch-args, --array-limit and --no-wait go with --slurm\n",
                how->prog);
        return -1;
    }
    if (how->jobs == 0)
        how->jobs = experiment_default_jobs();
    return 0;
}

/* ---- Messages, progress, signals ---- */

static volatile sig_atomic_t interrupted = 0;
static void on_signal(int sig) { interrupted = sig; }

static void say(void *user, const char *text)
{
    fprintf(stderr, "%s: %s\n", (const char *)user, text);
}

static void show_progress(void *user, double done, double total, int runs_done, int n_runs,
                          double elapsed_s)
{
    char extra[64];
    snprintf(extra, sizeof extra, "%d/%d runs", runs_done, n_runs);
    term_progress(stderr, "experiment", done, total, elapsed_s, extra);
}

static int stop_asked(void *user) { return interrupted != 0; }

/* The pool with SIGINT/SIGTERM turned into "stop". */
static int run_pool(cbrnn_exp *e, const experiment_run *how)
{
    int interactive = term_is_interactive(stderr);
    cbrnn_exp_report rep = {(void *)how->prog, say, interactive ? show_progress : NULL,
                            stop_asked};
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    int rc = cbrnn_exp_run_pool(e, how->jobs, &rep);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (interactive)
        fputc('\n', stderr);
    if (rc == 1)
        fprintf(stderr, "%s: interrupted; rerun the same command to resume\n", how->prog);
    return rc;
}

/* Copies <out>/summary.md to stdout (nothing if it cannot be read). */
static void print_summary(const char *out_dir)
{
    char path[4200], line[512];
    snprintf(path, sizeof path, "%s/summary.md", out_dir);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        fputs(line, stdout);
    if (f)
        fclose(f);
}

/* Names the units that are not done on stderr; how many there are. */
static int name_unfinished(const cbrnn_exp *e, const experiment_run *how, int with_logs)
{
    int bad = 0;
    for (int k = 0; k < cbrnn_exp_n_units(e); k++) {
        char name[128], why[2048];
        long done = 0, total = 0;
        int st = cbrnn_exp_unit_state(e, k, &done, &total, why, sizeof why);
        if (st == CBRNN_EXP_UNIT_DONE)
            continue;
        bad++;
        cbrnn_exp_unit_name(e, k, name, sizeof name);
        fprintf(stderr, "%s: unit %d (%s): ", how->prog, k, name);
        if (st == CBRNN_EXP_UNIT_FAILED)
            fprintf(stderr, "failed: %s", why);
        else if (st == CBRNN_EXP_UNIT_PARTIAL)
            fprintf(stderr, "not finished (%ld of %ld)%s%s", done, total, why[0] ? ": " : "",
                    why);
        else
            fprintf(stderr, "missing (never run)");
        if (with_logs)
            fprintf(stderr, "; log %s/slurm/unit-%d.log", cbrnn_exp_out_dir(e), k);
        fputc('\n', stderr);
    }
    return bad;
}

static int plan(const cbrnn_exp *e)
{
    static const char *const names[] = {"missing", "partial", "failed", "done"};
    printf("# %d units in %s: unit, name, state, done/needed, why it failed\n",
           cbrnn_exp_n_units(e), cbrnn_exp_out_dir(e));
    for (int k = 0; k < cbrnn_exp_n_units(e); k++) {
        char name[128], why[2048];
        long done = 0, total = 0;
        int st = cbrnn_exp_unit_state(e, k, &done, &total, why, sizeof why);
        cbrnn_exp_unit_name(e, k, name, sizeof name);
        printf("%d\t%s\t%s\t%ld/%ld%s%s\n", k, name, st >= 0 ? names[st] : "?", done, total,
               why[0] ? "\t" : "", why);
    }
    return 0;
}

static int one_unit(cbrnn_exp *e, const experiment_run *how)
{
    int n = cbrnn_exp_n_units(e);
    if (how->unit >= n) {
        fprintf(stderr, "%s: --unit %d: this comparison has %d units (0..%d; see --plan)\n",
                how->prog, how->unit, n, n - 1);
        return 2;
    }
    cbrnn_exp_report rep = {(void *)how->prog, say, NULL, NULL};
    return cbrnn_exp_run_unit(e, how->unit, &rep) ? 1 : 0;
}

/* summary.json, summary.md, the figure, the table on stdout. */
static int summarise(cbrnn_exp *e, const experiment_run *how, int partial)
{
    char msg[8704];
    if (cbrnn_exp_summarise(e, partial, msg, sizeof msg)) {
        fprintf(stderr, "%s: %s\n", how->prog, msg);
        return 1;
    }
    if (how->figure && cbrnn_exp_figure(e, msg, sizeof msg))
        fprintf(stderr, "%s: %s\n", how->prog, msg);
    print_summary(cbrnn_exp_out_dir(e));
    return 0;
}

static int collect(cbrnn_exp *e, const experiment_run *how)
{
    int bad = name_unfinished(e, how, 0);
    if (bad && !how->partial) {
        fprintf(stderr, "%s: %d of %d units not finished; nothing summarised (--partial "
                        "summarises the finished ones)\n", how->prog, bad, cbrnn_exp_n_units(e));
        return 1;
    }
    return summarise(e, how, how->partial);
}

/* The jobs' command: this executable and the arguments, less --slurm's. */
static const char **job_argv(const experiment_run *how, char *exe, size_t exelen)
{
    const char **av = calloc((size_t)how->argc + 2, sizeof *av);
    ssize_t n = readlink("/proc/self/exe", exe, exelen - 1);
    if (!av || n <= 0) {
        free(av);
        return NULL;
    }
    exe[n] = 0;
    int k = 0;
    av[k++] = exe;
    for (int i = 0; i < how->argc; i++)
        if (!how->drop[i])
            av[k++] = how->argv[i];
    return av;
}

static int slurm(cbrnn_exp *e, const experiment_run *how)
{
    char exe[4096], msg[8704], name[64];
    const char **av = job_argv(how, exe, sizeof exe);
    if (!av) {
        fprintf(stderr, "%s: cannot find this executable (/proc/self/exe)\n", how->prog);
        return 1;
    }
    const char *task = strstr(how->prog, "speech") ? "speech" : "paper";
    snprintf(name, sizeof name, "cbrnn-%s", task);
    cbrnn_exp_slurm s = {.argv = av, .unit_arg = "--unit", .collect_arg = "--collect",
                         .sbatch_args = how->sbatch_args, .limit = how->limit, .job_name = name};
    long array_id = 0, merge_id = 0;
    /* The folder lock (taken: no local run, no unit of an earlier array
     * running) down to a reader's before sbatch: the array's tasks lock
     * their units and may start at once; we keep only a local run out. */
    int rc = cbrnn_exp_lock(e, CBRNN_EXP_LOCK_READ, NULL, msg, sizeof msg);
    if (rc == CBRNN_ERR_IO)
        fprintf(stderr, "%s: %s\n", how->prog, msg);
    rc = cbrnn_exp_slurm_submit(e, &s, &array_id, &merge_id, msg, sizeof msg);
    free(av);
    if (rc) {
        fprintf(stderr, "%s: %s\n", how->prog, msg);
        if (array_id > 0)
            fprintf(stderr, "%s: the units were submitted as job array %ld and will run "
                            "without a merge job: once they have finished, --collect (the same "
                            "command with --collect instead of --slurm) summarises them; or "
                            "cancel them: scancel %ld\n", how->prog, array_id, array_id);
        return rc == CBRNN_ERR_ARG ? 2 : 1;
    }

    const char *d = cbrnn_exp_out_dir(e);
    printf("submitted: units as job array %ld (%d tasks), merge as job %ld after them\n"
           "logs: %s/slurm/unit-K.log, %s/slurm/collect.log; results: %s/summary.md\n",
           array_id, cbrnn_exp_n_units(e), merge_id, d, d, d);
    fflush(stdout);
    if (!how->wait)
        return 0;
    int interactive = term_is_interactive(stderr);
    cbrnn_exp_report rep = {(void *)how->prog, say, interactive ? show_progress : NULL,
                            stop_asked};
    struct sigaction sa = {0}, old_int;
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    sigaction(SIGINT, &sa, &old_int);
    rc = cbrnn_exp_slurm_wait(e, merge_id, &rep, msg, sizeof msg);
    sigaction(SIGINT, &old_int, NULL);
    if (interactive)
        fputc('\n', stderr);
    if (rc == 1) {
        fprintf(stderr, "%s: stopped waiting; the jobs go on (squeue -j %ld,%ld; then "
                        "--plan or --collect)\n", how->prog, array_id, merge_id);
        return interrupted ? 128 + (int)interrupted : 1;
    }
    if (rc) {
        fprintf(stderr, "%s: %s\n", how->prog, msg);
        name_unfinished(e, how, 1);
        return 1;
    }
    print_summary(d);
    return 0;
}

/* The lock how->mode needs (cbrnn_exp_lock): 0 to go on, else the exit
 * status after a message. A file system without locks is only warned of. */
static int lock_folder(cbrnn_exp *e, const experiment_run *how)
{
    int what = CBRNN_EXP_LOCK_FOLDER; /* a local run; --slurm while it submits */
    if (how->mode == EXPERIMENT_UNIT) {
        if (how->unit >= cbrnn_exp_n_units(e))
            return 0; /* one_unit says so */
        what = how->unit;
    } else if (how->mode == EXPERIMENT_COLLECT) {
        what = CBRNN_EXP_LOCK_READ;
    }
    char msg[8704];
    int rc = cbrnn_exp_lock(e, what, NULL, msg, sizeof msg);
    if (rc == CBRNN_ERR_UNSUPPORTED) {
        fprintf(stderr, "%s: %s: nothing keeps a second run out of this folder\n", how->prog,
                msg);
        return 0;
    }
    if (rc)
        fprintf(stderr, "%s: %s\n", how->prog, msg);
    return rc == 1 ? 2 : rc ? 1 : 0;
}

int experiment_drive(cbrnn_exp *e, const experiment_run *how)
{
    int status = 0;
    char msg[8704];
    if (how->mode == EXPERIMENT_PLAN) {
        status = cbrnn_exp_check_settings(e, msg, sizeof msg);
        if (status)
            fprintf(stderr, "%s: %s\n", how->prog, msg);
        else
            plan(e);
        cbrnn_exp_destroy(e);
        return status == CBRNN_ERR_ARG ? 2 : status ? 1 : 0;
    }
    if (how->mode == EXPERIMENT_SLURM) {
        cbrnn_exp_slurm s = {.sbatch_args = how->sbatch_args};
        if (cbrnn_exp_slurm_check(e, &s, msg, sizeof msg)) {
            fprintf(stderr, "%s: %s\n", how->prog, msg);
            cbrnn_exp_destroy(e);
            return 2;
        }
    }
    int rc = cbrnn_exp_prepare(e, msg, sizeof msg);
    if (rc) {
        fprintf(stderr, "%s: %s\n", how->prog, msg);
        cbrnn_exp_destroy(e);
        return rc == CBRNN_ERR_ARG ? 2 : 1;
    }
    if ((status = lock_folder(e, how))) {
        cbrnn_exp_destroy(e);
        return status;
    }
    switch (how->mode) {
    case EXPERIMENT_UNIT: status = one_unit(e, how); break;
    case EXPERIMENT_COLLECT: status = collect(e, how); break;
    case EXPERIMENT_SLURM: status = slurm(e, how); break;
    default:
        rc = run_pool(e, how);
        if (rc && rc != 1)
            name_unfinished(e, how, 0);
        /* stopped by SIGINT/SIGTERM: 128 + the signal, as train and run */
        status = rc == 1 && interrupted ? 128 + (int)interrupted : rc ? 1 : summarise(e, how, 0);
        break;
    }
    cbrnn_exp_destroy(e);
    return status;
}
