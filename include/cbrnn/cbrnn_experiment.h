/* cbrnn_experiment.h: the experiments module (experiment/): the paper's
 * sequence tasks, their curriculum, the paper's models, one training run of
 * the paper's protocol (Voce, Giannakakis & Clopath 2026, arXiv:2605.10356;
 * protocol as in the authors' code, summarised in issue 5), and whole
 * comparisons (the paper's tasks, or speech) as independent units with
 * their results folder and summaries (second half of this file).
 *
 * Tasks. Input bits are Bernoulli(0.5), one per step on channel 0. Every
 * batch draws one sequence length M uniformly from [N+2, 4N+2). With the
 * bits b[0..M-1] of a trial (0-based, b[M-1] the last):
 *   N-DMS:    label = (b[M-N] == b[M-1])          (Python: x[:, -N] == x[:, -1])
 *   N-parity: label = (b[M-N] + ... + b[M-1]) mod 2 (the last N bits)
 * so both tasks look at a window of the last N bits. Labels are 0/1.
 *   multitask: DMS and parity of the same bits; two 2-class heads (outputs
 *              0..1 DMS, 2..3 parity); labels [B, 2].
 *   switch:    DMS at levels N = 2..11, parity at 12..21, DMS at 22..31, ...
 *              (the task alternates every 10 levels); a second input
 *              channel carries a 3-step pulse (1 at steps 0, 1, 2) in every
 *              trial while the task is parity, and stays 0 in DMS trials:
 *              the cue that tells the network which rule holds. (The issue
 *              says only "a 3-step switch pulse on an extra input channel";
 *              this placement is our reading.)
 *
 * Curriculum: start at N = 2; after an epoch whose test accuracy is
 * >= 0.98, N becomes N + 1 (never above the cap).
 *
 * Nothing in the tasks and runs prints, exits, or reads the clock; every random draw comes
 * from a cbrnn_rng, so a run is a pure function of its configuration. */
#ifndef CBRNN_EXPERIMENT_H
#define CBRNN_EXPERIMENT_H

#include <stddef.h>
#include <stdint.h>
#include "cbrnn.h"
#include "cbrnn_dsp.h"
#include "cbrnn_model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CBRNN_TASK_DMS = 0,
    CBRNN_TASK_PARITY = 1,
    CBRNN_TASK_MULTITASK = 2,
    CBRNN_TASK_SWITCH = 3,
    CBRNN_NTASKS = 4
} cbrnn_task_kind;

typedef enum {
    CBRNN_VARIANT_CBRNN = 0,       /* cortex + cerebellum, all trained */
    CBRNN_VARIANT_RNN = 1,         /* cortex only, hidden 202 (parameter-matched) */
    CBRNN_VARIANT_FROZEN = 2,      /* phase 0: core+head at N=2 (CB frozen in the
                                    * loop) until 98%; then core frozen for good */
    CBRNN_VARIANT_INTERLEAVED = 3, /* as frozen, but core and CB both train at
                                    * levels N = 12, 22, 32, ... */
    CBRNN_NVARIANTS = 4
} cbrnn_variant;

/* Which groups train in an epoch (the `phase` column of the curves). */
typedef enum {
    CBRNN_PHASE_ALL = 0,       /* cbrnn/rnn: everything; frozen/interleaved
                                * warm-up: core + head, CB frozen */
    CBRNN_PHASE_CORE_FROZEN = 1, /* CB + head train, core frozen */
    CBRNN_PHASE_INTERLEAVE = 2   /* interleaved at N = 12, 22, ...: all train */
} cbrnn_phase;

/* The paper's constants (issue 5, from the authors' code). */
#define CBRNN_PAPER_HIDDEN 64        /* CB-RNN cortex units */
#define CBRNN_PAPER_RNN_HIDDEN 202   /* baseline cortex units: 41,816 params */
#define CBRNN_PAPER_CB0 256          /* granule layer */
#define CBRNN_PAPER_CB1 64           /* Purkinje layer (DCN output = hidden) */
#define CBRNN_PAPER_TAU 1.5f         /* alpha = 1/tau = 2/3 */
#define CBRNN_PAPER_H0_SCALE 0.1f    /* initial state 0.1 * U(0,1) per trial */
#define CBRNN_PAPER_THRESHOLD 0.98   /* curriculum: advance at >= 98% */
#define CBRNN_PAPER_START_N 2
#define CBRNN_PAPER_INTERLEAVE 10    /* interleaved: every 10th level */
#define CBRNN_PAPER_SWITCH_EVERY 10  /* switch: task alternates every 10 levels */
#define CBRNN_PAPER_PULSE_STEPS 3    /* switch: cue length */

/* Names ("dms", "parity", "multitask", "switch"; "cbrnn", "rnn", "frozen",
 * "interleaved") and their parsers (-1 if unknown). */
CBRNN_API const char *cbrnn_task_name(int task);
CBRNN_API int cbrnn_task_parse(const char *name);
CBRNN_API const char *cbrnn_variant_name(int variant);
CBRNN_API int cbrnn_variant_parse(const char *name);

/* Input channels (1; switch 2), output units (2; multitask 4) and heads
 * (labels per trial: 1; multitask 2) of a task. */
CBRNN_API int cbrnn_task_n_in(int task);
CBRNN_API int cbrnn_task_n_out(int task);
CBRNN_API int cbrnn_task_n_heads(int task);
/* The single task (DMS or parity) asked at level N: the task itself, or for
 * switch the one of N's block. Multitask returns CBRNN_TASK_MULTITASK. */
CBRNN_API int cbrnn_task_at_level(int task, int N);

/* Draws one sequence length M uniformly from [N+2, 4N+2). N >= 1. */
CBRNN_API int cbrnn_task_draw_len(cbrnn_rng *r, int N);
/* Fills one batch of B trials of M steps at level N.
 * x: out [B, M, n_in] batch-major (bits 0/1 on channel 0; switch cue on 1).
 * labels: out [B, n_heads] (0/1).
 * Requires M >= N + 1 (so b[M-N-..] exists) and N >= 1. Returns 0 or
 * CBRNN_ERR_ARG. */
CBRNN_API int cbrnn_task_batch(float *x, int *labels, cbrnn_rng *r, int task, int N, int B, int M);
/* Initial states: h0 [B, H] = scale * U(0,1), drawn from r. */
CBRNN_API void cbrnn_task_h0(float *h0, cbrnn_rng *r, int B, int H, float scale);

/* The curriculum rule: N + 1 if accuracy >= threshold and (cap <= 0 or
 * N < cap), else N. */
CBRNN_API int cbrnn_curriculum_next(int N, double accuracy, double threshold, int cap);

/* The paper's model for a task and variant (not yet initialised):
 * loop wiring, leaky ReLU, alpha 2/3, n_in and n_out from the task;
 * cbrnn/frozen/interleaved: hidden 64, CB 256,64 (65 -> 256 -> 64 -> 64);
 * rnn: hidden 202, no CB. Parity/DMS: 41,922 and 41,816 parameters. */
CBRNN_API void cbrnn_paper_model_config(cbrnn_model_config *c, int task, int variant);
/* The paper's optimiser: SGD, Nesterov momentum 0.1, lr 0.01, global-norm
 * clipping at 7.5. */
CBRNN_API void cbrnn_paper_optim_config(cbrnn_optim_config *c);

/* ---- One run of the protocol: a model trained epoch by epoch ---- */
typedef struct cbrnn_paper_config {
    int task;            /* cbrnn_task_kind */
    int variant;         /* cbrnn_variant */
    uint64_t seed;       /* initial weights and every data draw */
    int max_n;           /* curriculum cap; <= 0: none */
    int batch;           /* 64 */
    int train_steps;     /* optimiser steps per epoch: 100 */
    int test_batches;    /* test batches per epoch: 50 */
    double threshold;    /* 0.98 */
    cbrnn_optim_config opt; /* cbrnn_paper_optim_config */
} cbrnn_paper_config;

/* The protocol of issue 5 for task and variant, seed 0, no cap. */
CBRNN_API void cbrnn_paper_config_default(cbrnn_paper_config *c, int task, int variant);

/* What one epoch did. N and phase are the level and phase it trained and
 * was tested at (the curriculum update applies to the next epoch). */
typedef struct cbrnn_paper_epoch {
    int epoch;              /* 1-based */
    int N;
    int phase;              /* cbrnn_phase */
    double train_loss;      /* mean over the epoch's training steps (multitask:
                             * sum of the two heads' cross-entropies) */
    double test_accuracy;   /* fraction correct over the test batches
                             * (multitask: the lower of the two heads) */
    double head_accuracy[2];/* per head (head 1 only for multitask) */
} cbrnn_paper_epoch;

typedef struct cbrnn_paper_run cbrnn_paper_run;

/* Creates the model (initialised from seed), optimiser and workspace.
 * NULL on failure, *err set. Not RT-safe (allocates). */
CBRNN_API cbrnn_paper_run *cbrnn_paper_run_create(const cbrnn_paper_config *c, int *err);
CBRNN_API void cbrnn_paper_run_destroy(cbrnn_paper_run *r);
/* One epoch: train_steps optimiser steps, then test_batches test batches,
 * then the curriculum and phase updates. *out (may be NULL) gets what the
 * epoch did. */
CBRNN_API int cbrnn_paper_run_epoch(cbrnn_paper_run *r, cbrnn_paper_epoch *out);
/* One optimiser step on a given batch (what an epoch's training step does
 * after drawing it): x [B, M, n_in], labels [B, n_heads], h0 [B, H].
 * Cross-entropy on the last step only; *loss (may be NULL) gets it.
 * B <= batch; M must be <= the run's longest sequence (4 * max level + 1;
 * without a cap, workspaces grow as needed). */
CBRNN_API int cbrnn_paper_run_train_batch(cbrnn_paper_run *r, const float *x, const int *labels,
                                          const float *h0, int B, int M, float *loss);
/* Current level, phase and completed epochs. */
CBRNN_API int cbrnn_paper_run_level(const cbrnn_paper_run *r);
CBRNN_API int cbrnn_paper_run_phase(const cbrnn_paper_run *r);
CBRNN_API int cbrnn_paper_run_epochs(const cbrnn_paper_run *r);
/* Forces the level (benchmarks: time an epoch at N = 10), 1 to
 * CBRNN_PAPER_MAX_LEVEL (the paper's runs reach about 150; a level's
 * sequences are 4N+1 steps long and memory grows with them). 0, ERR_ARG
 * or ERR_NOMEM. */
#define CBRNN_PAPER_MAX_LEVEL 2000
CBRNN_API int cbrnn_paper_run_set_level(cbrnn_paper_run *r, int N);
/* Forces the phase (cbrnn_phase; benchmarks: time frozen's epochs with the
 * core frozen) and the groups it trains. Variants other than frozen and
 * interleaved train everything in every phase. 0 or ERR_ARG. */
CBRNN_API int cbrnn_paper_run_set_phase(cbrnn_paper_run *r, int phase);
/* The run's model (owned by the run; params may be read, not resized). */
CBRNN_API cbrnn_model *cbrnn_paper_run_model(cbrnn_paper_run *r);
CBRNN_API const cbrnn_paper_config *cbrnn_paper_run_config(const cbrnn_paper_run *r);

/* Checkpoint: everything a run needs to continue bit-identically
 * (configuration, epoch, level, phase, frozen groups, random state,
 * parameters, optimiser moments) in one file, written atomically
 * (temporary file, fsync, rename). Loading checks the magic, version,
 * sizes and finiteness and that the configuration equals *expect (when
 * not NULL); on failure msg says what is wrong. */
CBRNN_API int cbrnn_paper_run_save(const cbrnn_paper_run *r, const char *path, char *msg,
                                   size_t msglen);
CBRNN_API cbrnn_paper_run *cbrnn_paper_run_load(const char *path, const cbrnn_paper_config *expect,
                                                int *err, char *msg, size_t msglen);


/* ==== Comparisons: every (variant, seed) run as a unit ====
 *
 * A comparison (cbrnn_exp) is a set of independent runs, the units,
 * numbered 0..n-1 seeds outer, variants inner (unit k is seed k / V,
 * variant k % V, for V variants), all writing into one results folder:
 *   settings.txt                    what the results depend on; a folder of
 *                                   other settings is refused
 *   curves/<variant>-seed<k>.csv    one per unit, a row per epoch (paper) or
 *                                   per validation (speech), flushed as it goes
 *   checkpoints/ (paper), models/ (speech; none for its baselines)
 *   test/<variant>-seed<k>.csv      speech with a test split: the final
 *                                   model per group and pooled (the unit is
 *                                   done once it is complete)
 *   failed/<variant>-seed<k>.txt    why a unit failed (removed when it runs again)
 *   summary.json, summary.md        written from the curves alone
 * A unit can run anywhere that sees the folder (another process, another
 * machine); the summary is a function of the curves, so units run one by
 * one, in a pool, or as Slurm array tasks give the same bytes as a single
 * local run (speech: apart from the wall-clock column).
 *
 * The library never prints: messages and progress go to the host through
 * cbrnn_exp_report. Functions return 0 or a negative CBRNN_ERR_* (ARG: a
 * usage problem such as a folder of other settings; IO: a file; others as
 * named), with the reason in msg when the function takes one. */

typedef struct cbrnn_exp cbrnn_exp;

/* What a comparison tells its host. Every member may be NULL. */
typedef struct cbrnn_exp_report {
    void *user;
    /* One line for the user (no trailing newline): why a unit failed, a
     * checkpoint that could not be used, ... Called in the process doing
     * the work (a pool worker calls it too). */
    void (*message)(void *user, const char *text);
    /* Pool progress, about 5 times a second in the pool's process: work
     * done of total (epochs or steps), runs finished of n_runs, seconds
     * since the pool started. */
    void (*progress)(void *user, double done, double total, int runs_done, int n_runs,
                     double elapsed_s);
    /* Polled by the pool: non-zero asks it to stop (the host's SIGINT). */
    int (*stop)(void *user);
} cbrnn_exp_report;

/* The paper's tasks: one task, a set of variants and seeds. */
typedef struct cbrnn_exp_paper_config {
    int task;                         /* cbrnn_task_kind */
    int n_variants;
    int variants[CBRNN_NVARIANTS];    /* cbrnn_variant, each at most once */
    int seeds;                        /* seeds 0..seeds-1: 1..1000 */
    int epochs;                       /* per run: 1000 (the authors') */
    int max_n;                        /* curriculum cap; <= 0: none */
    int checkpoint_every;             /* epochs between checkpoints: 10 */
    int train_steps, test_batches;    /* per epoch: the protocol's 100 and 50 */
    const char *out_dir;              /* the results folder (borrowed) */
} cbrnn_exp_paper_config;

/* All four variants, 4 seeds, 1000 epochs, no cap, checkpoints every 10,
 * the protocol's 100 training steps and 50 test batches, no folder. */
CBRNN_API void cbrnn_exp_paper_config_default(cbrnn_exp_paper_config *c, int task);
/* NULL on failure with *err (may be NULL) set and msg saying why. */
CBRNN_API cbrnn_exp *cbrnn_exp_paper_create(const cbrnn_exp_paper_config *c, int *err, char *msg,
                                            size_t msglen);

/* The speech comparison: next-frame prediction of normalised log-mel frames
 * (the readout wiring, the project's live use) on a corpus, validation held
 * out by file, and optionally a test split scored once at the end, per
 * language group. Its variants are a table (experiment/speech.c); these
 * give their number, names ("cbrnn", "cbrnn-full", "rnn", "reservoir",
 * "cbrnn-res", and the baselines "persistence" and "linear") and one line
 * of description each (for --help). */
#define CBRNN_EXP_SPEECH_MAX_VARIANTS 16
CBRNN_API int cbrnn_exp_speech_n_variants(void);
CBRNN_API const char *cbrnn_exp_speech_variant_name(int v);
CBRNN_API const char *cbrnn_exp_speech_variant_help(int v);

typedef struct cbrnn_exp_speech_config {
    int n_variants;
    int variants[CBRNN_EXP_SPEECH_MAX_VARIANTS];
    int seeds, steps, warmup, eval_every;
    int hidden, n_cb, cb[CBRNN_MAX_CB_HIDDEN];
    int batch, seq_len;
    double lr, clip, radius;
    const char *corpus;               /* how the corpus was named, for the summary */
    const char *out_dir;              /* the results folder (borrowed) */
} cbrnn_exp_speech_config;

/* One file of the corpus: raw (not normalised) features x [T, F] from the
 * front end (cbrnn_feat), T >= 3. Copied by cbrnn_exp_speech_create. */
typedef struct cbrnn_exp_speech_file {
    const char *path;                 /* for settings.txt and messages */
    int val;                          /* 1: held out for validation */
    int test;                         /* 1: test split: never trained or
                                       * validated on, scored once at the end
                                       * (not with val) */
    const char *group;                /* test files: language group for the
                                       * per-group report, or NULL (pooled only) */
    const float *x;
    int T;
} cbrnn_exp_speech_file;

/* Every variant, 2 seeds, 1500 steps (300 of warm-up), validation every
 * 100, cortex 128, cerebellum 256, batch 16 x 100 frames, Adam 1e-3, clip 1,
 * spectral radius 0.9. */
CBRNN_API void cbrnn_exp_speech_config_default(cbrnn_exp_speech_config *c);
/* files[0..n_files-1] in the order they are to be listed; at least one
 * training and one validation file; test files optional (with them every
 * unit also writes test/<variant>-seed<k>.csv: per group and pooled, the
 * loss, persistence loss and skill of the final model). fc: the front end that made the
 * features (saved in every model). Normalises with the training files'
 * statistics only. NULL on failure, *err and msg set. */
CBRNN_API cbrnn_exp *cbrnn_exp_speech_create(const cbrnn_exp_speech_config *c,
                                             const cbrnn_exp_speech_file *files, int n_files,
                                             int F, const cbrnn_feat_config *fc, int *err,
                                             char *msg, size_t msglen);

CBRNN_API void cbrnn_exp_destroy(cbrnn_exp *e);

/* Creates the results folder and its subfolders, writes settings.txt the
 * first time and refuses (CBRNN_ERR_ARG) a folder of other settings, one
 * whose settings.txt cannot be read, one without settings.txt that holds
 * anything but what a run of ours leaves before writing it (temporaries of
 * settings.txt), or a path that cannot be a folder. */
CBRNN_API int cbrnn_exp_prepare(cbrnn_exp *e, char *msg, size_t msglen);
/* What cbrnn_exp_prepare checks of settings.txt, without writing anything:
 * CBRNN_ERR_ARG with msg (the same words) if the folder holds results of
 * other settings, or cannot be used as above; 0 if it holds these, or
 * nothing (or does not exist). */
CBRNN_API int cbrnn_exp_check_settings(const cbrnn_exp *e, char *msg, size_t msglen);

/* Locks for cbrnn_exp_lock's `what` (>= 0: a unit). */
#define CBRNN_EXP_LOCK_FOLDER (-1) /* the whole folder: a local run */
#define CBRNN_EXP_LOCK_READ (-2)   /* shared with units and other readers */
/* Takes a lock on the results folder (<out>/.lock; call after
 * cbrnn_exp_prepare) for as long as e lives or until cbrnn_exp_unlock:
 * CBRNN_EXP_LOCK_FOLDER excludes every other lock; unit k (what = k)
 * excludes the folder lock and unit k elsewhere, not other units (the
 * tasks of a Slurm array run together); CBRNN_EXP_LOCK_READ excludes only
 * the folder lock. Never waits. Asking for CBRNN_EXP_LOCK_READ while
 * holding another lock converts it without letting go in between. 0 taken; 1 if another process holds a
 * conflicting lock (*holder, may be NULL, gets its pid or 0 if unknown;
 * msg says "folder in use by another cbrnn experiment (pid N)");
 * CBRNN_ERR_UNSUPPORTED if the file system has no locks (then nothing
 * guards the folder); CBRNN_ERR_IO / CBRNN_ERR_ARG with msg. Workers of
 * cbrnn_exp_run_pool do not hold it: they die with their parent. */
CBRNN_API int cbrnn_exp_lock(cbrnn_exp *e, int what, long *holder, char *msg, size_t msglen);
/* Drops cbrnn_exp_lock's lock (if any). */
CBRNN_API void cbrnn_exp_unlock(cbrnn_exp *e);

CBRNN_API int cbrnn_exp_n_units(const cbrnn_exp *e);
/* "<variant>-seed<k>" of unit k. */
CBRNN_API void cbrnn_exp_unit_name(const cbrnn_exp *e, int k, char *buf, size_t len);
/* Where unit k's curve is. */
CBRNN_API const char *cbrnn_exp_unit_curve(const cbrnn_exp *e, int k);

/* Runs unit k in this process, or resumes it: a finished unit is left as
 * it is; a paper unit continues from its checkpoint bit-identically; a
 * speech unit restarts. OpenBLAS is set to one thread (results must not
 * depend on how many). On failure writes failed/<name>.txt and reports the
 * reason through r->message. 0 or a CBRNN_ERR_*. */
CBRNN_API int cbrnn_exp_run_unit(cbrnn_exp *e, int k, const cbrnn_exp_report *r);

/* Runs every unfinished unit, up to `jobs` at a time, each in a forked
 * worker process that dies with the calling process (SIGTERM). A failed
 * unit does not stop the others; a failed fork or r->stop does: on a stop
 * the running workers get SIGTERM (their checkpoints stay usable). 0 if
 * every unit succeeded, CBRNN_ERR_IO if any failed (each named through
 * r->message as it fails), 1 if stopped. */
CBRNN_API int cbrnn_exp_run_pool(cbrnn_exp *e, int jobs, const cbrnn_exp_report *r);

/* What the results folder says about a unit. */
typedef enum {
    CBRNN_EXP_UNIT_MISSING = 0, /* no curve yet */
    CBRNN_EXP_UNIT_PARTIAL = 1, /* a curve, not finished (running, or stopped) */
    CBRNN_EXP_UNIT_FAILED = 2,  /* its last attempt failed (failed/<name>.txt) */
    CBRNN_EXP_UNIT_DONE = 3     /* its curve is complete */
} cbrnn_exp_unit_kind;

/* The state of unit k (cbrnn_exp_unit_kind, or a negative CBRNN_ERR_*).
 * done/total (may be NULL) get the epochs or steps its curve has and
 * needs; why (may be NULL) gets the reason of a failure. Reads files only;
 * any process may call it while units run. */
CBRNN_API int cbrnn_exp_unit_state(const cbrnn_exp *e, int k, long *done, long *total, char *why,
                                   size_t whylen);

/* Writes summary.json and summary.md from the curves of the units. With
 * partial == 0 every unit must be DONE (else CBRNN_ERR_IO, msg names the
 * first that is not). With partial != 0 the units not DONE are left out,
 * and if any is, both files say so ("partial": true and "left_out" with
 * their names in summary.json; a line in summary.md); at least one unit
 * must be DONE. A complete comparison gives the same bytes either way. */
CBRNN_API int cbrnn_exp_summarise(cbrnn_exp *e, int partial, char *msg, size_t msglen);

/* figure.png from the curves through scripts/plot_experiment.py (Debian's
 * /usr/bin/python3 with matplotlib; CBRNN_PLOT_SCRIPT overrides the
 * script). CBRNN_ERR_UNSUPPORTED if they are missing; msg says why. */
CBRNN_API int cbrnn_exp_figure(const cbrnn_exp *e, char *msg, size_t msglen);

/* The results folder. */
CBRNN_API const char *cbrnn_exp_out_dir(const cbrnn_exp *e);

/* ---- On a Slurm cluster ----
 * The units as one job array (array task i runs unit i) and a merge job
 * that runs only if every array task succeeded (afterok; submitted with
 * --kill-on-invalid-dep=yes so a failed unit cancels it). The results
 * folder must be on storage every node sees. Files in <out>/slurm/:
 * units.sh and collect.sh (the job scripts), unit-<i>.log, collect.log.
 * sbatch, scontrol and scancel are found on PATH (SLURM_CONF as usual). */
typedef struct cbrnn_exp_slurm {
    /* The command that makes this comparison, NULL-terminated; argv[0] is
     * the executable (an absolute path: the jobs run it). */
    const char *const *argv;
    const char *unit_arg;     /* appended with the array task id ("--unit") */
    const char *collect_arg;  /* appended for the merge job ("--collect") */
    const char *sbatch_args;  /* more sbatch options for both jobs, split at
                               * blanks, after ours (so they win); may be NULL */
    int limit;                /* array tasks at once (%limit); <= 0: all */
    const char *job_name;     /* e.g. "cbrnn-parity" */
} cbrnn_exp_slurm;

/* Checks, before anything is written, that the results folder and
 * s->sbatch_args can go to Slurm as they are: CBRNN_ERR_ARG with msg for a
 * folder name with a control character or a '\\' (sbatch's --output
 * takes it as "no %-patterns"; a '%' is doubled, so it is fine), or
 * sbatch_args longer than 4095 characters, of more than 240 words, or
 * with a quote or backslash (it is split at blanks, without quoting). */
CBRNN_API int cbrnn_exp_slurm_check(const cbrnn_exp *e, const cbrnn_exp_slurm *s, char *msg,
                                    size_t msglen);
/* Writes the job scripts and submits both jobs from the current folder
 * (their working folder); refuses what cbrnn_exp_slurm_check refuses
 * first. 0 and the ids, or CBRNN_ERR_IO / CBRNN_ERR_UNSUPPORTED (no
 * sbatch) with msg (sbatch's own words). *array_id is set (> 0) as soon as
 * the array is submitted, also when the merge job then fails: its units
 * run and can be collected, or cancelled. */
CBRNN_API int cbrnn_exp_slurm_submit(const cbrnn_exp *e, const cbrnn_exp_slurm *s,
                                     long *array_id, long *merge_id, char *msg, size_t msglen);
/* Waits, polling scontrol every second, until the merge job has ended;
 * reports progress from the curves through r (and stops waiting, leaving
 * the jobs be, when r->stop says so: returns 1). A merge job left pending
 * on a dependency that can never be satisfied is cancelled. 0 if the merge
 * job completed (or is no longer known to Slurm and left every unit done
 * and a summary); else CBRNN_ERR_IO with its state and reason in msg. */
CBRNN_API int cbrnn_exp_slurm_wait(const cbrnn_exp *e, long merge_id, const cbrnn_exp_report *r,
                                   char *msg, size_t msglen);

#ifdef __cplusplus
}
#endif
#endif
