/* util_experiment.c: what `cbrnn experiment`'s paper tasks
 * (cmd_experiment.c) and its speech comparison (util_experiment_speech.c)
 * share as a host of the experiments module: option parsing, and driving
 * a comparison: its messages on stderr, progress on a terminal, SIGINT and
 * SIGTERM as "stop and keep what is done", the summary on stdout. The work
 * itself is experiment/ (cbrnn_experiment.h). */
#include <signal.h>
#include <stdio.h>
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

int experiment_drive(cbrnn_exp *e, const experiment_run *how)
{
    char msg[8704];
    int rc = cbrnn_exp_prepare(e, msg, sizeof msg);
    if (rc) {
        fprintf(stderr, "%s: %s\n", how->prog, msg);
        cbrnn_exp_destroy(e);
        return rc == CBRNN_ERR_ARG ? 2 : 1;
    }
    int status = 1;
    if (run_pool(e, how))
        goto out;
    if (cbrnn_exp_summarise(e, msg, sizeof msg)) {
        fprintf(stderr, "%s: %s\n", how->prog, msg);
        goto out;
    }
    if (how->figure && cbrnn_exp_figure(e, msg, sizeof msg))
        fprintf(stderr, "%s: %s\n", how->prog, msg);
    print_summary(cbrnn_exp_out_dir(e));
    status = 0;
out:
    cbrnn_exp_destroy(e);
    return status;
}
