/* util_experiment.h: the front of `cbrnn experiment` shared by its paper
 * tasks (cmd_experiment.c) and its speech comparison
 * (util_experiment_speech.c): option parsing, and driving a comparison of
 * the experiments module (cbrnn_experiment.h) with messages, progress and
 * signals (util_experiment.c). */
#ifndef CBRNN_UTIL_EXPERIMENT_H
#define CBRNN_UTIL_EXPERIMENT_H

#include <stdio.h>

#include "cbrnn/cbrnn_experiment.h"

/* The options both kinds of experiment take, with their getopt codes
 * ('t', 'v', 's', 'j', 'o', 'F', 'h', and for the modes below 'P', 'U',
 * 'K', 'p', 'L', 'A', 'W', 'Y'), for their `struct option` tables (the
 * including file includes <getopt.h>). */
#define EXPERIMENT_COMMON_OPTIONS                                                        \
    {"task", required_argument, 0, 't'}, {"variants", required_argument, 0, 'v'},      \
        {"seeds", required_argument, 0, 's'}, {"jobs", required_argument, 0, 'j'},     \
        {"out-dir", required_argument, 0, 'o'}, {"no-figure", no_argument, 0, 'F'},    \
        {"help", no_argument, 0, 'h'}, {"plan", no_argument, 0, 'P'},                  \
        {"unit", required_argument, 0, 'U'}, {"collect", no_argument, 0, 'K'},         \
        {"partial", no_argument, 0, 'p'}, {"slurm", no_argument, 0, 'L'},              \
        {"sbatch-args", required_argument, 0, 'A'}, {"no-wait", no_argument, 0, 'W'},  \
        {"array-limit", required_argument, 0, 'Y'}

/* The --help text of the modes, shared by both kinds. */
#define EXPERIMENT_MODES_HELP                                                              \
    "Units: every (variant, seed) run is a unit, numbered seeds outer, variants inner.\n" \
    "  --plan              list the units: K, name, state (done, partial, failed,\n"      \
    "                      missing), epochs or steps done/needed, why it failed\n"         \
    "  --unit K            run (or resume) unit K only, in this process\n"                 \
    "  --collect           summarise finished units (curves, summary.json and\n"          \
    "                      summary.md identical to a run in one process); names the\n"    \
    "                      units that are missing or failed and exits 1 if any is\n"      \
    "  --partial           with --collect: summarise the finished units anyway; the\n"    \
    "                      summary says which were left out\n"                            \
    "On a Slurm cluster (D on storage every node sees; run from a submit host):\n"       \
    "  --slurm             submit the units as one job array (task K runs --unit K)\n"    \
    "                      and a merge job (--collect) that runs after all of them\n"     \
    "                      succeeded (afterok; a failed unit cancels it); prints the\n"   \
    "                      job ids, then waits and reports. Scripts and logs:\n"          \
    "                      D/slurm/units.sh, collect.sh, unit-K.log, collect.log\n"       \
    "  --sbatch-args \"...\" more sbatch options for both jobs, split at blanks (no\n"   \
    "                      quoting; at most 4095 characters, 240 words), e.g.\n"         \
    "                      \"--partition=cpu --time=12:00:00 --mem=1G\"\n"                \
    "  --array-limit L     at most L units running at once (--array=0-(n-1)%%L)\n"        \
    "  --no-wait           return once submitted (then: --plan to watch, --collect\n"     \
    "                      if the merge job was cancelled)\n"                             \
    "The authors' whole budget costed, and the commands: docs/CLUSTER.md.\n"               \
    "Exit status: 0 done; 1 a unit failed or units are missing; 2 bad usage;\n"       \
    "130 (SIGINT) or 143 (SIGTERM): stopped (a local run stops its workers and keeps\n" \
    "what they saved: rerun the same command to resume; --slurm stops waiting, the\n"   \
    "jobs go on).\n"

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

/* What `cbrnn experiment` was asked to do with a comparison. */
enum { EXPERIMENT_LOCAL, EXPERIMENT_PLAN, EXPERIMENT_UNIT, EXPERIMENT_COLLECT, EXPERIMENT_SLURM };

/* How to drive a comparison. */
typedef struct experiment_run {
    const char *prog;   /* prefix of messages */
    int jobs;           /* units at a time (local) */
    int figure;         /* draw figure.png */
    int mode, unit, partial;
    /* --slurm: */
    int wait, limit;
    const char *sbatch_args;
    int argc;           /* the command line (argv[0] "experiment"), for the */
    char **argv;        /* jobs; drop[i]: argv[i] is a --slurm option */
    unsigned char *drop;
} experiment_run;

/* Sets up how for argc/argv (allocates how->drop). 0 or -1. */
int experiment_run_init(experiment_run *how, const char *prog, int argc, char **argv);
void experiment_run_free(experiment_run *how);
/* After the options: checks the modes go together. 0 or -1 after a message. */
int experiment_modes_check(experiment_run *how);

/* experiment_common_option's answer to --help (the help was printed). */
#define EXPERIMENT_HELP 2
/* One option that getopt_long returned as ch (having consumed
 * argv[first..optind-1]), if it is one that every kind of experiment
 * handles alike: the modes (experiment_mode_option), --jobs, --out-dir
 * (into *out_dir), --no-figure, --help (usage(stdout)) and an option
 * getopt refused (usage(stderr)). 1 handled, EXPERIMENT_HELP, 0 not one
 * of them (the kind's own), -1 bad usage after a message. */
int experiment_common_option(experiment_run *how, int ch, const char *arg, int first,
                             const char **out_dir, void (*usage)(FILE *));
/* The end of an experiment's option parsing: ch the answer of the kind's
 * own option (1 taken, 0 unknown: usage(stderr), -1 bad: said) or of
 * experiment_common_option. 0 to go on, 2 bad usage, -1 --help shown. */
int experiment_option_result(int ch_result, void (*usage)(FILE *));
/* After the getopt loop: any word left is bad usage. 0, or 2 after a
 * message. */
int experiment_no_operands(const char *prog, int argc, char **argv);

/* Does what how->mode says with e: a local run (prepare the folder, every
 * unit in a pool, the summary and figure, the table on stdout), the plan,
 * one unit, collecting, or Slurm. Ctrl-C/SIGTERM stop a pool (resumable).
 * Takes e (destroys it). Returns the exit status: 0, 1 (a failure while
 * working, units missing) or 2 (a folder of other settings or one that
 * cannot be made, a unit number out of range). */
int experiment_drive(cbrnn_exp *e, const experiment_run *how);

/* `cbrnn experiment --task speech ...` (argv as given to cmd_experiment). */
int experiment_speech(int argc, char **argv);

#endif
