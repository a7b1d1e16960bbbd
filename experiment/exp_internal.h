/* exp_internal.h: what the comparison kinds of the experiments module
 * (paper.c, speech.c) share with its generic part (exp.c, pool.c,
 * results.c): the comparison object with its per-kind operations, the
 * results folder, messages, summary helpers. Not installed. */
#ifndef CBRNN_EXP_INTERNAL_H
#define CBRNN_EXP_INTERNAL_H

#include <jansson.h>
#include <stdio.h>

#include "cbrnn/cbrnn_experiment.h"

/* Paths in the results folder fit in this (the folder itself is limited to
 * EXP_PATH - 256 by cbrnn_exp_prepare's callers' create functions). */
#define EXP_PATH 4352

/* One kind of comparison (paper tasks, speech). */
typedef struct exp_ops {
    /* Runs or resumes unit k in this process; messages through r. */
    int (*run_unit)(cbrnn_exp *e, int k, const cbrnn_exp_report *r);
    /* Work units (epochs, steps) unit k has done, read from its curve. */
    long (*progress)(const cbrnn_exp *e, int k);
    /* summary.json and summary.md from the curves of the units that
     * exp_summary_has (e->left_out says which are left out). */
    int (*summarise)(cbrnn_exp *e, char *msg, size_t msglen);
    void (*destroy)(cbrnn_exp *e);
    /* Work units that unit k's saved state (paper: its checkpoint) covers,
     * to confirm a complete curve: rows past it were not made by the run
     * that saved it (forged, or written by a run killed before its last
     * checkpoint). NULL: the curve is trusted. */
    long (*confirmed)(const cbrnn_exp *e, int k);
} exp_ops;

typedef struct exp_unit {
    int variant, seed;
    char name[96];
    char curve[EXP_PATH];
    char state[EXP_PATH]; /* paper: its checkpoint; speech: its model */
} exp_unit;

struct cbrnn_exp {
    const exp_ops *ops;
    void *kind;             /* the kind's own data */
    char out[EXP_PATH - 512];
    char *settings;         /* settings.txt's text (owned) */
    const char *extra_dir;  /* "checkpoints" or "models" */
    int n_units;
    exp_unit *units;
    long work_per_unit;     /* epochs or steps, for progress */
    /* While a partial summary is written: 1 for each unit left out (NULL
     * when none is). */
    const int *left_out;
    /* cbrnn_exp_lock's descriptor of <out>/.lock, valid while has_lock. */
    int has_lock, lock_fd;
};

/* Allocates e with its units (seeds outer, variants inner) named by
 * names[variant]; state files go in <out>/<extra_dir>/<name><state_ext>.
 * 0, or CBRNN_ERR_NOMEM / CBRNN_ERR_ARG (folder path too long) with msg. */
int exp_init(cbrnn_exp *e, const char *out_dir, const char *extra_dir, int n_variants,
             const int *variants, const char *const *names, int seeds, const char *state_ext,
             char *msg, size_t msglen);

/* r->message with printf formatting (nothing if r or its member is NULL). */
void exp_say(const cbrnn_exp_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* snprintf into msg (if not NULL) and return code. */
/* v as JSON: a number, or null where it is not finite (a skill whose
 * persistence loss is 0: jansson makes no value of NaN, and an array it
 * was appended to would silently come out short). */
json_t *exp_json_num(double v);
int exp_fail(char *msg, size_t msglen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes a result file's whole content to f (a memory stream): 0, or -1
 * if a write failed. */
typedef int (*exp_fill)(FILE *f, void *ctx);
/* Replaces the file path with what fill(f, ctx) writes, atomically and
 * durably (model/file_replace.h: a host-pid-counter temporary beside it,
 * fsync, rename, fsync of the folder). On failure the previous file is
 * untouched and msg names path and the failing step. 0, CBRNN_ERR_NOMEM,
 * CBRNN_ERR_ARG (name too long) or CBRNN_ERR_IO. */
int exp_replace_file(const char *path, exp_fill fill, void *ctx, char *msg, size_t msglen);

/* Mean and sample standard deviation (n - 1) of v[0..n-1]; NaN and 0 if
 * n == 0, sd 0 if n == 1. */
void exp_mean_sd(const double *v, int n, double *mean, double *sd);
/* A summary being written: summary.md is composed in memory (md) and
 * replaces the file only once it is whole. */
typedef struct exp_summary {
    FILE *md;
    char *buf;
    size_t len;
} exp_summary;
/* Starts s; its md (returned) takes summary.md's text. NULL with msg if
 * there is no memory. */
FILE *exp_summary_open(const cbrnn_exp *e, exp_summary *s, char *msg, size_t msglen);
/* A partial summary's marks (nothing when no unit is left out): a line in
 * md, "partial" and "left_out" in root. */
void exp_summary_partial(const cbrnn_exp *e, FILE *md, json_t *root);
/* 1 if unit k takes part in the summary being written. */
int exp_summary_has(const cbrnn_exp *e, int k);
/* Replaces <out>/summary.md with s's text, then <out>/summary.json with
 * root (exp_replace_file each: a failure leaves the previous file whole;
 * summary.json is not written if summary.md failed). Always closes s and
 * releases root. 0, or an exp_replace_file error with msg naming the file. */
int exp_summary_close(const cbrnn_exp *e, exp_summary *s, json_t *root, char *msg,
                      size_t msglen);

#endif
