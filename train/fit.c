/* fit.c: the model of a training run and its training (train_internal.h):
 * one sequence per file, the model's configuration (the rnn baseline sized
 * to the cbrnn model's parameter count), the model built (or --init's
 * copied) with its features, normaliser and classes, then truncated BPTT:
 * warm-up steps with every parameter, then steps with the cortex frozen,
 * validated every --eval-every steps and logged to the CSV file, ending on
 * the averaged weights with --average. Library code: messages go through
 * train_say. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

/* One training sequence per file (inputs, targets), and the list of the
 * training ones. */
int train_make_sequences(struct run *r)
{
    r->seqs = calloc((size_t)r->n, sizeof *r->seqs);
    r->train_seqs = calloc((size_t)r->n, sizeof *r->train_seqs);
    if (!r->seqs || !r->train_seqs)
        return train_out_of_memory(r);
    for (int i = 0; i < r->n; i++) {
        const struct item *t = &r->it[i];
        cbrnn_seq *s = &r->seqs[i];
        s->x = t->z ? t->z : t->x;
        s->base = t->x;
        s->scale = t->s;
        s->T = t->T;
        if (r->o.target == CBRNN_TARGET_PREDICT) {
            s->y = t->x + (size_t)r->o.horizon * r->F;
            s->y_stride = r->F;
            s->T = t->T - r->o.horizon;
        } else if (r->o.target == CBRNN_TARGET_MAP) {
            s->y = t->t;
        } else {
            s->labels = t->labels;
        }
        if (!t->val) {
            r->train_seqs[r->n_train++] = *s;
            r->n_copies += t->speed != 1.0;
        }
    }
    return 0;
}

/* The model's configuration: its input and output sizes and, for the rnn
 * baseline, the cortex size that matches the cbrnn model's parameter count. */
int train_configure_model(struct run *r)
{
    const cbrnn_train_opts *o = &r->o;
    int F = r->F;
    /* predict: the next frame's own features (with --deltas, the deltas
     * are inputs only: they follow from the frames); map: the teacher's. */
    int O = o->target == CBRNN_TARGET_CLASSIFY ? r->n_classes
            : o->target == CBRNN_TARGET_PREDICT && o->fc.deltas ? F / 2 : F;
    cbrnn_model_config *mc = &r->mc;
    *mc = o->mc;
    mc->n_in = F;
    mc->n_out = O;
    if (mc->arch == CBRNN_ARCH_RNN && o->match) {
        cbrnn_model_config ref = *mc;
        ref.arch = CBRNN_ARCH_CBRNN;
        size_t target_params = cbrnn_model_config_params(&ref);
        mc->n_hidden = cbrnn_rnn_hidden_for_params(F, O, target_params);
        if (!o->quiet)
            train_say(r, CBRNN_TRAIN_MSG_NOTE, "rnn baseline: cortex %d units, %zu parameters "
                      "(the cbrnn model with --hidden %d has %zu)", mc->n_hidden,
                      cbrnn_model_config_params(mc), o->mc.n_hidden, target_params);
    }
    char why[512];
    if (cbrnn_model_config_check(mc, why, sizeof why)) {
        train_say(r, CBRNN_TRAIN_MSG_ERROR, "model configuration: %s", why);
        return CBRNN_TRAIN_BAD_INPUT;
    }
    return 0;
}

/* The model: new and initialised, or a copy of --init's; with the
 * features, target, normaliser and classes it is trained for, and the
 * running normaliser's state walked over every file (as live). */
int train_build_model(struct run *r)
{
    const cbrnn_train_opts *o = &r->o;
    int err = 0;
    r->m = o->init_model ? cbrnn_model_clone(o->init_model, &err)
                         : cbrnn_model_create(&r->mc, &err);
    cbrnn_model *m = r->m;
    if (m && o->init_model) {
        /* --init's provenance (its training's losses, its adaptation)
         * describes that model, not this one: init_from names it. */
        cbrnn_model_drop_tool_meta(m);
        err = cbrnn_model_set_meta(m, "init_from", o->init ? o->init : "");
    } else if (m) {
        err = cbrnn_model_init(m, o->tc.seed);
    }
    if (!m || err) {
        train_say(r, CBRNN_TRAIN_MSG_ERROR, "cannot create the model: %s",
                  cbrnn_strerror(err ? err : CBRNN_ERR_NOMEM));
        return CBRNN_TRAIN_FAILED;
    }
    cbrnn_model_drop_rls_state(m); /* an adapted init's: training moves the weights away from it */
    m->feat = o->fc;
    m->feat.sample_rate = o->fc.ref_rate; /* the rate it was trained at */
    m->feat.ref_rate = 0;
    m->target = (cbrnn_target)o->target;
    m->horizon = o->horizon;
    if (cbrnn_model_set_norm(m, r->mean, r->sd) ||
        (r->n_classes &&
         cbrnn_model_set_classes(m, r->n_classes, (const char *const *)r->classes))) {
        train_say(r, CBRNN_TRAIN_MSG_ERROR, "cannot store the normaliser or classes");
        return CBRNN_TRAIN_FAILED;
    }
    /* The running normaliser, file by file from its start state, on the
     * frames the corpus statistics have just normalised (as live). */
    m->stream_norm_s = o->stream_norm;
    m->stream_norm_floor = o->stream_floor;
    m->online_rule = o->online_rule ? CBRNN_RULE_RLS : CBRNN_RULE_SGD;
    m->rls_prior = (float)o->rls_prior;
    m->rls_forget = (float)o->rls_forget;
    for (int i = 0; i < r->n && o->stream_norm > 0; i++) {
        const struct item *t = &r->it[i];
        if (cbrnn_model_stream_seq(m, t->x, t->z, t->s, t->T))
            return train_out_of_memory(r);
        feat_cache_release(r->cache, 0, 0);
    }
    return 0;
}

/* The CSV log's header, and one line saying what is about to be trained. */
int train_announce(struct run *r)
{
    const cbrnn_train_opts *o = &r->o;
    if (o->log) {
        r->log = fopen(o->log, "w");
        if (!r->log) {
            train_say(r, CBRNN_TRAIN_MSG_ERROR, "%s: cannot write the log: %s", o->log,
                      strerror(errno));
            return CBRNN_TRAIN_BAD_INPUT;
        }
        fprintf(r->log, "step,phase,train_loss,val_loss,val_persistence_loss,skill,val_accuracy\n");
    }
    int n_skipped = r->n_skipped;
    char skipped_note[64] = "";
    if (n_skipped)
        snprintf(skipped_note, sizeof skipped_note, ", %d skipped (unreadable, no audio or too short)",
                 n_skipped);
    if (o->quiet && n_skipped) /* warnings are not progress: -q keeps the count */
        train_say(r, CBRNN_TRAIN_MSG_NOTE, "%d file%s skipped (unreadable, no audio or too short)",
                  n_skipped, n_skipped == 1 ? "" : "s");
    char copies_note[64] = "";
    if (r->n_copies)
        snprintf(copies_note, sizeof copies_note, " and %d speed-perturbed cop%s", r->n_copies,
                 r->n_copies == 1 ? "y" : "ies");
    int n_files = r->n_train - r->n_copies;
    if (!o->quiet)
        train_say(r, CBRNN_TRAIN_MSG_NOTE, "%d training file%s%s (%ld frames), %d validation "
                  "(%ld frames)%s; %zu parameters; %ld warm-up + %ld frozen-cortex steps",
                  n_files, n_files == 1 ? "" : "s", copies_note, r->train_frames,
                  r->n - r->n_train, r->val_frames, skipped_note, r->m->n_params, o->warmup,
                  o->steps);
    return 0;
}

/* Validation over every held-out file, giving back each file's cached
 * pages once it is done (memory stays bounded by one file). */
static int validate(const cbrnn_model *m, const cbrnn_seq *seqs, const struct item *it, int n,
                    feat_cache *cache, struct vres *r)
{
    cbrnn_eval_sums s = {0, 0, 0, 0};
    memset(r, 0, sizeof *r);
    for (int i = 0; i < n; i++) {
        if (!it[i].val)
            continue;
        int rc = cbrnn_eval_seq(m, &seqs[i], NULL, &s);
        feat_cache_release(cache, 0, 0);
        if (rc)
            return rc;
        r->have = 1;
    }
    if (!r->have || s.count == 0) {
        r->have = 0;
        return 0;
    }
    r->loss = s.loss / (double)s.count;
    r->persist = s.persist / (double)s.count;
    r->skill = s.persist > 0 ? 1.0 - s.loss / s.persist : NAN;
    r->acc = (double)s.correct / (double)s.count;
    return 0;
}

/* One CSV row; cells that do not apply are empty. */
static void log_row(FILE *log, long step, const char *phase, double train, const struct vres *v,
                    int target)
{
    if (!log)
        return;
    int cls = target == CBRNN_TARGET_CLASSIFY;
    fprintf(log, "%ld,%s,", step, phase);
    if (isfinite(train))
        fprintf(log, "%.9g", train);
    fputc(',', log);
    if (v->have)
        fprintf(log, "%.9g", v->loss);
    fputc(',', log);
    if (v->have && !cls)
        fprintf(log, "%.9g,%.9g", v->persist, v->skill);
    else
        fputc(',', log);
    fputc(',', log);
    if (v->have && cls)
        fprintf(log, "%.9g", v->acc);
    fputc('\n', log);
    fflush(log);
}

static void describe(char *buf, size_t cap, double train, const struct vres *v, int target)
{
    int l = snprintf(buf, cap, "loss %.4f", train);
    if (v->have && l >= 0 && (size_t)l < cap) {
        if (target == CBRNN_TARGET_CLASSIFY)
            snprintf(buf + l, cap - (size_t)l, " val %.4f acc %.3f", v->loss, v->acc);
        else
            snprintf(buf + l, cap - (size_t)l, isfinite(v->skill) ? " val %.4f skill %.3f"
                                                                 : " val %.4f skill n/a",
                     v->loss, v->skill); /* n/a: persistence loss 0 (a teacher = its input) */
    }
}

/* Validation and its log row; with say (and not on a terminal) its
 * progress line. */
static int validate_and_log(struct run *r, const char *pname, int say)
{
    if (validate(r->m, r->seqs, r->it, r->n, r->cache, &r->vr)) {
        train_say(r, CBRNN_TRAIN_MSG_ERROR, "validation failed");
        return CBRNN_TRAIN_FAILED;
    }
    log_row(r->log, r->step, pname, r->last_train, &r->vr, r->o.target);
    if (say && !r->o.quiet && !r->interactive) {
        char d[128];
        describe(d, sizeof d, r->last_train, &r->vr, r->o.target);
        train_say(r, CBRNN_TRAIN_MSG_STEP, "step %ld/%ld %s %s", r->step, r->total, pname, d);
    }
    return 0;
}

/* The last phase with steps ends, with --average, on the mean of its last
 * steps' weights: validated and logged as phase "average". */
static int end_on_average(struct run *r, cbrnn_param_avg *avg)
{
    if (!avg || cbrnn_param_avg_count(avg) == 0)
        return 0;
    cbrnn_param_avg_apply(avg, r->m);
    return validate_and_log(r, "average", 1);
}

/* The steps of one phase (train_phase), adding each state from step
 * avg_from on to avg (may be NULL). */
static int train_steps(struct run *r, int phase, long nsteps, cbrnn_param_avg *avg, long avg_from)
{
    const cbrnn_train_opts *o = &r->o;
    const char *pname = phase == 0 ? "warmup" : "frozen";
    double acc = 0, last_draw = 0;
    long since = 0;
    for (long s = 0; s < nsteps; s++) {
        float loss = 0;
        if (o->lr_decay) /* cosine: the last steps average out the batches' noise */
            cbrnn_trainer_optim(r->tr)->cfg.lr =
                (float)(0.5 * o->tc.opt.lr * (1.0 + cos(3.14159265358979323846 * (double)s / (double)nsteps)));
        int rc = cbrnn_trainer_step(r->tr, r->train_seqs, r->n_train, &loss);
        if (rc || !isfinite(loss)) {
            train_end_line(r);
            train_say(r, CBRNN_TRAIN_MSG_ERROR, "training failed at step %ld (%s; loss %g)%s",
                      r->step + 1, rc ? cbrnn_strerror(rc) : "non-finite loss", (double)loss,
                      (!rc || rc == CBRNN_ERR_NONFINITE) ? ": try a lower --lr or --clip" : "");
            return CBRNN_TRAIN_FAILED;
        }
        r->step++;
        acc += loss;
        since++;
        if (avg && s >= avg_from)
            cbrnn_param_avg_add(avg, r->m);
        /* A step touched batch x (seq-len + horizon) frames of the
         * cache (258 KiB at the defaults): give them back, so feature
         * memory stays one batch whatever the corpus size. Refaulting
         * them costs far less than the step. */
        feat_cache_release(r->cache, 0, 0);
        int stop = train_stopped(r);
        if (r->step % o->eval_every == 0 || s == nsteps - 1 || stop) {
            r->last_train = acc / (double)since;
            acc = 0;
            since = 0;
            if (validate_and_log(r, pname, 1))
                return CBRNN_TRAIN_FAILED;
        }
        double tnow = train_now_s();
        if (r->interactive && (tnow - last_draw > 0.1 || r->step == r->total)) {
            char d[160];
            describe(d, sizeof d, since ? acc / (double)since : r->last_train, &r->vr, o->target);
            train_progress(r, pname, (double)r->step, (double)r->total, d);
            last_draw = tnow;
        }
        if (stop) {
            r->interrupted = 1;
            break;
        }
    }
    return 0;
}

/* One phase (0: warm-up, every parameter; 1: the cortex frozen) of
 * nsteps steps, validating every --eval-every steps, at its end and when
 * the host stops it (r->interrupted); averaging its last steps if last
 * (--average). */
static int train_phase(struct run *r, int phase, long nsteps, int last)
{
    const cbrnn_train_opts *o = &r->o;
    /* Phase 2 freezes the cortex; the trainer (its optimiser moments
     * and batch stream) starts afresh for the new set of parameters,
     * with seed + phase so the two phases draw different batches. */
    r->m->frozen[CBRNN_GROUP_CORTEX] = phase == 1 || r->mc.arch == CBRNN_ARCH_RESERVOIR;
    /* The phase decides what trains, not a --init model's `frozen` list
     * (what online learning leaves alone): a frozen cerebellum there would
     * make the frozen phase train nothing. The output says cortex only. */
    r->m->frozen[CBRNN_GROUP_CEREBELLUM] = 0;
    r->m->frozen[CBRNN_GROUP_READOUT] = 0;
    cbrnn_train_config tc = o->tc;
    tc.seed = o->tc.seed + (uint64_t)phase;
    cbrnn_trainer_destroy(r->tr);
    int err = 0;
    r->tr = cbrnn_trainer_create(r->m, &tc, &err);
    if (!r->tr) {
        train_say(r, CBRNN_TRAIN_MSG_ERROR, "cannot start training: %s", cbrnn_strerror(err));
        return CBRNN_TRAIN_FAILED;
    }
    cbrnn_param_avg *avg = NULL;
    long avg_from = nsteps - (long)ceil(o->average * (double)nsteps);
    if (last && o->average > 0 && !(avg = cbrnn_param_avg_create(r->m, &err))) {
        train_say(r, CBRNN_TRAIN_MSG_ERROR, "cannot start training: %s", cbrnn_strerror(err));
        return CBRNN_TRAIN_FAILED;
    }
    int rc = train_steps(r, phase, nsteps, avg, avg_from);
    if (!rc)
        rc = end_on_average(r, avg);
    cbrnn_param_avg_destroy(avg);
    return rc;
}

/* Training: the first validation, then the warm-up and frozen-cortex
 * phases. A failure from here on is a failure while working. */
int train_fit(struct run *r)
{
    r->last_train = NAN;
    if (validate_and_log(r, "init", 0))
        return CBRNN_TRAIN_FAILED;
    r->total = r->o.warmup + r->o.steps;
    r->t0 = train_now_s();
    for (int phase = 0; phase < 2 && !r->interrupted; phase++) {
        long nsteps = phase == 0 ? r->o.warmup : r->o.steps;
        if (nsteps == 0)
            continue;
        if (train_phase(r, phase, nsteps, phase == 1 || r->o.steps == 0))
            return CBRNN_TRAIN_FAILED;
    }
    if (r->interrupted)
        train_end_line(r);
    return 0;
}
