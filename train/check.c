/* check.c: cbrnn_train_opts_check (cbrnn_train.h): which options of a
 * training run go together. cbrnn_train_run calls it before anything
 * else, so no host can start a run that contradicts itself; a host may
 * call it earlier to refuse its options sooner. Messages name the options
 * as `cbrnn train` spells them. */
#include <stdarg.h>
#include <stdio.h>

#include "train_internal.h"

static int refuse(char *msg, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (msg && len)
        vsnprintf(msg, len, fmt, ap);
    va_end(ap);
    return -1;
}

/* The options that choose what is learnt and from what. */
static int check_target(const cbrnn_train_opts *o, char *msg, size_t len)
{
    if (o->target == CBRNN_TARGET_MAP && !o->teacher_suffix == !o->pairs)
        return refuse(msg, len, "--target map needs exactly one of --teacher-suffix or --pairs");
    if (o->target != CBRNN_TARGET_MAP && (o->teacher_suffix || o->pairs))
        return refuse(msg, len, "--teacher-suffix and --pairs are for --target map");
    if (o->teacher_suffix && !*o->teacher_suffix)
        return refuse(msg, len, "--teacher-suffix is empty");
    if (o->mc.residual && o->target == CBRNN_TARGET_CLASSIFY)
        return refuse(msg, len, "--output-mode residual is for --target predict or map (it adds "
                                "the input frame to the output)");
    if (o->stream_norm > 0 && (o->target != CBRNN_TARGET_PREDICT || !o->mc.residual))
        return refuse(msg, len, "--stream-norm is for --target predict with --output-mode "
                                "residual (the running scale brings the output back)");
    if (o->online_rule && !cbrnn_rule_rls_fits(o->mc.wiring, (cbrnn_target)o->target))
        return refuse(msg, len, "--online-rule rls is for the readout wiring with --target predict "
                                "or map (a squared error on the cerebellum's output)");
    if (o->horizon < 1 || o->horizon > CBRNN_MAX_HORIZON)
        return refuse(msg, len, "--horizon %d is outside 1..%d (frames ahead that a model file "
                                "and the engine take)", o->horizon, CBRNN_MAX_HORIZON);
    /* as the model file will hold it (a float), so the save at the end
     * cannot refuse what training was allowed to start */
    const double min_tau = CBRNN_STREAM_NORM_MIN_HOPS * o->fc.hop_ms / 1000.0;
    if (o->stream_norm != 0 && !((double)(float)o->stream_norm >= min_tau))
        return refuse(msg, len, "--stream-norm %g: at least %d hops (%g s) or 0 (off): a "
                                "shorter running normaliser follows the frame itself",
                      (double)o->stream_norm, CBRNN_STREAM_NORM_MIN_HOPS, min_tau);
    if (o->stream_norm != 0 && !(o->stream_floor >= 1e-6f && o->stream_floor <= 100))
        return refuse(msg, len, "--stream-norm-floor %g is outside [1e-06, 100]",
                      (double)o->stream_floor);
    if (!((float)o->rls_prior >= 1e-9f && (float)o->rls_prior <= 1e9f) ||
        !((float)o->rls_forget >= 0.9f && (float)o->rls_forget <= 1))
        return refuse(msg, len, "--rls-prior %g or --rls-forget %g is outside [1e-09, 1e+09] "
                      "and [0.9, 1]", o->rls_prior, o->rls_forget);
    if (o->n_speeds && o->target != CBRNN_TARGET_PREDICT)
        return refuse(msg, len, "--speed-perturb is for --target predict (a teacher or labels "
                                "would have to change with the speed)");
    if ((o->target == CBRNN_TARGET_CLASSIFY) != (o->labels_dir != NULL))
        return refuse(msg, len, "--target classify and --labels-dir DIR go together");
    return 0;
}

int cbrnn_train_opts_check(const cbrnn_train_opts *o, char *msg, size_t len)
{
    if (!o)
        return refuse(msg, len, "no options");
    if (o->n_inputs < 0 || (o->n_inputs > 0 && !o->inputs))
        return refuse(msg, len, "inputs: %d named but none given", o->n_inputs);
    if (o->tc.opt.nesterov && (o->tc.opt.kind != CBRNN_OPT_SGD || o->tc.opt.momentum <= 0))
        return refuse(msg, len, "--nesterov needs --optimizer sgd and --momentum > 0");
    if (o->fc.n_mfcc > o->fc.n_mels)
        return refuse(msg, len, "--mfcc %d is more than --mels %d", o->fc.n_mfcc, o->fc.n_mels);
    if (check_target(o, msg, len))
        return -1;
    if (o->mc.arch == CBRNN_ARCH_RESERVOIR && o->warmup > 0)
        return refuse(msg, len, "a reservoir's cortex is never trained: --warmup-steps must be 0");
    if (o->mc.arch == CBRNN_ARCH_CBRNN && o->mc.n_cb_hidden == 0)
        return refuse(msg, len, "--cb 0 (no cerebellum) is for --arch reservoir; use --arch rnn");
    if (o->warmup + o->steps == 0)
        return refuse(msg, len, "nothing to do: --warmup-steps and --steps are both 0");
    return 0;
}
