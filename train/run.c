/* run.c: cbrnn_train_run (cbrnn_train.h): the steps of a training run in
 * order, the defaults of its options, how it talks to its host (every line
 * through the host's report, never to stdout/stderr), and giving back
 * everything it holds however it ends. Library code: never prints, never
 * exits, installs no signal handler. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "train_internal.h"

void cbrnn_train_opts_default(cbrnn_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->horizon = 1;
    o->date = -1;
    cbrnn_model_config_default(&o->mc);
    o->stream_floor = CBRNN_STREAM_NORM_FLOOR;
    o->rls_prior = CBRNN_RLS_PRIOR;
    o->rls_forget = CBRNN_RLS_FORGET;
    o->match = 1;
    cbrnn_feat_config_default(&o->fc, 16000);
    o->tc.batch = 16;
    o->tc.seq_len = 100;
    o->tc.seed = 1;
    cbrnn_optim_config_default(&o->tc.opt, CBRNN_OPT_ADAM);
    o->tc.opt.clip_norm = 1.0f;
    o->warmup = 300;
    o->steps = 600;
    o->eval_every = 100;
    o->val_fraction = 0.2;
}

void train_say(struct run *r, cbrnn_train_msg kind, const char *fmt, ...)
{
    if (!r->rep || !r->rep->message)
        return;
    /* Most lines fit; a longer one (long paths) is made to measure. */
    char buf[1024], *p = buf;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof buf && (p = malloc((size_t)n + 1)) != NULL) {
        va_start(ap, fmt);
        vsnprintf(p, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    r->rep->message(r->rep->user, kind, p ? p : buf);
    if (p != buf)
        free(p);
}

void train_progress(struct run *r, const char *what, double done, double total,
                    const char *detail)
{
    if (r->interactive)
        r->rep->progress(r->rep->user, what, done, total, train_now_s() - r->t0, detail);
}

void train_end_line(struct run *r)
{
    if (r->interactive)
        r->rep->progress(r->rep->user, NULL, 0, 0, 0, NULL);
}

int train_stopped(const struct run *r)
{
    return r->rep && r->rep->stop && r->rep->stop(r->rep->user);
}

int train_out_of_memory(struct run *r)
{
    train_say(r, CBRNN_TRAIN_MSG_ERROR, "out of memory");
    return CBRNN_TRAIN_FAILED;
}

double train_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The long work begins: the host may start turning Ctrl-C into stop(). */
static int begin_work(struct run *r)
{
    if (r->rep && r->rep->begin)
        r->rep->begin(r->rep->user);
    return 0;
}

/* Gives back everything the run holds; the log's close can still fail a
 * run that had succeeded. The status. */
static int run_free(struct run *r, int status)
{
    if (r->log && fclose(r->log) && status == CBRNN_TRAIN_DONE) {
        train_say(r, CBRNN_TRAIN_MSG_ERROR, "%s: writing the log failed", r->o.log);
        status = CBRNN_TRAIN_FAILED;
    }
    cbrnn_trainer_destroy(r->tr);
    cbrnn_model_destroy(r->m);
    cbrnn_stats_free(&r->st);
    free(r->mean);
    free(r->sd);
    free(r->seqs);
    free(r->train_seqs);
    feat_cache_close(r->cache);
    free(r->out_dir);
    for (int i = 0; r->it && i < r->n; i++) {
        free(r->it[i].labels);
        labels_free(&r->it[i].lf);
    }
    free(r->it);
    for (int i = 0; i < r->n_classes; i++)
        free(r->classes[i]);
    free(r->classes);
    corpus_free(&r->inputs);
    corpus_free(&r->teachers);
    corpus_free(&r->valc);
    return status;
}

int cbrnn_train_run(const cbrnn_train_opts *o, const cbrnn_train_report *rep)
{
    if (!o) {
        if (rep && rep->message)
            rep->message(rep->user, CBRNN_TRAIN_MSG_ERROR, "no options");
        return CBRNN_TRAIN_BAD_INPUT;
    }
    struct run *r = calloc(1, sizeof *r);
    if (!r) {
        if (rep && rep->message)
            rep->message(rep->user, CBRNN_TRAIN_MSG_ERROR, "out of memory");
        return CBRNN_TRAIN_FAILED;
    }
    r->o = *o;
    r->rep = rep;
    r->interactive = !o->quiet && rep && rep->progress;
    char why[256];
    if (cbrnn_train_opts_check(o, why, sizeof why)) {
        train_say(r, CBRNN_TRAIN_MSG_ERROR, "%s", why);
        free(r);
        return CBRNN_TRAIN_BAD_INPUT;
    }
    /* The steps, in order; each says what it does above its definition. */
    static int (*const steps[])(struct run *) = {
        train_read_inputs, train_make_items, train_probe_files, train_split_validation,
        train_add_speed_copies, begin_work, train_open_cache, train_choose_rate,
        train_features, train_collect_classes, train_normalise, train_make_sequences,
        train_configure_model, train_build_model, train_announce, train_fit,
        train_record_provenance, train_save_and_report,
    };
    int status = CBRNN_TRAIN_DONE;
    for (size_t i = 0; i < sizeof steps / sizeof *steps && !status; i++)
        status = steps[i](r);
    status = run_free(r, status);
    free(r);
    return status;
}
