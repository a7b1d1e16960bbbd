/* util_experiment.c: what `cbrnn experiment`'s paper tasks (cmd_experiment.c)
 * and its speech comparison (util_experiment_speech.c) share: the forked
 * worker pool, option parsing, the results folder and its settings file,
 * summary statistics, the figure.
 *
 * Must never: let a worker share OpenBLAS threads (each worker runs BLAS
 * on one thread; the jobs are the parallelism), or write outside the
 * folder it is given. */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util_experiment.h"
#include "util_parse.h"
#include "util_term.h"

/* ---- Workers ---- */

static volatile sig_atomic_t interrupted = 0;
static void on_signal(int sig) { interrupted = sig; }

int experiment_run_pool(const experiment_pool *p)
{
    pid_t *pid = calloc((size_t)(p->n_jobs > 0 ? p->n_jobs : 1), sizeof *pid);
    if (!pid)
        return 1;
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    int next = 0, running = 0, failed = 0, done_jobs = 0, forwarded = 0;
    struct timespec ts0;
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    int interactive = term_is_interactive(stderr);
    while ((next < p->n_jobs && !interrupted && !failed) || running > 0) {
        while (next < p->n_jobs && running < p->jobs && !interrupted && !failed) {
            fflush(NULL);
            pid_t c = fork();
            if (c < 0) {
                fprintf(stderr, "cbrnn experiment: fork: %s\n", strerror(errno));
                failed = 1;
                break;
            }
            if (c == 0) {
                signal(SIGINT, SIG_DFL);
                signal(SIGTERM, SIG_DFL);
                /* One BLAS thread per worker: the workers are the parallelism,
                 * and 64-row products are too small to split. */
                openblas_set_num_threads(1);
                int rc = p->work(p->ctx, next);
                fflush(NULL);
                _exit(rc);
            }
            pid[next++] = c;
            running++;
        }
        if (interrupted && !forwarded) {
            /* A signal to this process alone (kill PID) reaches the workers
             * too, so they stop at once; their checkpoints stay usable. */
            for (int k = 0; k < next; k++)
                if (pid[k] > 0)
                    kill(pid[k], SIGTERM);
            forwarded = 1;
        }
        int status;
        pid_t w = waitpid(-1, &status, WNOHANG);
        if (w > 0) {
            running--;
            done_jobs++;
            int k = 0;
            while (k < next && pid[k] != w)
                k++;
            if (k < next)
                pid[k] = -pid[k]; /* reaped */
            if (k < next && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
                if (!interrupted) {
                    char name[128];
                    p->name(p->ctx, k, name, sizeof name);
                    fprintf(stderr, "cbrnn experiment: run %s failed (%s %d)\n", name,
                            WIFEXITED(status) ? "exit status" : "signal",
                            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
                }
                failed = 1;
            }
            continue;
        }
        if (w < 0 && errno != EINTR && errno != ECHILD)
            break;
        if (interactive && p->progress) {
            long done = 0;
            for (int k = 0; k < p->n_jobs; k++)
                done += p->progress(p->ctx, k);
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            char extra[64];
            snprintf(extra, sizeof extra, "%d/%d runs", done_jobs, p->n_jobs);
            term_progress(stderr, "experiment", (double)done, (double)p->total,
                          (double)(ts.tv_sec - ts0.tv_sec) + 1e-9 * (ts.tv_nsec - ts0.tv_nsec),
                          extra);
        }
        struct timespec nap = {0, 200 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    if (interactive)
        fputc('\n', stderr);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    free(pid);
    if (interrupted) {
        fprintf(stderr, "cbrnn experiment: interrupted; rerun the same command to resume\n");
        return 1;
    }
    return failed;
}

/* ---- Options ---- */

int experiment_make_dir(const char *path)
{
    if (mkdir(path, 0777) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return 0;
        errno = ENOTDIR;
    }
    return -1;
}

/* figure.png through scripts/plot_experiment.py (matplotlib, Debian's
 * /usr/bin/python3). CBRNN_PLOT_SCRIPT overrides where the script is; by
 * default it is found beside this source file in the source tree. */
void experiment_figure(const char *out_dir)
{
    const char *script = getenv("CBRNN_PLOT_SCRIPT");
    char def[4200];
    if (!script) {
        snprintf(def, sizeof def, "%s", __FILE__);
        char *slash = strrchr(def, '/');
        if (slash) {
            *slash = 0;
            slash = strrchr(def, '/');
        }
        if (slash)
            snprintf(slash, sizeof def - (size_t)(slash - def), "/scripts/plot_experiment.py");
        script = def;
    }
    if (access(script, R_OK) || access("/usr/bin/python3", X_OK)) {
        fprintf(stderr, "cbrnn experiment: no figure (needs /usr/bin/python3 and %s; set "
                        "CBRNN_PLOT_SCRIPT to scripts/plot_experiment.py)\n", script);
        return;
    }
    fflush(NULL);
    pid_t p = fork();
    if (p == 0) {
        execl("/usr/bin/python3", "python3", script, out_dir, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (p < 0 || waitpid(p, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
        fprintf(stderr, "cbrnn experiment: %s failed; no figure.png\n", script);
}

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

/* ---- The results folder ---- */

/* out_dir/settings.txt: written on the first run; a rerun must ask for
 * exactly the same, or its results would mix with others. */
static int check_settings(const char *prog, const char *out_dir, const char *want)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/settings.txt", out_dir);
    FILE *f = fopen(path, "r");
    if (f) {
        size_t cap = strlen(want) + 2; /* one byte more than want: a longer file differs */
        char *have = calloc(cap, 1);
        if (!have) {
            fclose(f);
            return 1;
        }
        size_t n = fread(have, 1, cap - 1, f);
        fclose(f);
        have[n] = 0;
        int differs = strcmp(have, want) != 0;
        if (differs)
            fprintf(stderr, "%s: %s: this folder holds results of other settings:\n"
                            "%s(asked for:\n%s); use another --out-dir\n", prog, path, have, want);
        free(have);
        return differs ? 2 : 0;
    }
    f = fopen(path, "w");
    if (!f || fputs(want, f) < 0 || fclose(f)) {
        fprintf(stderr, "%s: %s: cannot write: %s\n", prog, path, strerror(errno));
        return 1;
    }
    return 0;
}

int experiment_prepare_dir(const char *prog, const char *out_dir, const char *settings,
                           const char *extra)
{
    if (experiment_make_dir(out_dir)) {
        fprintf(stderr, "%s: --out-dir %s: cannot create: %s\n", prog, out_dir, strerror(errno));
        return 2;
    }
    int rc = check_settings(prog, out_dir, settings);
    if (rc)
        return rc;
    const char *sub[2] = {"curves", extra};
    for (int i = 0; i < 2; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", out_dir, sub[i]);
        if (experiment_make_dir(path)) {
            fprintf(stderr, "%s: %s: cannot create: %s\n", prog, path, strerror(errno));
            return 1;
        }
    }
    return 0;
}

/* ---- Summaries ---- */

void experiment_mean_sd(const double *v, int n, double *mean, double *sd)
{
    double s = 0, q = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    *mean = n ? s / n : NAN;
    for (int i = 0; i < n; i++)
        q += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(q / (n - 1)) : 0.0; /* sample sd (n - 1) */
}

FILE *experiment_summary_open(const char *prog, const char *out_dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/summary.md", out_dir);
    FILE *md = fopen(path, "w");
    if (!md)
        fprintf(stderr, "%s: %s: cannot write: %s\n", prog, path, strerror(errno));
    return md;
}

int experiment_summary_close(const char *prog, const char *out_dir, FILE *md, json_t *root)
{
    char path[4200];
    int bad = fclose(md) != 0;
    if (bad)
        snprintf(path, sizeof path, "%s/summary.md", out_dir);
    else {
        snprintf(path, sizeof path, "%s/summary.json", out_dir);
        bad = json_dump_file(root, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0;
    }
    if (bad)
        fprintf(stderr, "%s: %s: cannot write\n", prog, path);
    json_decref(root);
    return bad;
}

void experiment_print_summary(const char *out_dir)
{
    char path[4200], line[512];
    snprintf(path, sizeof path, "%s/summary.md", out_dir);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        fputs(line, stdout);
    if (f)
        fclose(f);
}
