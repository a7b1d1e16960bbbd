/* cmd_features.c: `cbrnn features IN -o OUT.npy`: an audio file's feature
 * frames (the same streaming front end the live host uses) as a float32
 * .npy of shape (frames, features). Bad input or options: one message
 * "cbrnn features: WHAT: problem" and exit status 2; the output is written
 * under a temporary name and renamed only when complete, so it is never
 * left half-written. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cbrnn/cbrnn_dsp.h"
#include "host_audio.h"
#include "util_audio.h"
#include "util_msg.h"
#include "util_npy.h"
#include "util_output.h"
#include "util_term.h"

const char cmd_features_summary[] = "write an audio file's log-mel/MFCC feature frames to .npy";

static void usage(FILE *f)
{
    fprintf(f,
"usage: cbrnn features IN -o OUT.npy [--mels N] [--mfcc N] [--deltas]\n"
"                      [--block N] [--rate HZ] [--ref-rate HZ] [--speed S]\n"
"\n"
"Computes the feature frames of the audio file IN with the streaming front\n"
"end that cbrnn uses everywhere (training, `cbrnn run`, the live JACK host)\n"
"and writes them to OUT.npy: float32, shape (frames, features), C order;\n"
"numpy.load(OUT.npy) reads it.\n"
"\n"
"Input: any format libsndfile reads (WAV, FLAC, OGG/Vorbis, AIFF, ...).\n"
"Channels are mixed to mono by their mean. The sample rate must be within\n"
"8000..192000 Hz, or use --rate to resample (libsamplerate, sinc medium).\n"
"\n"
"Features (defined in physical units, so they mean the same at any rate):\n"
"  window   25 ms periodic Hann (win = round(0.025 * rate) samples)\n"
"  hop      10 ms (hop = round(0.010 * rate) samples): one frame per hop\n"
"  FFT      n_fft = next power of two >= win; power spectrum |X|^2\n"
"  mel      HTK mel bank (torchaudio melscale_fbanks, norm=None), N bands\n"
"           from 20 Hz to min(8000 Hz, rate / 2); no filter normalisation\n"
"  log      natural log of (mel energy + 1e-6)\n"
"  MFCC     optional: the first N coefficients of the orthonormal DCT-II of\n"
"           the log-mel (torchaudio create_dct(N, mels, norm=\"ortho\"))\n"
"  deltas   optional: appended after the base features (doubling the\n"
"           width); causal: row t holds the regression delta (window 5,\n"
"           torchaudio compute_deltas) of frame t-2, i.e.\n"
"           (x[t] - x[t-4]) * 2/10 + (x[t-1] - x[t-3]) / 10, frames before\n"
"           the first taken equal to the first.\n"
"Framing is causal, without centre padding: frame t covers samples\n"
"[t*hop, t*hop + win), so a file of L samples gives floor((L - win) / hop) + 1\n"
"frames (0 if L < win). This equals torchaudio's\n"
"MelSpectrogram(rate, n_fft, win, hop, f_min=20, f_max=min(8000, rate/2),\n"
"n_mels=N, power=2, center=False, norm=None, mel_scale=\"htk\") + log(x+1e-6)\n"
"on the same window positions (tests/dsp/parity_torchaudio.py checks it).\n"
"\n"
"Options:\n"
"  -o, --output OUT.npy  where to write (required); replaced only on success.\n"
"               Refused: the input itself, an existing model or audio file,\n"
"               anything but a regular file (symbolic link, FIFO, device)\n"
"  --mels N     mel bands (default 40; 1..1024)\n"
"  --mfcc N     output the first N MFCCs instead of the log-mel bands\n"
"               (1..mels; default: off, output the log-mel)\n"
"  --deltas     append causal deltas (features = 2 x base)\n"
"  --block N    feed the extractor N samples at a time (default 1024;\n"
"               1..1048576). The frames do not depend on it: it exists to\n"
"               test that they are bit-identical for any block size.\n"
"  --rate HZ    resample to HZ (8000..192000) before extracting; default:\n"
"               keep the file's rate (then it must be in 8000..192000)\n"
"  --ref-rate HZ  give the mel energies the level the same sound has at HZ\n"
"               (8000..192000): each is multiplied by (sum w_r^2 * n_fft_r) /\n"
"               (sum w^2 * n_fft) before the log (w, n_fft: window and FFT\n"
"               size at the stream's rate; r: at HZ). This is what a model\n"
"               trained at HZ sees when cbrnn run, eval or cbrnn-jack run it\n"
"               at another rate. Default: none (no change; equal rates are\n"
"               no change either)\n"
"  --speed S    read the file as if recorded at S times its rate (0.5..2):\n"
"               pitch, formants and tempo scale by S. What `cbrnn train\n"
"               --speed-perturb S` trains on (default 1: as recorded)\n"
"  -h, --help   this text\n"
"\n"
"Prints a short summary (frames, features, rate, per-feature mean and std\n"
"ranges) to stdout; progress goes to stderr when it is a terminal.\n"
"Exit status: 0 success; 2 bad options or bad input (the message names the\n"
"file and the problem); 1 a failure while working (e.g. disk full).\n");
}

static int parse_int(const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "cbrnn features: %s '%s': expected an integer in %ld..%ld\n", opt, s, lo,
                hi);
        return -1;
    }
    *out = v;
    return 0;
}

struct sink {
    npy_writer *w;
    cbrnn_stats stats;
    long frames;
    long expect;    /* frames expected (progress only) */
    double t0, last;
    const char *in;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int on_frames(void *ctx, const float *frames, long n, int dim)
{
    struct sink *s = ctx;
    if (npy_append(s->w, frames, n) != 0)
        return 1;
    for (long i = 0; i < n; i++)
        cbrnn_stats_add(&s->stats, frames + i * dim);
    s->frames += n;
    double t = now_s();
    if (t - s->last > 0.25) {
        s->last = t;
        term_progress(stderr, "features", (double)s->frames, (double)s->expect, t - s->t0, NULL);
    }
    return 0;
}

/* What the command line asked for. */
struct fopts {
    const char *in, *out;
    long mels, mfcc, block, deltas;
    double rate, ref_rate; /* --rate, --ref-rate (0: none) */
    double speed;          /* --speed (1: as recorded) */
};

/* --rate or --ref-rate (c 'r' or 'R'): a sample rate in range. 0 or -1
 * (said). */
static int parse_rate(int c, const char *arg, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno || end == arg || *end || !(v >= CBRNN_RATE_MIN && v <= CBRNN_RATE_MAX)) {
        fprintf(stderr, "cbrnn features: %s '%s': expected a sample rate in %.0f..%.0f Hz\n",
                c == 'r' ? "--rate" : "--ref-rate", arg, CBRNN_RATE_MIN, CBRNN_RATE_MAX);
        return -1;
    }
    *out = v;
    return 0;
}

/* --speed: within what the reader takes. 0 or -1 (said). */
static int parse_speed(const char *arg, double *out)
{
    char *end;
    double v = strtod(arg, &end);
    if (end == arg || *end || !(v >= AUDIO_SPEED_MIN && v <= AUDIO_SPEED_MAX)) {
        fprintf(stderr, "cbrnn features: --speed '%s': expected a number in %g..%g\n", arg,
                AUDIO_SPEED_MIN, AUDIO_SPEED_MAX);
        return -1;
    }
    *out = v;
    return 0;
}

/* The options and the one input. 0 to go on, or 1 with *status the exit
 * status (--help: 0). */
static int parse_opts(struct fopts *o, int argc, char **argv, int *status)
{
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'}, {"mels", required_argument, 0, 'm'},
        {"mfcc", required_argument, 0, 'c'},   {"deltas", no_argument, 0, 'd'},
        {"block", required_argument, 0, 'b'},  {"rate", required_argument, 0, 'r'},
        {"ref-rate", required_argument, 0, 'R'}, {"help", no_argument, 0, 'h'},
        {"speed", required_argument, 0, 's'}, {0, 0, 0, 0}};
    int c, bad = 0;
    *o = (struct fopts){.mels = 40, .block = 1024, .speed = 1.0};
    *status = 2;
    optind = 1;
    opterr = 0;
    while (!bad && (c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'o': o->out = optarg; break;
        case 'm': bad = parse_int("--mels", optarg, 1, 1024, &o->mels); break;
        case 'c': bad = parse_int("--mfcc", optarg, 1, 1024, &o->mfcc); break;
        case 'd': o->deltas = 1; break;
        case 'b': bad = parse_int("--block", optarg, 1, 1L << 20, &o->block); break;
        case 'r': bad = parse_rate(c, optarg, &o->rate); break;
        case 'R': bad = parse_rate(c, optarg, &o->ref_rate); break;
        case 's': bad = parse_speed(optarg, &o->speed); break;
        case 'h': usage(stdout); *status = 0; return 1;
        case ':':
            fprintf(stderr, "cbrnn features: %s needs a value (see cbrnn features --help)\n",
                    argv[optind - 1]);
            return 1;
        default:
            fprintf(stderr, "cbrnn features: unknown option '%s' (see cbrnn features --help)\n",
                    argv[optind - 1]);
            return 1;
        }
    }
    if (bad)
        return 1;
    if (optind >= argc) {
        fprintf(stderr, "cbrnn features: no input file (see cbrnn features --help)\n");
        return 1;
    }
    if (argc - optind > 1) {
        fprintf(stderr, "cbrnn features: one input file only, got '%s' too\n", argv[optind + 1]);
        return 1;
    }
    o->in = argv[optind];
    if (!o->out) {
        fprintf(stderr, "cbrnn features: %s: no output given (-o OUT.npy)\n", o->in);
        return 1;
    }
    if (o->mfcc > o->mels) {
        fprintf(stderr, "cbrnn features: --mfcc %ld: at most --mels (%ld) coefficients\n",
                o->mfcc, o->mels);
        return 1;
    }
    return 0;
}

/* What the input is: its rate after --rate, its own rate, its length and
 * channels. */
struct input_info {
    double srate, frate;
    int64_t file_frames;
    int channels;
};

/* The input (opened first: its problems are the likelier ones and name
 * the file) and the feature configuration at its rate. 0 or 2 (said). */
static int probe_input(const struct fopts *o, struct input_info *ii, cbrnn_feat_config *cfg)
{
    char msg[CLI_MSG_LEN];
    audio_in *a = NULL;
    if (cli_check_path_length(o->in, msg, sizeof msg) ||
        !(a = audio_in_open_speed(o->in, o->rate, o->speed, msg, sizeof msg))) {
        cli_say("cbrnn features", msg);
        return 2;
    }
    cli_audio_warn("cbrnn features", a);
    ii->srate = audio_in_rate(a);
    ii->frate = audio_in_file_rate(a);
    ii->file_frames = audio_in_file_frames(a);
    ii->channels = audio_in_channels(a);
    audio_in_close(a);
    cbrnn_feat_config_default(cfg, ii->srate);
    cfg->n_mels = (int)o->mels;
    cfg->n_mfcc = (int)o->mfcc;
    cfg->deltas = (int)o->deltas;
    cfg->ref_rate = o->ref_rate;
    int e = cbrnn_feat_config_check(cfg);
    if (e) {
        fprintf(stderr, "cbrnn features: %s: features at %.0f Hz: %s\n", o->in, ii->srate,
                cbrnn_strerror(e));
        return 2;
    }
    return 0;
}

/* The output passes the guard every command uses (util_output.h): a
 * regular file or none, not the input, not a model or audio file. 0 or 2
 * (said). */
static int check_output(const struct fopts *o)
{
    host_files f = {0};
    char msg[CLI_MSG_LEN];
    int rc = 0;
    if (cli_check_path_length(o->out, msg, sizeof msg)) {
        rc = 2;
    } else if (host_files_input(&f, o->in)) {
        snprintf(msg, sizeof msg, "out of memory");
        rc = 1;
    } else if (host_files_output(&f, "-o", o->out, HOST_OUT_DATA, msg, sizeof msg)) {
        rc = 2;
    }
    host_files_free(&f);
    if (rc)
        cli_say("cbrnn features", msg);
    return rc;
}

/* The frames into OUT.npy (a temporary file, removed on Ctrl-C, renamed
 * when complete) and their statistics into s. 0, or the exit status
 * (said; s->stats freed). */
static int write_features(const struct fopts *o, const struct input_info *ii,
                          const cbrnn_feat_config *cfg, struct sink *s)
{
    char msg[CLI_MSG_LEN];
    int dim = cbrnn_feat_config_dim(cfg), win = cbrnn_feat_config_win(cfg),
        hop = cbrnn_feat_config_hop(cfg);
    s->in = o->in;
    s->w = npy_open(o->out, dim, msg, sizeof msg);
    if (!s->w) {
        cli_say("cbrnn features", msg);
        return 2;
    }
    cli_catch_signals(NULL); /* Ctrl-C removes the temporary */
    if (cbrnn_stats_init(&s->stats, dim) != 0) {
        npy_abort(s->w);
        fprintf(stderr, "cbrnn features: out of memory\n");
        return 1;
    }
    double samples = (double)ii->file_frames * ii->srate / ii->frate / o->speed;
    s->expect = samples >= win ? (long)((samples - win) / hop) + 1 : 0;
    s->t0 = s->last = now_s();
    int rc = audio_features_each(o->in, cfg, o->rate, o->speed, (int)o->block, on_frames, s, msg,
                                 sizeof msg);
    if (rc != 0) {
        cbrnn_stats_free(&s->stats);
        if (rc == 1) { /* on_frames stops only when writing failed */
            npy_close(s->w, msg, sizeof msg); /* reports why and removes */
            cli_say("cbrnn features", msg);
            return 1;
        }
        npy_abort(s->w);
        cli_say("cbrnn features", msg);
        return 2;
    }
    if (npy_close(s->w, msg, sizeof msg) != 0) {
        cbrnn_stats_free(&s->stats);
        cli_say("cbrnn features", msg);
        return 1;
    }
    term_progress(stderr, "features", 1.0, 1.0, now_s() - s->t0, NULL);
    return 0;
}

/* The summary on stdout: frames, features, rate, length, channels, the
 * level shift of --ref-rate and the ranges of the per-feature mean and std. */
static void report(const struct fopts *o, const struct input_info *ii,
                   const cbrnn_feat_config *cfg, const struct sink *s)
{
    int dim = cbrnn_feat_config_dim(cfg);
    double samples = (double)ii->file_frames * ii->srate / ii->frate / o->speed;
    char speed[48] = "";
    if (o->speed != 1.0)
        snprintf(speed, sizeof speed, " at speed %g", o->speed);
    printf("%s: %ld frames x %d features (%s%s), %.0f Hz%s%s, %.2f s, %d channel%s -> %s\n",
           o->in, s->frames, dim, o->mfcc ? "MFCC" : "log-mel", o->deltas ? " + deltas" : "",
           ii->srate, ii->srate != ii->frate || o->speed != 1.0 ? " (resampled)" : "", speed,
           samples / ii->srate, ii->channels, ii->channels == 1 ? "" : "s mixed", o->out);
    if (o->ref_rate != 0.0)
        printf("  mel energies at the level of %.0f Hz: %+.4f nats\n", o->ref_rate,
               cbrnn_feat_config_level_shift(cfg));
    if (s->frames > 0) {
        float *mean = malloc((size_t)dim * sizeof *mean), *sd = malloc((size_t)dim * sizeof *sd);
        if (mean && sd && cbrnn_stats_result(&s->stats, mean, sd, 0.0f) == 0) {
            float mlo = mean[0], mhi = mean[0], slo = sd[0], shi = sd[0];
            for (int i = 1; i < dim; i++) {
                mlo = fminf(mlo, mean[i]);
                mhi = fmaxf(mhi, mean[i]);
                slo = fminf(slo, sd[i]);
                shi = fmaxf(shi, sd[i]);
            }
            printf("  per-feature mean in [%.3f, %.3f], std in [%.3f, %.3f]\n", mlo, mhi, slo, shi);
        }
        free(mean);
        free(sd);
    } else {
        printf("  (no frames: the audio is shorter than one %d-sample window)\n",
               cbrnn_feat_config_win(cfg));
    }
}

int cmd_features(int argc, char **argv)
{
    struct fopts o;
    struct input_info ii;
    cbrnn_feat_config cfg;
    struct sink s = {0};
    int status;
    if (parse_opts(&o, argc, argv, &status))
        return status;
    if ((status = probe_input(&o, &ii, &cfg)) || (status = check_output(&o)) ||
        (status = write_features(&o, &ii, &cfg, &s)))
        return status;
    report(&o, &ii, &cfg, &s);
    cbrnn_stats_free(&s.stats);
    return 0;
}
