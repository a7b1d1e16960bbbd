/* cbrnn_train.h: offline training from audio files, the run behind
 * `cbrnn train`: the corpus (files, folders, @lists, teachers, label
 * files) is read and split by file into training and validation; the
 * features of every file are computed once with the streaming front end
 * the live hosts use into a disk cache (a corpus larger than memory trains
 * in bounded memory), normalised with statistics of the training files;
 * the model is trained by truncated BPTT (warm-up steps with every
 * parameter, then steps with the cortex frozen), validated, logged to a
 * CSV file, and saved (replaced atomically) with its provenance.
 *
 * Library code: nothing here prints, exits or installs a signal handler.
 * Every line for the user goes to the host through cbrnn_train_report;
 * the host turns Ctrl-C into report->stop. Not for an audio thread. */
#ifndef CBRNN_TRAIN_H
#define CBRNN_TRAIN_H

#include "cbrnn.h"
#include "cbrnn_dsp.h"
#include "cbrnn_model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Most extra speeds of speed perturbation (cbrnn_train_opts.speeds). */
#define CBRNN_TRAIN_MAX_SPEEDS 8

/* What a run is given. cbrnn_train_opts_default fills in the defaults;
 * the host then sets what the user chose. The run checks the options
 * against each other (cbrnn_train_opts_check), then the inputs and the
 * model configuration. Strings are borrowed for
 * the length of the run. Messages name options as `cbrnn train` spells
 * them (--teacher-suffix, --strict, ...). */
typedef struct cbrnn_train_opts {
    /* ---- files ---- */
    const char *out;                  /* the model file (required) */
    const char *log;                  /* CSV log of the losses, or NULL */
    const char *const *inputs;        /* audio files, folders or @LIST files */
    int n_inputs;
    const char *const *val_files;     /* held out instead of val_fraction (files, folders, @lists) */
    int n_val_files;
    const char *pairs;                /* map: lines "input<TAB>teacher" (then no inputs), or NULL */
    const char *teacher_suffix;       /* map: the teacher of a.wav is aS.wav, or NULL */
    const char *labels_dir;           /* classify: DIR/NAME.txt for NAME.wav */
    const char *cache_dir;            /* where the feature cache lives; NULL: the folder of out */
    const char *command;              /* the command line, recorded in the model ("command") */
    long long date;                   /* the model's "date", seconds since 1970 UTC; < 0: when it is saved */
    /* ---- what is learnt ---- */
    int target;                       /* cbrnn_target: predict, map or classify */
    int horizon;                      /* predict: frames ahead */
    cbrnn_model_config mc;            /* n_in and n_out are set by the run */
    int match;                        /* rnn: size the cortex to the cbrnn model's parameter count */
    float stream_norm, stream_floor;  /* running normaliser: time constant in s (0 off), floor */
    int online_rule;                  /* 0 sgd, 1 rls: the rule stored for the hosts */
    double rls_prior, rls_forget;
    double model_rate;                /* the model's rate in Hz (0: the first training file's) */
    cbrnn_feat_config fc;             /* the features (sample_rate and ref_rate are set by the run) */
    const char *init;                 /* the file init_model came from (metadata "init_from") */
    const cbrnn_model *init_model;    /* continue training a copy of it (its normaliser kept), or NULL */
    /* ---- how ---- */
    cbrnn_train_config tc;            /* optimiser, batch, seq_len, windows, seed */
    int lr_decay;                     /* 1: cosine from tc.opt.lr to 0 over each phase */
    double average;                   /* end on the mean weights of this last fraction of the last phase (0 off) */
    long warmup, steps;               /* warm-up steps (everything trained), then frozen-cortex steps */
    long eval_every;                  /* validate every this many steps (>= 1) */
    double val_fraction;              /* held out by file when val_files is empty */
    double speeds[CBRNN_TRAIN_MAX_SPEEDS]; /* predict: every training file also at these speeds */
    int n_speeds;
    int quiet;                        /* no notes or step lines (warnings and errors still come) */
    int strict;                       /* a bad corpus file stops the run (default: skipped, warned) */
} cbrnn_train_opts;

/* The defaults of `cbrnn train` (see its --help). */
CBRNN_API void cbrnn_train_opts_default(cbrnn_train_opts *o);

/* Whether the options go together (a map target has one teacher source,
 * a classify target its labels, a reservoir no warm-up, ...). 0, or -1
 * with msg (may be NULL) saying which options clash. cbrnn_train_run
 * checks this first. */
CBRNN_API int cbrnn_train_opts_check(const cbrnn_train_opts *o, char *msg, size_t len);

/* The kinds of line a run gives its host. */
typedef enum cbrnn_train_msg {
    CBRNN_TRAIN_MSG_ERROR,   /* why the run stops */
    CBRNN_TRAIN_MSG_WARNING, /* something left out ("skipping FILE: why"); the run goes on */
    CBRNN_TRAIN_MSG_NOTE,    /* what the run does (not with quiet, except how many files were skipped) */
    CBRNN_TRAIN_MSG_STEP,    /* a validation line "step 100/900 warmup loss ..." (no progress display, not quiet) */
    CBRNN_TRAIN_MSG_RESULT   /* the closing line of a finished run: "saved FILE: ..." */
} cbrnn_train_msg;

/* Where a run's lines go, and how it is stopped. Every member may be NULL.
 * All are called on the thread that called cbrnn_train_run. */
typedef struct cbrnn_train_report {
    void *user;
    /* One line (no trailing newline, no program name). */
    void (*message)(void *user, cbrnn_train_msg kind, const char *text);
    /* A progress display (NULL: none; then, unless quiet, each validation
     * says a STEP line instead): "what" done of total, seconds since it
     * started, a detail (a file name, the losses). what NULL: the display
     * stops mid-way (an error or a stop follows); end its line. */
    void (*progress)(void *user, const char *what, double done, double total, double elapsed_s,
                     const char *detail);
    /* Called once the corpus is read and split, as the long work (the
     * features, then training) begins: a host that turns Ctrl-C into
     * stop() can install its handler here, so that an interrupt before
     * ends the process the default way. */
    void (*begin)(void *user);
    /* Polled during the features and after every step: non-zero stops the
     * run (the current step finishes; from the first step on the model so
     * far is validated, saved and marked "interrupted"). */
    int (*stop)(void *user);
    /* Told once where the model went, as it is written (a run that ends
     * without it wrote none): how is a cbrnn_train_saved. A host that
     * writes files of its own beside the model (a log) puts them with it. */
    void (*saved)(void *user, const char *path, int how);
} cbrnn_train_report;

/* Where cbrnn_train_report.saved says the model went. */
typedef enum cbrnn_train_saved {
    CBRNN_TRAIN_SAVED_OUT = 0,   /* at out */
    CBRNN_TRAIN_SAVED_ASIDE = 1, /* stopped, with a model already at out: beside it as
                                  * NAME.interrupted.safetensors, out kept */
    CBRNN_TRAIN_SAVED_RESCUE = 2 /* out could not be written (a full disk, its folder gone):
                                  * a rescue copy (cbrnn_host_save_rescue); the run fails */
} cbrnn_train_saved;

/* How a run ended: a status, not a negative CBRNN_ERR_* code (a stopped
 * run is not an error, and a failure may come from many codes); a host
 * maps each to its own answer, as cbrnn train does to its exit status. */
typedef enum cbrnn_train_status {
    CBRNN_TRAIN_DONE = 0,      /* trained and saved */
    CBRNN_TRAIN_FAILED = 1,    /* a failure while working: no memory, a full disk, a non-finite loss */
    CBRNN_TRAIN_BAD_INPUT = 2, /* the inputs cannot be used (the message names the file and why) */
    CBRNN_TRAIN_STOPPED = 3    /* stop() said so: saved if training had begun, else nothing written */
} cbrnn_train_status;

/* Trains and saves a model as o says, telling r (may be NULL) what it
 * does. Blocks for the whole run; uses a second thread for the features.
 * Returns a cbrnn_train_status; the ERROR line before it says why. */
CBRNN_API int cbrnn_train_run(const cbrnn_train_opts *o, const cbrnn_train_report *r);

#ifdef __cplusplus
}
#endif

#endif
