/* util_experiment.h: pieces shared by `cbrnn experiment`'s paper tasks
 * (cmd_experiment.c) and its speech comparison (util_experiment_speech.c):
 * the forked worker pool, folders, the figure, option parsing
 * (util_experiment.c). */
#ifndef CBRNN_UTIL_EXPERIMENT_H
#define CBRNN_UTIL_EXPERIMENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/* The options both kinds of experiment take, with their getopt codes
 * ('t', 'v', 's', 'j', 'o', 'F', 'h'), for their `struct option` tables
 * (the including file includes <getopt.h>). */
#define EXPERIMENT_COMMON_OPTIONS                                                        \
    {"task", required_argument, 0, 't'}, {"variants", required_argument, 0, 'v'},      \
        {"seeds", required_argument, 0, 's'}, {"jobs", required_argument, 0, 'j'},     \
        {"out-dir", required_argument, 0, 'o'}, {"no-figure", no_argument, 0, 'F'},    \
        {"help", no_argument, 0, 'h'}

/* n_jobs independent runs over up to `jobs` forked worker processes. */
typedef struct experiment_pool {
    int n_jobs, jobs;
    void *ctx;
    /* Runs job k in a worker (BLAS on one thread); returns its exit status. */
    int (*work)(void *ctx, int k);
    /* Units of job k done so far, read by the parent for progress (may be NULL). */
    long (*progress)(void *ctx, int k);
    long total;
    /* A name for job k in messages. */
    void (*name)(void *ctx, int k, char *buf, size_t len);
} experiment_pool;

/* 0 if every job exited with 0. SIGINT/SIGTERM: no new jobs start, the
 * running workers get SIGTERM (they stop; their checkpoints stay usable),
 * and it returns 1 once they are gone. */
int experiment_run_pool(const experiment_pool *p);
/* mkdir that accepts an existing folder; -1 (errno) otherwise. */
int experiment_make_dir(const char *path);
/* out_dir/figure.png via scripts/plot_experiment.py; a note if impossible. */
void experiment_figure(const char *out_dir);
/* cli_parse_int (util_parse.h) for option opt; on failure prints "prog: opt 's': expected an
 * integer in lo..hi" and returns -1. */
int experiment_parse_iopt(const char *prog, const char *opt, const char *s, int lo, int hi, int *out);
/* A comma-separated list of names, each one of names[0..n_names-1] and each
 * at most once, into their indices out[0..*n_out-1] (out holds n_names).
 * 0, or -1 after a message (unknown name, given twice, empty list). */
int experiment_parse_names(const char *prog, const char *opt, const char *s,
                           const char *const *names, int n_names, int *out, int *n_out);
/* Online CPUs (at least 1): the default --jobs. */
int experiment_default_jobs(void);
/* The results folder: creates out_dir; writes out_dir/settings.txt with
 * `settings` on the first run and refuses a folder whose settings.txt
 * differs; creates out_dir/curves and out_dir/<extra>. 0, or after a
 * message 2 (out_dir unusable, other settings) or 1 (I/O). */
int experiment_prepare_dir(const char *prog, const char *out_dir, const char *settings,
                           const char *extra);
/* Mean and sample standard deviation (n - 1) of v[0..n-1]; NaN and 0 if
 * n == 0, sd 0 if n == 1. */
void experiment_mean_sd(const double *v, int n, double *mean, double *sd);
/* out_dir/summary.md opened for writing, or NULL after a message. */
FILE *experiment_summary_open(const char *prog, const char *out_dir);
/* Closes md and writes root to out_dir/summary.json; always closes md and
 * releases root. 0, or 1 after a message. */
int experiment_summary_close(const char *prog, const char *out_dir, FILE *md, json_t *root);
/* Copies out_dir/summary.md to stdout (nothing if it cannot be read). */
void experiment_print_summary(const char *out_dir);

/* `cbrnn experiment --task speech ...` (argv as given to cmd_experiment). */
int experiment_speech(int argc, char **argv);

#endif
