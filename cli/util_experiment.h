/* util_experiment.h: pieces shared by `cbrnn experiment`'s paper tasks
 * (cmd_experiment.c) and its speech comparison (util_experiment_speech.c):
 * the forked worker pool, folders, the figure, option parsing. */
#ifndef CBRNN_UTIL_EXPERIMENT_H
#define CBRNN_UTIL_EXPERIMENT_H

#include <stddef.h>

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
/* Integer in lo..hi, whole string; 0 or -1. */
int experiment_parse_int(const char *s, int lo, int hi, int *out);

/* `cbrnn experiment --task speech ...` (argv as given to cmd_experiment). */
int experiment_speech(int argc, char **argv);

#endif
