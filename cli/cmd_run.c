/* cmd_run.c: `cbrnn run --model M --out-dir D [options] INPUTS...`: the
 * offline twin of the live host. It runs the real-time engine over audio
 * files exactly as live audio would arrive (blocks of --block samples,
 * labels switched at their sample, learning inside the engine), so a
 * recording of a live session replayed here gives the live run's numbers.
 * Writes D/outputs.npy, D/frames.csv (the live log's format),
 * D/events.csv (the control changes applied, the live events format),
 * D/surprise.wav and, with --save-model, the adapted model. With --events
 * a live run's control changes are applied at the frames they were live.
 *
 * Talks to the user (this is cli/): bad input -> one message naming the
 * file and the problem, exit 2; a failure while working -> exit 1. Never
 * loses what D already holds: inputs are checked first, outputs pass the
 * guard of util_output.h and are renamed into place only at the end. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cbrnn/cbrnn_control.h"
#include "cbrnn/cbrnn_engine.h"
#include "cbrnn/cbrnn_host.h"
#include "cbrnn/cbrnn_model.h"
#include "corpus.h"
#include "host_audio.h"
#include "host_output.h"
#include "util_audio.h"
#include "util_msg.h"
#include "util_npy.h"
#include "util_output.h"
#include "util_parse.h"
#include "util_term.h"

const char cmd_run_summary[] = "run a model over audio files as live audio, learning online";

#define PROG "cbrnn run"
#define MAX_INPUTS 4096

static void usage(FILE *f)
{
    fprintf(f,
"usage: cbrnn run --model M --out-dir D [options] INPUTS...\n"
"\n"
"INPUTS: audio files, folders (every audio file below, in byte order) and\n"
"@LIST files (one file or folder a line), as cbrnn train and eval take.\n"
"\n"
"Runs the real-time engine (the one cbrnn-jack uses) over audio files as if\n"
"they arrived live, in blocks of --block samples; the cerebellum learns\n"
"online with --learn. Several INPUTS form one continuous stream at the\n"
"first input's sample rate (later inputs are resampled to it) unless\n"
"--reset-each is given.\n"
"\n"
"  --model M          model file (.safetensors), e.g. samples/default.safetensors\n"
"  --out-dir D        where the results go (created if missing):\n"
"                       outputs.npy  float32 [frames, outputs]: per frame the\n"
"                                    prediction (normalised features) or the\n"
"                                    class posteriors\n"
"                       frames.csv   per-frame record, the columns of the\n"
"                                    live log: frame,time,loss,\n"
"                                    persistence_loss,surprise,learning,lr,\n"
"                                    marker,label,flags\n"
"                       files.csv    file,first_row: where each input's rows\n"
"                                    start in frames.csv (cbrnn summary --by\n"
"                                    file)\n"
"                       events.csv   the control changes applied, each with\n"
"                                    the frame it preceded (frame,event,value)\n"
"                       surprise.wav the surprise ((loss + 0.01) / (its running\n"
"                                    mean + 0.01), at most 1000: about 1\n"
"                                    when the loss is as usual) held over\n"
"                                    each hop, float WAV at the stream's\n"
"                                    rate\n"
"  --learn            learn online (default: --no-learn)\n"
"  --no-learn         keep the model fixed\n"
"  --lr X             learning rate (default 1e-3)\n"
"  --momentum X       SGD momentum in [0, 1) (default 0.9)\n"
"  --decay X          pull toward the loaded weights (default 0)\n"
"  --gate-db DB       level gate: frames quieter than DB dBFS (e.g. -50) are not\n"
"                     learned from and not in the summary; flagged 16 in\n"
"                     frames.csv (default: no gate)\n"
"  --bptt K           loop wiring: truncated BPTT window in frames (default 4)\n"
"  --block N          samples per engine call (default 256); results do not\n"
"                     depend on it\n"
"  --teacher T        map models: the teacher signal of the next input (give\n"
"                     one per input, in order)\n"
"  --labels L         classify models: Audacity label file of the next input\n"
"                     (one per input); a label is in force from its start\n"
"                     sample to its end sample, as a held MIDI note live\n"
"  --save-model P     write the adapted model to P (atomically); when P cannot\n"
"                     be written (a full disk, its folder gone) a rescue copy\n"
"                     in $XDG_STATE_HOME/cbrnn/rescue (else $TMPDIR/\n"
"                     cbrnn-rescue-UID), said (exit 1)\n"
"  --events FILE      apply the control changes of FILE (cbrnn-jack --log\n"
"                     X.csv writes X.csv.events) at their frames: the replay\n"
"                     of a controlled live run, bit for bit; one input only\n"
"                     (its recording); its frame-0 settings replace --learn,\n"
"                     --lr, --momentum, --decay, --gate-db. The names of its\n"
"                     markers come from the names file beside it (X.csv.markers\n"
"                     for X.csv.events, DIR/markers.csv for DIR/events.csv)\n"
"                     and go to D/markers.csv. The file names the model it\n"
"                     was recorded with (SHA-256) and the engine options no\n"
"                     event carries (--rule, --rls-prior, --rls-forget,\n"
"                     --bptt): these are taken from it unless given here\n"
"                     (a value that differs is warned of); a different\n"
"                     model is refused\n"
"  --events-any-model  replay --events with a model other than the one it was\n"
"                     recorded with (a warning: the numbers may differ)\n"
"  --schedule FILE    a trial schedule (docs/FORMATS.md) applied by the engine\n"
"                     at its exact frames, as cbrnn-jack --schedule does;\n"
"                     marker names go to D/markers.csv\n"
"  --perturb-delay MS, --perturb-gain DB, --perturb-pitch SEMITONES\n"
"                     perturbed feedback (docs/ADAPTATION.md): the input with\n"
"                     a delay (0..2000 ms), gain (-60..20 dB) and pitch shift\n"
"                     (-12..12 semitones; Rubber Band, the same code as\n"
"                     cbrnn-jack's feedback port) at the start; changed by\n"
"                     the schedule's delay, gain and pitch actions and by\n"
"                     --events; written to D/feedback.wav\n"
"  --perturb-max-delay MS  the largest delay (default 500)\n"
"  --feedback-to-model  the model hears the perturbed feedback, not the input\n"
"                     (an events file or schedule with perturbation changes\n"
"                     turns the perturbation on by itself)\n"
"  --reset-each       each input is its own stream: features, cortex state,\n"
"                     frame count and the cerebellum start again from the\n"
"                     loaded model\n"
"  --quiet            no summary on stdout\n"
"%s"
"\n"
"Every input is opened before anything is written. The files of D are\n"
"written under NAME.tmp.HOST.PID and put in place only when the run succeeds;\n"
"a failed run, Ctrl-C (exit 130), SIGTERM (143) or SIGHUP (129: a closed\n"
"terminal or ssh session) leaves D and --save-model as they were, and a successful\n"
"run removes the markers.csv and feedback.wav an earlier run left when it\n"
"writes none. A folder of INPUTS never contributes files from inside D;\n"
"D may not be an input folder itself.\n"
"\n"
"A file whose WAV header was never finished (a recording cut short by a\n"
"crash or kill) is read to its end with a warning.\n"
"\n"
"Exit status: 0 done; 1 failure while working (also when --save-model went\n"
"to a rescue copy), or a run that is not the\n"
"whole replay: events of --events past the end of the input, or control\n"
"changes missing from events.csv (said; the files are written); 2 bad\n"
"options or input.\n",
            cbrnn_host_rule_help());
}

static int parse_float(const char *s, float lo, float hi, int hi_open, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || (hi_open ? v >= hi : v > hi))
        return -1;
    *out = (float)v;
    return 0;
}

/* Reads exactly n samples unless the file ends; returns how many, -1 on error. */
static long read_full(audio_in *a, float *buf, long n, char *msg, size_t msglen)
{
    long got = 0;
    while (got < n) {
        long r = audio_in_read(a, buf + got, n - got, msg, msglen);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += r;
    }
    return got;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

struct sums {
    double loss, pers;
    long n_loss, n_pers;
};

/* The files of D a run owns, in the order they are committed: each is
 * written under NAME.tmp.HOST.PID and renamed into place only when the whole
 * run succeeded; one an earlier run left that this run does not write
 * (markers.csv, feedback.wav) is removed then. */
enum { F_NPY, F_FRAMES, F_EVENTS, F_FILES, F_MARKERS, F_SURPRISE, F_FEEDBACK, N_OWNED };
static const char *const owned[N_OWNED] = {"outputs.npy", "frames.csv",   "events.csv",
                                           "files.csv",   "markers.csv",  "surprise.wav",
                                           "feedback.wav"};

struct run_out {
    cli_outfile *txt[N_OWNED]; /* frames.csv, events.csv, files.csv, markers.csv */
    npy_writer *npy;
    cbrnn_wav *wav, *fb;       /* surprise.wav, feedback.wav */
    char wav_tmp[2][4096];     /* their temporaries ("" when not created) */
    cbrnn_record rec;
    float *y;
    long frames, kept, gated; /* all, not gated (losses[kept]), gated */
    struct sums all;
    /* per-frame losses kept for the first/second half summary */
    float *losses;
    long cap;
};

/* Drains the engine's records into the outputs; 0 or -1 (msg). */
static int drain(cbrnn_engine *e, struct run_out *o, char *msg, size_t msglen)
{
    char line[512];
    cbrnn_event ev;
    while (cbrnn_engine_read_event(e, &ev)) {
        int n = cbrnn_event_csv_row(line, sizeof line, &ev);
        if (fwrite(line, 1, (size_t)n, o->txt[F_EVENTS]->f) != (size_t)n) {
            snprintf(msg, msglen, "events.csv: write failed: %s", strerror(errno));
            return -1;
        }
    }
    while (cbrnn_engine_read_record(e, &o->rec, o->y)) {
        int n = cbrnn_record_csv_row(line, sizeof line, &o->rec);
        if (fwrite(line, 1, (size_t)n, o->txt[F_FRAMES]->f) != (size_t)n) {
            snprintf(msg, msglen, "frames.csv: write failed: %s", strerror(errno));
            return -1;
        }
        if (npy_append(o->npy, o->y, 1)) {
            snprintf(msg, msglen, "outputs.npy: write failed: %s", strerror(errno));
            return -1;
        }
        if (o->kept == o->cap) {
            long cap = o->cap ? 2 * o->cap : 4096;
            float *l = realloc(o->losses, (size_t)cap * sizeof(float));
            if (!l) {
                snprintf(msg, msglen, "out of memory");
                return -1;
            }
            o->losses = l;
            o->cap = cap;
        }
        o->frames++;
        if (o->rec.flags & CBRNN_REC_GATED) { /* silence: not in the summary */
            o->gated++;
            continue;
        }
        o->losses[o->kept++] = o->rec.loss;
        if (isfinite(o->rec.loss)) {
            o->all.loss += o->rec.loss;
            o->all.n_loss++;
        }
        if (isfinite(o->rec.persistence_loss)) {
            o->all.pers += o->rec.persistence_loss;
            o->all.n_pers++;
        }
    }
    return 0;
}

/* markers.csv: the schedule's marker names (the live markers file's
 * format). */
static void write_markers(FILE *f, const cbrnn_schedule *s)
{
    char row[1024];
    fputs(cbrnn_marker_csv_header(), f);
    for (int i = 0; i < s->n_marks; i++)
        fwrite(row, 1,
               (size_t)cbrnn_marker_csv_row(row, sizeof row, s->first_mark + i, s->mark_names[i],
                                            s->mark_seconds[i]),
               f);
}

static double mean_range(const float *v, long a, long b)
{
    double s = 0;
    long c = 0;
    for (long i = a; i < b; i++)
        if (isfinite(v[i])) {
            s += v[i];
            c++;
        }
    return c ? s / (double)c : NAN;
}

/* ---- the run: its state and its steps, in the order cmd_run takes them ---- */

/* Everything one run owns; run_free gives it back however the run ends.
 * A step returns 0 to go on, or the exit status the run ends with (2 bad
 * options or input, 1 failure while working). */
struct run {
    /* options */
    const char *model_path, *out_dir, *save_path, *events_path, *schedule_path;
    const char *teachers[MAX_INPUTS], *labels[MAX_INPUTS];
    int n_teachers, n_labels, reset_each, quiet, block;
    cbrnn_engine_config ec;
    corpus in;             /* INPUTS expanded (folders, @lists) */
    char **inputs;         /* in.paths */
    int n_inputs;
    char msg[CLI_MSG_LEN];
    /* the model as loaded once (every engine starts from it) and the
     * SHA-256 of its bytes, which events files name it by */
    cbrnn_model *loaded;
    char model_sha256[65];
    /* the engine over the stream */
    cbrnn_engine *e;
    const cbrnn_model *m;
    double rate;           /* the stream's: the first input's */
    int n_out;             /* the model's outputs (the engine's, less surprise) */
    audio_in *a, *t;       /* the current input and its teacher */
    float *xbuf, *tbuf, *sbuf, *fbuf;
    struct run_out o;
    struct label_events ev;
    cbrnn_event_list evl;  /* --events */
    unsigned given;        /* CBRNN_EVH_* of the engine options given here */
    int any_model;         /* --events-any-model */
    char names_path[4096]; /* --events: its marker names file ("" none) */
    char *names;           /* its rows after the header (NULL: none) */
    cbrnn_schedule sched;  /* --schedule */
    double t0, done;       /* progress: when it started, inputs done */
    cbrnn_engine_stats st; /* at the end */
    cbrnn_model *adapted;  /* --save-model */
    int save_lock;         /* its lock (out_lock_output), -1 when not taken */
    host_files files;       /* what the run reads and writes (the output guard) */
};

/* Set by Ctrl-C (SIGINT), SIGTERM or SIGHUP once the outputs are open: the run
 * stops after the block at hand and removes its temporaries. */
static volatile sig_atomic_t g_stop;

enum { O_MODEL = 256, O_OUT, O_LEARN, O_NOLEARN, O_LR, O_MOM, O_DECAY, O_BPTT, O_BLOCK,
       O_TEACHER, O_LABELS, O_SAVE, O_RESET, O_QUIET, O_EVENTS, O_SCHEDULE, O_GATE,
       O_ANY_MODEL, O_ENGINE_FIRST /* CBRNN_HOST_ENGINE_LONGOPTS */ };

/* The options that take a number. 0 taken, -1 bad value (said), 1 not
 * one of these. */
static int number_option(struct run *r, int c, const char *arg)
{
    cbrnn_engine_config *ec = &r->ec;
    switch (c) {
    case O_LR:
        if (parse_float(arg, 0.0f, (float)CBRNN_LR_MAX, 0, &ec->lr)) {
            fprintf(stderr, PROG ": --lr '%s': expected a number in [0, %g]\n", arg,
                    CBRNN_LR_MAX);
            return -1;
        }
        return 0;
    case O_MOM:
        if (parse_float(arg, 0.0f, 1.0f, 1, &ec->momentum)) {
            fprintf(stderr, PROG ": --momentum '%s': expected a number in [0, 1)\n", arg);
            return -1;
        }
        return 0;
    case O_DECAY:
        if (parse_float(arg, 0.0f, (float)CBRNN_DECAY_MAX, 0, &ec->decay)) {
            fprintf(stderr, PROG ": --decay '%s': expected a number in [0, %g]\n", arg,
                    CBRNN_DECAY_MAX);
            return -1;
        }
        return 0;
    case O_BPTT:
        if (cli_parse_int(arg, 1, 1024, &ec->bptt_k)) {
            fprintf(stderr, PROG ": --bptt '%s': expected an integer in 1..1024\n", arg);
            return -1;
        }
        return 0;
    case O_BLOCK:
        if (cli_parse_int(arg, 1, 1 << 20, &r->block)) {
            fprintf(stderr, PROG ": --block '%s': expected an integer in 1..1048576\n", arg);
            return -1;
        }
        return 0;
    case O_GATE:
        if (parse_float(arg, (float)CBRNN_GATE_DB_MIN, 0.0f, 1, &ec->gate_db)) {
            fprintf(stderr, PROG ": --gate-db '%s': expected dBFS in [%g, 0)\n", arg,
                    CBRNN_GATE_DB_MIN);
            return -1;
        }
        return 0;
    default:
        if (c >= O_ENGINE_FIRST && c < O_ENGINE_FIRST + CBRNN_HOST_ENGINE_NOPTS) {
            char msg[256];
            if (cbrnn_host_engine_option(ec, c - O_ENGINE_FIRST, arg, msg, sizeof msg)) {
                fprintf(stderr, PROG ": %s\n", msg);
                return -1;
            }
            return 0;
        }
        return 1;
    }
}

/* Is the real path p inside the real folder dir (or dir itself)? */
static int inside(const char *p, const char *dir)
{
    size_t n = strlen(dir);
    return !strncmp(p, dir, n) && (p[n] == '/' || p[n] == 0 || (n == 1 && dir[0] == '/'));
}

/* A folder of inputs that is the output folder or inside it would be all
 * results: refused. 0 or -1 (said). */
static int folder_outside(const char *folder, const char *out_dir)
{
    char dir[PATH_MAX], real[PATH_MAX];
    if (realpath(out_dir, dir) && realpath(folder, real) && inside(real, dir)) {
        fprintf(stderr, PROG ": the input folder %s is the output folder %s or inside it: give an "
                        "--out-dir outside the inputs\n", folder, out_dir);
        return -1;
    }
    return 0;
}

/* Drops the files of c from index `from` on that lie inside out_dir (its
 * real path; symbolic links resolved), so a folder scan never takes a
 * run's own results as its inputs. How many were dropped. */
static int leave_out_dir(corpus *c, int from, const char *out_dir)
{
    char dir[PATH_MAX], real[PATH_MAX];
    if (!realpath(out_dir, dir))
        return 0; /* not there yet: nothing inside it */
    size_t kept = (size_t)from;
    int dropped = 0;
    for (int i = from; i < c->n; i++) {
        if (realpath(c->paths[i], real) && inside(real, dir)) {
            free(c->paths[i]);
            dropped++;
        } else {
            c->paths[kept++] = c->paths[i];
        }
    }
    c->n = (int)kept;
    return dropped;
}

/* INPUTS: FILE, FOLDER or @LIST, as cbrnn train and eval take them; what
 * a folder or list brings from inside D (earlier results) is left out. 0
 * or -1 (said). */
static int read_inputs(struct run *r, int argc, char **argv)
{
    int left_out = 0;
    for (int i = optind; i < argc; i++) {
        char msg[CLI_MSG_LEN];
        struct stat st;
        int before = r->in.n, dir = stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode);
        if (dir && folder_outside(argv[i], r->out_dir))
            return -1;
        if (cli_check_path_length(argv[i], msg, sizeof msg) ||
            corpus_add(&r->in, argv[i], msg, sizeof msg)) {
            cli_say(PROG, msg);
            return -1;
        }
        if (argv[i][0] == '@' || dir)
            left_out += leave_out_dir(&r->in, before, r->out_dir);
    }
    if (left_out)
        fprintf(stderr, PROG ": left out %d file%s found inside the output folder %s (results "
                        "of an earlier run)\n", left_out, left_out == 1 ? "" : "s", r->out_dir);
    if (r->in.n == 0) {
        fprintf(stderr, PROG ": no audio files in the inputs given\n");
        return -1;
    }
    r->n_inputs = r->in.n;
    r->inputs = r->in.paths;
    return 0;
}

/* The events file's key (CBRNN_EVH_*) that option c sets, or 0: an
 * option given here wins over the file's value. */
static unsigned events_key_of(int c)
{
    return c == O_BPTT                 ? CBRNN_EVH_BPTT
           : c == O_ENGINE_FIRST       ? CBRNN_EVH_RULE /* CBRNN_HOST_ENGINE_LONGOPTS order */
           : c == O_ENGINE_FIRST + 1   ? CBRNN_EVH_RLS_PRIOR
           : c == O_ENGINE_FIRST + 2   ? CBRNN_EVH_RLS_FORGET
                                       : 0;
}

/* Empty names and an --out-dir that is not a folder, said by their
 * option before anything reads them (else the message would start with
 * the empty name, or name D/frames.csv). 0 or -1 (said). */
static int check_names(const struct run *r)
{
    const char *const names[][2] = {{"--model", r->model_path},
                                    {"--out-dir", r->out_dir},
                                    {"--save-model", r->save_path},
                                    {"--events", r->events_path},
                                    {"--schedule", r->schedule_path}};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (names[i][1] && !names[i][1][0]) {
            fprintf(stderr, PROG ": %s '': an empty name (give a %s)\n", names[i][0],
                    i == 1 ? "folder" : "file");
            return -1;
        }
    struct stat st;
    if (stat(r->out_dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
        fprintf(stderr, PROG ": --out-dir %s: not a folder\n", r->out_dir);
        return -1;
    }
    return 0;
}

/* 0 ok, 1 --help shown, -1 error (said). */
static int parse_opts(struct run *r, int argc, char **argv)
{
    static const struct option lo[] = {
        {"model", required_argument, NULL, O_MODEL},  {"out-dir", required_argument, NULL, O_OUT},
        {"learn", no_argument, NULL, O_LEARN},        {"no-learn", no_argument, NULL, O_NOLEARN},
        {"lr", required_argument, NULL, O_LR},        {"momentum", required_argument, NULL, O_MOM},
        {"decay", required_argument, NULL, O_DECAY},  {"bptt", required_argument, NULL, O_BPTT},
        {"block", required_argument, NULL, O_BLOCK},
        {"teacher", required_argument, NULL, O_TEACHER},
        {"labels", required_argument, NULL, O_LABELS},
        {"save-model", required_argument, NULL, O_SAVE},
        {"events", required_argument, NULL, O_EVENTS},
        {"schedule", required_argument, NULL, O_SCHEDULE},
        {"gate-db", required_argument, NULL, O_GATE},
        {"events-any-model", no_argument, NULL, O_ANY_MODEL},
        CBRNN_HOST_ENGINE_LONGOPTS(O_ENGINE_FIRST),
        {"reset-each", no_argument, NULL, O_RESET},   {"quiet", no_argument, NULL, O_QUIET},
        {"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0}};
    r->block = 256;
    cbrnn_engine_config_default(&r->ec, 16000.0);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        r->given |= events_key_of(c);
        int rc = number_option(r, c, optarg);
        if (rc < 0)
            return -1;
        if (rc == 0)
            continue;
        switch (c) {
        case O_MODEL: r->model_path = optarg; break;
        case O_OUT: r->out_dir = optarg; break;
        case O_LEARN: r->ec.learn = 1; break;
        case O_NOLEARN: r->ec.learn = 0; break;
        case O_TEACHER:
            if (r->n_teachers == MAX_INPUTS) {
                fprintf(stderr, PROG ": too many --teacher (at most %d)\n", MAX_INPUTS);
                return -1;
            }
            r->teachers[r->n_teachers++] = optarg;
            break;
        case O_LABELS:
            if (r->n_labels == MAX_INPUTS) {
                fprintf(stderr, PROG ": too many --labels (at most %d)\n", MAX_INPUTS);
                return -1;
            }
            r->labels[r->n_labels++] = optarg;
            break;
        case O_SAVE: r->save_path = optarg; break;
        case O_EVENTS: r->events_path = optarg; break;
        case O_SCHEDULE: r->schedule_path = optarg; break;
        case O_ANY_MODEL: r->any_model = 1; break;
        case O_RESET: r->reset_each = 1; break;
        case O_QUIET: r->quiet = 1; break;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return -1;
        }
    }
    if (!r->model_path || !r->out_dir || optind >= argc) {
        fprintf(stderr, PROG ": %s\n",
                !r->model_path ? "--model M is required"
                               : !r->out_dir ? "--out-dir D is required" : "expected INPUTS");
        usage(stderr);
        return -1;
    }
    return check_names(r) ? -1 : read_inputs(r, argc, argv);
}

/* The marker ids of the --events file, as "0, 1, ..." into ids (the
 * first few). How many mark events it has. */
static int event_marks(const cbrnn_event_list *l, char *ids, size_t len)
{
    int n = 0;
    size_t at = 0;
    ids[0] = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (l->ev[i].cmd.kind != CBRNN_CMD_MARK)
            continue;
        if (n < 16 && at < len)
            at += (size_t)snprintf(ids + at, len - at, "%s%d", n ? ", " : "", l->ev[i].cmd.i);
        else if (n == 16 && at < len)
            at += (size_t)snprintf(ids + at, len - at, ", ...");
        n++;
    }
    return n;
}

/* The names file of an events file: X.markers for X.events (cbrnn-jack
 * --log), else markers.csv in its folder (cbrnn run's D). */
static void names_beside(const char *events, char *path, size_t len)
{
    size_t l = strlen(events);
    const char *slash = strrchr(events, '/');
    if (l > 7 && !strcmp(events + l - 7, ".events"))
        snprintf(path, len, "%.*s.markers", (int)(l - 7), events);
    else
        snprintf(path, len, "%.*s%smarkers.csv", slash ? (int)(slash - events) : 0, events,
                 slash ? "/" : "");
}

/* The rest of f as a string (malloc'd), or NULL (read error, out of
 * memory). */
static char *read_rest(FILE *f)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1)
            break;
        char *nb = realloc(buf, cap *= 2);
        if (!nb)
            free(buf);
        buf = nb;
    }
    if (buf && ferror(f)) {
        free(buf);
        return NULL;
    }
    if (buf)
        buf[n] = 0;
    return buf;
}

/* --events with markers: their names file, read whole (its header
 * checked) for D/markers.csv. None found is a note (summary --by phase
 * then says what is missing); a file that is not a names file is
 * refused. 0 or 2 (said). */
static int read_event_names(struct run *r)
{
    char ids[160];
    if (!event_marks(&r->evl, ids, sizeof ids))
        return 0;
    names_beside(r->events_path, r->names_path, sizeof r->names_path);
    FILE *f = fopen(r->names_path, "r");
    if (!f) {
        fprintf(stderr, PROG ": note: %s has markers (ids %s) but their names file %s cannot be "
                "read (%s): no markers.csv is written, so `cbrnn summary --by phase` cannot "
                "name them\n", r->events_path, ids, r->names_path, strerror(errno));
        r->names_path[0] = 0;
        return 0;
    }
    char head[64];
    int is_names = fgets(head, sizeof head, f) && !strcmp(head, cbrnn_marker_csv_header());
    r->names = is_names ? read_rest(f) : NULL;
    fclose(f);
    if (!r->names) {
        fprintf(stderr, PROG ": %s (the marker names of --events %s): %s\n", r->names_path,
                r->events_path, is_names ? "cannot read" : "not a markers file (header "
                "marker,name,seconds)");
        return 2;
    }
    return 0;
}

/* --events: the model must be the one the file was recorded with (its
 * SHA-256), unless --events-any-model; the engine options the file
 * records are taken unless given here. A file without them (older) is a
 * note. 0 or 2 (said). */
static int replay_model(struct run *r)
{
    char why[CLI_MSG_LEN - 256];
    if (!r->events_path) {
        if (!r->any_model)
            return 0;
        fprintf(stderr, PROG ": --events-any-model applies to --events only\n");
        return 2;
    }
    int rc = cbrnn_events_check_model(&r->evl.info, r->events_path, r->model_path,
                                      r->model_sha256, why, sizeof why);
    if (rc < 0 || (rc == 1 && !r->any_model)) {
        snprintf(r->msg, sizeof r->msg, "%s%s", why,
                 rc < 0 ? "" : ": its replay would not give the recorded numbers (give the "
                               "model it names, or --events-any-model to run it anyway)");
        cli_say(PROG, r->msg);
        return 2;
    }
    if (rc) {
        snprintf(r->msg, sizeof r->msg, "%s: %s%s", rc == 1 ? "warning" : "note", why,
                 rc == 1 ? "; replaying anyway (--events-any-model): the numbers may differ "
                           "from the recorded run's" : "");
        cli_say(PROG, r->msg);
    }
    cbrnn_events_apply(&r->ec, &r->evl.info, r->given);
    return 0;
}

/* --events: what of the engine made for the replay differs from the
 * recorded run (an option given here, another model, another rate) is
 * warned of. Always 0. */
static int replay_differences(struct run *r)
{
    char why[CLI_MSG_LEN - 256];
    if (r->events_path && cbrnn_events_compare(why, sizeof why, &r->evl.info, r->e, &r->ec)) {
        snprintf(r->msg, sizeof r->msg, "warning: this run is not the one %s recorded (%s): "
                 "its numbers will differ", r->events_path, why);
        cli_say(PROG, r->msg);
    }
    return 0;
}

/* The options that do not go together; --events' file and the
 * --save-model path, checked before any work. */
static int check_modes(struct run *r)
{
    if (r->schedule_path && (r->events_path || r->reset_each)) {
        fprintf(stderr, PROG ": --schedule does not go with %s\n",
                r->events_path ? "--events (the events file holds the schedule's changes already)"
                               : "--reset-each (a schedule runs over one stream)");
        return 2;
    }
    if (r->events_path && r->n_inputs != 1) {
        fprintf(stderr, PROG ": --events replays one recording: give exactly one input (%d "
                        "given)\n", r->n_inputs);
        return 2;
    }
    if (r->events_path && cbrnn_event_list_load(&r->evl, r->events_path, r->msg, sizeof r->msg)) {
        cli_say(PROG, r->msg);
        return 2;
    }
    if (r->events_path && read_event_names(r))
        return 2;
    /* loaded once and hashed as loaded: the file read again for the check,
     * the engine or the events header could hold another model by then */
    int err = 0;
    if (!(r->loaded = cbrnn_host_load_model(r->model_path, r->model_sha256, &err, r->msg,
                                            sizeof r->msg))) {
        cli_say(PROG, r->msg);
        return 2;
    }
    int rc = replay_model(r);
    if (rc)
        return rc;
    /* an events file with perturbation changes needs the perturbation */
    cbrnn_host_perturb_for_events(&r->ec, r->evl.ev, r->evl.n);
    cbrnn_host_size_event_ring(&r->ec, r->evl.n);
    if (r->save_path && cbrnn_control_check_output(r->save_path, r->msg, sizeof r->msg)) {
        fprintf(stderr, PROG ": --save-model %s\n", r->msg);
        return 2;
    }
    /* the lock every saving program takes (a cbrnn-jack --save there too) */
    if (r->save_path &&
        (r->save_lock = out_lock_output("--save-model", r->save_path, r->msg, sizeof r->msg)) < 0) {
        cli_say(PROG, r->msg);
        return 2;
    }
    return 0;
}

/* --schedule, compiled for the engine and set in it; a schedule with
 * perturbation actions gets an engine that has the perturbation. */
static int open_schedule(struct run *r)
{
    int err = 0;
    if (!r->schedule_path)
        return 0;
    if (cbrnn_schedule_load(&r->sched, r->schedule_path, r->rate, cbrnn_engine_hop(r->e), 0,
                            r->msg, sizeof r->msg)) {
        fprintf(stderr, PROG ": --schedule %s\n", r->msg);
        return 2;
    }
    int had = r->ec.perturb, had_events = r->ec.event_capacity;
    cbrnn_host_perturb_for_events(&r->ec, r->sched.events.ev, r->sched.events.n);
    cbrnn_host_size_event_ring(&r->ec, r->sched.events.n);
    if (r->ec.perturb != had || r->ec.event_capacity != had_events) {
        cbrnn_engine_destroy(r->e);
        if (!(r->e = cbrnn_host_start(r->loaded, r->model_path, &r->ec, r->block, &err, r->msg,
                                      sizeof r->msg))) {
            cli_say(PROG, r->msg);
            return 2;
        }
        r->m = cbrnn_engine_model(r->e);
    }
    if (cbrnn_engine_set_schedule(r->e, r->sched.events.ev, r->sched.events.n)) {
        fprintf(stderr, PROG ": --schedule %s: refused by the engine\n", r->schedule_path);
        return 2;
    }
    return 0;
}

/* The engine at the first input's rate, the teachers and label files the
 * model's target needs, and the --schedule set in the engine. */
static int open_engine(struct run *r)
{
    int err = 0;
    /* The stream runs at the first input's rate: one out of range needs
     * resampling before the run (cbrnn run has no --rate). */
    if (!(r->a = cli_audio_open_own_rate(r->inputs[0],
                                         "the stream runs at the first input's rate: resample "
                                         "the file first (e.g. sox IN.wav -r 16000 OUT.wav), or "
                                         "put an input at a supported rate first (later inputs "
                                         "are resampled to its rate)", r->msg, sizeof r->msg))) {
        cli_say(PROG, r->msg);
        return 2;
    }
    r->rate = audio_in_rate(r->a);
    r->ec.sample_rate = r->rate;
    r->ec.record_outputs = 1;
    /* Drained after every call: one block's frames plus slack always fit. */
    if (!(r->e = cbrnn_host_start(r->loaded, r->model_path, &r->ec, r->block, &err, r->msg,
                                  sizeof r->msg))) {
        if (err == CBRNN_ERR_RATE)
            fprintf(stderr, PROG ": %s: %s\n", r->inputs[0], r->msg);
        else
            cli_say(PROG, r->msg);
        return 2;
    }
    const cbrnn_model *m = r->m = cbrnn_engine_model(r->e);
    if (m->target == CBRNN_TARGET_MAP && r->n_teachers != r->n_inputs) {
        fprintf(stderr, PROG ": %s is a map model: give one --teacher per input (%d inputs, %d "
                        "teachers)\n", r->model_path, r->n_inputs, r->n_teachers);
        return 2;
    }
    if (m->target != CBRNN_TARGET_MAP && r->n_teachers) {
        fprintf(stderr, PROG ": --teacher applies to map models only (%s is not one)\n",
                r->model_path);
        return 2;
    }
    if (m->target == CBRNN_TARGET_CLASSIFY && r->n_labels != r->n_inputs &&
        !(r->events_path && !r->n_labels)) {
        fprintf(stderr, PROG ": %s is a classify model: give one --labels per input (%d inputs, "
                        "%d label files)\n", r->model_path, r->n_inputs, r->n_labels);
        return 2;
    }
    if (m->target != CBRNN_TARGET_CLASSIFY && r->n_labels) {
        fprintf(stderr, PROG ": --labels applies to classify models only (%s is not one)\n",
                r->model_path);
        return 2;
    }
    r->n_out = cbrnn_engine_n_outputs(r->e) - 1;
    int rc = open_schedule(r);
    return rc ? rc : replay_differences(r);
}

/* D/NAME of the owned file k. */
static void out_path(const struct run *r, int k, char *path, size_t n)
{
    snprintf(path, n, "%s/%s", r->out_dir, owned[k]);
}

/* Does this run write the owned file k? */
static int writes(const struct run *r, int k)
{
    return k == F_MARKERS    ? r->schedule_path != NULL || r->names != NULL
           : k == F_FEEDBACK ? r->ec.perturb
                             : 1;
}

/* Every input, teacher and label file opened and its header read before
 * anything is written, so bad input costs no earlier result. 0 or 2
 * (said). */
static int check_inputs(struct run *r)
{
    struct label_events ev = {0};
    for (int i = 0; i < r->n_inputs; i++) {
        const char *path[2] = {r->inputs[i], r->n_teachers ? r->teachers[i] : NULL};
        for (int k = 0; k < 2 && path[k]; k++) {
            audio_in *a = audio_in_open(path[k], r->rate, r->msg, sizeof r->msg);
            if (!a) {
                cli_say(PROG, r->msg);
                return 2;
            }
            int said = 0; /* a teacher of an earlier input too was said there */
            for (int j = 0; k == 1 && j < i && !said; j++)
                said = !strcmp(r->teachers[j], path[k]);
            if (!said)
                cli_audio_warn(PROG, a); /* a recording cut short: read, and said once */
            audio_in_close(a);
        }
        int bad = r->n_labels &&
                  labels_to_events(&ev, r->labels[i], (const char *const *)r->m->class_names,
                                   r->m->n_classes, r->rate, r->msg, sizeof r->msg);
        label_events_free(&ev);
        if (bad) {
            cli_say(PROG, r->msg);
            return 2;
        }
    }
    return 0;
}

/* The files of D and --save-model through the guard of every command
 * (util_output.h): none may be the model, an input, a teacher, a label,
 * events or schedule file; the WAVs replace no model, the rest no model
 * or audio file. 0 or 2 (said). */
static int check_outputs(struct run *r)
{
    host_files *f = &r->files;
    const char *more[] = {r->model_path, r->events_path, r->schedule_path,
                          r->names_path[0] ? r->names_path : NULL};
    int rc = cli_files_inputs(f, &r->in);
    for (int i = 0; i < r->n_teachers && !rc; i++)
        rc = host_files_input(f, r->teachers[i]);
    for (int i = 0; i < r->n_labels && !rc; i++)
        rc = host_files_input(f, r->labels[i]);
    for (size_t i = 0; i < sizeof more / sizeof *more && !rc; i++)
        rc = host_files_input(f, more[i]);
    if (rc) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    char path[4096];
    for (int k = 0; k < N_OWNED && !rc; k++) {
        out_path(r, k, path, sizeof path);
        rc = host_files_output(f, "--out-dir", path,
                              k >= F_SURPRISE ? HOST_OUT_AUDIO : HOST_OUT_DATA, r->msg,
                              sizeof r->msg);
    }
    if (!rc && r->save_path)
        rc = host_files_output(f, "--save-model", r->save_path, HOST_OUT_MODEL, r->msg,
                              sizeof r->msg);
    if (rc)
        cli_say(PROG, r->msg);
    return rc ? 2 : 0;
}

/* events.csv's first lines: the model (by its SHA-256) and the engine
 * options no event carries, which `--events` checks and takes. 0 or 2
 * (said). */
static int events_header(struct run *r)
{
    char head[CBRNN_EVENTS_HEADER_MAX];
    int n = cbrnn_events_header(head, sizeof head, r->model_path, r->model_sha256, r->e, &r->ec,
                                r->msg, sizeof r->msg);
    if (n < 0) {
        cli_say(PROG, r->msg);
        return 2;
    }
    fwrite(head, 1, (size_t)n, r->o.txt[F_EVENTS]->f);
    return 0;
}

/* The temporaries of the CSV files (k: F_FRAMES..F_MARKERS), each with
 * its header line. 0 or 2 (said). */
static int open_text(struct run *r)
{
    static const char *const none = "";
    const char *head[N_OWNED] = {none, cbrnn_record_csv_header(), cbrnn_event_csv_header(),
                                 "file,first_row\n", none, none, none};
    char path[4096];
    for (int k = F_FRAMES; k <= F_MARKERS; k++) {
        if (!writes(r, k))
            continue;
        out_path(r, k, path, sizeof path);
        if (!(r->o.txt[k] = cli_out_open(path, r->msg, sizeof r->msg))) {
            cli_say(PROG, r->msg);
            return 2;
        }
        if (k == F_EVENTS && events_header(r))
            return 2;
        fputs(head[k], r->o.txt[k]->f);
    }
    if (r->schedule_path)
        write_markers(r->o.txt[F_MARKERS]->f, &r->sched);
    else if (r->names) /* --events: the names of its markers, as they were */
        fprintf(r->o.txt[F_MARKERS]->f, "%s%s", cbrnn_marker_csv_header(), r->names);
    return 0;
}

/* The temporaries of surprise.wav and (with the perturbation)
 * feedback.wav. 0 or 2 (said). */
static int open_wavs(struct run *r)
{
    struct run_out *o = &r->o;
    /* Float WAV without libsndfile's PEAK chunk (a time stamp: runs that
     * computed the same numbers write the same bytes) and with the fmt
     * chunk sox reads without a warning (cbrnn_wav_create). */
    for (int k = 0; k < (r->ec.perturb ? 2 : 1); k++) {
        int err;
        char path[4096];
        out_path(r, k ? F_FEEDBACK : F_SURPRISE, path, sizeof path);
        cbrnn_wav **w = k ? &o->fb : &o->wav;
        if (cli_tmp_name(o->wav_tmp[k], sizeof o->wav_tmp[k], path) ||
            cli_tmp_add(o->wav_tmp[k]) ||
            !(*w = cbrnn_wav_create(o->wav_tmp[k], (int)lround(r->rate), &err))) {
            fprintf(stderr, PROG ": %s: cannot create: %s\n", path, strerror(errno));
            return 2;
        }
    }
    return 0;
}

/* The output folder and the temporaries of its files: frames.csv,
 * events.csv (with the settings in force at frame 0), files.csv,
 * markers.csv, outputs.npy and surprise.wav; and the block buffers. From
 * here Ctrl-C stops the run (g_stop). */
static int open_outputs(struct run *r)
{
    const char *out_dir = r->out_dir;
    struct run_out *o = &r->o;
    if (mkdir(out_dir, 0777) && errno != EEXIST) {
        fprintf(stderr, PROG ": %s: cannot create the folder: %s\n", out_dir, strerror(errno));
        return 2;
    }
    cli_catch_signals(&g_stop);
    int rc = open_text(r);
    if (rc)
        return rc;
    if (!r->events_path) { /* with --events, its own frame-0 settings are applied and logged */
        cbrnn_event init[16];
        int ni = cbrnn_events_from_config(init, 16, &r->ec);
        for (int k = 0; k < ni && k < 16; k++) {
            char line[128];
            fwrite(line, 1, (size_t)cbrnn_event_csv_row(line, sizeof line, &init[k]),
                   o->txt[F_EVENTS]->f);
        }
    }
    char path[4096];
    out_path(r, F_NPY, path, sizeof path);
    if (!(o->npy = npy_open(path, r->n_out, r->msg, sizeof r->msg))) {
        cli_say(PROG, r->msg);
        return 2;
    }
    if ((rc = open_wavs(r)))
        return rc;
    o->y = calloc((size_t)r->n_out + 1, sizeof(float));
    r->xbuf = malloc((size_t)r->block * sizeof(float));
    r->tbuf = malloc((size_t)r->block * sizeof(float));
    r->sbuf = malloc((size_t)r->block * sizeof(float));
    r->fbuf = malloc((size_t)r->block * sizeof(float));
    if (!o->y || !r->xbuf || !r->tbuf || !r->sbuf || !r->fbuf) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    return 0;
}

/* Input i (i > 0: the next file of the stream, at its rate; with
 * --reset-each a stream of its own), its teacher and its label events.
 * files.csv gets the row of frames.csv where its frames start (the frame
 * that straddles two inputs counts for the earlier). */
static int open_input(struct run *r, int i)
{
    cli_csv_field(r->o.txt[F_FILES]->f, r->inputs[i]);
    fprintf(r->o.txt[F_FILES]->f, ",%ld\n", r->o.frames);
    if (i > 0) {
        audio_in_close(r->a);
        if (!(r->a = audio_in_open(r->inputs[i], r->rate, r->msg, sizeof r->msg))) {
            cli_say(PROG, r->msg);
            return 2;
        }
        if (r->reset_each) {
            cbrnn_engine_cmd rc = {CBRNN_CMD_RESET, 0, 0};
            cbrnn_engine_send(r->e, &rc);
            cbrnn_engine_reset_stream(r->e);
        }
    }
    if (r->n_teachers && !(r->t = audio_in_open(r->teachers[i], r->rate, r->msg, sizeof r->msg))) {
        cli_say(PROG, r->msg);
        return 2;
    }
    if (r->n_labels &&
        labels_to_events(&r->ev, r->labels[i], (const char *const *)r->m->class_names,
                         r->m->n_classes, r->rate, r->msg, sizeof r->msg)) {
        cli_say(PROG, r->msg);
        return 2;
    }
    return 0;
}

/* The engine over n samples of xbuf (and tbuf) that start at sample pos of
 * the input, split where a label changes (as a MIDI event would) and, with
 * --events, where a control change is due. *next_ev: the next label event. */
static int process_block(struct run *r, long n, long pos, long *next_ev)
{
    const struct label_events *ev = &r->ev;
    long off = 0;
    while (off < n) {
        while (*next_ev < ev->n && ev->at[*next_ev] <= pos + off)
            cbrnn_engine_set_label(r->e, ev->cls[(*next_ev)++]);
        long end = n;
        if (*next_ev < ev->n && ev->at[*next_ev] < pos + n)
            end = ev->at[*next_ev] - pos;
        if (r->events_path) {
            cbrnn_engine_stats es;
            cbrnn_engine_get_stats(r->e, &es);
            long room = cbrnn_event_list_feed(&r->evl, r->e, es.frames, pos + off);
            if (room == CBRNN_ERR_FULL) {
                fprintf(stderr, PROG ": %s: too many events in one frame\n", r->events_path);
                return 1;
            }
            if (room >= 0 && off + room < end)
                end = off + room;
        }
        float *outs[1] = {r->sbuf + off};
        cbrnn_engine_process_fb(r->e, outs, 1, r->fbuf + off, r->xbuf + off,
                                r->t ? r->tbuf + off : NULL, (int)(end - off));
        off = end;
    }
    return 0;
}

/* Input i block by block through the engine, as live: each block
 * processed, its surprise written and the engine's records drained. */
static int run_input(struct run *r, int i)
{
    double file_len = (double)audio_in_file_frames(r->a) * r->rate / audio_in_file_rate(r->a);
    long pos = 0, next_ev = 0;
    for (;;) {
        long n = read_full(r->a, r->xbuf, r->block, r->msg, sizeof r->msg);
        if (n < 0) {
            cli_say(PROG, r->msg);
            return 1;
        }
        if (n == 0)
            break;
        if (r->t) {
            long nt = read_full(r->t, r->tbuf, n, r->msg, sizeof r->msg);
            if (nt < 0) {
                cli_say(PROG, r->msg);
                return 1;
            }
            memset(r->tbuf + nt, 0, (size_t)(n - nt) * sizeof(float)); /* teacher ended: silence */
        }
        if (process_block(r, n, pos, &next_ev))
            return 1;
        if (g_stop) {
            fprintf(stderr, "\n" PROG ": interrupted: stopped at %s; nothing written, the "
                            "files of earlier runs in %s are as they were\n", r->inputs[i],
                    r->out_dir);
            return 128 + (int)g_stop;
        }
        if (cbrnn_wav_write(r->o.wav, r->sbuf, n) ||
            (r->o.fb && cbrnn_wav_write(r->o.fb, r->fbuf, n))) {
            fprintf(stderr, PROG ": %s/%s.wav: write failed: %s\n", r->out_dir,
                    r->o.fb ? "surprise or feedback" : "surprise", strerror(errno));
            return 1;
        }
        if (drain(r->e, &r->o, r->msg, sizeof r->msg)) {
            fprintf(stderr, PROG ": %s/%s\n", r->out_dir, r->msg);
            return 1;
        }
        pos += n;
        if (file_len > 0)
            term_progress(stderr, "run", r->done + fmin(1.0, (double)pos / file_len),
                          (double)r->n_inputs, now_s() - r->t0, r->inputs[i]);
    }
    return 0;
}

/* Every input in turn (progress by input and position within it); after
 * each, its teacher and labels are let go and the label is cleared. */
static int run_inputs(struct run *r)
{
    r->t0 = now_s();
    for (int i = 0; i < r->n_inputs; i++) {
        int rc = open_input(r, i);
        if (!rc)
            rc = run_input(r, i);
        if (rc)
            return rc;
        r->done += 1;
        if (r->t) {
            audio_in_close(r->t);
            r->t = NULL;
        }
        label_events_free(&r->ev);
        cbrnn_engine_set_label(r->e, -1);
    }
    term_progress(stderr, "run", (double)r->n_inputs, (double)r->n_inputs, now_s() - r->t0, "");
    return 0;
}

/* Every temporary complete on disk (flushed, synced, closed): until one
 * is renamed, a failure leaves D as it was. 0 or 1 (said). */
static int finish_temporaries(struct run *r)
{
    struct run_out *o = &r->o;
    for (int k = F_FRAMES; k <= F_MARKERS; k++)
        if (o->txt[k] && cli_out_finish(o->txt[k], r->msg, sizeof r->msg)) {
            cli_say(PROG, r->msg);
            return 1;
        }
    for (int k = 0; k < 2; k++) {
        cbrnn_wav **w = k ? &o->fb : &o->wav;
        if (!*w)
            continue;
        int rc = cbrnn_wav_close(*w);
        *w = NULL;
        if (rc || cli_sync_file(o->wav_tmp[k], r->msg, sizeof r->msg)) {
            if (rc)
                snprintf(r->msg, sizeof r->msg, "%s/%s: write failed: %s", r->out_dir,
                         owned[k ? F_FEEDBACK : F_SURPRISE], strerror(errno));
            cli_say(PROG, r->msg);
            return 1;
        }
    }
    return 0;
}

/* The temporaries renamed into place, outputs.npy first, and what an
 * earlier run left that this one does not write removed, so D holds one
 * run's results. A rename that fails is said with what D holds then. 0
 * or 1. */
static int rename_outputs(struct run *r)
{
    struct run_out *o = &r->o;
    char path[4096];
    int rc = npy_close(o->npy, r->msg, sizeof r->msg);
    o->npy = NULL;
    if (rc)
        fprintf(stderr, PROG ": %s; nothing replaced in %s\n", r->msg, r->out_dir);
    for (int k = F_FRAMES; k < N_OWNED && !rc; k++) {
        out_path(r, k, path, sizeof path);
        const char *tmp = k < F_SURPRISE ? (o->txt[k] ? o->txt[k]->tmp : NULL)
                                         : o->wav_tmp[k - F_SURPRISE];
        if (tmp && !*tmp)
            tmp = NULL;
        if (tmp) {
            rc = cli_replace(tmp, path, r->msg, sizeof r->msg);
        } else if (!writes(r, k) && unlink(path) == 0) {
            fprintf(stderr, PROG ": removed %s: an earlier run left it, this run writes none\n",
                    path);
        }
        if (rc)
            fprintf(stderr, PROG ": %s; %s holds the new %s and earlier files from %s on\n",
                    r->msg, r->out_dir, k == F_FRAMES ? "outputs.npy" : "files before it", path);
    }
    return rc ? 1 : 0;
}

/* The engine's final counts, and the outputs completed and put in place
 * (a failed write shows here). */
static int finish_outputs(struct run *r)
{
    cbrnn_engine_get_stats(r->e, &r->st);
    if (r->st.dropped_records) {
        fprintf(stderr, PROG ": internal error: %lld records dropped\n",
                (long long)r->st.dropped_records);
        return 1;
    }
    if (finish_temporaries(r))
        return 1;
    if (g_stop) {
        fprintf(stderr, PROG ": interrupted: nothing written, the files of earlier runs in %s "
                        "are as they were\n", r->out_dir);
        return 128 + (int)g_stop;
    }
    return rename_outputs(r);
}

/* --save-model: the engine's adapted weights in a copy of the model, with
 * how many updates made them; when P cannot be written (a full disk, its
 * folder gone), a rescue copy (cbrnn_host_save_rescue), said, exit 1. */
static int save_adapted(struct run *r)
{
    if (!r->save_path)
        return 0;
    int err = 0;
    r->adapted = cbrnn_model_clone(cbrnn_engine_model(r->e), &err);
    if (!r->adapted || cbrnn_engine_copy_params(r->e, r->adapted)) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    char val[64];
    snprintf(val, sizeof val, "%lld", (long long)r->st.updates);
    int mrc = cbrnn_model_set_meta(r->adapted, "adapted_updates", val);
    if (mrc)
        snprintf(r->msg, sizeof r->msg, "%s: cannot record adapted_updates: %s", r->save_path,
                 cbrnn_strerror(mrc));
    if (mrc) {
        cli_say(PROG, r->msg);
        return 1;
    }
    if (!cbrnn_host_save_adapted(r->adapted, r->save_path, "cbrnn run", r->model_path,
                                 r->st.frames, r->msg, sizeof r->msg))
        return 0;
    /* the last chance to keep what was learned: cbrnn-jack's rescue copy */
    cli_say(PROG, r->msg);
    char where[4096];
    if (cbrnn_host_save_rescue(r->adapted, r->save_path, "cbrnn run", r->model_path,
                               r->st.frames, where, sizeof where, r->msg, sizeof r->msg))
        fprintf(stderr, PROG ": %s; the adapted model is lost\n", r->msg);
    else
        fprintf(stderr, PROG ": saved a rescue copy instead: %s (%lld frames, %lld updates); "
                "move it where it belongs\n", where, (long long)r->st.frames,
                (long long)r->st.updates);
    return 1;
}

/* The summary on stdout (unless --quiet): mean loss over the frames that
 * passed the gate, and in each half of them, and the engine's counts. */
static int report(struct run *r)
{
    if (r->quiet)
        return 0;
    const struct run_out *o = &r->o;
    long h = o->kept / 2;
    char pers[64] = "";
    if (o->all.n_pers)
        snprintf(pers, sizeof pers, ", persistence %.5f", o->all.pers / (double)o->all.n_pers);
    char rule[96] = "", how[80];
    if (r->ec.learn || r->st.updates) {
        cbrnn_host_rule_describe(r->e, how, sizeof how);
        snprintf(rule, sizeof rule, " (rule %s)", how);
    }
    /* A schedule or events file switches learning itself: the options'
     * setting is not what happened. */
    const char *learning = r->schedule_path ? "by the schedule"
                           : r->events_path ? "by the events file"
                           : r->ec.learn    ? "on"
                                            : "off";
    printf("%s: %ld frames at %g Hz (hop %d), learning %s%s: mean loss %.5f (first half "
           "%.5f, second half %.5f)%s; %lld updates, %lld restores, %lld frames with bad "
           "input\n",
           PROG, o->frames, r->rate, cbrnn_engine_hop(r->e), learning, rule,
           o->all.n_loss ? o->all.loss / (double)o->all.n_loss : NAN,
           mean_range(o->losses, 0, h), mean_range(o->losses, h, o->kept), pers,
           (long long)r->st.updates, (long long)r->st.restores, (long long)r->st.bad_input);
    if (o->gated) {
        /* an events file or a schedule sets the gate itself, maybe more
         * than once: the option's value is not what was applied */
        char gate[64];
        if (r->events_path || r->schedule_path)
            snprintf(gate, sizeof gate, "as the %s set it",
                     r->events_path ? "events file" : "schedule");
        else
            snprintf(gate, sizeof gate, "%g dBFS", (double)r->ec.gate_db);
        printf("%s: %ld frames below the level gate (%s): not learned from, not in "
               "the means above\n", PROG, o->gated, gate);
    }
    return 0;
}

/* What the run did not replay, said after its files are in place: the
 * events of --events that the input ended before (a live run logged past
 * the end of its recording, or the wrong recording), and control changes
 * applied but missing from events.csv. A replay that silently differs
 * from the live run is the worst outcome, so either is exit 1. */
static int say_unreplayed(struct run *r)
{
    int rc = 0;
    size_t left = 0;
    int64_t first = -1;
    for (size_t i = r->evl.next; i < r->evl.n; i++)
        if (r->evl.ev[i].cmd.kind != CBRNN_CMD_SNAPSHOT) {
            if (!left++)
                first = r->evl.ev[i].frame;
        }
    if (left) {
        fprintf(stderr,
                PROG ": %s: %zu event%s from frame %lld on never reached: the input has %lld "
                "frames; the run is not the whole replay (a recording cut short, or not "
                "this events file's?)\n",
                r->events_path, left, left == 1 ? " was" : "s were", (long long)first,
                (long long)r->st.frames);
        rc = 1;
    }
    if (r->st.dropped_events) {
        fprintf(stderr,
                PROG ": %s/events.csv lacks %lld of the control changes applied (more in one "
                "block than the engine's event ring holds): the run's numbers are right, its "
                "events.csv is not\n",
                r->out_dir, (long long)r->st.dropped_events);
        rc = 1;
    }
    return rc;
}

/* Gives back everything the run holds; outputs not put in place (a
 * failure, Ctrl-C) are removed with their temporaries, so D keeps the
 * files of earlier runs. The exit status. */
static int run_free(struct run *r, int status)
{
    struct run_out *o = &r->o;
    if (r->save_lock >= 0)
        out_unlock_beside(r->save_path, r->save_lock);
    corpus_free(&r->in);
    host_files_free(&r->files);
    for (int k = 0; k < 2; k++) {
        cbrnn_wav_close(k ? o->fb : o->wav); /* failed or not, the temporary goes */
        if (o->wav_tmp[k][0])
            cli_tmp_drop(o->wav_tmp[k]); /* renamed already: nothing to remove */
    }
    for (int k = 0; k < N_OWNED; k++)
        cli_out_abort(o->txt[k]);
    npy_abort(o->npy);
    cbrnn_event_list_free(&r->evl);
    free(r->names);
    cbrnn_schedule_free(&r->sched);
    free(o->y);
    free(o->losses);
    label_events_free(&r->ev);
    free(r->xbuf);
    free(r->tbuf);
    free(r->sbuf);
    free(r->fbuf);
    if (r->a)
        audio_in_close(r->a);
    if (r->t)
        audio_in_close(r->t);
    cbrnn_model_destroy(r->adapted);
    cbrnn_engine_destroy(r->e);
    cbrnn_model_destroy(r->loaded);
    return status;
}

int cmd_run(int argc, char **argv)
{
    static struct run r; /* ~70 KiB of input lists: not on the stack */
    memset(&r, 0, sizeof r);
    r.save_lock = -1;
    int pr = parse_opts(&r, argc, argv);
    if (pr)
        return pr > 0 ? 0 : 2;
    /* The steps, in order; each says what it does above its definition. */
    static int (*const steps[])(struct run *) = {
        check_modes, open_engine, check_inputs, check_outputs, open_outputs, run_inputs,
        finish_outputs, save_adapted, report, say_unreplayed,
    };
    int status = 0;
    for (size_t i = 0; i < sizeof steps / sizeof *steps && !status; i++)
        status = steps[i](&r);
    return run_free(&r, status);
}
