/* cmd_train.c: `cbrnn train -o MODEL.safetensors [options] INPUTS...`: the
 * front of the offline training (train/, include/cbrnn/cbrnn_train.h):
 * its usage, its options parsed and checked against each other into a
 * cbrnn_train_opts, --init's model loaded, then cbrnn_train_run, whose
 * lines are printed here ("cbrnn train: ..." on stderr, the closing summary
 * on stdout, a progress bar on a terminal).
 *
 * Talks to the user (this is cli/): bad input -> one message naming the
 * file and the problem, exit 2; a failure while working -> exit 1 (a model
 * -o cannot take goes to a rescue copy); Ctrl-C, SIGTERM or SIGHUP -> the
 * current step finishes, a usable model is saved, exit 128 + the signal
 * (the handler is installed once the corpus is read, so a signal before
 * ends the process the default way). The --log goes with the model. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cbrnn/cbrnn_control.h"
#include "cbrnn/cbrnn_model.h"
#include "cbrnn/cbrnn_train.h"
#include "corpus.h"
#include "host_audio.h"
#include "host_output.h"
#include "util_msg.h"
#include "util_output.h"
#include "util_term.h"

const char cmd_train_summary[] = "train a model from audio files (warm-up, then cortex frozen)";

#define PROG "cbrnn train"

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
"  --spectral-radius R   reservoir only (default 0.9)\n"
"  --no-match            rnn only: use --hidden as given\n"
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
"                        kept (give its --target; the feature, rate,\n"
"                        horizon and architecture options are refused\n"
"                        with it: the model has its own)\n"
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
"  --momentum M, --nesterov   (sgd only)   --weight-decay W   (L2)\n"
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
"                        skill,val_accuracy (skill = 1 - val/persistence);\n"
"                        phase init (step 0), warmup, frozen, and with\n"
"                        --average a last row average: the averaged weights\n"
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
"Ctrl-C (SIGINT), SIGTERM and SIGHUP (a closed terminal or ssh session)\n"
"finish the current step, save the model (to -o, or beside it as\n"
"NAME.interrupted.safetensors when -o already holds a model; the --log then\n"
"goes beside its own name too, LOG.interrupted.csv, and the earlier one stays)\n"
"and exit with 128 + the signal: 130, 143, 129. Stopped while the features\n"
"are computed, nothing is written (not the --log either).\n"
"When -o cannot be written at the end (a full disk, its folder gone), the\n"
"model goes to a rescue copy, $XDG_STATE_HOME/cbrnn/rescue (default\n"
"~/.local/state) or else $TMPDIR/cbrnn-rescue-UID, the --log beside it; the\n"
"message says where (exit 1).\n"
"A corpus whose features do not vary (digital silence: fewer than 1 in 10\n"
"feature bands with a standard deviation above 0.001 over the training\n"
"files) is refused (exit 2): its normaliser would blow real input up.\n"
"SOURCE_DATE_EPOCH (seconds since 1970 UTC), when set, is the model's \"date\":\n"
"the same run then writes the same bytes.\n"
"An option that would have no effect (--spectral-radius without --arch\n"
"reservoir, --no-match without --arch rnn, --momentum without sgd, ...) is\n"
"refused, not ignored.\n"
"Exit status: 0 done; 1 failure while working (also when the model went to a\n"
"rescue copy); 2 bad options or input; 129, 130, 143 stopped by a signal.\n");
}

/* ---- options ---- */
enum {
    O_TARGET = 256, O_HORIZON, O_TEACHER, O_PAIRS, O_LABELS, O_ARCH, O_WIRING, O_HIDDEN, O_CB,
    O_ACT, O_ALPHA, O_RHO, O_NOMATCH, O_MELS, O_MFCC, O_DELTAS, O_OPT, O_LR, O_MOM, O_NEST, O_WD,
    O_BATCH, O_SEQ, O_CARRY, O_WARM, O_STEPS, O_CLIP, O_VALF, O_VALFILES, O_EVAL, O_SEED, O_LOG, O_CACHE,
    O_OUTPUT, O_SNORM, O_SNORM_FLOOR, O_STRICT, O_RATE, O_INIT, O_LRDECAY, O_RULE, O_RLS_PRIOR,
    O_RLS_FORGET, O_SPEED, O_WINDOWS, O_AVERAGE, O_LAST = O_AVERAGE
};

struct opts {
    cbrnn_train_opts t;              /* what the run is given */
    cbrnn_model *init_m;             /* --init's model, loaded: t.init_model */
    corpus val_specs;                /* --val-files as given: t.val_files */
    int warmup_given;
    unsigned char given[O_LAST - O_TARGET + 1]; /* option c was on the command line */
    struct { /* the optimiser options as given, made into t.tc.opt once all are read */
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
    o->t.n_speeds = 0;
    const char *p = s;
    for (;;) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || (*end && *end != ',') || !(v >= AUDIO_SPEED_MIN && v <= AUDIO_SPEED_MAX) ||
            v == 1.0 || o->t.n_speeds == CBRNN_TRAIN_MAX_SPEEDS) {
            fprintf(stderr, PROG ": --speed-perturb '%s': expected up to %d speeds in %g..%g "
                            "other than 1, separated by commas (e.g. 0.9,1.1)\n",
                    s, CBRNN_TRAIN_MAX_SPEEDS, AUDIO_SPEED_MIN, AUDIO_SPEED_MAX);
            return -1;
        }
        o->t.speeds[o->t.n_speeds++] = v;
        if (!*end)
            return 0;
        p = end + 1;
    }
}


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
    cbrnn_train_opts_default(&o->t);
    o->og.kind = CBRNN_OPT_ADAM;
    o->og.clip = 1.0;
}

/* The options of what is learnt: target, model and features. 0 taken,
 * -1 bad value (message printed), 1 not one of these. */
static int model_option(struct opts *o, int c, const char *arg)
{
    int k;
    long v;
    double d;
    switch (c) {
    case O_TARGET: return parse_name("--target", arg, target_names, 3, &o->t.target);
    case O_HORIZON:
        if (parse_long("--horizon", arg, 1, CBRNN_MAX_HORIZON, &v)) return -1;
        o->t.horizon = (int)v;
        return 0;
    case O_TEACHER: o->t.teacher_suffix = arg; return 0;
    case O_PAIRS: o->t.pairs = arg; return 0;
    case O_LABELS: o->t.labels_dir = arg; return 0;
    case O_ARCH:
        if (parse_name("--arch", arg, arch_names, 3, &k)) return -1;
        o->t.mc.arch = (cbrnn_arch)k;
        return 0;
    case O_WIRING:
        if (parse_name("--wiring", arg, wiring_names, 2, &k)) return -1;
        o->t.mc.wiring = (cbrnn_wiring)k;
        return 0;
    case O_HIDDEN:
        if (parse_long("--hidden", arg, 1, 65536, &v)) return -1;
        o->t.mc.n_hidden = (int)v;
        return 0;
    case O_CB: return parse_cb(arg, &o->t.mc);
    case O_ACT:
        if (parse_name("--activation", arg, act_names, 3, &k)) return -1;
        o->t.mc.act = (cbrnn_act)k;
        return 0;
    case O_ALPHA:
        if (parse_double("--alpha", arg, 1e-6, 1, &d)) return -1;
        o->t.mc.alpha = (float)d;
        return 0;
    case O_RHO:
        if (parse_double("--spectral-radius", arg, 1e-6, 100, &d)) return -1;
        o->t.mc.spectral_radius = (float)d;
        return 0;
    case O_NOMATCH: o->t.match = 0; return 0;
    case O_OUTPUT: return parse_name("--output-mode", arg, output_names, 2, &o->t.mc.residual);
    case O_SNORM:
        if (parse_double("--stream-norm", arg, 0, 3600, &d)) return -1;
        o->t.stream_norm = (float)d;
        return 0;
    case O_INIT: o->t.init = arg; return 0;
    case O_RATE: return parse_double("--rate", arg, CBRNN_RATE_MIN, CBRNN_RATE_MAX, &o->t.model_rate);
    case O_SNORM_FLOOR:
        if (parse_double("--stream-norm-floor", arg, 1e-6, 100, &d)) return -1;
        o->t.stream_floor = (float)d;
        return 0;
    case O_MELS:
        if (parse_long("--mels", arg, 1, 1024, &v)) return -1;
        o->t.fc.n_mels = (int)v;
        return 0;
    case O_MFCC:
        if (parse_long("--mfcc", arg, 1, 1024, &v)) return -1;
        o->t.fc.n_mfcc = (int)v;
        return 0;
    case O_DELTAS: o->t.fc.deltas = 1; return 0;
    default: return 1;
    }
}

/* The options of how it is learnt: optimiser, steps, validation, files
 * and output. 0 taken, -1 bad value (message printed), 1 not one of these. */
static int training_option(struct opts *o, int c, const char *arg)
{
    long v;
    switch (c) {
    case 'o': o->t.out = arg; return 0;
    case 'q': o->t.quiet = 1; return 0;
    case O_STRICT: o->t.strict = 1; return 0;
    case O_LRDECAY: return parse_name("--lr-decay", arg, decay_names, 2, &o->t.lr_decay);
    case O_AVERAGE: return parse_double("--average", arg, 0, 1, &o->t.average);
    case O_RULE: return parse_name("--online-rule", arg, rule_names, 2, &o->t.online_rule);
    case O_RLS_PRIOR: return parse_double("--rls-prior", arg, 1e-9, 1e9, &o->t.rls_prior);
    case O_RLS_FORGET: return parse_double("--rls-forget", arg, 0.9, 1, &o->t.rls_forget);
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
        o->t.tc.batch = (int)v;
        return 0;
    case O_SEQ:
        if (parse_long("--seq-len", arg, 1, 100000, &v)) return -1;
        o->t.tc.seq_len = (int)v;
        return 0;
    case O_CARRY: o->t.tc.carry_state = 1; return 0;
    case O_WINDOWS: return parse_name("--windows", arg, windows_names, 2, &o->t.tc.windows);
    case O_WARM:
        if (parse_long("--warmup-steps", arg, 0, 100000000, &o->t.warmup)) return -1;
        o->warmup_given = 1;
        return 0;
    case O_STEPS: return parse_long("--steps", arg, 0, 100000000, &o->t.steps);
    case O_CLIP: return parse_double("--clip", arg, 0, 1e9, &o->og.clip);
    case O_VALF: return parse_double("--val-fraction", arg, 0, 0.9, &o->t.val_fraction);
    case O_VALFILES: return corpus_push(&o->val_specs, arg) ? -1 : 0;
    case O_EVAL: return parse_long("--eval-every", arg, 1, 100000000, &o->t.eval_every);
    case O_SEED:
        if (parse_long("--seed", arg, 0, 0x7fffffffL, &v)) return -1;
        o->t.tc.seed = (uint64_t)v;
        return 0;
    case O_LOG: o->t.log = arg; return 0;
    case O_CACHE: o->t.cache_dir = arg; return 0;
    case O_SPEED: return parse_speeds(arg, o);
    default: return 1;
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
    cbrnn_model *m = cbrnn_model_load(o->t.init, &err, msg, sizeof msg);
    if (!m) {
        fprintf(stderr, PROG ": --init %s\n", msg);
        return -1;
    }
    const char *bad = m->target == CBRNN_TARGET_TASK        ? "is a sequence-task model"
                      : m->target == CBRNN_TARGET_CLASSIFY  ? "is a classify model (not supported "
                                                              "by --init yet)"
                      : (int)m->target != o->t.target         ? "has another target: give its "
                                                              "--target"
                      : !m->norm_mean                       ? "has no normaliser"
                                                            : NULL;
    if (bad) {
        fprintf(stderr, PROG ": --init %s %s\n", o->t.init, bad);
        cbrnn_model_destroy(m);
        return -1;
    }
    o->t.fc = m->feat;
    o->t.fc.ref_rate = 0;
    o->t.model_rate = m->feat.sample_rate;
    o->t.horizon = m->horizon;
    o->t.mc = m->cfg;
    o->t.match = 0;
    o->t.stream_norm = m->stream_norm_s;
    o->t.stream_floor = m->stream_norm_floor;
    if (m->online_rule == CBRNN_RULE_RLS && !o->t.online_rule) { /* kept unless asked */
        o->t.online_rule = 1;
        o->t.rls_prior = m->rls_prior;
        o->t.rls_forget = m->rls_forget;
    }
    o->init_m = m;
    o->t.init_model = m;
    return 0;
}

/* The output file, and --init's model (both before hours of training). */
static int check_output_and_init(struct opts *o)
{
    if (!o->t.out) {
        fprintf(stderr, PROG ": -o MODEL.safetensors is required\n");
        return -1;
    }
    char why[1024];
    if (cbrnn_control_check_output(o->t.out, why, sizeof why)) {
        fprintf(stderr, PROG ": -o %s\n", why);
        return -1;
    }
    if (o->t.init && load_init(o))
        return -1;
    return 0;
}

/* -o and --log through the guard of every command (util_output.h): not
 * a training or validation file, teacher, label file, pairs list or the
 * --init model, not the same file twice; --log replaces no model or audio
 * file, -o no audio file. 0 or -1 (said). */
static int check_train_files(const struct opts *o)
{
    const cbrnn_train_opts *t = &o->t;
    char msg[4096];
    host_files f = {0};
    int rc = 0;
    if (host_files_input(&f, t->init) ||
        cli_files_corpus(&f, t->inputs, t->n_inputs, t->pairs, t->teacher_suffix,
                         t->labels_dir) ||
        cli_files_corpus(&f, t->val_files, t->n_val_files, NULL, t->teacher_suffix,
                         t->labels_dir)) {
        snprintf(msg, sizeof msg, "out of memory");
        rc = -1;
    }
    if (!rc)
        rc = host_files_output(&f, "-o", t->out, HOST_OUT_MODEL, msg, sizeof msg);
    if (!rc && t->log)
        rc = host_files_output(&f, "--log", t->log, HOST_OUT_DATA, msg, sizeof msg);
    if (rc)
        fprintf(stderr, PROG ": %s\n", msg);
    host_files_free(&f);
    return rc;
}

/* A reservoir's warm-up is 0 unless given; given, the run's option
 * check (cbrnn_train_opts_check) refuses it like every other clash. */
static void settle_warmup(struct opts *o)
{
    if (o->t.mc.arch == CBRNN_ARCH_RESERVOIR && !o->warmup_given)
        o->t.warmup = 0;
}

static const struct option long_opts[] = {
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

static const char *opt_name(int c)
{
    for (const struct option *l = long_opts; l->name; l++)
        if (l->val == c)
            return l->name;
    return "?";
}

/* --init MODEL takes everything that shapes the model's inputs and
 * outputs from MODEL (load_init): an option that would set one of them is
 * refused, not silently dropped. -1 (said) or 0. */
static int check_init_clash(const struct opts *o)
{
    static const int taken[] = {O_HORIZON, O_ARCH, O_WIRING, O_HIDDEN, O_CB, O_ACT, O_ALPHA,
                                O_RHO, O_NOMATCH, O_OUTPUT, O_SNORM, O_SNORM_FLOOR, O_MELS,
                                O_MFCC, O_DELTAS, O_RATE};
    char list[512] = "";
    size_t l = 0;
    int n = 0;
    for (size_t i = 0; i < sizeof taken / sizeof *taken; i++)
        if (o->given[taken[i] - O_TARGET] && l < sizeof list)
            l += (size_t)snprintf(list + l, sizeof list - l, "%s--%s", n++ ? ", " : "",
                                  opt_name(taken[i]));
    if (!o->t.init || !n)
        return 0;
    fprintf(stderr, PROG ": --init %s takes the architecture, features, rate and horizon from "
                    "the model: %s would be ignored (drop %s, or train a new model without "
                    "--init)\n", o->t.init, list, n > 1 ? "them" : "it");
    return -1;
}

/* An option given where it has no effect (it would be silently ignored)
 * is refused, as cbrnn_train_opts_check refuses --nesterov without sgd.
 * -1 (said) or 0. */
static int check_ignored(const struct opts *o)
{
    const unsigned char *g = o->given;
    const cbrnn_train_opts *t = &o->t;
    const char *why =
        g[O_RHO - O_TARGET] && t->mc.arch != CBRNN_ARCH_RESERVOIR
            ? "--spectral-radius is for --arch reservoir (the other cortices are trained)"
        : g[O_NOMATCH - O_TARGET] && t->mc.arch != CBRNN_ARCH_RNN
            ? "--no-match is for --arch rnn (only its size is matched to the cbrnn model's)"
        : g[O_MOM - O_TARGET] && o->og.kind != CBRNN_OPT_SGD
            ? "--momentum is for --optimizer sgd (adam has its own moments)"
        : g[O_HORIZON - O_TARGET] && t->target != CBRNN_TARGET_PREDICT
            ? "--horizon is for --target predict"
        : g[O_SNORM_FLOOR - O_TARGET] && !(t->stream_norm > 0)
            ? "--stream-norm-floor is for --stream-norm SEC > 0"
        : (g[O_RLS_PRIOR - O_TARGET] || g[O_RLS_FORGET - O_TARGET]) && !t->online_rule
            ? "--rls-prior and --rls-forget are for --online-rule rls"
        : g[O_VALF - O_TARGET] && g[O_VALFILES - O_TARGET]
            ? "--val-files and --val-fraction: give one (--val-files names the validation "
              "files, the fraction is not used then)"
            : NULL;
    if (why)
        fprintf(stderr, PROG ": %s\n", why);
    return why ? -1 : 0;
}

/* Paths the system refuses for their length, named shortened with that
 * reason (the training library would print them whole). -1 (said) or 0. */
static int check_path_lengths(const struct opts *o)
{
    char msg[CLI_MSG_LEN];
    const cbrnn_train_opts *t = &o->t;
    int bad = t->out && cli_check_path_length(t->out, msg, sizeof msg);
    for (int i = 0; i < t->n_inputs && !bad; i++)
        bad = cli_check_path_length(t->inputs[i], msg, sizeof msg);
    if (bad)
        fprintf(stderr, PROG ": %s\n", msg);
    return bad ? -1 : 0;
}

/* An empty name given to an option of a file or folder, said by the
 * option (else --log '' trained to the end and failed there, and other
 * messages began with the empty name). -1 (said) or 0. */
static int check_empty_names(const struct opts *o)
{
    const cbrnn_train_opts *t = &o->t;
    const char *const names[][2] = {{"-o", t->out},           {"--log", t->log},
                                    {"--cache-dir", t->cache_dir}, {"--init", t->init},
                                    {"--pairs", t->pairs},     {"--labels-dir", t->labels_dir}};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (names[i][1] && !names[i][1][0]) {
            fprintf(stderr, PROG ": %s '': an empty name (give a %s)\n", names[i][0],
                    i == 2 || i == 5 ? "folder" : "file");
            return -1;
        }
    return 0;
}

/* 0 ok, 1 --help shown, -1 error (message printed). */
static int parse_opts(struct opts *o, int argc, char **argv)
{
    opts_default(o);
    int c;
    while ((c = getopt_long(argc, argv, "o:qh", long_opts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return 1;
        }
        if (c >= O_TARGET && c <= O_LAST)
            o->given[c - O_TARGET] = 1;
        int rc = model_option(o, c, optarg);
        if (rc > 0)
            rc = training_option(o, c, optarg);
        if (rc > 0) /* not an option of ours: getopt said which */
            usage(stderr);
        if (rc)
            return -1;
    }
    cbrnn_optim_config_default(&o->t.tc.opt, (cbrnn_opt_kind)o->og.kind);
    if (o->og.lr_given)
        o->t.tc.opt.lr = (float)o->og.lr;
    o->t.tc.opt.momentum = (float)o->og.mom;
    o->t.tc.opt.nesterov = o->og.nesterov;
    o->t.tc.opt.weight_decay = (float)o->og.wd;
    o->t.tc.opt.clip_norm = (float)o->og.clip;
    o->t.inputs = (const char *const *)argv + optind;
    o->t.n_inputs = argc - optind;
    o->t.val_files = (const char *const *)o->val_specs.paths;
    o->t.n_val_files = o->val_specs.n;
    settle_warmup(o);
    if (check_empty_names(o) || check_init_clash(o) || check_ignored(o) || check_path_lengths(o))
        return -1;
    return check_output_and_init(o) || check_train_files(o) ? -1 : 0;
}

/* ---- the run: cbrnn_train_run (cbrnn_train.h), its lines printed here ---- */

/* The signal that asked the run to stop (SIGINT, SIGTERM, SIGHUP), or 0. */
static volatile sig_atomic_t g_stop;

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

/* The command line as one string of shell words. */
static void command_line(char *buf, size_t cap, int argc, char **argv)
{
    snprintf(buf, cap, "cbrnn");
    for (int i = 0; i < argc; i++)
        append_word(buf, cap, argv[i]);
}

/* cbrnn_train_report.begin: from here on Ctrl-C, SIGTERM and SIGHUP (a
 * closed terminal or ssh session) only ask the run to stop (g_stop); a
 * second one removes the log's temporary and kills (util_output.h). */
static void catch_signals(void *user)
{
    (void)user;
    cli_catch_signals(&g_stop);
}

static int stop_asked(void *user)
{
    return g_stop != 0;
}

/* The run's lines: the closing summary on stdout, the rest on stderr. */
static void print_line(void *user, cbrnn_train_msg kind, const char *text)
{
    switch (kind) {
    case CBRNN_TRAIN_MSG_RESULT: printf("%s\n", text); break;
    case CBRNN_TRAIN_MSG_STEP: fprintf(stderr, "%s\n", text); break;
    case CBRNN_TRAIN_MSG_WARNING: fprintf(stderr, PROG ": warning: %s\n", text); break;
    default: fprintf(stderr, PROG ": %s\n", text); break;
    }
}

/* The progress bar (on a terminal only). */
static void draw_progress(void *user, const char *what, double done, double total,
                          double elapsed_s, const char *detail)
{
    if (what)
        term_progress(stderr, what, done, total, elapsed_s, detail);
    else
        fputc('\n', stderr);
}

/* A run's status as the exit status (see the usage). */
static int exit_status(int status)
{
    switch (status) {
    case CBRNN_TRAIN_DONE: return 0;
    case CBRNN_TRAIN_BAD_INPUT: return 2;
    case CBRNN_TRAIN_STOPPED: return 128 + (int)g_stop;
    default: return 1;
    }
}

/* SOURCE_DATE_EPOCH (reproducible-builds.org): the date written into the
 * model, so a rebuilt model comes out the same bytes. Unset or empty: -1
 * (the time of saving). -2 if it is not a count of seconds. */
static long long source_date(void)
{
    const char *s = getenv("SOURCE_DATE_EPOCH");
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < 0 || !isdigit((unsigned char)s[0])) {
        fprintf(stderr, PROG ": SOURCE_DATE_EPOCH '%s': expected seconds since 1970-01-01 UTC\n", s);
        return -2;
    }
    return v;
}

/* Where cbrnn_train_run put the model (cbrnn_train_report.saved). */
struct saved_at {
    int how; /* a cbrnn_train_saved, or -1: no model written */
    char path[4096];
};

/* cbrnn_train_report.saved: where and how, kept in user (a saved_at). */
static void on_saved(void *user, const char *path, int how)
{
    struct saved_at *s = user;
    s->how = how;
    snprintf(s->path, sizeof s->path, "%s", path);
}

/* Where the run's log goes: with its model (s). Over LOG when the model
 * is at -o; when the model went beside -o (an interrupted run, -o kept),
 * beside LOG too, ".interrupted" before its extension (lg.csv ->
 * lg.interrupted.csv), LOG kept; when -o could not be written, beside the
 * rescue copy PID-FRAMES-NAME (cbrnn_host.h), as PID-FRAMES- and LOG's
 * last part. 0, or -1 if the name does not fit. */
static int log_place(const char *log, const struct saved_at *s, char *dst, size_t n)
{
    const char *slash = strrchr(log, '/'), *base = slash ? slash + 1 : log;
    if (s->how == CBRNN_TRAIN_SAVED_OUT)
        return snprintf(dst, n, "%s", log) < (int)n ? 0 : -1;
    if (s->how == CBRNN_TRAIN_SAVED_ASIDE) {
        const char *dot = strrchr(base, '.');
        int cut = dot && dot != base ? (int)(dot - log) : (int)strlen(log);
        return snprintf(dst, n, "%.*s.interrupted%s", cut, log, log + cut) < (int)n ? 0 : -1;
    }
    const char *rs = strrchr(s->path, '/'), *rb = rs ? rs + 1 : s->path;
    const char *d1 = strchr(rb, '-'), *d2 = d1 ? strchr(d1 + 1, '-') : NULL;
    int keep = d2 ? (int)(d2 + 1 - s->path) : (int)(rb - s->path);
    return snprintf(dst, n, "%.*s%s", keep, s->path, base) < (int)n ? 0 : -1;
}

/* The finished log (its temporary tmp, open as fd) put where its model
 * went (s), and said when that is not LOG. 0, or 1 (said; the log kept
 * as LOG.kept.PID, or under its temporary name if even that fails: it is
 * the run's record). */
static int place_log(const char *tmp, int fd, const char *log, const struct saved_at *s)
{
    char dst[4096], msg[8192];
    int rc = log_place(log, s, dst, sizeof dst);
    if (rc)
        snprintf(msg, sizeof msg, "%s: the name of its new place does not fit", log);
    else if (s->how == CBRNN_TRAIN_SAVED_RESCUE) /* another file system, maybe */
        rc = cli_move_new(tmp, fd, dst, msg, sizeof msg);
    else
        rc = cli_sync_file(tmp, msg, sizeof msg) || cli_replace(tmp, dst, msg, sizeof msg);
    if (rc) {
        /* not under the temporary's name if it can be helped: a later
         * run sweeps those of dead processes */
        char kept[4096], why[1024];
        const char *at = tmp;
        if (snprintf(kept, sizeof kept, "%s.kept.%ld", log, (long)getpid()) < (int)sizeof kept &&
            !cli_move_new(tmp, fd, kept, why, sizeof why))
            at = kept;
        fprintf(stderr, PROG ": --log %s; the log is kept as %s\n", msg, at);
        cli_tmp_forget(tmp);
        return 1;
    }
    cli_tmp_forget(tmp);
    if (s->how == CBRNN_TRAIN_SAVED_ASIDE)
        fprintf(stderr, PROG ": the log of the interrupted run went beside --log too: %s (%s "
                "is kept)\n", dst, log);
    else if (s->how == CBRNN_TRAIN_SAVED_RESCUE)
        fprintf(stderr, PROG ": the run's log went with the rescue copy: %s\n", dst);
    return 0;
}

/* The run, its --log written under LOG.tmp.HOST.PID and put where the
 * model went (place_log) once one was written (done, stopped by a signal
 * after training began, or rescued); a run that wrote no model (failed,
 * or stopped during the features) removes it, so the log of an earlier
 * run stays. The exit status. */
static int train_with_log(struct opts *o, const cbrnn_train_report *rep, struct saved_at *s)
{
    char tmp[4096];
    const char *log = o->t.log;
    if (log && (cli_tmp_name(tmp, sizeof tmp, log) || cli_tmp_add(tmp))) {
        fprintf(stderr, PROG ": --log %s: path too long\n", log);
        return 2;
    }
    /* created here and held open: the run writes it (the same file), and
     * a log whose folder was removed meanwhile can still follow a rescue */
    int fd = -1;
    if (log && (fd = open(tmp, O_RDWR | O_CREAT | O_EXCL, 0666)) < 0) {
        fprintf(stderr, PROG ": --log %s: cannot create: %s\n", log, strerror(errno));
        cli_tmp_forget(tmp);
        return 2;
    }
    if (log)
        o->t.log = tmp;
    s->how = -1;
    int rc = cbrnn_train_run(&o->t, rep);
    o->t.log = log;
    if (!log)
        return exit_status(rc);
    int lrc = 0;
    /* no model, or one at -o with a log that could not be written */
    if (s->how < 0 || (rc == CBRNN_TRAIN_FAILED && s->how != CBRNN_TRAIN_SAVED_RESCUE))
        cli_tmp_drop(tmp);
    else
        lrc = place_log(tmp, fd, log, s);
    close(fd);
    return lrc ? 1 : exit_status(rc);
}

int cmd_train(int argc, char **argv)
{
    struct opts o;
    int pr = parse_opts(&o, argc, argv);
    int status = pr > 0 ? 0 : 2;
    if (!pr && (o.t.date = source_date()) == -2)
        status = 2;
    else if (!pr) {
        char cmdline[4096];
        command_line(cmdline, sizeof cmdline, argc, argv);
        o.t.command = cmdline;
        struct saved_at saved;
        const cbrnn_train_report rep = {
            .user = &saved,
            .message = print_line,
            .progress = term_is_interactive(stderr) ? draw_progress : NULL,
            .begin = catch_signals,
            .stop = stop_asked,
            .saved = on_saved,
        };
        /* the lock every saving program takes (a cbrnn-jack --save or a
         * cbrnn run --save-model there too) */
        char msg[PATH_MAX + 256];
        int lock = out_lock_output("-o", o.t.out, msg, sizeof msg);
        if (lock < 0) {
            fprintf(stderr, PROG ": %s\n", msg);
            status = 2;
        } else {
            status = train_with_log(&o, &rep, &saved);
            out_unlock_beside(o.t.out, lock);
        }
    }
    cbrnn_model_destroy(o.init_m);
    corpus_free(&o.val_specs);
    return status;
}
