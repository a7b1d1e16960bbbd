/* cmd_train.c: `cbrnn train -o MODEL.safetensors [options] INPUTS...`: the
 * offline warm-up training. Features of every file are computed once with
 * the streaming front end the live host uses (audio_features_each) into a
 * disk cache that training reads through a mapping (train/featcache.h: a
 * corpus larger than memory trains in bounded memory), at the level of
 * the first training file's rate (the model's; ref_rate), normalised there
 * with statistics of the TRAINING files (stored in the model), then the
 * model is trained by truncated BPTT: warm-up steps with every parameter,
 * then steps with the cortex frozen. Validation is split by file. A CSV log
 * records train/validation loss and the persistence baseline.
 *
 * Talks to the user (this is cli/): bad input -> one message naming the
 * file and the problem, exit 2; a failure while working -> exit 1; Ctrl-C
 * -> the current step finishes, a usable model is saved, exit 130. The
 * model file is only ever replaced atomically (cbrnn_model_save). */
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cbrnn/cbrnn_control.h"
#include "cbrnn/cbrnn_model.h"
#include "corpus.h"
#include "host_audio.h"
#include "featcache.h"
#include "util_term.h"

const char cmd_train_summary[] = "train a model from audio files (warm-up, then cortex frozen)";

#define PROG "cbrnn train"
/* Samples handed to the front end per call; any size gives the same frames. */
#define FEAT_BLOCK 4096
/* Floor for a feature's standard deviation: a band that never changes in
 * the corpus (digital silence sits at log(1e-6)) must not divide by zero;
 * 1e-3 is far below the ~1-3 nat spread of speech log-mel bands. */
#define STD_FLOOR 1e-3f
/* Frames of a file between two releases of the cache's resident pages in
 * the passes over whole files (statistics, normalisation): 2.5 MiB of
 * 40-mel frames. */
#define RELEASE_FRAMES 16384
/* Most speeds --speed-perturb takes. */
#define MAX_SPEEDS 8

static void usage(FILE *f)
{
    fprintf(f,
"usage: cbrnn train -o MODEL.safetensors [options] INPUTS...\n"
"\n"
"Trains a cortico-cerebellar network on the feature frames of audio files.\n"
"INPUTS are audio files, folders (searched recursively for audio files) or\n"
"@LIST files (one file or folder per line, relative to the list).\n"
"\n"
"Target (what the output learns):\n"
"  --target predict      the normalised features K frames ahead (default)\n"
"  --horizon K           predict: frames ahead (default 1)\n"
"  --target map          a teacher signal's features at the same frame:\n"
"  --teacher-suffix S      the teacher of a.wav is aS.wav (inputs whose name\n"
"                          ends in S are teachers, not inputs), or\n"
"  --pairs LIST            lines 'input<TAB>teacher' (relative to LIST)\n"
"  --target classify     frame labels from Audacity label files:\n"
"  --labels-dir DIR        DIR/NAME.txt for NAME.wav, lines start<TAB>end<TAB>label\n"
"Model:\n"
"  --arch cbrnn|rnn|reservoir   (default cbrnn). rnn: no cerebellum, linear\n"
"                        readout, cortex size chosen so the parameter count\n"
"                        matches the cbrnn model of --hidden/--cb (unless\n"
"                        --no-match). reservoir: random cortex with\n"
"                        --spectral-radius, never trained\n"
"  --wiring readout|loop (default readout: the cerebellum reads the cortex;\n"
"                        loop: the cerebellum feeds back into the cortex)\n"
"  --hidden N            cortex units (default 256)\n"
"  --cb W[,W...]         cerebellum hidden widths (default 512; 256,64 is the\n"
"                        paper's module; 0 = none, reservoir only)\n"
"  --activation tanh|relu|leaky_relu  (default tanh)\n"
"  --alpha A             cortex leak 1/tau in (0,1] (default 1: torch.nn.RNN)\n"
"  --spectral-radius R   reservoir (default 0.9)\n"
"  --no-match            rnn: use --hidden as given\n"
"  --output-mode plain|residual  plain: the output is the head's (the seed's\n"
"                        CBRNN); residual: the input frame plus the head's,\n"
"                        which then learns the change (predict, map)\n"
"  --stream-norm SEC     after the corpus normaliser, a causal running\n"
"                        normaliser with time constant SEC that follows each\n"
"                        stream's channel and speaker (predict; 0 = off)\n"
"  --stream-norm-floor X its standard-deviation floor (default 0.1)\n"
"  --online-rule sgd|rls how the cerebellum should learn online by default\n"
"                        (stored; hosts' --rule auto takes it): sgd, or rls\n"
"                        (recursive least squares on its last layer; readout\n"
"                        wiring, predict or map); default sgd\n"
"  --rls-prior X --rls-forget X  rls: prior precision (30), forgetting (0.9999)\n"
"Features (stored in the model; see 'cbrnn features --help'):\n"
"  --mels N (40)  --mfcc N (off)  --deltas\n"
"  --init MODEL          continue training MODEL (e.g. one adapted live): its\n"
"                        features, normaliser, architecture and weights are\n"
"                        kept (give its --target; the feature and\n"
"                        architecture options are taken from it)\n"
"  --rate HZ             the model's sample rate: files at other rates get\n"
"                        their features at its level, as live (default: the\n"
"                        rate of the first training file)\n"
"Training:\n"
"  --optimizer adam|sgd  (default adam)\n"
"  --lr X                learning rate (default 1e-3 adam, 1e-2 sgd)\n"
"  --lr-decay none|cosine  cosine: from --lr down to 0 over each phase\n"
"  --average F           end with the mean of the weights over the last\n"
"                        fraction F (0..1] of the last phase's steps, not\n"
"                        the last step's (weight averaging; default 0: off)\n"
"  --momentum M, --nesterov, --weight-decay W   (sgd momentum; L2)\n"
"  --batch B             sequences per step (default 16)\n"
"  --seq-len T           BPTT window in frames (default 100)\n"
"  --carry-state         walk each file in order, carrying the state across\n"
"                        windows (default: random windows from zero state)\n"
"  --windows frames|positions  random windows: each file drawn as often as it\n"
"                        has frames (every voice in proportion to its share),\n"
"                        or each window position equally likely (a file\n"
"                        shorter than --seq-len counts once); default positions\n"
"  --warmup-steps N      steps training everything (default 300; 0 for reservoir)\n"
"  --steps M             then steps with the cortex frozen (default 600)\n"
"  --clip C              global gradient-norm clip (default 1; 0 = off)\n"
"  --val-fraction F      fraction of files held out for validation, by file,\n"
"                        chosen by --seed (default 0.2; at least one file when\n"
"                        there are two or more; 0 = none)\n"
"  --val-files INPUT     hold out these files instead (repeatable; files,\n"
"                        folders or @lists)\n"
"  --eval-every K        validate every K steps (default 100)\n"
"  --cache-dir DIR       where the feature cache lives while training runs\n"
"                        (default: the folder of -o). Features are kept on\n"
"                        disk, not in memory: 55 MiB per hour of audio at\n"
"                        40 mels; the file is removed however the run ends\n"
"  --seed S              initialisation, split and batches (default 1)\n"
"  --log FILE.csv        step,phase,train_loss,val_loss,val_persistence_loss,\n"
"                        skill,val_accuracy (skill = 1 - val/persistence)\n"
"  --speed-perturb S[,S...]  every training file is also heard at each speed S\n"
"                        (0.5..2): read as if recorded at S times its rate, so\n"
"                        pitch, formants and tempo scale by S, a new voice for\n"
"                        each (predict; validation files as recorded)\n"
"  --strict              a corpus file that cannot be read or holds no audio\n"
"                        (empty, truncated, not audio, too short) stops the\n"
"                        run; by default it is skipped with a warning naming\n"
"                        it and counted in the summary\n"
"  -q, --quiet           no progress output\n"
"\n"
"Ctrl-C finishes the current step, saves the model and exits with 130.\n"
"Exit status: 0 done; 1 failure while working; 2 bad options or input.\n");
}

/* ---- options ---- */
struct opts;
static int load_init(struct opts *o);

struct opts {
    const char *out, *log, *teacher_suffix, *pairs, *labels_dir, *cache_dir;
    int target, horizon;
    cbrnn_model_config mc;
    float stream_norm, stream_floor; /* --stream-norm seconds (0 off), its floor */
    int online_rule;                 /* --online-rule: index into rule_names */
    double rls_prior, rls_forget;    /* --rls-prior, --rls-forget */
    double model_rate;               /* --rate: the model's rate (0: the first file's) */
    const char *init;                /* --init MODEL */
    cbrnn_model *init_m;             /* ... loaded: what training continues from */
    int lr_decay;                    /* 1: cosine from --lr to 0 over each phase */
    double average;                  /* --average: fraction of the last phase averaged (0 off) */
    int match;
    cbrnn_feat_config fc;
    cbrnn_train_config tc;
    long warmup, steps, eval_every;
    int warmup_given;
    double val_fraction;
    corpus val_specs;
    int quiet, strict;
    double speeds[MAX_SPEEDS];       /* --speed-perturb: extra speeds of every training file */
    int n_speeds;
    struct { /* the optimiser options as given, made into tc.opt once all are read */
        int kind, lr_given, nesterov;
        double lr, mom, wd, clip;
    } og;
};

static int parse_long(const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, PROG ": %s '%s': expected an integer in %ld..%ld\n", opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_double(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, PROG ": %s '%s': expected a number in %g..%g\n", opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_name(const char *opt, const char *s, const char *const *names, int n, int *out)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i])) {
            *out = i;
            return 0;
        }
    fprintf(stderr, PROG ": %s '%s': expected one of", opt, s);
    for (int i = 0; i < n; i++)
        fprintf(stderr, " %s", names[i]);
    fprintf(stderr, "\n");
    return -1;
}

static int parse_cb(const char *s, cbrnn_model_config *c)
{
    if (!strcmp(s, "0") || !strcmp(s, "none")) {
        c->n_cb_hidden = 0;
        return 0;
    }
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (n == CBRNN_MAX_CB_HIDDEN || errno || end == p || v < 1 || v > 65536 ||
            (*end && *end != ',') || (*end == ',' && !end[1])) {
            fprintf(stderr, PROG ": --cb '%s': expected up to %d comma-separated widths "
                            "(1..65536), e.g. 512 or 256,64\n", s, CBRNN_MAX_CB_HIDDEN);
            return -1;
        }
        c->cb_hidden[n++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (n == 0) {
        fprintf(stderr, PROG ": --cb is empty\n");
        return -1;
    }
    c->n_cb_hidden = n;
    return 0;
}

/* --speed-perturb: comma-separated speeds, each within the reader's range
 * and not 1 (the file as recorded is always there). */
static int parse_speeds(const char *s, struct opts *o)
{
    o->n_speeds = 0;
    const char *p = s;
    for (;;) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || (*end && *end != ',') || !(v >= AUDIO_SPEED_MIN && v <= AUDIO_SPEED_MAX) ||
            v == 1.0 || o->n_speeds == MAX_SPEEDS) {
            fprintf(stderr, PROG ": --speed-perturb '%s': expected up to %d speeds in %g..%g "
                            "other than 1, separated by commas (e.g. 0.9,1.1)\n",
                    s, MAX_SPEEDS, AUDIO_SPEED_MIN, AUDIO_SPEED_MAX);
            return -1;
        }
        o->speeds[o->n_speeds++] = v;
        if (!*end)
            return 0;
        p = end + 1;
    }
}

enum {
    O_TARGET = 256, O_HORIZON, O_TEACHER, O_PAIRS, O_LABELS, O_ARCH, O_WIRING, O_HIDDEN, O_CB,
    O_ACT, O_ALPHA, O_RHO, O_NOMATCH, O_MELS, O_MFCC, O_DELTAS, O_OPT, O_LR, O_MOM, O_NEST, O_WD,
    O_BATCH, O_SEQ, O_CARRY, O_WARM, O_STEPS, O_CLIP, O_VALF, O_VALFILES, O_EVAL, O_SEED, O_LOG, O_CACHE,
    O_OUTPUT, O_SNORM, O_SNORM_FLOOR, O_STRICT, O_RATE, O_INIT, O_LRDECAY, O_RULE, O_RLS_PRIOR,
    O_RLS_FORGET, O_SPEED, O_WINDOWS, O_AVERAGE
};

static const char *const target_names[] = {"predict", "map", "classify"};
static const char *const arch_names[] = {"cbrnn", "rnn", "reservoir"};
static const char *const wiring_names[] = {"readout", "loop"};
static const char *const act_names[] = {"tanh", "relu", "leaky_relu"};
static const char *const opt_names[] = {"sgd", "adam"};
static const char *const output_names[] = {"plain", "residual"};
static const char *const rule_names[] = {"sgd", "rls"};
static const char *const decay_names[] = {"none", "cosine"};
static const char *const windows_names[] = {"positions", "frames"};

/* The defaults of every option. */
static void opts_default(struct opts *o)
{
    memset(o, 0, sizeof *o);
    o->horizon = 1;
    cbrnn_model_config_default(&o->mc);
    o->stream_floor = CBRNN_STREAM_NORM_FLOOR;
    o->rls_prior = CBRNN_RLS_PRIOR;
    o->rls_forget = CBRNN_RLS_FORGET;
    o->match = 1;
    cbrnn_feat_config_default(&o->fc, 16000);
    o->tc.batch = 16;
    o->tc.seq_len = 100;
    o->tc.seed = 1;
    o->og.kind = CBRNN_OPT_ADAM;
    o->og.clip = 1.0;
    o->warmup = 300;
    o->steps = 600;
    o->eval_every = 100;
    o->val_fraction = 0.2;
}

/* The options of what is learnt: target, model and features. 0 taken,
 * -1 bad value (message printed), 1 not one of these. */
static int model_option(struct opts *o, int c, const char *arg)
{
    int k;
    long v;
    double d;
    switch (c) {
    case O_TARGET: return parse_name("--target", arg, target_names, 3, &o->target);
    case O_HORIZON:
        if (parse_long("--horizon", arg, 1, 10000, &v)) return -1;
        o->horizon = (int)v;
        return 0;
    case O_TEACHER: o->teacher_suffix = arg; return 0;
    case O_PAIRS: o->pairs = arg; return 0;
    case O_LABELS: o->labels_dir = arg; return 0;
    case O_ARCH:
        if (parse_name("--arch", arg, arch_names, 3, &k)) return -1;
        o->mc.arch = (cbrnn_arch)k;
        return 0;
    case O_WIRING:
        if (parse_name("--wiring", arg, wiring_names, 2, &k)) return -1;
        o->mc.wiring = (cbrnn_wiring)k;
        return 0;
    case O_HIDDEN:
        if (parse_long("--hidden", arg, 1, 65536, &v)) return -1;
        o->mc.n_hidden = (int)v;
        return 0;
    case O_CB: return parse_cb(arg, &o->mc);
    case O_ACT:
        if (parse_name("--activation", arg, act_names, 3, &k)) return -1;
        o->mc.act = (cbrnn_act)k;
        return 0;
    case O_ALPHA:
        if (parse_double("--alpha", arg, 1e-6, 1, &d)) return -1;
        o->mc.alpha = (float)d;
        return 0;
    case O_RHO:
        if (parse_double("--spectral-radius", arg, 1e-6, 100, &d)) return -1;
        o->mc.spectral_radius = (float)d;
        return 0;
    case O_NOMATCH: o->match = 0; return 0;
    case O_OUTPUT: return parse_name("--output-mode", arg, output_names, 2, &o->mc.residual);
    case O_SNORM:
        if (parse_double("--stream-norm", arg, 0, 3600, &d)) return -1;
        o->stream_norm = (float)d;
        return 0;
    case O_INIT: o->init = arg; return 0;
    case O_RATE: return parse_double("--rate", arg, CBRNN_RATE_MIN, CBRNN_RATE_MAX, &o->model_rate);
    case O_SNORM_FLOOR:
        if (parse_double("--stream-norm-floor", arg, 1e-6, 100, &d)) return -1;
        o->stream_floor = (float)d;
        return 0;
    case O_MELS:
        if (parse_long("--mels", arg, 1, 1024, &v)) return -1;
        o->fc.n_mels = (int)v;
        return 0;
    case O_MFCC:
        if (parse_long("--mfcc", arg, 1, 1024, &v)) return -1;
        o->fc.n_mfcc = (int)v;
        return 0;
    case O_DELTAS: o->fc.deltas = 1; return 0;
    default: return 1;
    }
}

/* The options of how it is learnt: optimiser, steps, validation, files
 * and output. 0 taken, -1 bad value (message printed), 1 not one of these. */
static int training_option(struct opts *o, int c, const char *arg)
{
    long v;
    switch (c) {
    case 'o': o->out = arg; return 0;
    case 'q': o->quiet = 1; return 0;
    case O_STRICT: o->strict = 1; return 0;
    case O_LRDECAY: return parse_name("--lr-decay", arg, decay_names, 2, &o->lr_decay);
    case O_AVERAGE: return parse_double("--average", arg, 0, 1, &o->average);
    case O_RULE: return parse_name("--online-rule", arg, rule_names, 2, &o->online_rule);
    case O_RLS_PRIOR: return parse_double("--rls-prior", arg, 1e-9, 1e9, &o->rls_prior);
    case O_RLS_FORGET: return parse_double("--rls-forget", arg, 0.9, 1, &o->rls_forget);
    case O_OPT: return parse_name("--optimizer", arg, opt_names, 2, &o->og.kind);
    case O_LR:
        if (parse_double("--lr", arg, 1e-12, 100, &o->og.lr)) return -1;
        o->og.lr_given = 1;
        return 0;
    case O_MOM: return parse_double("--momentum", arg, 0, 0.9999, &o->og.mom);
    case O_NEST: o->og.nesterov = 1; return 0;
    case O_WD: return parse_double("--weight-decay", arg, 0, 10, &o->og.wd);
    case O_BATCH:
        if (parse_long("--batch", arg, 1, 4096, &v)) return -1;
        o->tc.batch = (int)v;
        return 0;
    case O_SEQ:
        if (parse_long("--seq-len", arg, 1, 100000, &v)) return -1;
        o->tc.seq_len = (int)v;
        return 0;
    case O_CARRY: o->tc.carry_state = 1; return 0;
    case O_WINDOWS: return parse_name("--windows", arg, windows_names, 2, &o->tc.windows);
    case O_WARM:
        if (parse_long("--warmup-steps", arg, 0, 100000000, &o->warmup)) return -1;
        o->warmup_given = 1;
        return 0;
    case O_STEPS: return parse_long("--steps", arg, 0, 100000000, &o->steps);
    case O_CLIP: return parse_double("--clip", arg, 0, 1e9, &o->og.clip);
    case O_VALF: return parse_double("--val-fraction", arg, 0, 0.9, &o->val_fraction);
    case O_VALFILES: return corpus_push(&o->val_specs, arg) ? -1 : 0;
    case O_EVAL: return parse_long("--eval-every", arg, 1, 100000000, &o->eval_every);
    case O_SEED:
        if (parse_long("--seed", arg, 0, 0x7fffffffL, &v)) return -1;
        o->tc.seed = (uint64_t)v;
        return 0;
    case O_LOG: o->log = arg; return 0;
    case O_CACHE: o->cache_dir = arg; return 0;
    case O_SPEED: return parse_speeds(arg, o);
    default: return 1;
    }
}

/* The output file, and --init's model (both before hours of training). */
static int check_output_and_init(struct opts *o)
{
    if (!o->out) {
        fprintf(stderr, PROG ": -o MODEL.safetensors is required\n");
        return -1;
    }
    char why[1024];
    if (cbrnn_control_check_output(o->out, why, sizeof why)) {
        fprintf(stderr, PROG ": -o %s\n", why);
        return -1;
    }
    if (o->init && load_init(o))
        return -1;
    return 0;
}

/* The options that only make sense together. 0, or -1 (message printed). */
static int check_combinations(struct opts *o)
{
    if (o->og.nesterov && (o->og.kind != CBRNN_OPT_SGD || o->og.mom <= 0)) {
        fprintf(stderr, PROG ": --nesterov needs --optimizer sgd and --momentum > 0\n");
        return -1;
    }
    if (o->fc.n_mfcc > o->fc.n_mels) {
        fprintf(stderr, PROG ": --mfcc %d is more than --mels %d\n", o->fc.n_mfcc, o->fc.n_mels);
        return -1;
    }
    if (o->target == CBRNN_TARGET_MAP && !o->teacher_suffix == !o->pairs) {
        fprintf(stderr, PROG ": --target map needs exactly one of --teacher-suffix or --pairs\n");
        return -1;
    }
    if (o->target != CBRNN_TARGET_MAP && (o->teacher_suffix || o->pairs)) {
        fprintf(stderr, PROG ": --teacher-suffix and --pairs are for --target map\n");
        return -1;
    }
    if (o->teacher_suffix && !*o->teacher_suffix) {
        fprintf(stderr, PROG ": --teacher-suffix is empty\n");
        return -1;
    }
    if (o->mc.residual && o->target == CBRNN_TARGET_CLASSIFY) {
        fprintf(stderr, PROG ": --output-mode residual is for --target predict or map (it adds "
                        "the input frame to the output)\n");
        return -1;
    }
    if (o->stream_norm > 0 && (o->target != CBRNN_TARGET_PREDICT || !o->mc.residual)) {
        fprintf(stderr, PROG ": --stream-norm is for --target predict with --output-mode "
                        "residual (the running scale brings the output back)\n");
        return -1;
    }
    if (o->online_rule && !cbrnn_rule_rls_fits(o->mc.wiring, (cbrnn_target)o->target)) {
        fprintf(stderr, PROG ": --online-rule rls is for the readout wiring with --target predict "
                        "or map (a squared error on the cerebellum's output)\n");
        return -1;
    }
    if (o->n_speeds && o->target != CBRNN_TARGET_PREDICT) {
        fprintf(stderr, PROG ": --speed-perturb is for --target predict (a teacher or labels "
                        "would have to change with the speed)\n");
        return -1;
    }
    if ((o->target == CBRNN_TARGET_CLASSIFY) != (o->labels_dir != NULL)) {
        fprintf(stderr, PROG ": --target classify and --labels-dir DIR go together\n");
        return -1;
    }
    if (o->mc.arch == CBRNN_ARCH_RESERVOIR) {
        if (o->warmup_given && o->warmup > 0) {
            fprintf(stderr, PROG ": a reservoir's cortex is never trained: --warmup-steps must be 0\n");
            return -1;
        }
        o->warmup = 0;
    } else if (o->mc.arch == CBRNN_ARCH_CBRNN && o->mc.n_cb_hidden == 0) {
        fprintf(stderr, PROG ": --cb 0 (no cerebellum) is for --arch reservoir; use --arch rnn\n");
        return -1;
    }
    if (o->warmup + o->steps == 0) {
        fprintf(stderr, PROG ": nothing to do: --warmup-steps and --steps are both 0\n");
        return -1;
    }
    return 0;
}

/* 0 ok, 1 --help shown, -1 error (message printed). */
static int parse_opts(struct opts *o, int argc, char **argv)
{
    static const struct option lo[] = {
        {"output", required_argument, NULL, 'o'}, {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'}, {"target", required_argument, NULL, O_TARGET},
        {"horizon", required_argument, NULL, O_HORIZON},
        {"teacher-suffix", required_argument, NULL, O_TEACHER},
        {"pairs", required_argument, NULL, O_PAIRS},
        {"labels-dir", required_argument, NULL, O_LABELS},
        {"arch", required_argument, NULL, O_ARCH}, {"wiring", required_argument, NULL, O_WIRING},
        {"hidden", required_argument, NULL, O_HIDDEN}, {"cb", required_argument, NULL, O_CB},
        {"activation", required_argument, NULL, O_ACT},
        {"alpha", required_argument, NULL, O_ALPHA},
        {"spectral-radius", required_argument, NULL, O_RHO},
        {"no-match", no_argument, NULL, O_NOMATCH}, {"mels", required_argument, NULL, O_MELS},
        {"mfcc", required_argument, NULL, O_MFCC}, {"deltas", no_argument, NULL, O_DELTAS},
        {"optimizer", required_argument, NULL, O_OPT}, {"lr", required_argument, NULL, O_LR},
        {"momentum", required_argument, NULL, O_MOM}, {"nesterov", no_argument, NULL, O_NEST},
        {"weight-decay", required_argument, NULL, O_WD},
        {"batch", required_argument, NULL, O_BATCH}, {"seq-len", required_argument, NULL, O_SEQ},
        {"carry-state", no_argument, NULL, O_CARRY},
        {"warmup-steps", required_argument, NULL, O_WARM},
        {"steps", required_argument, NULL, O_STEPS}, {"clip", required_argument, NULL, O_CLIP},
        {"val-fraction", required_argument, NULL, O_VALF},
        {"val-files", required_argument, NULL, O_VALFILES},
        {"eval-every", required_argument, NULL, O_EVAL},
        {"seed", required_argument, NULL, O_SEED}, {"log", required_argument, NULL, O_LOG},
        {"cache-dir", required_argument, NULL, O_CACHE},
        {"output-mode", required_argument, NULL, O_OUTPUT},
        {"stream-norm", required_argument, NULL, O_SNORM},
        {"stream-norm-floor", required_argument, NULL, O_SNORM_FLOOR},
        {"strict", no_argument, NULL, O_STRICT},
        {"rate", required_argument, NULL, O_RATE}, {"init", required_argument, NULL, O_INIT},
        {"lr-decay", required_argument, NULL, O_LRDECAY},
        {"average", required_argument, NULL, O_AVERAGE},
        {"online-rule", required_argument, NULL, O_RULE},
        {"rls-prior", required_argument, NULL, O_RLS_PRIOR},
        {"rls-forget", required_argument, NULL, O_RLS_FORGET},
        {"speed-perturb", required_argument, NULL, O_SPEED},
        {"windows", required_argument, NULL, O_WINDOWS}, {NULL, 0, NULL, 0}};
    opts_default(o);
    int c;
    while ((c = getopt_long(argc, argv, "o:qh", lo, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return 1;
        }
        int rc = model_option(o, c, optarg);
        if (rc > 0)
            rc = training_option(o, c, optarg);
        if (rc > 0) /* not an option of ours: getopt said which */
            usage(stderr);
        if (rc)
            return -1;
    }
    cbrnn_optim_config_default(&o->tc.opt, (cbrnn_opt_kind)o->og.kind);
    if (o->og.lr_given)
        o->tc.opt.lr = (float)o->og.lr;
    o->tc.opt.momentum = (float)o->og.mom;
    o->tc.opt.nesterov = o->og.nesterov;
    o->tc.opt.weight_decay = (float)o->og.wd;
    o->tc.opt.clip_norm = (float)o->og.clip;
    if (check_output_and_init(o) || check_combinations(o))
        return -1;
    return 0;
}

/* ---- data ---- */

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
    int skip; /* unreadable or without audio: left out (bad_file) */
};

/* A corpus file that cannot be read or holds no usable audio (why: "PATH:
 * what is wrong"): with --strict the run stops (-1); otherwise the file is
 * marked to be left out, with a warning, and counted (0). One bad file
 * among thousands must not cost a long run. */
static int bad_file(const struct opts *o, struct item *t, const char *why, int *n_skipped)
{
    if (o->strict) {
        fprintf(stderr, PROG ": %s (--strict: a bad file is an error)\n", why);
        return -1;
    }
    fprintf(stderr, PROG ": warning: skipping %s\n", why);
    t->skip = 1;
    (*n_skipped)++;
    return 0;
}

static void say_none_left(int n_skipped)
{
    fprintf(stderr, PROG ": no training file left: %d file%s skipped (unreadable or no audio; "
                    "see the warnings)\n", n_skipped, n_skipped == 1 ? "" : "s");
}

/* Drops the items bad_file marked (they own nothing yet); the new count. */
static int drop_skipped(struct item *it, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!it[i].skip)
            it[k++] = it[i];
    return k;
}

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    /* First signal: ask the loop to stop after this step; a second one
     * kills the program the default way. */
    if (g_stop) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    g_stop = sig;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends s to buf as one shell word (single-quoted when needed), keeping
 * the string valid UTF-8 (other bytes become '?') for the JSON header. */
static void append_word(char *buf, size_t cap, const char *s)
{
    size_t l = strlen(buf);
    int quote = !*s || strpbrk(s, " \t\n'\"\\$`*?[]{}()<>|&;#~") != NULL;
    if (l && l + 1 < cap)
        buf[l++] = ' ';
    if (quote && l + 1 < cap)
        buf[l++] = '\'';
    const unsigned char *p = (const unsigned char *)s;
    while (*p && l + 5 < cap) {
        int n = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
        int ok = n > 0;
        for (int i = 1; ok && i < n; i++)
            ok = (p[i] & 0xc0) == 0x80;
        if (!ok || *p < 0x20) {
            buf[l++] = '?';
            p++;
            continue;
        }
        if (*p == '\'' && quote) {
            memcpy(buf + l, "'\\''", 4);
            l += 4;
            p++;
            continue;
        }
        memcpy(buf + l, p, (size_t)n);
        l += (size_t)n;
        p += n;
    }
    if (quote && l + 1 < cap)
        buf[l++] = '\'';
    buf[l] = 0;
}

/* Validation sums over the validation items. */
struct vres {
    int have;
    double loss, persist, skill, acc;
};

/* audio_features_each's receiver: frames go straight to the cache. */
struct to_cache {
    feat_cache *c;
    long frames;
    int dim;
    int failed;
    char msg[512];
};

static int on_frames(void *ctx, const float *x, long n, int dim)
{
    struct to_cache *tc = ctx;
    tc->dim = dim;
    if (feat_cache_append(tc->c, x, (size_t)n * (size_t)dim, tc->msg, sizeof tc->msg)) {
        tc->failed = 1;
        return 1;
    }
    tc->frames += n;
    return g_stop != 0; /* Ctrl-C while computing features: stop early */
}

/* Appends the features of path to the cache: *off (floats), *T frames,
 * *dim. 0; 1 when interrupted; with msg: -1 the input is bad (exit 2),
 * -2 the cache could not be written (a full disk: exit 1). */
/* Appends n zero floats to the cache (room filled in later through the
 * mapping); *off gets where they start. */
static int reserve_cache(feat_cache *c, size_t *off, size_t n, char *msg, size_t msglen)
{
    static const float zeros[4096];
    *off = feat_cache_size(c);
    for (size_t done = 0; done < n;) {
        size_t k = n - done < 4096 ? n - done : 4096;
        if (feat_cache_append(c, zeros, k, msg, msglen))
            return -1;
        done += k;
    }
    return 0;
}

/* The rate a file's features are computed at: its own (0), but a
 * speed-perturbed copy goes through the resampler anyway, so straight down
 * to the model's rate, where its features cost least (a 44.1 kHz file's
 * copy: a third of the samples and of the FFT size). */
static double features_rate(double rate, double speed, const cbrnn_feat_config *fc)
{
    return speed != 1.0 && fc->ref_rate > 0 && rate > fc->ref_rate ? fc->ref_rate : 0;
}

/* A file's features computed on a second thread while the main one works
 * on the file before it: both cores, where the corpus's features would
 * otherwise take one (memory: one file's features). */
struct prefetch {
    int i;                       /* the item (-1: none) */
    const struct item *t;
    const cbrnn_feat_config *fc;
    pthread_t th;
    float *x;                    /* [T, dim] malloc'ed */
    int T, dim, rc;
    char msg[1024];
};

static void *prefetch_main(void *arg)
{
    struct prefetch *p = arg;
    const struct item *t = p->t;
    p->rc = audio_features(t->path, p->fc, features_rate(t->rate, t->speed, p->fc), t->speed,
                           FEAT_BLOCK, &p->x, &p->T, &p->dim, p->msg, sizeof p->msg);
    return NULL;
}

/* Starts computing item i's features on a thread; 0, or -1 when no thread
 * could be made (the item is then computed on the main thread). */
static int prefetch_start(struct prefetch *p, int i, const struct item *t,
                          const cbrnn_feat_config *fc)
{
    memset(p, 0, sizeof *p);
    p->i = i;
    p->t = t;
    p->fc = fc;
    if (pthread_create(&p->th, NULL, prefetch_main, p)) {
        p->i = -1;
        return -1;
    }
    return 0;
}

/* Appends a prefetched file's features: as features_to_cache. */
static int prefetched_to_cache(feat_cache *c, const struct prefetch *p, size_t *off, int *T,
                               int *dim, char *msg, size_t msglen)
{
    *off = feat_cache_size(c);
    if (p->rc) {
        snprintf(msg, msglen, "%s", p->msg);
        return -1;
    }
    if (feat_cache_append(c, p->x, (size_t)p->T * (size_t)p->dim, msg, msglen))
        return -2;
    *T = p->T;
    *dim = p->dim;
    return 0;
}

static int features_to_cache(feat_cache *c, const char *path, double rate, double speed,
                             const cbrnn_feat_config *fc, size_t *off, int *T, int *dim, char *msg,
                             size_t msglen)
{
    struct to_cache tc = {c, 0, 0, 0, ""};
    *off = feat_cache_size(c);
    int rc = audio_features_each(path, fc, features_rate(rate, speed, fc), speed, FEAT_BLOCK,
                                 on_frames, &tc, msg, msglen);
    if (rc < 0)
        return -1;
    if (tc.failed) {
        snprintf(msg, msglen, "%s (while computing the features of %s)", tc.msg, path);
        return -2;
    }
    if (rc > 0)
        return 1;
    if (tc.frames > 0x7fffffffL) {
        snprintf(msg, msglen, "%s: %ld feature frames: too long (split the file)", path, tc.frames);
        return -1;
    }
    *T = (int)tc.frames;
    *dim = tc.dim;
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
            snprintf(buf + l, cap - (size_t)l, " val %.4f skill %.3f", v->loss, v->skill);
    }
}

/* --init MODEL: training continues from it, so everything that shapes its
 * inputs and outputs comes from it: features (at its rate), target,
 * horizon, architecture, running normaliser. Classify models are not
 * taken yet (their class list would have to match the label files). */
static int load_init(struct opts *o)
{
    char msg[1024];
    int err = 0;
    cbrnn_model *m = cbrnn_model_load(o->init, &err, msg, sizeof msg);
    if (!m) {
        fprintf(stderr, PROG ": --init %s\n", msg);
        return -1;
    }
    const char *bad = m->target == CBRNN_TARGET_TASK        ? "is a sequence-task model"
                      : m->target == CBRNN_TARGET_CLASSIFY  ? "is a classify model (not supported "
                                                              "by --init yet)"
                      : (int)m->target != o->target         ? "has another target: give its "
                                                              "--target"
                      : !m->norm_mean                       ? "has no normaliser"
                                                            : NULL;
    if (bad) {
        fprintf(stderr, PROG ": --init %s %s\n", o->init, bad);
        cbrnn_model_destroy(m);
        return -1;
    }
    o->fc = m->feat;
    o->fc.ref_rate = 0;
    o->model_rate = m->feat.sample_rate;
    o->horizon = m->horizon;
    o->mc = m->cfg;
    o->match = 0;
    o->stream_norm = m->stream_norm_s;
    o->stream_floor = m->stream_norm_floor;
    if (m->online_rule == CBRNN_RULE_RLS && !o->online_rule) { /* kept unless asked */
        o->online_rule = 1;
        o->rls_prior = m->rls_prior;
        o->rls_forget = m->rls_forget;
    }
    o->init_m = m;
    return 0;
}

/* ---- the run: its state and its steps, in the order cmd_train takes them ---- */

/* Everything one run owns; the steps fill it in order and run_free gives
 * it back however the run ends. A step returns 0 to go on, or the exit
 * status the run ends with (2 bad input, 1 failure while working,
 * 128 + signal when interrupted). */
struct run {
    struct opts o;
    int argc;
    char **argv;
    char msg[2048];
    corpus inputs, teachers, valc;
    struct item *it;
    int n, n_skipped;
    int n_copies;       /* --speed-perturb items among the n_train (make_sequences) */
    char **classes;
    int n_classes;
    char *out_dir;
    feat_cache *cache;
    int F;              /* feature dimension */
    int interactive;    /* progress bars on a terminal */
    double t0;          /* when the current progress bar started */
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

static int out_of_memory(void)
{
    fprintf(stderr, PROG ": out of memory\n");
    return 1;
}

/* The corpus: INPUTS, the --pairs list and --val-files, as path lists. */
static int read_inputs(struct run *r)
{
    for (int i = optind; i < r->argc; i++)
        if (corpus_add(&r->inputs, r->argv[i], r->msg, sizeof r->msg)) {
            fprintf(stderr, PROG ": %s\n", r->msg);
            return 2;
        }
    if (r->o.pairs &&
        corpus_read_pairs(r->o.pairs, &r->inputs, &r->teachers, r->msg, sizeof r->msg)) {
        fprintf(stderr, PROG ": %s\n", r->msg);
        return 2;
    }
    if (r->o.pairs && r->teachers.n != r->inputs.n) {
        fprintf(stderr, PROG ": with --pairs, give the inputs in the pairs list only\n");
        return 2;
    }
    for (int i = 0; i < r->o.val_specs.n; i++)
        if (corpus_add(&r->valc, r->o.val_specs.paths[i], r->msg, sizeof r->msg)) {
            fprintf(stderr, PROG ": --val-files: %s\n", r->msg);
            return 2;
        }
    return 0;
}

/* One item per distinct file (inputs, then --val-files), each with its
 * teacher (map). With a teacher suffix, files named like teachers are not
 * inputs; a file named in --val-files is validation even if also an input. */
static int make_items(struct run *r)
{
    const struct opts *o = &r->o;
    int n_all = r->inputs.n + r->valc.n;
    r->it = calloc((size_t)(n_all ? n_all : 1), sizeof *r->it);
    if (!r->it)
        return out_of_memory();
    struct item *it = r->it;
    int n = 0;
    for (int i = 0; i < n_all; i++) {
        int is_val = i >= r->inputs.n;
        const char *p = is_val ? r->valc.paths[i - r->inputs.n] : r->inputs.paths[i];
        if (o->teacher_suffix && corpus_stem_has_suffix(p, o->teacher_suffix))
            continue;
        int dup = 0;
        for (int k = 0; k < n && !dup; k++)
            if (!strcmp(it[k].path, p)) {
                dup = 1;
                it[k].val |= is_val;
            }
        if (dup)
            continue;
        it[n].path = p;
        it[n].val = is_val;
        it[n].speed = 1.0;
        if (o->pairs) {
            it[n].teacher = NULL;
            for (int k = 0; k < r->inputs.n; k++)
                if (!strcmp(r->inputs.paths[k], p))
                    it[n].teacher = r->teachers.paths[k];
            if (!it[n].teacher) {
                fprintf(stderr, PROG ": --val-files %s is not in the pairs list %s, so it has no "
                                "teacher\n", p, o->pairs);
                return 2;
            }
        }
        r->n = ++n;
    }
    if (n == 0) {
        fprintf(stderr, PROG ": no audio files to train on (empty corpus)%s\n",
                optind == r->argc && !o->pairs ? ": give INPUTS" : "");
        return 2;
    }
    if (o->teacher_suffix)
        for (int i = 0; i < n; i++) {
            /* Kept alive in the teachers corpus so the item can point at it. */
            char *t = corpus_teacher_path(it[i].path, o->teacher_suffix);
            if (!t || corpus_push(&r->teachers, t)) {
                free(t);
                return out_of_memory();
            }
            free(t);
            it[i].teacher = r->teachers.paths[r->teachers.n - 1];
        }
    return 0;
}

/* Every file opened once, before the split: its rate, and the files that
 * cannot be read or hold no audio left out (or --strict stops). */
static int probe_files(struct run *r)
{
    for (int i = 0; i < r->n; i++) {
        audio_in *a = audio_in_open(r->it[i].path, 0, r->msg, sizeof r->msg);
        if (!a) {
            if (bad_file(&r->o, &r->it[i], r->msg, &r->n_skipped))
                return 2;
            continue;
        }
        r->it[i].rate = audio_in_file_rate(a);
        audio_in_close(a);
    }
    r->n = drop_skipped(r->it, r->n);
    if (r->n == 0) {
        say_none_left(r->n_skipped);
        return 2;
    }
    return 0;
}

/* The validation split, by file: --val-files, or --val-fraction of the
 * files chosen by a shuffle that is deterministic for the seed. */
static int split_validation(struct run *r)
{
    int n = r->n, n_val = 0;
    for (int i = 0; i < n; i++)
        n_val += r->it[i].val;
    if (r->valc.n == 0 && r->o.val_fraction > 0 && n >= 2) {
        n_val = (int)lround(r->o.val_fraction * n);
        if (n_val < 1)
            n_val = 1;
        if (n_val > n - 1)
            n_val = n - 1;
        int *perm = malloc((size_t)n * sizeof *perm);
        if (!perm)
            return out_of_memory();
        for (int i = 0; i < n; i++)
            perm[i] = i;
        cbrnn_rng rng;
        /* A stream of its own (seed xor a fixed constant), so the split does
         * not reuse the initialisation's random numbers. */
        cbrnn_rng_seed(&rng, r->o.tc.seed ^ 0x5b1175eedULL);
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(cbrnn_rng_u64(&rng) % (uint64_t)(i + 1));
            int t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        for (int i = 0; i < n_val; i++)
            r->it[perm[i]].val = 1;
        free(perm);
    }
    if (n_val == n) {
        fprintf(stderr, PROG ": every file is a validation file: nothing left to train on\n");
        return 2;
    }
    return 0;
}

/* --speed-perturb: every training item again at each speed, appended
 * (validation items stay as recorded). */
static int add_speed_copies(struct run *r)
{
    const struct opts *o = &r->o;
    if (!o->n_speeds)
        return 0;
    int n_train = 0;
    for (int i = 0; i < r->n; i++)
        n_train += !r->it[i].val;
    if ((long)n_train * (o->n_speeds + 1) + (r->n - n_train) > INT_MAX / 2)
        return out_of_memory();
    int n_all = r->n + n_train * o->n_speeds;
    struct item *it = realloc(r->it, (size_t)n_all * sizeof *it);
    if (!it)
        return out_of_memory();
    r->it = it;
    int n = r->n;
    for (int k = 0; k < o->n_speeds; k++)
        for (int i = 0; i < r->n; i++)
            if (!it[i].val) {
                it[n] = it[i];
                it[n].speed = o->speeds[k];
                n++;
            }
    r->n = n;
    return 0;
}

/* From here on Ctrl-C (and SIGTERM) only asks the run to stop (g_stop). */
static int catch_signals(struct run *r)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return 0;
}

/* The feature cache, in --cache-dir or the folder of -o (where the user
 * has room to write). */
static int open_cache(struct run *r)
{
    const char *cdir = r->o.cache_dir;
    if (!cdir) {
        r->out_dir = strdup(r->o.out);
        if (!r->out_dir)
            return out_of_memory();
        char *slash = strrchr(r->out_dir, '/');
        if (!slash)
            strcpy(r->out_dir, ".");
        else if (slash == r->out_dir)
            r->out_dir[1] = '\0';
        else
            *slash = '\0';
        cdir = r->out_dir;
    }
    r->cache = feat_cache_open(cdir, r->msg, sizeof r->msg);
    if (!r->cache) {
        /* a folder that is not there or not ours is the user's to fix (2);
         * a full disk or no memory is a failure while working (1) */
        int e = errno;
        fprintf(stderr, PROG ": %s%s\n", r->msg,
                r->o.cache_dir ? "" : " (--cache-dir DIR puts it elsewhere)");
        return e != ENOENT && e != ENOTDIR && e != EACCES && e != EROFS ? 1 : 2;
    }
    return 0;
}

/* The model is trained at the rate of its first training file (or --rate);
 * files at other rates get their mel energies at that rate's level
 * (ref_rate), as the engine gives them to the model live. */
static int choose_rate(struct run *r)
{
    for (int i = 0; i < r->n && !r->o.model_rate; i++)
        if (!r->it[i].val) {
            r->o.fc.ref_rate = r->it[i].rate;
            break;
        }
    if (r->o.model_rate)
        r->o.fc.ref_rate = r->o.model_rate;
    return 0;
}

/* The teacher's features of item i (map), after the item's own: the same
 * length within one frame. 0 (also when the item was skipped) or the exit
 * status. */
static int teacher_features(struct run *r, struct item *t)
{
    int tT = 0, tdim = 0;
    int frc = features_to_cache(r->cache, t->teacher, 0, t->speed, &r->o.fc, &t->toff, &tT,
                                &tdim, r->msg, sizeof r->msg);
    if (frc > 0) {
        fprintf(stderr, PROG ": interrupted while computing features; no model written\n");
        return 128 + (int)g_stop;
    }
    if (frc == -2) {
        fprintf(stderr, PROG ": teacher of %s: %s\n", t->path, r->msg);
        return 1;
    }
    if (frc < 0) {
        char why[sizeof r->msg + 64];
        snprintf(why, sizeof why, "%s: its teacher %s", t->path, r->msg);
        return bad_file(&r->o, t, why, &r->n_skipped) ? 2 : 0;
    }
    /* Different rates round the hop differently: allow one frame. */
    if (abs(tT - t->T) > 1) {
        fprintf(stderr, PROG ": %s has %d frames but its teacher %s has %d: they must "
                        "have the same length (within one %g ms frame)\n",
                t->path, t->T, t->teacher, tT, r->o.fc.hop_ms);
        return 2;
    }
    if (tT < t->T)
        t->T = tT;
    return 0;
}

/* Item t's features into the cache, with room for the running normaliser,
 * its teacher's features and its labels. 0 (also when the item was
 * skipped: t->skip) or the exit status. */
static int item_features(struct run *r, struct item *t, const struct prefetch *pre)
{
    const struct opts *o = &r->o;
    int dim = 0;
    int frc = g_stop ? 1
              : pre  ? prefetched_to_cache(r->cache, pre, &t->xoff, &t->T, &dim, r->msg,
                                           sizeof r->msg)
                     : features_to_cache(r->cache, t->path, t->rate, t->speed, &o->fc,
                                         &t->xoff, &t->T, &dim, r->msg, sizeof r->msg);
    if (frc > 0) {
        fprintf(stderr, "%s" PROG ": interrupted while computing features; no model written\n",
                r->interactive ? "\n" : "");
        return 128 + (int)g_stop;
    }
    if (frc == -2) {
        fprintf(stderr, PROG ": %s\n", r->msg); /* a full disk is not the input's fault */
        return 1;
    }
    if (frc < 0)
        return bad_file(o, t, r->msg, &r->n_skipped) ? 2 : 0;
    int need = (o->target == CBRNN_TARGET_PREDICT ? o->horizon : 0) + 2;
    if (t->T < need) {
        snprintf(r->msg, sizeof r->msg,
                 "%s: only %d feature frames (%g ms hop%s); at least %d needed", t->path, t->T,
                 o->fc.hop_ms, t->speed != 1.0 ? ", a --speed-perturb copy" : "", need);
        return bad_file(o, t, r->msg, &r->n_skipped) ? 2 : 0;
    }
    r->F = dim;
    /* Room for the running normaliser's z and s beside x, filled once
     * the corpus statistics are known. */
    if (o->stream_norm > 0 &&
        reserve_cache(r->cache, &t->zoff, 2 * (size_t)t->T * r->F, r->msg, sizeof r->msg)) {
        fprintf(stderr, PROG ": %s\n", r->msg);
        return 1;
    }
    if (t->teacher) {
        int rc = teacher_features(r, t);
        if (rc || t->skip)
            return rc;
    }
    if (o->labels_dir) {
        char *lp = labels_path_for(o->labels_dir, t->path);
        if (!lp || labels_read(lp, &t->lf, r->msg, sizeof r->msg)) {
            fprintf(stderr, PROG ": %s\n", lp ? r->msg : "out of memory");
            free(lp);
            return 2;
        }
        free(lp);
    }
    return 0;
}

/* Features, once per file, into the disk cache; then the cache is mapped
 * and every item's views (x, t, z, s) point into it. */
static int compute_features(struct run *r)
{
    r->interactive = !r->o.quiet && term_is_interactive(stderr);
    r->t0 = now_s();
    struct prefetch pf = {.i = -1}, next;
    for (int i = 0; i < r->n; i++) {
        if (r->it[i].skip)
            continue;
        if (r->interactive)
            term_progress(stderr, "features", i, r->n, now_s() - r->t0, r->it[i].path);
        /* Files in pairs: the next one on a second thread meanwhile. */
        int j = i + 1;
        while (j < r->n && r->it[j].skip)
            j++;
        int started = pf.i != i && j < r->n && !g_stop &&
                      prefetch_start(&next, j, &r->it[j], &r->o.fc) == 0;
        int rc = item_features(r, &r->it[i], pf.i == i ? &pf : NULL);
        if (pf.i == i) {
            free(pf.x);
            pf.x = NULL;
            pf.i = -1;
        }
        if (started) {
            pthread_join(next.th, NULL);
            pf = next;
        }
        if (rc) {
            free(pf.x);
            return rc;
        }
    }
    if (r->interactive)
        term_progress(stderr, "features", r->n, r->n, now_s() - r->t0, "");
    r->n = drop_skipped(r->it, r->n);
    int n_left = 0;
    for (int i = 0; i < r->n; i++)
        n_left += !r->it[i].val;
    if (n_left == 0) {
        say_none_left(r->n_skipped);
        return 2;
    }
    float *base = feat_cache_map(r->cache, r->msg, sizeof r->msg);
    if (!base) {
        fprintf(stderr, PROG ": %s\n", r->msg);
        return 1;
    }
    for (int i = 0; i < r->n; i++) {
        struct item *t = &r->it[i];
        t->t = t->teacher ? base + t->toff : NULL;
        t->x = base + t->xoff;
        if (r->o.stream_norm > 0) {
            t->z = base + t->zoff;
            t->s = t->z + (size_t)t->T * r->F;
        }
    }
    return 0;
}

/* Classify: the classes are every label of the training files, sorted;
 * each file's labels become per-frame class indices. */
static int collect_classes(struct run *r)
{
    if (r->o.target != CBRNN_TARGET_CLASSIFY)
        return 0;
    for (int i = 0; i < r->n; i++)
        if (!r->it[i].val && labels_collect(&r->classes, &r->n_classes, CBRNN_MAX_CLASSES,
                                            &r->it[i].lf, r->msg, sizeof r->msg)) {
            fprintf(stderr, PROG ": %s\n", r->msg);
            return 2;
        }
    if (r->n_classes < 2) {
        fprintf(stderr, PROG ": the training label files hold %d distinct label%s; "
                        "classify needs at least 2\n", r->n_classes, r->n_classes == 1 ? "" : "s");
        return 2;
    }
    qsort(r->classes, (size_t)r->n_classes, sizeof *r->classes, cmp_str);
    for (int i = 0; i < r->n; i++) {
        struct item *t = &r->it[i];
        cbrnn_feat_config fr = r->o.fc;
        fr.sample_rate = t->rate;
        t->labels = malloc((size_t)t->T * sizeof(int));
        if (!t->labels)
            return out_of_memory();
        if (labels_to_frames(t->labels, &t->lf, (const char *const *)r->classes, r->n_classes,
                             t->rate, cbrnn_feat_config_hop(&fr), cbrnn_feat_config_win(&fr),
                             t->T, r->msg, sizeof r->msg)) {
            fprintf(stderr, PROG ": %s\n", r->msg);
            return 2;
        }
    }
    return 0;
}

/* The corpus normaliser from the training files only, as recorded: not
 * their --speed-perturb copies, so models with and without them are
 * scored in the same space (--init: the model's own, as it was trained
 * and adapted with). Applied in place to every file's features and
 * teacher. */
static int normalise(struct run *r)
{
    int F = r->F;
    r->mean = malloc((size_t)F * sizeof *r->mean);
    r->sd = malloc((size_t)F * sizeof *r->sd);
    if (!r->mean || !r->sd || cbrnn_stats_init(&r->st, F))
        return out_of_memory();
    for (int i = 0; i < r->n; i++) {
        const struct item *t = &r->it[i];
        if (t->val) {
            r->val_frames += t->T;
            continue;
        }
        r->train_frames += t->T;
        if (t->speed != 1.0) /* the normaliser describes the recordings as they are */
            continue;
        for (int k = 0; k < t->T; k++) {
            cbrnn_stats_add(&r->st, t->x + (size_t)k * F);
            if ((k + 1) % RELEASE_FRAMES == 0 || k + 1 == t->T)
                feat_cache_release(r->cache, 0, 0);
        }
    }
    cbrnn_stats_result(&r->st, r->mean, r->sd, STD_FLOOR);
    if (r->o.init_m) {
        memcpy(r->mean, r->o.init_m->norm_mean, (size_t)F * sizeof *r->mean);
        memcpy(r->sd, r->o.init_m->norm_std, (size_t)F * sizeof *r->sd);
    }
    for (int i = 0; i < r->n; i++) {
        struct item *t = &r->it[i];
        for (int k = 0; k < t->T; k++) {
            for (int f = 0; f < F; f++) {
                size_t j = (size_t)k * F + (size_t)f;
                t->x[j] = (t->x[j] - r->mean[f]) / r->sd[f];
                if (t->t)
                    t->t[j] = (t->t[j] - r->mean[f]) / r->sd[f];
            }
            /* written back by the kernel; resident memory stays small */
            if ((k + 1) % RELEASE_FRAMES == 0 || k + 1 == t->T)
                feat_cache_release(r->cache, 0, 0);
        }
    }
    return 0;
}

/* One training sequence per file (inputs, targets), and the list of the
 * training ones. */
static int make_sequences(struct run *r)
{
    r->seqs = calloc((size_t)r->n, sizeof *r->seqs);
    r->train_seqs = calloc((size_t)r->n, sizeof *r->train_seqs);
    if (!r->seqs || !r->train_seqs)
        return out_of_memory();
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
static int configure_model(struct run *r)
{
    const struct opts *o = &r->o;
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
            fprintf(stderr, PROG ": rnn baseline: cortex %d units, %zu parameters (the cbrnn "
                            "model with --hidden %d has %zu)\n", mc->n_hidden,
                    cbrnn_model_config_params(mc), o->mc.n_hidden, target_params);
    }
    char why[512];
    if (cbrnn_model_config_check(mc, why, sizeof why)) {
        fprintf(stderr, PROG ": model configuration: %s\n", why);
        return 2;
    }
    return 0;
}

/* The model: new and initialised, or a copy of --init's; with the
 * features, target, normaliser and classes it is trained for, and the
 * running normaliser's state walked over every file (as live). */
static int build_model(struct run *r)
{
    const struct opts *o = &r->o;
    int err = 0;
    r->m = o->init_m ? cbrnn_model_clone(o->init_m, &err) : cbrnn_model_create(&r->mc, &err);
    cbrnn_model *m = r->m;
    if (!m || (!o->init_m && cbrnn_model_init(m, o->tc.seed)) ||
        (o->init_m && cbrnn_model_set_meta(m, "init_from", o->init))) {
        fprintf(stderr, PROG ": cannot create the model: %s\n", cbrnn_strerror(err));
        return 1;
    }
    m->feat = o->fc;
    m->feat.sample_rate = o->fc.ref_rate; /* the rate it was trained at */
    m->feat.ref_rate = 0;
    m->target = (cbrnn_target)o->target;
    m->horizon = o->horizon;
    if (cbrnn_model_set_norm(m, r->mean, r->sd) ||
        (r->n_classes &&
         cbrnn_model_set_classes(m, r->n_classes, (const char *const *)r->classes))) {
        fprintf(stderr, PROG ": cannot store the normaliser or classes\n");
        return 1;
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
            return out_of_memory();
        feat_cache_release(r->cache, 0, 0);
    }
    return 0;
}

/* The CSV log's header, and one line saying what is about to be trained. */
static int announce(struct run *r)
{
    const struct opts *o = &r->o;
    if (o->log) {
        r->log = fopen(o->log, "w");
        if (!r->log) {
            fprintf(stderr, PROG ": %s: cannot write the log: %s\n", o->log, strerror(errno));
            return 2;
        }
        fprintf(r->log, "step,phase,train_loss,val_loss,val_persistence_loss,skill,val_accuracy\n");
    }
    int n_skipped = r->n_skipped;
    char skipped_note[64] = "";
    if (n_skipped)
        snprintf(skipped_note, sizeof skipped_note, ", %d skipped (unreadable or no audio)",
                 n_skipped);
    if (o->quiet && n_skipped) /* warnings are not progress: -q keeps the count */
        fprintf(stderr, PROG ": %d file%s skipped (unreadable or no audio)\n", n_skipped,
                n_skipped == 1 ? "" : "s");
    char copies_note[64] = "";
    if (r->n_copies)
        snprintf(copies_note, sizeof copies_note, " and %d speed-perturbed cop%s", r->n_copies,
                 r->n_copies == 1 ? "y" : "ies");
    int n_files = r->n_train - r->n_copies;
    if (!o->quiet)
        fprintf(stderr, PROG ": %d training file%s%s (%ld frames), %d validation (%ld frames)%s; "
                        "%zu parameters; %ld warm-up + %ld frozen-cortex steps\n",
                n_files, n_files == 1 ? "" : "s", copies_note, r->train_frames, r->n - r->n_train,
                r->val_frames, skipped_note, r->m->n_params, o->warmup, o->steps);
    return 0;
}

/* Validation and its log row; with say (and not on a terminal) its
 * progress line. */
static int validate_and_log(struct run *r, const char *pname, int say)
{
    if (validate(r->m, r->seqs, r->it, r->n, r->cache, &r->vr)) {
        fprintf(stderr, PROG ": validation failed\n");
        return 1;
    }
    log_row(r->log, r->step, pname, r->last_train, &r->vr, r->o.target);
    if (say && !r->o.quiet && !r->interactive) {
        char d[128];
        describe(d, sizeof d, r->last_train, &r->vr, r->o.target);
        fprintf(stderr, "step %ld/%ld %s %s\n", r->step, r->total, pname, d);
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
    const struct opts *o = &r->o;
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
            fprintf(stderr, "%s" PROG ": training failed at step %ld (%s; loss %g)%s\n",
                    r->interactive ? "\n" : "", r->step + 1, rc ? cbrnn_strerror(rc) : "non-finite loss", (double)loss,
                    (!rc || rc == CBRNN_ERR_NONFINITE) ? ": try a lower --lr or --clip" : "");
            return 1;
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
        int stop = g_stop != 0;
        if (r->step % o->eval_every == 0 || s == nsteps - 1 || stop) {
            r->last_train = acc / (double)since;
            acc = 0;
            since = 0;
            if (validate_and_log(r, pname, 1))
                return 1;
        }
        double tnow = now_s();
        if (r->interactive && (tnow - last_draw > 0.1 || r->step == r->total)) {
            char d[160];
            describe(d, sizeof d, since ? acc / (double)since : r->last_train, &r->vr, o->target);
            term_progress(stderr, pname, (double)r->step, (double)r->total, tnow - r->t0, d);
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
 * Ctrl-C stops it (r->interrupted); averaging its last steps if last
 * (--average). */
static int train_phase(struct run *r, int phase, long nsteps, int last)
{
    const struct opts *o = &r->o;
    /* Phase 2 freezes the cortex; the trainer (its optimiser moments
     * and batch stream) starts afresh for the new set of parameters,
     * with seed + phase so the two phases draw different batches. */
    r->m->frozen[CBRNN_GROUP_CORTEX] = phase == 1 || r->mc.arch == CBRNN_ARCH_RESERVOIR;
    cbrnn_train_config tc = o->tc;
    tc.seed = o->tc.seed + (uint64_t)phase;
    cbrnn_trainer_destroy(r->tr);
    int err = 0;
    r->tr = cbrnn_trainer_create(r->m, &tc, &err);
    if (!r->tr) {
        fprintf(stderr, PROG ": cannot start training: %s\n", cbrnn_strerror(err));
        return 1;
    }
    cbrnn_param_avg *avg = NULL;
    long avg_from = nsteps - (long)ceil(o->average * (double)nsteps);
    if (last && o->average > 0 && !(avg = cbrnn_param_avg_create(r->m, &err))) {
        fprintf(stderr, PROG ": cannot start training: %s\n", cbrnn_strerror(err));
        return 1;
    }
    int rc = train_steps(r, phase, nsteps, avg, avg_from);
    if (!rc)
        rc = end_on_average(r, avg);
    cbrnn_param_avg_destroy(avg);
    return rc;
}

/* Training: the first validation, then the warm-up and frozen-cortex
 * phases. A failure from here on is a failure while working (1). */
static int train(struct run *r)
{
    r->last_train = NAN;
    if (validate_and_log(r, "init", 0))
        return 1;
    r->total = r->o.warmup + r->o.steps;
    r->t0 = now_s();
    for (int phase = 0; phase < 2 && !r->interrupted; phase++) {
        long nsteps = phase == 0 ? r->o.warmup : r->o.steps;
        if (nsteps == 0)
            continue;
        if (train_phase(r, phase, nsteps, phase == 1 || r->o.steps == 0))
            return 1;
    }
    if (r->interactive && r->interrupted)
        fputc('\n', stderr);
    return 0;
}

/* The held-out list in the metadata: at most this many names and bytes.
 * A 10 000-file corpus held out 799 files as 64 KiB of absolute paths
 * (the shipped default model), most of the header; 50 names show what
 * was held out, and val_files says how many. */
#define HELD_OUT_NAMES 50
#define HELD_OUT_BYTES 8192

/* Sets key to val; an empty val only clears a value the model already
 * has (one --init brought along), so a new model has no empty keys. */
static int set_meta_or_clear(cbrnn_model *m, const char *key, const char *val)
{
    if (!*val && !cbrnn_model_get_meta(m, key))
        return 0;
    return cbrnn_model_set_meta(m, key, val);
}

/* Which files were held out, so an evaluation can avoid them: held_out_dir
 * (their common folder, when they have one), held_out (at most
 * HELD_OUT_NAMES names relative to it, ';'-separated) and, when that is
 * not all of them, held_out_truncated ("50 of 799 names"). 0 or -1. */
static int record_held_out(struct run *r)
{
    const char **val = malloc((size_t)r->n * sizeof *val + 1);
    char *held = calloc(HELD_OUT_BYTES, 1);
    int n_val = 0, shown = 0, rc = -1;
    if (!val || !held)
        goto out;
    for (int i = 0; i < r->n; i++)
        if (r->it[i].val)
            val[n_val++] = r->it[i].path;
    size_t dir = corpus_common_dir_len(val, n_val), len = 0;
    for (; shown < n_val && shown < HELD_OUT_NAMES; shown++) {
        size_t l = strlen(val[shown] + dir);
        if (len + l + 2 > HELD_OUT_BYTES)
            break;
        if (len)
            held[len++] = ';';
        memcpy(held + len, val[shown] + dir, l + 1);
        len += l;
    }
    char d[4096] = "", b[64] = "";
    if (dir) /* the folder without its last '/', unless it is the root */
        snprintf(d, sizeof d, "%.*s", (int)(dir > 1 ? dir - 1 : dir), val[0]);
    if (shown < n_val)
        snprintf(b, sizeof b, "%d of %d names", shown, n_val);
    rc = set_meta_or_clear(r->m, "held_out_dir", d);
    rc |= cbrnn_model_set_meta(r->m, "held_out", held);
    rc |= set_meta_or_clear(r->m, "held_out_truncated", b);
out:
    free(val);
    free(held);
    return rc;
}

/* The command line as one string of shell words. */
static void command_line(char *buf, size_t cap, int argc, char **argv)
{
    snprintf(buf, cap, "cbrnn");
    for (int i = 0; i < argc; i++)
        append_word(buf, cap, argv[i]);
}

/* The date of the run (or of SOURCE_DATE_EPOCH: reproducible-builds.org's
 * convention), ISO 8601 in UTC; "" if it cannot be told. */
static void run_date(char *buf, size_t cap)
{
    buf[0] = '\0';
    time_t now = time(NULL);
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (sde && *sde)
        now = (time_t)strtoll(sde, NULL, 10);
    struct tm tmv;
    if (gmtime_r(&now, &tmv))
        strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tmv);
}

/* Provenance in the model's metadata: the command, date and version, the
 * corpus split, the training settings and the final losses. */
/* --speed-perturb's speeds ("0.9,1.1"), or no key without it. */
static int record_speeds(struct run *r)
{
    const struct opts *o = &r->o;
    if (!o->n_speeds)
        return set_meta_or_clear(r->m, "speed_perturb", "");
    char b[MAX_SPEEDS * 24] = "";
    for (int k = 0; k < o->n_speeds; k++)
        snprintf(b + strlen(b), sizeof b - strlen(b), "%s%g", k ? "," : "", o->speeds[k]);
    return cbrnn_model_set_meta(r->m, "speed_perturb", b);
}

static int record_provenance(struct run *r)
{
    const struct opts *o = &r->o;
    cbrnn_model *m = r->m;
    char cmdline[4096], date[32];
    command_line(cmdline, sizeof cmdline, r->argc, r->argv);
    run_date(date, sizeof date);
    char b[64];
    int mrc = cbrnn_model_set_meta(m, "command", cmdline);
    mrc |= cbrnn_model_set_meta(m, "date", date);
    mrc |= cbrnn_model_set_meta(m, "cbrnn_version", CBRNN_VERSION_STRING);
#define META_F(key, fmt, val)                                                                     \
    do {                                                                                          \
        snprintf(b, sizeof b, fmt, val);                                                          \
        mrc |= cbrnn_model_set_meta(m, key, b);                                                   \
    } while (0)
    META_F("train_files", "%d", r->n_train - r->n_copies);
    mrc |= record_speeds(r);
    META_F("val_files", "%d", r->n - r->n_train);
    mrc |= record_held_out(r);
    META_F("skipped_files", "%d", r->n_skipped);
    META_F("train_frames", "%ld", r->train_frames);
    META_F("seed", "%llu", (unsigned long long)o->tc.seed);
    META_F("optimizer", "%s", opt_names[o->tc.opt.kind]);
    META_F("lr", "%g", (double)o->tc.opt.lr);
    META_F("batch", "%d", o->tc.batch);
    META_F("seq_len", "%d", o->tc.seq_len);
    META_F("windows", "%s", o->tc.carry_state ? "carry" : windows_names[o->tc.windows]);
    META_F("steps_warmup", "%ld", o->warmup);
    META_F("steps_frozen", "%ld", o->steps);
    META_F("steps_done", "%ld", r->step);
    if (o->average > 0)
        META_F("average", "%g", o->average);
    if (isfinite(r->last_train))
        META_F("final_train_loss", "%.6g", r->last_train);
    if (r->vr.have) {
        META_F("final_val_loss", "%.6g", r->vr.loss);
        if (o->target == CBRNN_TARGET_CLASSIFY) {
            META_F("final_val_accuracy", "%.6g", r->vr.acc);
        } else {
            META_F("final_val_persistence_loss", "%.6g", r->vr.persist);
            META_F("final_skill", "%.6g", r->vr.skill);
        }
    }
    if (r->interrupted)
        mrc |= cbrnn_model_set_meta(m, "interrupted", "yes");
#undef META_F
    if (mrc) {
        fprintf(stderr, PROG ": cannot record the provenance\n");
        return 1;
    }
    return 0;
}

/* The model file (replaced atomically) and the closing line: the summary
 * on stdout, or on Ctrl-C where it stopped (exit 128 + signal). */
static int save_and_report(struct run *r)
{
    const struct opts *o = &r->o;
    if (cbrnn_model_save(r->m, o->out, r->msg, sizeof r->msg)) {
        fprintf(stderr, PROG ": %s\n", r->msg);
        return 1;
    }
    if (r->interrupted) {
        fprintf(stderr, PROG ": interrupted at step %ld of %ld; saved the model so far to %s\n",
                r->step, r->total, o->out);
        return 128 + (int)g_stop;
    }
    printf("saved %s: %zu parameters, %ld steps", o->out, r->m->n_params, r->step);
    if (isfinite(r->last_train))
        printf(", train loss %.4f", r->last_train);
    if (r->vr.have) {
        if (o->target == CBRNN_TARGET_CLASSIFY)
            printf(", validation loss %.4f accuracy %.3f", r->vr.loss, r->vr.acc);
        else
            printf(", validation loss %.4f persistence %.4f skill %.3f", r->vr.loss,
                   r->vr.persist, r->vr.skill);
    }
    printf("\n");
    return 0;
}

/* Gives back everything the run holds; the log's close can still fail a
 * run that had succeeded. The exit status. */
static int run_free(struct run *r, int status)
{
    if (r->log && fclose(r->log) && status == 0) {
        fprintf(stderr, PROG ": %s: writing the log failed\n", r->o.log);
        status = 1;
    }
    cbrnn_trainer_destroy(r->tr);
    cbrnn_model_destroy(r->m);
    cbrnn_model_destroy(r->o.init_m);
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
    corpus_free(&r->o.val_specs);
    return status;
}

int cmd_train(int argc, char **argv)
{
    struct run r;
    memset(&r, 0, sizeof r);
    int pr = parse_opts(&r.o, argc, argv);
    if (pr) {
        corpus_free(&r.o.val_specs);
        return pr > 0 ? 0 : 2;
    }
    r.argc = argc;
    r.argv = argv;
    /* The steps, in order; each says what it does above its definition. */
    static int (*const steps[])(struct run *) = {
        read_inputs, make_items, probe_files, split_validation, add_speed_copies, catch_signals,
        open_cache, choose_rate, compute_features, collect_classes, normalise,
        make_sequences, configure_model, build_model, announce, train,
        record_provenance, save_and_report,
    };
    int status = 0;
    for (size_t i = 0; i < sizeof steps / sizeof *steps && !status; i++)
        status = steps[i](&r);
    return run_free(&r, status);
}
