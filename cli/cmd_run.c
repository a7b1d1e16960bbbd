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
 * file and the problem, exit 2; a failure while working -> exit 1. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cbrnn/cbrnn_control.h"
#include "cbrnn/cbrnn_engine.h"
#include "cbrnn/cbrnn_host.h"
#include "cbrnn/cbrnn_model.h"
#include "util_audio.h"
#include "util_corpus.h"
#include "util_npy.h"
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
"  --save-model P     write the adapted model to P (atomically)\n"
"  --events FILE      apply the control changes of FILE (cbrnn-jack --log\n"
"                     X.csv writes X.csv.events) at their frames: the replay\n"
"                     of a controlled live run, bit for bit; one input only\n"
"                     (its recording); its frame-0 settings replace --learn,\n"
"                     --lr, --momentum, --decay, --gate-db\n"
"  --schedule FILE    a trial schedule (docs/FORMATS.md) applied by the engine\n"
"                     at its exact frames, as cbrnn-jack --schedule does;\n"
"                     marker names go to D/markers.csv\n"
"  --reset-each       each input is its own stream: features, cortex state,\n"
"                     frame count and the cerebellum start again from the\n"
"                     loaded model\n"
"  --quiet            no summary on stdout\n"
"\n"
"Exit status: 0 done; 1 failure while working; 2 bad options or input.\n");
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

/* Label changes of one input in samples: at sample at[i] the label
 * becomes cls[i]. The label of sample s is the class of the last segment
 * in the file whose [start, end) holds s / rate (as labels_to_frames does
 * for frame centres), or -1. */
struct label_events {
    long n;
    long *at;
    int *cls;
};

static int label_at(const label_file *lf, const int *seg_cls, long s, double rate)
{
    int c = -1;
    for (int i = 0; i < lf->n; i++) {
        long a = lround(lf->seg[i].start * rate), b = lround(lf->seg[i].end * rate);
        if (s >= a && s < b)
            c = seg_cls[i];
    }
    return c;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

static int make_label_events(struct label_events *ev, const char *path, const cbrnn_model *m,
                             double rate, char *msg, size_t msglen)
{
    label_file lf = {NULL, 0, NULL};
    if (labels_read(path, &lf, msg, msglen))
        return -1;
    int *seg_cls = calloc((size_t)lf.n + 1, sizeof(int));
    ev->at = calloc(2 * (size_t)lf.n + 1, sizeof(long));
    ev->cls = calloc(2 * (size_t)lf.n + 1, sizeof(int));
    if (!seg_cls || !ev->at || !ev->cls) {
        snprintf(msg, msglen, "%s: out of memory", path);
        goto fail;
    }
    for (int i = 0; i < lf.n; i++) {
        seg_cls[i] = -1;
        for (int k = 0; k < m->n_classes; k++)
            if (m->class_names[k] && !strcmp(m->class_names[k], lf.seg[i].name))
                seg_cls[i] = k;
        if (seg_cls[i] < 0) {
            snprintf(msg, msglen, "%s:%d: label '%s' is not one of the model's classes", path,
                     lf.seg[i].line, lf.seg[i].name);
            goto fail;
        }
    }
    long nb = 0;
    ev->at[nb++] = 0;
    for (int i = 0; i < lf.n; i++) {
        ev->at[nb++] = lround(lf.seg[i].start * rate);
        ev->at[nb++] = lround(lf.seg[i].end * rate);
    }
    qsort(ev->at, (size_t)nb, sizeof(long), cmp_long);
    ev->n = 0;
    for (long i = 0; i < nb; i++)
        if (ev->at[i] >= 0 && (ev->n == 0 || ev->at[i] != ev->at[ev->n - 1]))
            ev->at[ev->n++] = ev->at[i];
    for (long i = 0; i < ev->n; i++)
        ev->cls[i] = label_at(&lf, seg_cls, ev->at[i], rate);
    free(seg_cls);
    labels_free(&lf);
    return 0;
fail:
    free(seg_cls);
    labels_free(&lf);
    free(ev->at);
    free(ev->cls);
    ev->at = NULL;
    ev->cls = NULL;
    return -1;
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

struct run_out {
    FILE *csv;
    FILE *events; /* events.csv */
    FILE *files;  /* files.csv */
    npy_writer *npy;
    SNDFILE *wav;
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
        if (fwrite(line, 1, (size_t)n, o->events) != (size_t)n) {
            snprintf(msg, msglen, "events.csv: write failed: %s", strerror(errno));
            return -1;
        }
    }
    while (cbrnn_engine_read_record(e, &o->rec, o->y)) {
        int n = cbrnn_record_csv_row(line, sizeof line, &o->rec);
        if (fwrite(line, 1, (size_t)n, o->csv) != (size_t)n) {
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

/* D/markers.csv: the schedule's marker names (the live markers file's
 * format). 0 or -1 (said). */
static int write_markers(const char *out_dir, const cbrnn_schedule *s)
{
    char path[4096], row[1024];
    snprintf(path, sizeof path, "%s/markers.csv", out_dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, PROG ": %s: cannot create: %s\n", path, strerror(errno));
        return -1;
    }
    fputs(cbrnn_marker_csv_header(), f);
    for (int i = 0; i < s->n_marks; i++)
        fwrite(row, 1,
               (size_t)cbrnn_marker_csv_row(row, sizeof row, s->first_mark + i, s->mark_names[i],
                                            s->mark_seconds[i]),
               f);
    if (fclose(f)) {
        fprintf(stderr, PROG ": %s: write failed\n", path);
        return -1;
    }
    return 0;
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

int cmd_run(int argc, char **argv)
{
    enum { O_MODEL = 256, O_OUT, O_LEARN, O_NOLEARN, O_LR, O_MOM, O_DECAY, O_BPTT, O_BLOCK,
           O_TEACHER, O_LABELS, O_SAVE, O_RESET, O_QUIET, O_EVENTS, O_SCHEDULE, O_GATE };
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
        {"reset-each", no_argument, NULL, O_RESET},   {"quiet", no_argument, NULL, O_QUIET},
        {"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0}};
    const char *model_path = NULL, *out_dir = NULL, *save_path = NULL, *events_path = NULL,
               *schedule_path = NULL;
    const char *teachers[MAX_INPUTS], *labels[MAX_INPUTS];
    int n_teachers = 0, n_labels = 0, reset_each = 0, quiet = 0, block = 256;
    cbrnn_engine_config ec;
    cbrnn_engine_config_default(&ec, 16000.0);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case O_MODEL: model_path = optarg; break;
        case O_OUT: out_dir = optarg; break;
        case O_LEARN: ec.learn = 1; break;
        case O_NOLEARN: ec.learn = 0; break;
        case O_LR:
            if (parse_float(optarg, 0.0f, (float)CBRNN_LR_MAX, 0, &ec.lr)) {
                fprintf(stderr, PROG ": --lr '%s': expected a number in [0, %g]\n", optarg,
                        CBRNN_LR_MAX);
                return 2;
            }
            break;
        case O_MOM:
            if (parse_float(optarg, 0.0f, 1.0f, 1, &ec.momentum)) {
                fprintf(stderr, PROG ": --momentum '%s': expected a number in [0, 1)\n", optarg);
                return 2;
            }
            break;
        case O_DECAY:
            if (parse_float(optarg, 0.0f, (float)CBRNN_DECAY_MAX, 0, &ec.decay)) {
                fprintf(stderr, PROG ": --decay '%s': expected a number in [0, %g]\n", optarg,
                        CBRNN_DECAY_MAX);
                return 2;
            }
            break;
        case O_BPTT:
            if (cli_parse_int(optarg, 1, 1024, &ec.bptt_k)) {
                fprintf(stderr, PROG ": --bptt '%s': expected an integer in 1..1024\n", optarg);
                return 2;
            }
            break;
        case O_BLOCK:
            if (cli_parse_int(optarg, 1, 1 << 20, &block)) {
                fprintf(stderr, PROG ": --block '%s': expected an integer in 1..1048576\n",
                        optarg);
                return 2;
            }
            break;
        case O_TEACHER:
            if (n_teachers == MAX_INPUTS) {
                fprintf(stderr, PROG ": too many --teacher (at most %d)\n", MAX_INPUTS);
                return 2;
            }
            teachers[n_teachers++] = optarg;
            break;
        case O_LABELS:
            if (n_labels == MAX_INPUTS) {
                fprintf(stderr, PROG ": too many --labels (at most %d)\n", MAX_INPUTS);
                return 2;
            }
            labels[n_labels++] = optarg;
            break;
        case O_SAVE: save_path = optarg; break;
        case O_EVENTS: events_path = optarg; break;
        case O_SCHEDULE: schedule_path = optarg; break;
        case O_GATE:
            if (parse_float(optarg, (float)CBRNN_GATE_DB_MIN, 0.0f, 1, &ec.gate_db)) {
                fprintf(stderr, PROG ": --gate-db '%s': expected dBFS in [%g, 0)\n", optarg,
                        CBRNN_GATE_DB_MIN);
                return 2;
            }
            break;
        case O_RESET: reset_each = 1; break;
        case O_QUIET: quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!model_path || !out_dir || optind >= argc) {
        fprintf(stderr, PROG ": %s\n",
                !model_path ? "--model M is required"
                            : !out_dir ? "--out-dir D is required" : "expected INPUTS");
        usage(stderr);
        return 2;
    }
    const int n_inputs = argc - optind;
    char **inputs = argv + optind;
    char msg[2048];
    int err = 0, status = 2;
    cbrnn_engine *e = NULL;
    cbrnn_model *adapted = NULL;
    audio_in *a = NULL, *t = NULL;
    float *xbuf = NULL, *tbuf = NULL, *sbuf = NULL;
    struct run_out o;
    memset(&o, 0, sizeof o);
    struct label_events ev = {0, NULL, NULL};
    cbrnn_event_list evl = {NULL, 0, 0};
    cbrnn_schedule sched;
    memset(&sched, 0, sizeof sched);
    char path[4096];

    if (schedule_path && (events_path || reset_each)) {
        fprintf(stderr, PROG ": --schedule does not go with %s\n",
                events_path ? "--events (the events file holds the schedule's changes already)"
                            : "--reset-each (a schedule runs over one stream)");
        return 2;
    }
    if (events_path && n_inputs != 1) {
        fprintf(stderr, PROG ": --events replays one recording: give exactly one input (%d "
                        "given)\n", n_inputs);
        return 2;
    }
    if (events_path && cbrnn_event_list_load(&evl, events_path, msg, sizeof msg)) {
        fprintf(stderr, PROG ": %s\n", msg);
        return 2;
    }
    if (save_path && cbrnn_control_check_output(save_path, msg, sizeof msg)) {
        fprintf(stderr, PROG ": --save-model %s\n", msg);
        cbrnn_event_list_free(&evl);
        return 2;
    }

    if (!(a = audio_in_open(inputs[0], 0, msg, sizeof msg))) {
        fprintf(stderr, PROG ": %s\n", msg);
        goto out;
    }
    const double rate = audio_in_rate(a);
    ec.sample_rate = rate;
    ec.record_outputs = 1;
    /* Drained after every call: one block's frames plus slack always fit. */
    if (!(e = cbrnn_host_open(model_path, &ec, block, &err, msg, sizeof msg))) {
        if (err == CBRNN_ERR_RATE)
            fprintf(stderr, PROG ": %s: %s\n", inputs[0], msg);
        else
            fprintf(stderr, PROG ": %s\n", msg);
        goto out;
    }
    const cbrnn_model *m = cbrnn_engine_model(e);
    if (m->target == CBRNN_TARGET_MAP && n_teachers != n_inputs) {
        fprintf(stderr, PROG ": %s is a map model: give one --teacher per input (%d inputs, %d "
                        "teachers)\n", model_path, n_inputs, n_teachers);
        goto out;
    }
    if (m->target != CBRNN_TARGET_MAP && n_teachers) {
        fprintf(stderr, PROG ": --teacher applies to map models only (%s is not one)\n",
                model_path);
        goto out;
    }
    if (m->target == CBRNN_TARGET_CLASSIFY && n_labels != n_inputs &&
        !(events_path && !n_labels)) {
        fprintf(stderr, PROG ": %s is a classify model: give one --labels per input (%d inputs, "
                        "%d label files)\n", model_path, n_inputs, n_labels);
        goto out;
    }
    if (m->target != CBRNN_TARGET_CLASSIFY && n_labels) {
        fprintf(stderr, PROG ": --labels applies to classify models only (%s is not one)\n",
                model_path);
        goto out;
    }
    const int O = cbrnn_engine_n_outputs(e) - 1;
    if (schedule_path &&
        (cbrnn_schedule_load(&sched, schedule_path, rate, cbrnn_engine_hop(e), 0, msg,
                             sizeof msg) ||
         cbrnn_engine_set_schedule(e, sched.events.ev, sched.events.n))) {
        fprintf(stderr, PROG ": --schedule %s\n", msg);
        goto out;
    }

    if (mkdir(out_dir, 0777) && errno != EEXIST) {
        fprintf(stderr, PROG ": %s: cannot create the folder: %s\n", out_dir, strerror(errno));
        goto out;
    }
    snprintf(path, sizeof path, "%s/frames.csv", out_dir);
    if (!(o.csv = fopen(path, "w"))) {
        fprintf(stderr, PROG ": %s: cannot create: %s\n", path, strerror(errno));
        goto out;
    }
    fputs(cbrnn_record_csv_header(), o.csv);
    snprintf(path, sizeof path, "%s/events.csv", out_dir);
    if (!(o.events = fopen(path, "w"))) {
        fprintf(stderr, PROG ": %s: cannot create: %s\n", path, strerror(errno));
        goto out;
    }
    fputs(cbrnn_event_csv_header(), o.events);
    snprintf(path, sizeof path, "%s/files.csv", out_dir);
    if (!(o.files = fopen(path, "w"))) {
        fprintf(stderr, PROG ": %s: cannot create: %s\n", path, strerror(errno));
        goto out;
    }
    fputs("file,first_row\n", o.files);
    if (schedule_path && write_markers(out_dir, &sched))
        goto out;
    if (!events_path) { /* with --events, its own frame-0 settings are applied and logged */
        cbrnn_event init[8];
        int ni = cbrnn_events_from_config(init, 8, &ec);
        for (int k = 0; k < ni && k < 8; k++) {
            char line[128];
            fwrite(line, 1, (size_t)cbrnn_event_csv_row(line, sizeof line, &init[k]), o.events);
        }
    }
    snprintf(path, sizeof path, "%s/outputs.npy", out_dir);
    if (!(o.npy = npy_open(path, O, msg, sizeof msg))) {
        fprintf(stderr, PROG ": %s\n", msg);
        goto out;
    }
    snprintf(path, sizeof path, "%s/surprise.wav", out_dir);
    SF_INFO si = {.samplerate = (int)lround(rate), .channels = 1,
                  .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
    if (!(o.wav = sf_open(path, SFM_WRITE, &si))) {
        fprintf(stderr, PROG ": %s: cannot create: %s\n", path, sf_strerror(NULL));
        goto out;
    }
    /* No PEAK chunk: it carries a time stamp, and runs that computed the
     * same numbers should write the same bytes. */
    sf_command(o.wav, SFC_SET_ADD_PEAK_CHUNK, NULL, SF_FALSE);
    o.y = calloc((size_t)O + 1, sizeof(float));
    xbuf = malloc((size_t)block * sizeof(float));
    tbuf = malloc((size_t)block * sizeof(float));
    sbuf = malloc((size_t)block * sizeof(float));
    if (!o.y || !xbuf || !tbuf || !sbuf) {
        status = 1;
        fprintf(stderr, PROG ": out of memory\n");
        goto out;
    }

    double total = 0, done = 0, t0 = now_s();
    for (int i = 0; i < n_inputs; i++)
        total += 1; /* progress by input and position within it */
    status = 1;
    for (int i = 0; i < n_inputs; i++) {
        /* files.csv: the row of frames.csv where each input's frames start
         * (the frame that straddles two inputs counts for the earlier) */
        fprintf(o.files, "\"%s\",%ld\n", inputs[i], o.frames);
        if (i > 0) {
            audio_in_close(a);
            if (!(a = audio_in_open(inputs[i], rate, msg, sizeof msg))) {
                fprintf(stderr, PROG ": %s\n", msg);
                status = 2;
                goto out;
            }
            if (reset_each) {
                cbrnn_engine_cmd rc = {CBRNN_CMD_RESET, 0, 0};
                cbrnn_engine_send(e, &rc);
                cbrnn_engine_reset_stream(e);
            }
        }
        if (n_teachers && !(t = audio_in_open(teachers[i], rate, msg, sizeof msg))) {
            fprintf(stderr, PROG ": %s\n", msg);
            status = 2;
            goto out;
        }
        if (n_labels && make_label_events(&ev, labels[i], m, rate, msg, sizeof msg)) {
            fprintf(stderr, PROG ": %s\n", msg);
            status = 2;
            goto out;
        }
        double file_len = (double)audio_in_file_frames(a) * rate / audio_in_file_rate(a);
        long pos = 0, next_ev = 0;
        for (;;) {
            long n = read_full(a, xbuf, block, msg, sizeof msg);
            if (n < 0) {
                fprintf(stderr, PROG ": %s\n", msg);
                goto out;
            }
            if (n == 0)
                break;
            if (t) {
                long nt = read_full(t, tbuf, n, msg, sizeof msg);
                if (nt < 0) {
                    fprintf(stderr, PROG ": %s\n", msg);
                    goto out;
                }
                memset(tbuf + nt, 0, (size_t)(n - nt) * sizeof(float)); /* teacher ended: silence */
            }
            /* Split the block where a label changes, as a MIDI event would. */
            long off = 0;
            while (off < n) {
                while (next_ev < ev.n && ev.at[next_ev] <= pos + off)
                    cbrnn_engine_set_label(e, ev.cls[next_ev++]);
                long end = n;
                if (next_ev < ev.n && ev.at[next_ev] < pos + n)
                    end = ev.at[next_ev] - pos;
                if (events_path) { /* and where a control change is due */
                    cbrnn_engine_stats es;
                    cbrnn_engine_get_stats(e, &es);
                    long room = cbrnn_event_list_feed(&evl, e, es.frames, pos + off);
                    if (room == CBRNN_ERR_FULL) {
                        fprintf(stderr, PROG ": %s: too many events in one frame\n",
                                events_path);
                        goto out;
                    }
                    if (room >= 0 && off + room < end)
                        end = off + room;
                }
                float *outs[1] = {sbuf + off};
                cbrnn_engine_process(e, outs, 1, xbuf + off, t ? tbuf + off : NULL,
                                     (int)(end - off));
                off = end;
            }
            if (sf_writef_float(o.wav, sbuf, n) != n) {
                fprintf(stderr, PROG ": %s/surprise.wav: write failed: %s\n", out_dir,
                        sf_strerror(o.wav));
                goto out;
            }
            if (drain(e, &o, msg, sizeof msg)) {
                fprintf(stderr, PROG ": %s/%s\n", out_dir, msg);
                goto out;
            }
            pos += n;
            if (file_len > 0)
                term_progress(stderr, "run", done + fmin(1.0, (double)pos / file_len), total,
                              now_s() - t0, inputs[i]);
        }
        done += 1;
        if (t) {
            audio_in_close(t);
            t = NULL;
        }
        free(ev.at);
        free(ev.cls);
        memset(&ev, 0, sizeof ev);
        cbrnn_engine_set_label(e, -1);
    }
    term_progress(stderr, "run", total, total, now_s() - t0, "");
    cbrnn_engine_stats st;
    cbrnn_engine_get_stats(e, &st);
    if (st.dropped_records) {
        fprintf(stderr, PROG ": internal error: %lld records dropped\n",
                (long long)st.dropped_records);
        goto out;
    }
    if (npy_close(o.npy, msg, sizeof msg)) {
        o.npy = NULL;
        fprintf(stderr, PROG ": %s\n", msg);
        goto out;
    }
    o.npy = NULL;
    if (fclose(o.csv)) {
        o.csv = NULL;
        fprintf(stderr, PROG ": %s/frames.csv: write failed: %s\n", out_dir, strerror(errno));
        goto out;
    }
    o.csv = NULL;
    if (fclose(o.events)) {
        o.events = NULL;
        fprintf(stderr, PROG ": %s/events.csv: write failed: %s\n", out_dir, strerror(errno));
        goto out;
    }
    o.events = NULL;
    if (save_path) {
        adapted = cbrnn_model_clone(cbrnn_engine_model(e), &err);
        if (!adapted || cbrnn_engine_copy_params(e, adapted)) {
            fprintf(stderr, PROG ": out of memory\n");
            goto out;
        }
        char val[64];
        snprintf(val, sizeof val, "%lld", (long long)st.updates);
        if (cbrnn_model_set_meta(adapted, "adapted_updates", val) ||
            cbrnn_host_save_adapted(adapted, save_path, "cbrnn run", model_path, st.frames, msg,
                                    sizeof msg)) {
            fprintf(stderr, PROG ": %s\n", msg);
            goto out;
        }
    }
    if (!quiet) {
        long h = o.kept / 2;
        char pers[64] = "";
        if (o.all.n_pers)
            snprintf(pers, sizeof pers, ", persistence %.5f", o.all.pers / (double)o.all.n_pers);
        printf("%s: %ld frames at %g Hz (hop %d), learning %s: mean loss %.5f (first half "
               "%.5f, second half %.5f)%s; %lld updates, %lld restores, %lld frames with bad "
               "input\n",
               PROG, o.frames, rate, cbrnn_engine_hop(e), ec.learn ? "on" : "off",
               o.all.n_loss ? o.all.loss / (double)o.all.n_loss : NAN,
               mean_range(o.losses, 0, h), mean_range(o.losses, h, o.kept), pers,
               (long long)st.updates, (long long)st.restores, (long long)st.bad_input);
        if (o.gated)
            printf("%s: %ld frames below the level gate (%g dBFS): not learned from, not in "
                   "the means above\n", PROG, o.gated, (double)ec.gate_db);
    }
    status = 0;
out:
    if (o.wav && sf_close(o.wav) && status == 0) {
        fprintf(stderr, PROG ": %s/surprise.wav: close failed\n", out_dir);
        status = 1;
    }
    if (o.csv)
        fclose(o.csv);
    if (o.events)
        fclose(o.events);
    if (o.files && fclose(o.files) && status == 0) {
        fprintf(stderr, PROG ": %s/files.csv: write failed\n", out_dir);
        status = 1;
    }
    cbrnn_event_list_free(&evl);
    cbrnn_schedule_free(&sched);
    if (o.npy)
        npy_close(o.npy, msg, sizeof msg);
    free(o.y);
    free(o.losses);
    free(ev.at);
    free(ev.cls);
    free(xbuf);
    free(tbuf);
    free(sbuf);
    if (a)
        audio_in_close(a);
    if (t)
        audio_in_close(t);
    cbrnn_model_destroy(adapted);
    cbrnn_engine_destroy(e);
    return status;
}
