/* train_internal.h: what the files of one training run (cbrnn_train_run,
 * cbrnn_train.h) share: the run's state, its steps in the order run.c
 * takes them, and how they talk to the host. Inside the train module
 * only. Each step returns 0 to go on, or the cbrnn_train_status the run
 * ends with; a step that ends the run has said why (train_say). */
#ifndef CBRNN_TRAIN_INTERNAL_H
#define CBRNN_TRAIN_INTERNAL_H

#include <stddef.h>
#include <stdio.h>

#include "cbrnn/cbrnn_train.h"
#include "corpus.h"
#include "featcache.h"

/* One input file (or a --speed-perturb copy of one) and its features. */
struct item {
    const char *path, *teacher; /* teacher: map only */
    int val;                    /* 1: validation file */
    size_t xoff, toff;          /* where x and t start in the feature cache (floats) */
    size_t zoff;                /* --stream-norm: where z and then s start */
    float *z, *s;               /* [T, F] the model's input and the running scale */
    float *x, *t;               /* [T, F] features (normalised later); teacher [T, F]:
                                 * views into the mapped cache, set once it is mapped */
    int *labels;                /* [T] classify */
    int T;
    double rate;
    double speed;               /* 1: as recorded; else a --speed-perturb copy */
    label_file lf;
    int skip; /* unreadable or without audio: left out (train_bad_file) */
    unsigned long long dev, ino; /* the file's identity (0, 0: stat failed) */
};

/* Validation sums over the validation items. */
struct vres {
    int have;
    double loss, persist, skill, acc;
};

/* Everything one run owns; the steps fill it in order and run.c gives it
 * back however the run ends. */
struct run {
    cbrnn_train_opts o; /* a copy: the run settles o.fc.ref_rate (train_choose_rate) */
    const cbrnn_train_report *rep;
    char msg[2048];
    corpus inputs, teachers, valc;
    struct item *it;
    int n, n_skipped;
    int n_copies;       /* --speed-perturb items among the n_train (train_make_sequences) */
    char **classes;
    int n_classes;
    char *out_dir;
    feat_cache *cache;
    int F;              /* feature dimension */
    int interactive;    /* a progress display (rep->progress, not quiet) */
    double t0;          /* when the current progress display started */
    float *mean, *sd;   /* [F] the corpus normaliser */
    cbrnn_stats st;
    long train_frames, val_frames;
    cbrnn_seq *seqs, *train_seqs;
    int n_train;
    cbrnn_model_config mc; /* the model's configuration (after --arch rnn matching) */
    cbrnn_model *m;
    cbrnn_trainer *tr;
    FILE *log;
    /* training progress */
    struct vres vr;     /* the last validation */
    long step, total;
    double last_train;
    int interrupted;
};

/* ---- talking to the host (run.c) ---- */
/* One line of the given kind (printf format, no newline). */
void train_say(struct run *r, cbrnn_train_msg kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The progress display: what, done of total, since r->t0. */
void train_progress(struct run *r, const char *what, double done, double total,
                    const char *detail);
/* The progress display stops mid-way: the host ends its line. */
void train_end_line(struct run *r);
/* 1 when the host asks the run to stop. */
int train_stopped(const struct run *r);
/* "out of memory"; CBRNN_TRAIN_FAILED. */
int train_out_of_memory(struct run *r);
/* Seconds on a monotonic clock. */
double train_now_s(void);

/* ---- the corpus (items.c) ---- */
int train_read_inputs(struct run *r);
int train_make_items(struct run *r);
int train_probe_files(struct run *r);
int train_split_validation(struct run *r);
int train_add_speed_copies(struct run *r);
/* A corpus file that cannot be read or holds no usable audio: -1 with
 * --strict (said), else marked to be left out with a warning (0). */
int train_bad_file(struct run *r, struct item *t, const char *why);
/* Drops the items train_bad_file marked; the new count. */
int train_drop_skipped(struct item *it, int n);
/* "no training file left: N files skipped ..." */
void train_say_none_left(struct run *r);

/* ---- the features (features.c) ---- */
int train_open_cache(struct run *r);
int train_choose_rate(struct run *r);
int train_features(struct run *r);
int train_collect_classes(struct run *r);
int train_normalise(struct run *r);

/* ---- the model and its training (fit.c) ---- */
int train_make_sequences(struct run *r);
int train_configure_model(struct run *r);
int train_build_model(struct run *r);
int train_announce(struct run *r);
int train_fit(struct run *r);

/* ---- the model file (provenance.c) ---- */
int train_record_provenance(struct run *r);
int train_save_and_report(struct run *r);

#endif
