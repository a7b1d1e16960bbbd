/* util_experiment.h: the front of `cbrnn experiment` shared by its paper
 * tasks (cmd_experiment.c) and its speech comparison
 * (util_experiment_speech.c): option parsing, and driving a comparison of
 * the experiments module (cbrnn_experiment.h) with messages, progress and
 * signals (util_experiment.c). */
#ifndef CBRNN_UTIL_EXPERIMENT_H
#define CBRNN_UTIL_EXPERIMENT_H

#include "cbrnn/cbrnn_experiment.h"

/* The options both kinds of experiment take, with their getopt codes
 * ('t', 'v', 's', 'j', 'o', 'F', 'h'), for their `struct option` tables
 * (the including file includes <getopt.h>). */
#define EXPERIMENT_COMMON_OPTIONS                                                        \
    {"task", required_argument, 0, 't'}, {"variants", required_argument, 0, 'v'},      \
        {"seeds", required_argument, 0, 's'}, {"jobs", required_argument, 0, 'j'},     \
        {"out-dir", required_argument, 0, 'o'}, {"no-figure", no_argument, 0, 'F'},    \
        {"help", no_argument, 0, 'h'}

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

/* How to drive a comparison. */
typedef struct experiment_run {
    const char *prog;   /* prefix of messages */
    int jobs;           /* units at a time */
    int figure;         /* draw figure.png */
} experiment_run;

/* Prepares the results folder, runs every unit in a pool (Ctrl-C or
 * SIGTERM stops it, resumable), writes the summary and the figure and
 * prints the summary table. Takes e (destroys it). Returns the exit
 * status: 0, 1 (a failure while working) or 2 (a folder of other settings
 * or one that cannot be made). */
int experiment_drive(cbrnn_exp *e, const experiment_run *how);

/* `cbrnn experiment --task speech ...` (argv as given to cmd_experiment). */
int experiment_speech(int argc, char **argv);

#endif
