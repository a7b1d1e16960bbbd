/* cmd_train.c: `cbrnn train -o MODEL.safetensors [options] INPUTS...`: the
 * offline warm-up training. Features of every file are computed once with
 * the streaming front end the live host uses (audio_features_each) into a
 * disk cache that training reads through a mapping (util_featcache.h: a
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
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cbrnn/cbrnn_control.h"
#include "cbrnn/cbrnn_model.h"
#include "util_audio.h"
#include "util_corpus.h"
#include "util_featcache.h"
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
"  --momentum M, --nesterov, --weight-decay W   (sgd momentum; L2)\n"
"  --batch B             sequences per step (default 16)\n"
"  --seq-len T           BPTT window in frames (default 100)\n"
"  --carry-state         walk each file in order, carrying the state across\n"
"                        windows (default: random windows from zero state)\n"
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
    double model_rate;               /* --rate: the model's rate (0: the first file's) */
    const char *init;                /* --init MODEL */
    cbrnn_model *init_m;             /* ... loaded: what training continues from */
    int lr_decay;                    /* 1: cosine from --lr to 0 over each phase */
    int match;
    cbrnn_feat_config fc;
    cbrnn_train_config tc;
    long warmup, steps, eval_every;
    int warmup_given;
    double val_fraction;
    corpus val_specs;
    int quiet, strict;
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

enum {
    O_TARGET = 256, O_HORIZON, O_TEACHER, O_PAIRS, O_LABELS, O_ARCH, O_WIRING, O_HIDDEN, O_CB,
    O_ACT, O_ALPHA, O_RHO, O_NOMATCH, O_MELS, O_MFCC, O_DELTAS, O_OPT, O_LR, O_MOM, O_NEST, O_WD,
    O_BATCH, O_SEQ, O_CARRY, O_WARM, O_STEPS, O_CLIP, O_VALF, O_VALFILES, O_EVAL, O_SEED, O_LOG, O_CACHE,
    O_OUTPUT, O_SNORM, O_SNORM_FLOOR, O_STRICT, O_RATE, O_INIT, O_LRDECAY
};

static const char *const target_names[] = {"predict", "map", "classify"};
static const char *const arch_names[] = {"cbrnn", "rnn", "reservoir"};
static const char *const wiring_names[] = {"readout", "loop"};
static const char *const act_names[] = {"tanh", "relu", "leaky_relu"};
static const char *const opt_names[] = {"sgd", "adam"};
static const char *const output_names[] = {"plain", "residual"};
static const char *const decay_names[] = {"none", "cosine"};

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
        {"lr-decay", required_argument, NULL, O_LRDECAY}, {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof *o);
    o->horizon = 1;
    cbrnn_model_config_default(&o->mc);
    o->stream_floor = CBRNN_STREAM_NORM_FLOOR;
    o->match = 1;
    cbrnn_feat_config_default(&o->fc, 16000);
    o->tc.batch = 16;
    o->tc.seq_len = 100;
    o->tc.seed = 1;
    int opt_kind = CBRNN_OPT_ADAM, lr_given = 0;
    double lr = 0, mom = 0, wd = 0, clip = 1.0;
    int nesterov = 0;
    o->warmup = 300;
    o->steps = 600;
    o->eval_every = 100;
    o->val_fraction = 0.2;
    int c, k;
    long v;
    double d;
    while ((c = getopt_long(argc, argv, "o:qh", lo, NULL)) != -1) {
        switch (c) {
        case 'o': o->out = optarg; break;
        case 'q': o->quiet = 1; break;
        case 'h': usage(stdout); return 1;
        case O_TARGET:
            if (parse_name("--target", optarg, target_names, 3, &o->target)) return -1;
            break;
        case O_HORIZON:
            if (parse_long("--horizon", optarg, 1, 10000, &v)) return -1;
            o->horizon = (int)v;
            break;
        case O_TEACHER: o->teacher_suffix = optarg; break;
        case O_PAIRS: o->pairs = optarg; break;
        case O_LABELS: o->labels_dir = optarg; break;
        case O_ARCH:
            if (parse_name("--arch", optarg, arch_names, 3, &k)) return -1;
            o->mc.arch = (cbrnn_arch)k;
            break;
        case O_WIRING:
            if (parse_name("--wiring", optarg, wiring_names, 2, &k)) return -1;
            o->mc.wiring = (cbrnn_wiring)k;
            break;
        case O_HIDDEN:
            if (parse_long("--hidden", optarg, 1, 65536, &v)) return -1;
            o->mc.n_hidden = (int)v;
            break;
        case O_CB:
            if (parse_cb(optarg, &o->mc)) return -1;
            break;
        case O_ACT:
            if (parse_name("--activation", optarg, act_names, 3, &k)) return -1;
            o->mc.act = (cbrnn_act)k;
            break;
        case O_ALPHA:
            if (parse_double("--alpha", optarg, 1e-6, 1, &d)) return -1;
            o->mc.alpha = (float)d;
            break;
        case O_RHO:
            if (parse_double("--spectral-radius", optarg, 1e-6, 100, &d)) return -1;
            o->mc.spectral_radius = (float)d;
            break;
        case O_NOMATCH: o->match = 0; break;
        case O_OUTPUT:
            if (parse_name("--output-mode", optarg, output_names, 2, &o->mc.residual)) return -1;
            break;
        case O_SNORM:
            if (parse_double("--stream-norm", optarg, 0, 3600, &d)) return -1;
            o->stream_norm = (float)d;
            break;
        case O_INIT: o->init = optarg; break;
        case O_LRDECAY:
            if (parse_name("--lr-decay", optarg, decay_names, 2, &o->lr_decay)) return -1;
            break;
        case O_RATE:
            if (parse_double("--rate", optarg, CBRNN_RATE_MIN, CBRNN_RATE_MAX, &o->model_rate))
                return -1;
            break;
        case O_SNORM_FLOOR:
            if (parse_double("--stream-norm-floor", optarg, 1e-6, 100, &d)) return -1;
            o->stream_floor = (float)d;
            break;
        case O_STRICT: o->strict = 1; break;
        case O_MELS:
            if (parse_long("--mels", optarg, 1, 1024, &v)) return -1;
            o->fc.n_mels = (int)v;
            break;
        case O_MFCC:
            if (parse_long("--mfcc", optarg, 1, 1024, &v)) return -1;
            o->fc.n_mfcc = (int)v;
            break;
        case O_DELTAS: o->fc.deltas = 1; break;
        case O_OPT:
            if (parse_name("--optimizer", optarg, opt_names, 2, &opt_kind)) return -1;
            break;
        case O_LR:
            if (parse_double("--lr", optarg, 1e-12, 100, &lr)) return -1;
            lr_given = 1;
            break;
        case O_MOM:
            if (parse_double("--momentum", optarg, 0, 0.9999, &mom)) return -1;
            break;
        case O_NEST: nesterov = 1; break;
        case O_WD:
            if (parse_double("--weight-decay", optarg, 0, 10, &wd)) return -1;
            break;
        case O_BATCH:
            if (parse_long("--batch", optarg, 1, 4096, &v)) return -1;
            o->tc.batch = (int)v;
            break;
        case O_SEQ:
            if (parse_long("--seq-len", optarg, 1, 100000, &v)) return -1;
            o->tc.seq_len = (int)v;
            break;
        case O_CARRY: o->tc.carry_state = 1; break;
        case O_WARM:
            if (parse_long("--warmup-steps", optarg, 0, 100000000, &o->warmup)) return -1;
            o->warmup_given = 1;
            break;
        case O_STEPS:
            if (parse_long("--steps", optarg, 0, 100000000, &o->steps)) return -1;
            break;
        case O_CLIP:
            if (parse_double("--clip", optarg, 0, 1e9, &clip)) return -1;
            break;
        case O_VALF:
            if (parse_double("--val-fraction", optarg, 0, 0.9, &o->val_fraction)) return -1;
            break;
        case O_VALFILES:
            if (corpus_push(&o->val_specs, optarg)) return -1;
            break;
        case O_EVAL:
            if (parse_long("--eval-every", optarg, 1, 100000000, &o->eval_every)) return -1;
            break;
        case O_SEED:
            if (parse_long("--seed", optarg, 0, 0x7fffffffL, &v)) return -1;
            o->tc.seed = (uint64_t)v;
            break;
        case O_LOG: o->log = optarg; break;
        case O_CACHE: o->cache_dir = optarg; break;
        default: usage(stderr); return -1;
        }
    }
    cbrnn_optim_config_default(&o->tc.opt, (cbrnn_opt_kind)opt_kind);
    if (lr_given)
        o->tc.opt.lr = (float)lr;
    o->tc.opt.momentum = (float)mom;
    o->tc.opt.nesterov = nesterov;
    o->tc.opt.weight_decay = (float)wd;
    o->tc.opt.clip_norm = (float)clip;
    if (!o->out) {
        fprintf(stderr, PROG ": -o MODEL.safetensors is required\n");
        return -1;
    }
    char why[1024];
    if (cbrnn_control_check_output(o->out, why, sizeof why)) { /* before hours of training */
        fprintf(stderr, PROG ": -o %s\n", why);
        return -1;
    }
    if (o->init && load_init(o))
        return -1;
    if (nesterov && (opt_kind != CBRNN_OPT_SGD || mom <= 0)) {
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

static int features_to_cache(feat_cache *c, const char *path, const cbrnn_feat_config *fc,
                             size_t *off, int *T, int *dim, char *msg, size_t msglen)
{
    struct to_cache tc = {c, 0, 0, 0, ""};
    *off = feat_cache_size(c);
    int rc = audio_features_each(path, fc, 0, FEAT_BLOCK, on_frames, &tc, msg, msglen);
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
    o->init_m = m;
    return 0;
}

int cmd_train(int argc, char **argv)
{
    struct opts o;
    int pr = parse_opts(&o, argc, argv);
    if (pr) {
        corpus_free(&o.val_specs);
        return pr > 0 ? 0 : 2;
    }
    char msg[2048];
    int status = 2;
    corpus inputs = {0, NULL}, teachers = {0, NULL}, valc = {0, NULL};
    struct item *it = NULL;
    cbrnn_seq *seqs = NULL, *train_seqs = NULL;
    char **classes = NULL;
    int n_classes = 0, n = 0, n_skipped = 0;
    cbrnn_model *m = NULL;
    cbrnn_trainer *tr = NULL;
    FILE *log = NULL;
    float *mean = NULL, *sd = NULL;
    cbrnn_stats st = {0, 0, NULL, NULL};
    feat_cache *cache = NULL;
    char *out_dir = NULL;

    /* ---- the corpus ---- */
    for (int i = optind; i < argc; i++)
        if (corpus_add(&inputs, argv[i], msg, sizeof msg)) {
            fprintf(stderr, PROG ": %s\n", msg);
            goto out;
        }
    if (o.pairs && corpus_read_pairs(o.pairs, &inputs, &teachers, msg, sizeof msg)) {
        fprintf(stderr, PROG ": %s\n", msg);
        goto out;
    }
    if (o.pairs && teachers.n != inputs.n) {
        fprintf(stderr, PROG ": with --pairs, give the inputs in the pairs list only\n");
        goto out;
    }
    for (int i = 0; i < o.val_specs.n; i++)
        if (corpus_add(&valc, o.val_specs.paths[i], msg, sizeof msg)) {
            fprintf(stderr, PROG ": --val-files: %s\n", msg);
            goto out;
        }
    /* With a teacher suffix, files named like teachers are not inputs. */
    int n_all = inputs.n + valc.n;
    it = calloc((size_t)(n_all ? n_all : 1), sizeof *it);
    if (!it) {
        fprintf(stderr, PROG ": out of memory\n");
        status = 1;
        goto out;
    }
    for (int i = 0; i < inputs.n + valc.n; i++) {
        int is_val = i >= inputs.n;
        const char *p = is_val ? valc.paths[i - inputs.n] : inputs.paths[i];
        if (o.teacher_suffix && corpus_stem_has_suffix(p, o.teacher_suffix))
            continue;
        /* A file named in --val-files is validation even if also an input. */
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
        if (o.pairs) {
            it[n].teacher = NULL;
            for (int k = 0; k < inputs.n; k++)
                if (!strcmp(inputs.paths[k], p))
                    it[n].teacher = teachers.paths[k];
            if (!it[n].teacher) {
                fprintf(stderr, PROG ": --val-files %s is not in the pairs list %s, so it has no "
                                "teacher\n", p, o.pairs);
                goto out;
            }
        }
        n++;
    }
    if (n == 0) {
        fprintf(stderr, PROG ": no audio files to train on (empty corpus)%s\n",
                optind == argc && !o.pairs ? ": give INPUTS" : "");
        goto out;
    }
    if (o.teacher_suffix)
        for (int i = 0; i < n; i++) {
            /* Kept alive in the teachers corpus so the item can point at it. */
            char *t = corpus_teacher_path(it[i].path, o.teacher_suffix);
            if (!t || corpus_push(&teachers, t)) {
                free(t);
                fprintf(stderr, PROG ": out of memory\n");
                status = 1;
                goto out;
            }
            free(t);
            it[i].teacher = teachers.paths[teachers.n - 1];
        }
    /* Every file opened once, before the split: its rate, and the files
     * that cannot be read or hold no audio left out (or --strict stops). */
    for (int i = 0; i < n; i++) {
        audio_in *a = audio_in_open(it[i].path, 0, msg, sizeof msg);
        if (!a) {
            if (bad_file(&o, &it[i], msg, &n_skipped))
                goto out;
            continue;
        }
        it[i].rate = audio_in_file_rate(a);
        audio_in_close(a);
    }
    n = drop_skipped(it, n);
    if (n == 0) {
        say_none_left(n_skipped);
        goto out;
    }
    /* Validation split by file: deterministic for the seed. */
    int n_val = 0;
    for (int i = 0; i < n; i++)
        n_val += it[i].val;
    if (valc.n == 0 && o.val_fraction > 0 && n >= 2) {
        n_val = (int)lround(o.val_fraction * n);
        if (n_val < 1)
            n_val = 1;
        if (n_val > n - 1)
            n_val = n - 1;
        int *perm = malloc((size_t)n * sizeof *perm);
        if (!perm) {
            fprintf(stderr, PROG ": out of memory\n");
            status = 1;
            goto out;
        }
        for (int i = 0; i < n; i++)
            perm[i] = i;
        cbrnn_rng r;
        /* A stream of its own (seed xor a fixed constant), so the split does
         * not reuse the initialisation's random numbers. */
        cbrnn_rng_seed(&r, o.tc.seed ^ 0x5b1175eedULL);
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(cbrnn_rng_u64(&r) % (uint64_t)(i + 1));
            int t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        for (int i = 0; i < n_val; i++)
            it[perm[i]].val = 1;
        free(perm);
    }
    if (n_val == n) {
        fprintf(stderr, PROG ": every file is a validation file: nothing left to train on\n");
        goto out;
    }

    /* ---- signals: from here on Ctrl-C is handled ---- */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* ---- features, once per file, into the disk cache ---- */
    const char *cdir = o.cache_dir;
    if (!cdir) { /* the folder of -o: where the user has room to write */
        out_dir = strdup(o.out);
        if (!out_dir) {
            fprintf(stderr, PROG ": out of memory\n");
            status = 1;
            goto out;
        }
        char *slash = strrchr(out_dir, '/');
        if (!slash)
            strcpy(out_dir, ".");
        else if (slash == out_dir)
            out_dir[1] = '\0';
        else
            *slash = '\0';
        cdir = out_dir;
    }
    cache = feat_cache_open(cdir, msg, sizeof msg);
    if (!cache) {
        /* a folder that is not there or not ours is the user's to fix (2);
         * a full disk or no memory is a failure while working (1) */
        int e = errno;
        fprintf(stderr, PROG ": %s%s\n", msg,
                o.cache_dir ? "" : " (--cache-dir DIR puts it elsewhere)");
        if (e != ENOENT && e != ENOTDIR && e != EACCES && e != EROFS)
            status = 1;
        goto out;
    }
    /* The model is trained at the rate of its first training file; files
     * at other rates get their mel energies at that rate's level (ref_rate),
     * as the engine gives them to the model live. */
    for (int i = 0; i < n && !o.model_rate; i++)
        if (!it[i].val) {
            o.fc.ref_rate = it[i].rate;
            break;
        }
    if (o.model_rate)
        o.fc.ref_rate = o.model_rate;
    int interactive = !o.quiet && term_is_interactive(stderr);
    double t0 = now_s();
    int F = 0;
    for (int i = 0; i < n; i++) {
        if (it[i].skip)
            continue;
        if (interactive)
            term_progress(stderr, "features", i, n, now_s() - t0, it[i].path);
        int dim = 0;
        int frc = g_stop ? 1
                         : features_to_cache(cache, it[i].path, &o.fc, &it[i].xoff, &it[i].T,
                                             &dim, msg, sizeof msg);
        if (frc > 0) {
            fprintf(stderr, "%s" PROG ": interrupted while computing features; no model written\n",
                    interactive ? "\n" : "");
            status = 128 + (int)g_stop;
            goto out;
        }
        if (frc == -2) {
            fprintf(stderr, PROG ": %s\n", msg); /* a full disk is not the input's fault */
            status = 1;
            goto out;
        }
        if (frc < 0) {
            if (bad_file(&o, &it[i], msg, &n_skipped))
                goto out;
            continue;
        }
        int need = (o.target == CBRNN_TARGET_PREDICT ? o.horizon : 0) + 2;
        if (it[i].T < need) {
            snprintf(msg, sizeof msg, "%s: only %d feature frames (%g ms hop); at least %d needed",
                     it[i].path, it[i].T, o.fc.hop_ms, need);
            if (bad_file(&o, &it[i], msg, &n_skipped))
                goto out;
            continue;
        }
        F = dim;
        /* Room for the running normaliser's z and s beside x, filled once
         * the corpus statistics are known. */
        if (o.stream_norm > 0 && reserve_cache(cache, &it[i].zoff, 2 * (size_t)it[i].T * F, msg,
                                               sizeof msg)) {
            fprintf(stderr, PROG ": %s\n", msg);
            status = 1;
            goto out;
        }
        if (it[i].teacher) {
            int tT = 0, tdim = 0;
            frc = features_to_cache(cache, it[i].teacher, &o.fc, &it[i].toff, &tT, &tdim, msg,
                                    sizeof msg);
            if (frc > 0) {
                fprintf(stderr, PROG ": interrupted while computing features; no model written\n");
                status = 128 + (int)g_stop;
                goto out;
            }
            if (frc == -2) {
                fprintf(stderr, PROG ": teacher of %s: %s\n", it[i].path, msg);
                status = 1;
                goto out;
            }
            if (frc < 0) {
                char why[sizeof msg + 64];
                snprintf(why, sizeof why, "%s: its teacher %s", it[i].path, msg);
                if (bad_file(&o, &it[i], why, &n_skipped))
                    goto out;
                continue;
            }
            /* Different rates round the hop differently: allow one frame. */
            if (abs(tT - it[i].T) > 1) {
                fprintf(stderr, PROG ": %s has %d frames but its teacher %s has %d: they must "
                                "have the same length (within one %g ms frame)\n",
                        it[i].path, it[i].T, it[i].teacher, tT, o.fc.hop_ms);
                goto out;
            }
            if (tT < it[i].T)
                it[i].T = tT;
        }
        if (o.labels_dir) {
            char *lp = labels_path_for(o.labels_dir, it[i].path);
            if (!lp || labels_read(lp, &it[i].lf, msg, sizeof msg)) {
                fprintf(stderr, PROG ": %s\n", lp ? msg : "out of memory");
                free(lp);
                goto out;
            }
            free(lp);
        }
    }
    if (interactive)
        term_progress(stderr, "features", n, n, now_s() - t0, "");
    n = drop_skipped(it, n);
    int n_left = 0;
    for (int i = 0; i < n; i++)
        n_left += !it[i].val;
    if (n_left == 0) {
        say_none_left(n_skipped);
        goto out;
    }
    float *base = feat_cache_map(cache, msg, sizeof msg);
    if (!base) {
        fprintf(stderr, PROG ": %s\n", msg);
        status = 1;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        it[i].t = it[i].teacher ? base + it[i].toff : NULL;
        it[i].x = base + it[i].xoff;
        if (o.stream_norm > 0) {
            it[i].z = base + it[i].zoff;
            it[i].s = it[i].z + (size_t)it[i].T * F;
        }
    }

    /* ---- classes (classify): every label of the training files, sorted ---- */
    if (o.target == CBRNN_TARGET_CLASSIFY) {
        for (int i = 0; i < n; i++)
            if (!it[i].val &&
                labels_collect(&classes, &n_classes, CBRNN_MAX_CLASSES, &it[i].lf, msg, sizeof msg)) {
                fprintf(stderr, PROG ": %s\n", msg);
                goto out;
            }
        if (n_classes < 2) {
            fprintf(stderr, PROG ": the training label files hold %d distinct label%s; "
                            "classify needs at least 2\n", n_classes, n_classes == 1 ? "" : "s");
            goto out;
        }
        qsort(classes, (size_t)n_classes, sizeof *classes, cmp_str);
        for (int i = 0; i < n; i++) {
            cbrnn_feat_config fr = o.fc;
            fr.sample_rate = it[i].rate;
            it[i].labels = malloc((size_t)it[i].T * sizeof(int));
            if (!it[i].labels) {
                fprintf(stderr, PROG ": out of memory\n");
                status = 1;
                goto out;
            }
            if (labels_to_frames(it[i].labels, &it[i].lf, (const char *const *)classes, n_classes,
                                 it[i].rate, cbrnn_feat_config_hop(&fr), cbrnn_feat_config_win(&fr),
                                 it[i].T, msg, sizeof msg)) {
                fprintf(stderr, PROG ": %s\n", msg);
                goto out;
            }
        }
    }

    /* ---- normalisation from the training files only ---- */
    mean = malloc((size_t)F * sizeof *mean);
    sd = malloc((size_t)F * sizeof *sd);
    if (!mean || !sd || cbrnn_stats_init(&st, F)) {
        fprintf(stderr, PROG ": out of memory\n");
        status = 1;
        goto out;
    }
    long train_frames = 0, val_frames = 0;
    for (int i = 0; i < n; i++) {
        if (it[i].val) {
            val_frames += it[i].T;
            continue;
        }
        train_frames += it[i].T;
        for (int t = 0; t < it[i].T; t++) {
            cbrnn_stats_add(&st, it[i].x + (size_t)t * F);
            if ((t + 1) % RELEASE_FRAMES == 0 || t + 1 == it[i].T)
                feat_cache_release(cache, 0, 0);
        }
    }
    cbrnn_stats_result(&st, mean, sd, STD_FLOOR);
    if (o.init_m) { /* --init: the model's normaliser, as it was trained and adapted with */
        memcpy(mean, o.init_m->norm_mean, (size_t)F * sizeof *mean);
        memcpy(sd, o.init_m->norm_std, (size_t)F * sizeof *sd);
    }
    for (int i = 0; i < n; i++)
        for (int t = 0; t < it[i].T; t++) {
            for (int k = 0; k < F; k++) {
                size_t j = (size_t)t * F + (size_t)k;
                it[i].x[j] = (it[i].x[j] - mean[k]) / sd[k];
                if (it[i].t)
                    it[i].t[j] = (it[i].t[j] - mean[k]) / sd[k];
            }
            /* written back by the kernel; resident memory stays small */
            if ((t + 1) % RELEASE_FRAMES == 0 || t + 1 == it[i].T)
                feat_cache_release(cache, 0, 0);
        }

    /* ---- sequences ---- */
    seqs = calloc((size_t)n, sizeof *seqs);
    train_seqs = calloc((size_t)n, sizeof *train_seqs);
    if (!seqs || !train_seqs) {
        fprintf(stderr, PROG ": out of memory\n");
        status = 1;
        goto out;
    }
    int n_train = 0;
    for (int i = 0; i < n; i++) {
        cbrnn_seq *s = &seqs[i];
        s->x = it[i].z ? it[i].z : it[i].x;
        s->base = it[i].x;
        s->scale = it[i].s;
        s->T = it[i].T;
        if (o.target == CBRNN_TARGET_PREDICT) {
            s->y = it[i].x + (size_t)o.horizon * F;
            s->y_stride = F;
            s->T = it[i].T - o.horizon;
        } else if (o.target == CBRNN_TARGET_MAP) {
            s->y = it[i].t;
        } else {
            s->labels = it[i].labels;
        }
        if (!it[i].val)
            train_seqs[n_train++] = *s;
    }

    /* ---- the model ---- */
    /* predict: the next frame's own features (with --deltas, the deltas
     * are inputs only: they follow from the frames); map: the teacher's. */
    int O = o.target == CBRNN_TARGET_CLASSIFY ? n_classes
            : o.target == CBRNN_TARGET_PREDICT && o.fc.deltas ? F / 2 : F;
    cbrnn_model_config mc = o.mc;
    mc.n_in = F;
    mc.n_out = O;
    if (mc.arch == CBRNN_ARCH_RNN && o.match) {
        cbrnn_model_config ref = mc;
        ref.arch = CBRNN_ARCH_CBRNN;
        size_t target_params = cbrnn_model_config_params(&ref);
        mc.n_hidden = cbrnn_rnn_hidden_for_params(F, O, target_params);
        if (!o.quiet)
            fprintf(stderr, PROG ": rnn baseline: cortex %d units, %zu parameters (the cbrnn "
                            "model with --hidden %d has %zu)\n", mc.n_hidden,
                    cbrnn_model_config_params(&mc), o.mc.n_hidden, target_params);
    }
    char why[512];
    if (cbrnn_model_config_check(&mc, why, sizeof why)) {
        fprintf(stderr, PROG ": model configuration: %s\n", why);
        goto out;
    }
    int err = 0;
    m = o.init_m ? cbrnn_model_clone(o.init_m, &err) : cbrnn_model_create(&mc, &err);
    if (!m || (!o.init_m && cbrnn_model_init(m, o.tc.seed)) ||
        (o.init_m && cbrnn_model_set_meta(m, "init_from", o.init))) {
        fprintf(stderr, PROG ": cannot create the model: %s\n", cbrnn_strerror(err));
        status = 1;
        goto out;
    }
    m->feat = o.fc;
    m->feat.sample_rate = o.fc.ref_rate; /* the rate it was trained at */
    m->feat.ref_rate = 0;
    m->target = (cbrnn_target)o.target;
    m->horizon = o.horizon;
    if (cbrnn_model_set_norm(m, mean, sd) ||
        (n_classes && cbrnn_model_set_classes(m, n_classes, (const char *const *)classes))) {
        fprintf(stderr, PROG ": cannot store the normaliser or classes\n");
        status = 1;
        goto out;
    }
    /* The running normaliser, file by file from its start state, on the
     * frames the corpus statistics have just normalised (as live). */
    m->stream_norm_s = o.stream_norm;
    m->stream_norm_floor = o.stream_floor;
    for (int i = 0; i < n && o.stream_norm > 0; i++) {
        if (cbrnn_model_stream_seq(m, it[i].x, it[i].z, it[i].s, it[i].T)) {
            fprintf(stderr, PROG ": out of memory\n");
            status = 1;
            goto out;
        }
        feat_cache_release(cache, 0, 0);
    }

    if (o.log) {
        log = fopen(o.log, "w");
        if (!log) {
            fprintf(stderr, PROG ": %s: cannot write the log: %s\n", o.log, strerror(errno));
            goto out;
        }
        fprintf(log, "step,phase,train_loss,val_loss,val_persistence_loss,skill,val_accuracy\n");
    }
    char skipped_note[64] = "";
    if (n_skipped)
        snprintf(skipped_note, sizeof skipped_note, ", %d skipped (unreadable or no audio)",
                 n_skipped);
    if (o.quiet && n_skipped) /* warnings are not progress: -q keeps the count */
        fprintf(stderr, PROG ": %d file%s skipped (unreadable or no audio)\n", n_skipped,
                n_skipped == 1 ? "" : "s");
    if (!o.quiet)
        fprintf(stderr, PROG ": %d training file%s (%ld frames), %d validation (%ld frames)%s; "
                        "%zu parameters; %ld warm-up + %ld frozen-cortex steps\n",
                n_train, n_train == 1 ? "" : "s", train_frames, n - n_train, val_frames,
                skipped_note, m->n_params, o.warmup, o.steps);

    /* ---- training ---- */
    status = 1;
    struct vres vr;
    if (validate(m, seqs, it, n, cache, &vr)) {
        fprintf(stderr, PROG ": validation failed\n");
        goto out;
    }
    log_row(log, 0, "init", NAN, &vr, o.target);
    long total = o.warmup + o.steps, step = 0, since = 0;
    double acc = 0, last_train = NAN, last_draw = 0;
    t0 = now_s();
    int interrupted = 0;
    for (int phase = 0; phase < 2 && !interrupted; phase++) {
        long nsteps = phase == 0 ? o.warmup : o.steps;
        const char *pname = phase == 0 ? "warmup" : "frozen";
        if (nsteps == 0)
            continue;
        /* Phase 2 freezes the cortex; the trainer (its optimiser moments
         * and batch stream) starts afresh for the new set of parameters,
         * with seed + phase so the two phases draw different batches. */
        m->frozen[CBRNN_GROUP_CORTEX] = phase == 1 || mc.arch == CBRNN_ARCH_RESERVOIR;
        cbrnn_train_config tc = o.tc;
        tc.seed = o.tc.seed + (uint64_t)phase;
        cbrnn_trainer_destroy(tr);
        tr = cbrnn_trainer_create(m, &tc, &err);
        if (!tr) {
            fprintf(stderr, PROG ": cannot start training: %s\n", cbrnn_strerror(err));
            goto out;
        }
        for (long s = 0; s < nsteps; s++) {
            float loss = 0;
            if (o.lr_decay) /* cosine: the last steps average out the batches' noise */
                cbrnn_trainer_optim(tr)->cfg.lr =
                    (float)(0.5 * o.tc.opt.lr * (1.0 + cos(3.14159265358979323846 * (double)s / (double)nsteps)));
            int rc = cbrnn_trainer_step(tr, train_seqs, n_train, &loss);
            if (rc || !isfinite(loss)) {
                fprintf(stderr, "%s" PROG ": training failed at step %ld (%s; loss %g)%s\n",
                        interactive ? "\n" : "", step + 1, rc ? cbrnn_strerror(rc) : "non-finite loss", (double)loss,
                        (!rc || rc == CBRNN_ERR_NONFINITE) ? ": try a lower --lr or --clip" : "");
                goto out;
            }
            step++;
            acc += loss;
            since++;
            /* A step touched batch x (seq-len + horizon) frames of the
             * cache (258 KiB at the defaults): give them back, so feature
             * memory stays one batch whatever the corpus size. Refaulting
             * them costs far less than the step. */
            feat_cache_release(cache, 0, 0);
            int last = s == nsteps - 1;
            int stop = g_stop != 0;
            if (step % o.eval_every == 0 || last || stop) {
                last_train = acc / (double)since;
                acc = 0;
                since = 0;
                if (validate(m, seqs, it, n, cache, &vr)) {
                    fprintf(stderr, PROG ": validation failed\n");
                    goto out;
                }
                log_row(log, step, pname, last_train, &vr, o.target);
                if (!o.quiet && !interactive) {
                    char d[128];
                    describe(d, sizeof d, last_train, &vr, o.target);
                    fprintf(stderr, "step %ld/%ld %s %s\n", step, total, pname, d);
                }
            }
            double tnow = now_s();
            if (interactive && (tnow - last_draw > 0.1 || step == total)) {
                char d[160];
                describe(d, sizeof d, since ? acc / (double)since : last_train, &vr, o.target);
                term_progress(stderr, pname, (double)step, (double)total, tnow - t0, d);
                last_draw = tnow;
            }
            if (stop) {
                interrupted = 1;
                break;
            }
        }
    }
    if (interactive && interrupted)
        fputc('\n', stderr);

    /* ---- provenance and the file ---- */
    char cmdline[4096] = "cbrnn";
    for (int i = 0; i < argc; i++)
        append_word(cmdline, sizeof cmdline, argv[i]);
    char date[32] = "";
    time_t now = time(NULL);
    const char *sde = getenv("SOURCE_DATE_EPOCH"); /* reproducible-builds.org convention */
    if (sde && *sde)
        now = (time_t)strtoll(sde, NULL, 10);
    struct tm tmv;
    if (gmtime_r(&now, &tmv))
        strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    char b[64];
    int mrc = cbrnn_model_set_meta(m, "command", cmdline);
    mrc |= cbrnn_model_set_meta(m, "date", date);
    mrc |= cbrnn_model_set_meta(m, "cbrnn_version", CBRNN_VERSION_STRING);
#define META_F(key, fmt, val)                                                                     \
    do {                                                                                          \
        snprintf(b, sizeof b, fmt, val);                                                          \
        mrc |= cbrnn_model_set_meta(m, key, b);                                                   \
    } while (0)
    META_F("train_files", "%d", n_train);
    META_F("val_files", "%d", n - n_train);
    { /* which files were held out, so an evaluation can avoid them (at most 64 KiB) */
        size_t cap = 65536, len = 0;
        char *held = calloc(cap, 1);
        for (int i = 0; held && i < n; i++) {
            size_t l = strlen(it[i].path);
            if (!it[i].val)
                continue;
            if (len + l + 2 > cap) {
                snprintf(held, cap, "(%d files: the list is longer than 64 KiB)", n - n_train);
                break;
            }
            if (len)
                held[len++] = ';';
            memcpy(held + len, it[i].path, l + 1);
            len += l;
        }
        mrc |= held ? cbrnn_model_set_meta(m, "held_out", held) : -1;
        free(held);
    }
    META_F("skipped_files", "%d", n_skipped);
    META_F("train_frames", "%ld", train_frames);
    META_F("seed", "%llu", (unsigned long long)o.tc.seed);
    META_F("optimizer", "%s", opt_names[o.tc.opt.kind]);
    META_F("lr", "%g", (double)o.tc.opt.lr);
    META_F("batch", "%d", o.tc.batch);
    META_F("seq_len", "%d", o.tc.seq_len);
    META_F("steps_warmup", "%ld", o.warmup);
    META_F("steps_frozen", "%ld", o.steps);
    META_F("steps_done", "%ld", step);
    if (isfinite(last_train))
        META_F("final_train_loss", "%.6g", last_train);
    if (vr.have) {
        META_F("final_val_loss", "%.6g", vr.loss);
        if (o.target == CBRNN_TARGET_CLASSIFY) {
            META_F("final_val_accuracy", "%.6g", vr.acc);
        } else {
            META_F("final_val_persistence_loss", "%.6g", vr.persist);
            META_F("final_skill", "%.6g", vr.skill);
        }
    }
    if (interrupted)
        mrc |= cbrnn_model_set_meta(m, "interrupted", "yes");
#undef META_F
    if (mrc) {
        fprintf(stderr, PROG ": cannot record the provenance\n");
        goto out;
    }
    if (cbrnn_model_save(m, o.out, msg, sizeof msg)) {
        fprintf(stderr, PROG ": %s\n", msg);
        goto out;
    }
    if (interrupted) {
        fprintf(stderr, PROG ": interrupted at step %ld of %ld; saved the model so far to %s\n",
                step, total, o.out);
        status = 128 + (int)g_stop;
        goto out;
    }
    printf("saved %s: %zu parameters, %ld steps", o.out, m->n_params, step);
    if (isfinite(last_train))
        printf(", train loss %.4f", last_train);
    if (vr.have) {
        if (o.target == CBRNN_TARGET_CLASSIFY)
            printf(", validation loss %.4f accuracy %.3f", vr.loss, vr.acc);
        else
            printf(", validation loss %.4f persistence %.4f skill %.3f", vr.loss, vr.persist,
                   vr.skill);
    }
    printf("\n");
    status = 0;
out:
    if (log && fclose(log) && status == 0) {
        fprintf(stderr, PROG ": %s: writing the log failed\n", o.log);
        status = 1;
    }
    cbrnn_trainer_destroy(tr);
    cbrnn_model_destroy(m);
    cbrnn_model_destroy(o.init_m);
    cbrnn_stats_free(&st);
    free(mean);
    free(sd);
    free(seqs);
    free(train_seqs);
    feat_cache_close(cache);
    free(out_dir);
    for (int i = 0; it && i < n; i++) {
        free(it[i].labels);
        labels_free(&it[i].lf);
    }
    free(it);
    for (int i = 0; i < n_classes; i++)
        free(classes[i]);
    free(classes);
    corpus_free(&inputs);
    corpus_free(&teachers);
    corpus_free(&valc);
    corpus_free(&o.val_specs);
    return status;
}
