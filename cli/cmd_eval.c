/* cmd_eval.c: `cbrnn eval MODEL INPUTS... [--json] [--outputs OUT.npy]`:
 * how well a model does on audio files, per file and overall: the loss, the
 * persistence baseline and the skill 1 - loss/persistence (predict, map),
 * or the accuracy (classify). Features are computed at each file's own
 * rate with the model's stored feature configuration (physical units, at
 * the log-mel level of the model's trained rate: cbrnn_model_feat_config,
 * as the engine does) and normalised with the model's stored statistics;
 * the model runs over each whole file from a zero state (cbrnn_eval_seq).
 *
 * Talks to the user (cli/): bad input -> a message naming the file and the
 * problem, exit 2; a failure while working -> exit 1. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbrnn/cbrnn_model.h"
#include "corpus.h"
#include "host_audio.h"
#include "util_audio.h"
#include "util_json.h"
#include "util_msg.h"
#include "util_npy.h"
#include "util_output.h"
#include "util_parse.h"

const char cmd_eval_summary[] = "evaluate a model on audio files (loss, persistence, skill/accuracy)";

#define PROG "cbrnn eval"
#define FEAT_BLOCK 4096

static void usage(FILE *f)
{
    fprintf(f,
"usage: cbrnn eval MODEL INPUTS... [--json] [--outputs OUT.npy]\n"
"                  [--teacher-suffix S | --pairs LIST] [--labels-dir DIR]\n"
"\n"
"Runs MODEL over each input (audio files, folders searched recursively, or\n"
"@LIST files) from a zero state and reports, per file and overall:\n"
"  predict  MSE against the normalised features `horizon` frames ahead, the\n"
"           persistence baseline (predicting x[t+k] = x[t]) and the skill\n"
"           1 - loss / persistence (> 0: better than persistence)\n"
"  map      MSE against the teacher's features (normalised with the model's\n"
"           statistics), persistence = the input's own features as the guess\n"
"  classify cross-entropy and accuracy over the labelled frames\n"
"Features use the model's stored settings at each file's own sample rate;\n"
"at a rate other than the model's, the log-mel is brought to the level of\n"
"the model's rate (as in cbrnn run and cbrnn-jack; `cbrnn features\n"
"--ref-rate`).\n"
"\n"
"  --json               one JSON object on stdout instead of a table\n"
"  --outputs OUT.npy    the per-frame outputs, all files concatenated in the\n"
"                       order listed: float32 [frames, outputs]. Row t of a\n"
"                       file is the output after frame t (predict: the\n"
"                       guess of frame t + horizon; the last `horizon` frames\n"
"                       of each file have no target and are left out;\n"
"                       classify: the logits, as PyTorch's model(z) gives\n"
"                       them, where `cbrnn run` writes posteriors, their\n"
"                       softmax); replaced only on success; not an input,\n"
"                       the model, an existing audio or model file, or a\n"
"                       non-regular file\n"
"  --teacher-suffix S   map: the teacher of a.wav is aS.wav\n"
"  --pairs LIST         map: lines 'input<TAB>teacher' instead of INPUTS\n"
"  --labels-dir DIR     classify: Audacity label files DIR/NAME.txt\n"
"  --linear-fit INPUT   predict: also fit the linear-predictor baseline (least\n"
"                       squares of the next frame's change on the last K\n"
"                       frames, in the model's own normalised features) on\n"
"                       INPUT (files, folders or @lists; repeatable: the\n"
"                       model's training files) and report its loss and skill\n"
"                       beside the model's\n"
"  --linear-order K     frames the linear predictor sees (default 8; with\n"
"                       --linear-fit only)\n"
"  --strict             a file that cannot be read or holds no audio (empty,\n"
"                       truncated, not audio, too short) is an error; by\n"
"                       default it is skipped with a warning naming it and\n"
"                       counted (it then has no rows in --outputs)\n"
"\n"
"Exit status: 0 done; 1 failure while working; 2 bad options or input.\n");
}

static const char *const target_names[] = {"predict", "map", "classify", "task"};

/* A file that cannot be read or holds no usable audio (why: "PATH: what is
 * wrong"): with --strict an error (-1, printed); otherwise a warning and
 * one more in *n_skipped (0): one bad file among thousands must not cost
 * the whole evaluation. */
static int bad_file(int strict, const char *why, int *n_skipped)
{
    char line[2 * CLI_MSG_LEN]; /* why may be a whole CLI_MSG_LEN */
    if (strict) {
        snprintf(line, sizeof line, "%s (--strict: a bad file is an error)", why);
        cli_say(PROG, line);
        return -1;
    }
    snprintf(line, sizeof line, "warning: skipping %s", why);
    cli_say(PROG, line);
    (*n_skipped)++;
    return 0;
}

/* An entry of an input folder left out (corpus.h): a bad file; a folder
 * that brought nothing: a warning. */
static void corpus_warning(void *user, const char *line, int left_out)
{
    if (left_out) {
        bad_file(0, line, user);
        return;
    }
    char say[CLI_MSG_LEN];
    snprintf(say, sizeof say, "warning: %s", line);
    cli_say(PROG, say);
}

struct result {
    const char *path;
    long frames;
    cbrnn_eval_sums s, lin; /* the model; the linear predictor (--linear-fit) */
};

/* A file's frames for m (struct feats): x corpus-normalised (targets and
 * persistence), z the model's input and s the running normaliser's scale
 * (z = x and s = NULL without one). */
struct feats {
    float *x, *z, *s;
    int T;
};

static void feats_free(struct feats *f)
{
    if (f->z != f->x)
        free(f->z);
    free(f->x);
    free(f->s);
    memset(f, 0, sizeof *f);
}

/* 0, or 2 (bad input) / 1 (failure) with msg. */
static int model_features(const cbrnn_model *m, const cbrnn_feat_config *fe, const char *path,
                          struct feats *f, char *msg, size_t msglen)
{
    int dim = 0;
    feats_free(f);
    if (audio_features(path, fe, 0, 1.0, FEAT_BLOCK, &f->x, &f->T, &dim, msg, msglen))
        return 2;
    f->z = f->x;
    if (dim != m->cfg.n_in) {
        snprintf(msg, msglen, "%s: %d features per frame but the model takes %d", path, dim,
                 m->cfg.n_in);
        return 2;
    }
    cbrnn_model_normalise_seq(m, f->x, f->T);
    if (m->stream_norm_s > 0) {
        size_t n = (size_t)f->T * (size_t)dim + 1;
        f->z = malloc(n * sizeof(float));
        f->s = malloc(n * sizeof(float));
        if (!f->z || !f->s || cbrnn_model_stream_seq(m, f->x, f->z, f->s, f->T)) {
            snprintf(msg, msglen, "out of memory");
            return 1;
        }
    }
    return 0;
}

/* The sequence eval scores: frames after the horizon are the targets. */
static cbrnn_seq feats_seq(const cbrnn_model *m, const struct feats *f, int k)
{
    cbrnn_seq s = {.x = f->z, .base = f->x, .scale = f->s, .T = f->T - k};
    if (m->target == CBRNN_TARGET_PREDICT) {
        s.y = f->x + (size_t)k * m->cfg.n_in;
        s.y_stride = m->cfg.n_in;
    }
    return s;
}

/* The linear-predictor baseline fitted on the files of spec (predict
 * models): NULL with msg and *status on failure. */
static cbrnn_linpred *fit_linear(const cbrnn_model *m, const cbrnn_feat_config *fe,
                                 const corpus *spec, int order, int strict, int *n_skipped,
                                 int *status, char *msg, size_t msglen)
{
    corpus files = {0};
    struct feats ft = {0};
    int e = 0;
    *status = 2;
    files.warn = corpus_warning;
    files.warn_user = n_skipped;
    files.strict = strict;
    cbrnn_linpred *p = cbrnn_linpred_create(m->cfg.n_in, m->cfg.n_out, order, &e);
    if (!p) {
        snprintf(msg, msglen, "--linear-order %d: %s", order, cbrnn_strerror(e));
        goto fail;
    }
    for (int i = 0; i < spec->n; i++)
        if (corpus_add(&files, spec->paths[i], msg, msglen))
            goto fail;
    for (int i = 0; i < files.n; i++) {
        int k = m->horizon;
        *status = model_features(m, fe, files.paths[i], &ft, msg, msglen);
        if (*status == 2 && !strict) {
            bad_file(0, msg, n_skipped);
            continue;
        }
        if (*status)
            goto fail;
        if (ft.T <= k)
            continue; /* too short to hold a target: nothing to learn from */
        cbrnn_seq s = feats_seq(m, &ft, k);
        if ((e = cbrnn_linpred_add(p, &s))) {
            *status = 1;
            snprintf(msg, msglen, "%s: linear fit: %s", files.paths[i], cbrnn_strerror(e));
            goto fail;
        }
    }
    /* 1e-3 of the mean diagonal: small against speech's frame variance,
     * enough to keep the normal equations definite on constant bands. */
    if ((e = cbrnn_linpred_solve(p, 1e-3))) {
        *status = e == CBRNN_ERR_ARG ? 2 : 1;
        snprintf(msg, msglen, "--linear-fit: %s", e == CBRNN_ERR_ARG
                 ? "no frames to fit the linear predictor on" : cbrnn_strerror(e));
        goto fail;
    }
    feats_free(&ft);
    corpus_free(&files);
    *status = 0;
    return p;
fail:
    feats_free(&ft);
    corpus_free(&files);
    cbrnn_linpred_destroy(p);
    return NULL;
}

static void print_num(double v)
{
    if (isfinite(v))
        printf("%.9g", v);
    else
        printf("null");
}

static void json_sums(const cbrnn_model *m, const cbrnn_eval_sums *s, const cbrnn_eval_sums *lin,
                      long frames)
{
    double loss = s->count ? s->loss / (double)s->count : NAN;
    printf("\"frames\":%ld,\"loss\":", frames);
    print_num(loss);
    if (m->target == CBRNN_TARGET_CLASSIFY) {
        printf(",\"labelled_frames\":%ld,\"accuracy\":", s->count);
        print_num(s->count ? (double)s->correct / (double)s->count : NAN);
    } else {
        printf(",\"persistence_loss\":");
        print_num(s->count ? s->persist / (double)s->count : NAN);
        printf(",\"skill\":");
        print_num(s->persist > 0 ? 1.0 - s->loss / s->persist : NAN);
    }
    if (lin) {
        printf(",\"linear_loss\":");
        print_num(lin->count ? lin->loss / (double)lin->count : NAN);
        printf(",\"linear_skill\":");
        print_num(lin->persist > 0 ? 1.0 - lin->loss / lin->persist : NAN);
    }
}

/* A table cell: v in fmt when ok, else "n/a" in its width (a skill with
 * no persistence loss to compare with, an accuracy of no labelled frame;
 * nan says nothing to a reader). */
static void cell(const char *fmt, int width, int ok, double v)
{
    if (ok)
        printf(fmt, v);
    else
        printf(" %*s", width, "n/a");
}

/* A row of the table. 1 when a cell said n/a, else 0. */
static int text_sums(const cbrnn_model *m, const char *name, const cbrnn_eval_sums *s,
                     const cbrnn_eval_sums *lin, long frames)
{
    double loss = s->count ? s->loss / (double)s->count : NAN;
    int na = !s->count;
    printf("%-40s %8ld", name, frames);
    cell(" %10.5f", 10, s->count, loss);
    if (m->target == CBRNN_TARGET_CLASSIFY) {
        printf(" %9ld", s->count);
        cell(" %9.4f", 9, s->count, s->count ? (double)s->correct / (double)s->count : 0);
    } else {
        cell(" %12.5f", 12, s->count, s->count ? s->persist / (double)s->count : 0);
        cell(" %8.4f", 8, s->persist > 0, s->persist > 0 ? 1.0 - s->loss / s->persist : 0);
        na |= !(s->persist > 0);
    }
    if (lin) {
        cell(" %10.5f", 10, lin->count, lin->count ? lin->loss / (double)lin->count : 0);
        cell(" %8.4f", 8, lin->persist > 0,
             lin->persist > 0 ? 1.0 - lin->loss / lin->persist : 0);
        na |= !(lin->persist > 0);
    }
    printf("\n");
    return na;
}

/* ---- the evaluation: its state and its steps, in the order cmd_eval takes them ---- */

/* Everything one evaluation owns; eval_free gives it back however it
 * ends. A step returns 0 to go on, or the exit status (2 bad options or
 * input, 1 failure while working). */
struct eval {
    /* options */
    int json, lin_order, strict;
    const char *outputs, *suffix, *pairs, *labels_dir;
    corpus lin_spec; /* --linear-fit */
    int argc;
    char **argv;
    const char *model_path;
    char msg[CLI_MSG_LEN];
    cbrnn_model *m;
    cbrnn_feat_config fe; /* the model's features at each file's own rate */
    cbrnn_linpred *lin;
    corpus inputs, teachers;
    npy_writer *npy;      /* --outputs */
    /* the file at hand */
    struct feats ft;
    float *t, *out;       /* teacher features; the model's outputs */
    int *labels;
    label_file lf;
    /* the results */
    struct result *res;
    int n, n_skipped;
    cbrnn_eval_sums total, lin_total;
    long total_frames;
};

/* A file left out (eval_file's sub-steps): not an exit status. */
#define SKIPPED (-1)

/* The options. 0 to go on, or 1 with *status the exit status (--help:
 * 0). */
static int parse_opts(struct eval *ev, int argc, char **argv, int *status)
{
    enum { O_JSON = 256, O_OUT, O_TEACH, O_PAIRS, O_LABELS, O_LINFIT, O_LINORD, O_STRICT };
    static const struct option lo[] = {
        {"json", no_argument, NULL, O_JSON}, {"outputs", required_argument, NULL, O_OUT},
        {"teacher-suffix", required_argument, NULL, O_TEACH},
        {"pairs", required_argument, NULL, O_PAIRS},
        {"labels-dir", required_argument, NULL, O_LABELS}, {"help", no_argument, NULL, 'h'},
        {"linear-fit", required_argument, NULL, O_LINFIT},
        {"linear-order", required_argument, NULL, O_LINORD},
        {"strict", no_argument, NULL, O_STRICT}, {NULL, 0, NULL, 0}};
    int c, order_given = 0;
    ev->lin_order = 8;
    *status = 2;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case O_JSON: ev->json = 1; break;
        case O_STRICT: ev->strict = 1; break;
        case O_OUT: ev->outputs = optarg; break;
        case O_TEACH: ev->suffix = optarg; break;
        case O_PAIRS: ev->pairs = optarg; break;
        case O_LABELS: ev->labels_dir = optarg; break;
        case O_LINFIT:
            if (corpus_push(&ev->lin_spec, optarg)) {
                fprintf(stderr, PROG ": out of memory\n");
                *status = 1;
                return 1;
            }
            break;
        case O_LINORD:
            order_given = 1;
            if (cli_parse_int(optarg, 1, 64, &ev->lin_order)) {
                fprintf(stderr, PROG ": --linear-order: expected an integer in 1..64, got '%s'\n",
                        optarg);
                return 1;
            }
            break;
        case 'h': usage(stdout); *status = 0; return 1;
        default: usage(stderr); return 1;
        }
    }
    if (order_given && !ev->lin_spec.n) { /* it would be ignored */
        fprintf(stderr, PROG ": --linear-order is for --linear-fit INPUT (the order of the "
                        "linear-predictor baseline it fits)\n");
        return 1;
    }
    if (optind >= argc) {
        fprintf(stderr, PROG ": expected MODEL and INPUTS\n");
        usage(stderr);
        return 1;
    }
    ev->argc = argc;
    ev->argv = argv;
    *status = 0;
    return 0;
}

/* The model (the first argument), and the options its target needs or
 * refuses. */
static int load_model(struct eval *ev)
{
    int err = 0;
    ev->m = cbrnn_model_load(ev->argv[optind], &err, ev->msg, sizeof ev->msg);
    if (!ev->m) {
        cli_say(PROG, ev->msg);
        return 2;
    }
    ev->model_path = ev->argv[optind++];
    const cbrnn_model *m = ev->m;
    const char *model_path = ev->model_path;
    if (m->target == CBRNN_TARGET_TASK) {
        fprintf(stderr, PROG ": %s is a sequence-task model (target task), not an audio model; "
                        "'cbrnn experiment' evaluates those\n", model_path);
        return 2;
    }
    if (m->target == CBRNN_TARGET_MAP && !ev->suffix == !ev->pairs) {
        fprintf(stderr, PROG ": %s maps inputs to teachers: give --teacher-suffix S or --pairs "
                        "LIST\n", model_path);
        return 2;
    }
    if (m->target != CBRNN_TARGET_MAP && (ev->suffix || ev->pairs)) {
        fprintf(stderr, PROG ": --teacher-suffix/--pairs apply to map models; %s is a %s model\n",
                model_path, target_names[m->target]);
        return 2;
    }
    if (ev->lin_spec.n && m->target != CBRNN_TARGET_PREDICT) {
        fprintf(stderr, PROG ": --linear-fit applies to predict models; %s is a %s model\n",
                model_path, target_names[m->target]);
        return 2;
    }
    if ((m->target == CBRNN_TARGET_CLASSIFY) != (ev->labels_dir != NULL)) {
        fprintf(stderr, PROG ": %s\n", ev->labels_dir ? "--labels-dir applies to classify models"
                                                      : "a classify model needs --labels-dir DIR");
        return 2;
    }
    return 0;
}

/* --outputs through the guard of every command (util_output.h): not the
 * model, an input, a teacher, a label file or a --linear-fit file, and
 * not an existing model or audio file. 0 or the exit status (said). */
static int check_outputs(struct eval *ev)
{
    if (!ev->outputs)
        return 0;
    host_files f = {0};
    int rc = 0;
    if (host_files_input(&f, ev->model_path) ||
        cli_files_corpus(&f, (const char *const *)ev->argv + optind, ev->argc - optind, ev->pairs,
                         ev->suffix, ev->labels_dir) ||
        cli_files_corpus(&f, (const char *const *)ev->lin_spec.paths, ev->lin_spec.n, NULL, NULL,
                         NULL)) {
        snprintf(ev->msg, sizeof ev->msg, "out of memory");
        rc = 1;
    }
    if (!rc && host_files_output(&f, "--outputs", ev->outputs, HOST_OUT_DATA, ev->msg,
                                sizeof ev->msg))
        rc = 2;
    if (rc)
        cli_say(PROG, ev->msg);
    host_files_free(&f);
    return rc;
}

/* The inputs (and --pairs' teachers), room for their results, the
 * --outputs file and the --linear-fit baseline. */
static int prepare(struct eval *ev)
{
    ev->inputs.warn = corpus_warning;
    ev->inputs.warn_user = &ev->n_skipped;
    ev->inputs.strict = ev->strict;
    for (int i = optind; i < ev->argc; i++)
        if (cli_check_path_length(ev->argv[i], ev->msg, sizeof ev->msg) ||
            corpus_add(&ev->inputs, ev->argv[i], ev->msg, sizeof ev->msg)) {
            cli_say(PROG, ev->msg);
            return 2;
        }
    if (ev->pairs && corpus_read_pairs(ev->pairs, &ev->inputs, &ev->teachers, ev->msg,
                                       sizeof ev->msg)) {
        cli_say(PROG, ev->msg);
        return 2;
    }
    if (ev->pairs && ev->teachers.n != ev->inputs.n) {
        fprintf(stderr, PROG ": with --pairs, give the inputs in the pairs list only\n");
        return 2;
    }
    if (ev->labels_dir && labels_check_distinct(ev->labels_dir,
                                                (const char *const *)ev->inputs.paths,
                                                ev->inputs.n, ev->msg, sizeof ev->msg)) {
        cli_say(PROG, ev->msg);
        return 2;
    }
    ev->res = calloc((size_t)(ev->inputs.n ? ev->inputs.n : 1), sizeof *ev->res);
    if (!ev->res) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    int status = check_outputs(ev);
    if (status)
        return status;
    if (ev->outputs && !(ev->npy = npy_open(ev->outputs, ev->m->cfg.n_out, ev->msg, sizeof ev->msg))) {
        cli_say(PROG, ev->msg);
        return 2;
    }
    cli_catch_signals(NULL); /* Ctrl-C removes the --outputs temporary */
    /* audio_features takes each file's own rate; ref_rate stays the model's. */
    cbrnn_model_feat_config(ev->m, ev->m->feat.sample_rate, &ev->fe);
    if (ev->lin_spec.n &&
        !(ev->lin = fit_linear(ev->m, &ev->fe, &ev->lin_spec, ev->lin_order, ev->strict,
                               &ev->n_skipped, &status, ev->msg, sizeof ev->msg))) {
        cli_say(PROG, ev->msg);
        return status;
    }
    return 0;
}

/* The teacher's features of path (map), normalised later: *T becomes the
 * shorter length (they may differ by one frame). 0, SKIPPED, or the exit
 * status. */
static int teacher_features(struct eval *ev, const char *path, const char *teacher_path, int *T)
{
    int tT = 0, tdim = 0;
    free(ev->t);
    ev->t = NULL;
    if (audio_features(teacher_path, &ev->fe, 0, 1.0, FEAT_BLOCK, &ev->t, &tT, &tdim, ev->msg,
                       sizeof ev->msg)) {
        char why[sizeof ev->msg + 64];
        snprintf(why, sizeof why, "%s: its teacher %s", path, ev->msg);
        return bad_file(ev->strict, why, &ev->n_skipped) ? 2 : SKIPPED;
    }
    if (abs(tT - *T) > 1) {
        fprintf(stderr, PROG ": %s has %d frames but its teacher %s has %d: they must "
                        "have the same length (within one frame)\n", path, *T, teacher_path, tT);
        return 2;
    }
    if (tT < *T)
        *T = tT;
    return 0;
}

/* The inputs and teacher of inputs.paths[i]: its model features in ev->ft
 * (ev->t the teacher's), *T frames. 0, SKIPPED, or the exit status. */
static int file_features(struct eval *ev, int i, int *T)
{
    const char *path = ev->inputs.paths[i];
    char *teacher_path = NULL;
    if (ev->suffix) {
        if (corpus_stem_has_suffix(path, ev->suffix))
            return SKIPPED; /* a teacher, not an input */
        teacher_path = corpus_teacher_path(path, ev->suffix);
    } else if (ev->pairs) {
        teacher_path = strdup(ev->teachers.paths[i]);
    }
    cli_audio_warn_path(PROG, path);
    int said = 0; /* a teacher --pairs gives an earlier input too was said there */
    for (int k = 0; ev->pairs && teacher_path && k < i && !said; k++)
        said = !strcmp(ev->teachers.paths[k], teacher_path);
    if (teacher_path && !said)
        cli_audio_warn_path(PROG, teacher_path);
    int rc = model_features(ev->m, &ev->fe, path, &ev->ft, ev->msg, sizeof ev->msg);
    *T = ev->ft.T;
    if (rc == 2)
        rc = bad_file(ev->strict, ev->msg, &ev->n_skipped) ? 2 : SKIPPED;
    else if (rc)
        cli_say(PROG, ev->msg);
    else if (teacher_path)
        rc = teacher_features(ev, path, teacher_path, T);
    free(teacher_path);
    return rc;
}

/* Classify: the frame labels of path from its label file, at the file's
 * own rate, into s. 0 or the exit status. */
static int file_labels(struct eval *ev, const char *path, int T, cbrnn_seq *s)
{
    const cbrnn_model *m = ev->m;
    char *lp = labels_path_for(ev->labels_dir, path);
    labels_free(&ev->lf);
    if (!lp || labels_read(lp, &ev->lf, ev->msg, sizeof ev->msg)) {
        fprintf(stderr, PROG ": %s\n", lp ? ev->msg : "out of memory");
        free(lp);
        return 2;
    }
    free(lp);
    audio_in *a = audio_in_open(path, 0, ev->msg, sizeof ev->msg);
    if (!a) {
        cli_say(PROG, ev->msg);
        return 2;
    }
    cbrnn_feat_config fr = m->feat;
    fr.sample_rate = audio_in_file_rate(a);
    audio_in_close(a);
    free(ev->labels);
    ev->labels = malloc((size_t)T * sizeof *ev->labels);
    if (!ev->labels) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    if (labels_to_frames(ev->labels, &ev->lf, (const char *const *)m->class_names, m->n_classes,
                         fr.sample_rate, cbrnn_feat_config_hop(&fr), cbrnn_feat_config_win(&fr),
                         T, ev->msg, sizeof ev->msg)) {
        cli_say(PROG, ev->msg);
        return 2;
    }
    s->labels = ev->labels;
    return 0;
}

/* The model (and the linear baseline) over the sequence s of path; the
 * outputs to --outputs, the sums to the file's result and the totals. */
static int score(struct eval *ev, const char *path, const cbrnn_seq *s)
{
    const int O = ev->m->cfg.n_out;
    free(ev->out);
    ev->out = malloc((size_t)s->T * (size_t)O * sizeof *ev->out);
    if (!ev->out) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    cbrnn_eval_sums fs = {0, 0, 0, 0};
    int rc = cbrnn_eval_seq(ev->m, s, ev->out, &fs);
    if (rc) {
        fprintf(stderr, PROG ": %s: evaluation failed: %s\n", path, cbrnn_strerror(rc));
        return 1;
    }
    /* A model that diverges on this input: no number of it means anything
     * (the engine, live or in `cbrnn run`, would reset and restore). */
    for (size_t i = 0; i < (size_t)s->T * (size_t)O; i++)
        if (!isfinite(ev->out[i])) {
            fprintf(stderr, PROG ": %s: the model's output %zu is %g at frame %zu: it diverges on "
                            "this input; nothing scored\n", path, i % (size_t)O,
                    (double)ev->out[i], i / (size_t)O);
            return 1;
        }
    if (ev->npy && npy_append(ev->npy, ev->out, s->T)) {
        fprintf(stderr, PROG ": %s: writing failed: %s\n", ev->outputs, strerror(errno));
        return 1;
    }
    cbrnn_eval_sums ls = {0, 0, 0, 0};
    if (ev->lin && (rc = cbrnn_linpred_eval(ev->lin, s, NULL, &ls))) {
        fprintf(stderr, PROG ": %s: linear baseline failed: %s\n", path, cbrnn_strerror(rc));
        return 1;
    }
    ev->lin_total.loss += ls.loss;
    ev->lin_total.persist += ls.persist;
    ev->lin_total.count += ls.count;
    struct result *r = &ev->res[ev->n++];
    r->lin = ls;
    r->path = path;
    r->frames = s->T;
    r->s = fs;
    ev->total.loss += fs.loss;
    ev->total.persist += fs.persist;
    ev->total.count += fs.count;
    ev->total.correct += fs.correct;
    ev->total_frames += s->T;
    return 0;
}

/* One input, from a zero state: features (and teacher or labels), then
 * the score. 0 (also when the file was skipped) or the exit status. */
static int eval_file(struct eval *ev, int i)
{
    const cbrnn_model *m = ev->m;
    const char *path = ev->inputs.paths[i];
    int T = 0;
    int rc = file_features(ev, i, &T);
    if (rc)
        return rc == SKIPPED ? 0 : rc;
    int k = m->target == CBRNN_TARGET_PREDICT ? m->horizon : 0;
    if (T <= k) {
        snprintf(ev->msg, sizeof ev->msg, "%s: %d frames, too short to evaluate (horizon %d)",
                 path, T, k);
        return bad_file(ev->strict, ev->msg, &ev->n_skipped) ? 2 : 0;
    }
    /* The input went through cbrnn_model_normalise_seq as the engine
     * normalises live; a teacher gets the stored normaliser (map models
     * have no running one). */
    if (ev->t)
        cbrnn_model_normalise_seq(m, ev->t, T);
    ev->ft.T = T;
    cbrnn_seq s = feats_seq(m, &ev->ft, k);
    if (m->target == CBRNN_TARGET_MAP)
        s.y = ev->t;
    else if (m->target == CBRNN_TARGET_CLASSIFY && (rc = file_labels(ev, path, T, &s)))
        return rc;
    return score(ev, path, &s);
}

/* No audio file in the inputs given: said, naming them. */
static void say_empty(const struct eval *ev)
{
    char names[1024] = "", line[1100];
    if (ev->argc > optind)
        corpus_name_specs(names, sizeof names, (const char *const *)ev->argv + optind,
                          ev->argc - optind);
    else if (ev->pairs)
        corpus_name_specs(names, sizeof names, &ev->pairs, 1);
    snprintf(line, sizeof line, "no audio files to evaluate%s%s (empty corpus)",
             names[0] ? " in " : "", names);
    cli_say(PROG, line);
}

/* Every input in turn; then --outputs completed (a failed write shows
 * here). No file left is bad input. */
static int eval_all(struct eval *ev)
{
    for (int i = 0; i < ev->inputs.n; i++) {
        int rc = eval_file(ev, i);
        if (rc)
            return rc;
    }
    if (ev->n == 0) {
        if (ev->n_skipped)
            fprintf(stderr, PROG ": no file left to evaluate: %d skipped (unreadable or no audio; "
                            "see the warnings)\n", ev->n_skipped);
        else
            say_empty(ev);
        return 2;
    }
    if (ev->npy) {
        npy_writer *w = ev->npy;
        ev->npy = NULL;
        if (npy_close(w, ev->msg, sizeof ev->msg)) {
            cli_say(PROG, ev->msg);
            return 1;
        }
    }
    return 0;
}

/* --json: one object with the model, each file's sums and the overall. */
static void report_json(const struct eval *ev)
{
    const cbrnn_model *m = ev->m;
    printf("{\"model\":");
    fput_json_string(stdout, ev->model_path);
    printf(",\"target\":\"%s\"", target_names[m->target]);
    if (m->target == CBRNN_TARGET_PREDICT)
        printf(",\"horizon\":%d", m->horizon);
    printf(",\"files\":[");
    for (int i = 0; i < ev->n; i++) {
        printf("%s{\"file\":", i ? "," : "");
        fput_json_string(stdout, ev->res[i].path);
        putchar(',');
        json_sums(m, &ev->res[i].s, ev->lin ? &ev->res[i].lin : NULL, ev->res[i].frames);
        putchar('}');
    }
    printf("],\"overall\":{\"files\":%d,\"skipped\":%d,", ev->n, ev->n_skipped);
    json_sums(m, &ev->total, ev->lin ? &ev->lin_total : NULL, ev->total_frames);
    printf("}}\n");
}

/* A table: a header, a row per file and the overall row. */
static void report_text(const struct eval *ev)
{
    const cbrnn_model *m = ev->m;
    printf("# %s: target %s", ev->model_path, target_names[m->target]);
    if (m->target == CBRNN_TARGET_PREDICT)
        printf(", %d frame%s ahead", m->horizon, m->horizon == 1 ? "" : "s");
    printf("\n%-40s %8s %10s", "file", "frames", "loss");
    if (m->target == CBRNN_TARGET_CLASSIFY)
        printf(" %9s %9s\n", "labelled", "accuracy");
    else
        printf(" %12s %8s%s\n", "persistence", "skill", ev->lin ? "     linear lin_skill" : "");
    int na = 0;
    for (int i = 0; i < ev->n; i++)
        na |= text_sums(m, ev->res[i].path, &ev->res[i].s, ev->lin ? &ev->res[i].lin : NULL,
                        ev->res[i].frames);
    na |= text_sums(m, "overall", &ev->total, ev->lin ? &ev->lin_total : NULL, ev->total_frames);
    if (na && m->target == CBRNN_TARGET_CLASSIFY)
        printf("# n/a: no labelled frames to score\n");
    else if (na)
        printf("# n/a: no skill where the persistence loss is 0 (the features never change: "
               "digital silence?); JSON says null\n");
    if (ev->n_skipped)
        printf("# %d file%s skipped (unreadable or no audio; see the warnings)\n", ev->n_skipped,
               ev->n_skipped == 1 ? "" : "s");
}

/* The results on stdout, and the count of skipped files on stderr. */
static int report(struct eval *ev)
{
    if (ev->json)
        report_json(ev);
    else
        report_text(ev);
    if (ev->n_skipped)
        fprintf(stderr, PROG ": %d file%s skipped (unreadable or no audio)\n", ev->n_skipped,
                ev->n_skipped == 1 ? "" : "s");
    return 0; /* a failed write to stdout: main's cli_finish_stdout says so */
}

/* Gives back everything; an unfinished --outputs file is removed (no
 * partial output is left behind, an earlier one is kept). The exit
 * status. */
static int eval_free(struct eval *ev, int status)
{
    npy_abort(ev->npy); /* an unfinished --outputs: the earlier file stays */
    labels_free(&ev->lf);
    free(ev->labels);
    free(ev->out);
    feats_free(&ev->ft);
    free(ev->t);
    free(ev->res);
    corpus_free(&ev->inputs);
    corpus_free(&ev->teachers);
    corpus_free(&ev->lin_spec);
    cbrnn_linpred_destroy(ev->lin);
    cbrnn_model_destroy(ev->m);
    return status;
}

int cmd_eval(int argc, char **argv)
{
    struct eval ev;
    memset(&ev, 0, sizeof ev);
    int status = 0;
    if (parse_opts(&ev, argc, argv, &status))
        return eval_free(&ev, status);
    /* The steps, in order; each says what it does above its definition. */
    static int (*const steps[])(struct eval *) = {load_model, prepare, eval_all, report};
    for (size_t i = 0; i < sizeof steps / sizeof *steps && !status; i++)
        status = steps[i](&ev);
    return eval_free(&ev, status);
}
