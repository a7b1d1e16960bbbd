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
#include <unistd.h>

#include "cbrnn/cbrnn_model.h"
#include "util_audio.h"
#include "util_corpus.h"
#include "util_npy.h"

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
"                       of each file have no target and are left out)\n"
"  --teacher-suffix S   map: the teacher of a.wav is aS.wav\n"
"  --pairs LIST         map: lines 'input<TAB>teacher' instead of INPUTS\n"
"  --labels-dir DIR     classify: Audacity label files DIR/NAME.txt\n"
"  --linear-fit INPUT   predict: also fit the linear-predictor baseline (least\n"
"                       squares of the next frame's change on the last K\n"
"                       frames, in the model's own normalised features) on\n"
"                       INPUT (files, folders or @lists; repeatable: the\n"
"                       model's training files) and report its loss and skill\n"
"                       beside the model's\n"
"  --linear-order K     frames the linear predictor sees (default 8)\n"
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
    if (strict) {
        fprintf(stderr, PROG ": %s (--strict: a bad file is an error)\n", why);
        return -1;
    }
    fprintf(stderr, PROG ": warning: skipping %s\n", why);
    (*n_skipped)++;
    return 0;
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
    if (audio_features(path, fe, 0, FEAT_BLOCK, &f->x, &f->T, &dim, msg, msglen))
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
    corpus files = {0, NULL};
    struct feats ft = {0};
    int e = 0;
    *status = 2;
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

static void text_sums(const cbrnn_model *m, const char *name, const cbrnn_eval_sums *s,
                      const cbrnn_eval_sums *lin, long frames)
{
    double loss = s->count ? s->loss / (double)s->count : NAN;
    printf("%-40s %8ld %10.5f", name, frames, loss);
    if (m->target == CBRNN_TARGET_CLASSIFY)
        printf(" %9ld %9.4f\n", s->count, s->count ? (double)s->correct / (double)s->count : NAN);
    else
        printf(" %12.5f %8.4f", s->count ? s->persist / (double)s->count : NAN,
               s->persist > 0 ? 1.0 - s->loss / s->persist : NAN);
    if (lin)
        printf(" %10.5f %8.4f", lin->count ? lin->loss / (double)lin->count : NAN,
               lin->persist > 0 ? 1.0 - lin->loss / lin->persist : NAN);
    if (m->target != CBRNN_TARGET_CLASSIFY)
        printf("\n");
}

int cmd_eval(int argc, char **argv)
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
    int json = 0, c, lin_order = 8, strict = 0, n_skipped = 0;
    const char *outputs = NULL, *suffix = NULL, *pairs = NULL, *labels_dir = NULL;
    corpus lin_spec = {0, NULL};
    cbrnn_linpred *lin = NULL;
    char *end;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case O_JSON: json = 1; break;
        case O_STRICT: strict = 1; break;
        case O_OUT: outputs = optarg; break;
        case O_TEACH: suffix = optarg; break;
        case O_PAIRS: pairs = optarg; break;
        case O_LABELS: labels_dir = optarg; break;
        case O_LINFIT:
            if (corpus_push(&lin_spec, optarg)) {
                fprintf(stderr, PROG ": out of memory\n");
                return 1;
            }
            break;
        case O_LINORD:
            lin_order = (int)strtol(optarg, &end, 10);
            if (end == optarg || *end || lin_order < 1 || lin_order > 64) {
                fprintf(stderr, PROG ": --linear-order: expected an integer in 1..64, got '%s'\n",
                        optarg);
                corpus_free(&lin_spec);
                return 2;
            }
            break;
        case 'h': corpus_free(&lin_spec); usage(stdout); return 0;
        default: corpus_free(&lin_spec); usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, PROG ": expected MODEL and INPUTS\n");
        usage(stderr);
        corpus_free(&lin_spec);
        return 2;
    }
    char msg[2048];
    int err = 0, status = 2;
    cbrnn_model *m = cbrnn_model_load(argv[optind], &err, msg, sizeof msg);
    if (!m) {
        fprintf(stderr, PROG ": %s\n", msg);
        corpus_free(&lin_spec);
        return 2;
    }
    const char *model_path = argv[optind++];
    corpus inputs = {0, NULL}, teachers = {0, NULL};
    struct result *res = NULL;
    npy_writer *npy = NULL;
    struct feats ft = {0};
    float *t = NULL, *out = NULL;
    int *labels = NULL;
    int n = 0;
    label_file lf = {NULL, 0, NULL};

    if (m->target == CBRNN_TARGET_TASK) {
        fprintf(stderr, PROG ": %s is a sequence-task model (target task), not an audio model; "
                        "'cbrnn experiment' evaluates those\n", model_path);
        goto out;
    }
    if (m->target == CBRNN_TARGET_MAP && !suffix == !pairs) {
        fprintf(stderr, PROG ": %s maps inputs to teachers: give --teacher-suffix S or --pairs "
                        "LIST\n", model_path);
        goto out;
    }
    if (m->target != CBRNN_TARGET_MAP && (suffix || pairs)) {
        fprintf(stderr, PROG ": --teacher-suffix/--pairs apply to map models; %s is a %s model\n",
                model_path, target_names[m->target]);
        goto out;
    }
    if (lin_spec.n && m->target != CBRNN_TARGET_PREDICT) {
        fprintf(stderr, PROG ": --linear-fit applies to predict models; %s is a %s model\n",
                model_path, target_names[m->target]);
        goto out;
    }
    if ((m->target == CBRNN_TARGET_CLASSIFY) != (labels_dir != NULL)) {
        fprintf(stderr, PROG ": %s\n", labels_dir ? "--labels-dir applies to classify models"
                                                  : "a classify model needs --labels-dir DIR");
        goto out;
    }
    for (int i = optind; i < argc; i++)
        if (corpus_add(&inputs, argv[i], msg, sizeof msg)) {
            fprintf(stderr, PROG ": %s\n", msg);
            goto out;
        }
    if (pairs && corpus_read_pairs(pairs, &inputs, &teachers, msg, sizeof msg)) {
        fprintf(stderr, PROG ": %s\n", msg);
        goto out;
    }
    if (pairs && teachers.n != inputs.n) {
        fprintf(stderr, PROG ": with --pairs, give the inputs in the pairs list only\n");
        goto out;
    }
    res = calloc((size_t)(inputs.n ? inputs.n : 1), sizeof *res);
    if (!res) {
        status = 1;
        fprintf(stderr, PROG ": out of memory\n");
        goto out;
    }
    if (outputs && !(npy = npy_open(outputs, m->cfg.n_out, msg, sizeof msg))) {
        fprintf(stderr, PROG ": %s\n", msg);
        goto out;
    }
    const int O = m->cfg.n_out;
    /* audio_features takes each file's own rate; ref_rate stays the model's. */
    cbrnn_feat_config fe;
    cbrnn_model_feat_config(m, m->feat.sample_rate, &fe);
    if (lin_spec.n && !(lin = fit_linear(m, &fe, &lin_spec, lin_order, strict, &n_skipped, &status,
                                         msg, sizeof msg))) {
        fprintf(stderr, PROG ": %s\n", msg);
        goto out;
    }
    status = 2; /* fit_linear set 0: a bad input below is still exit 2 */
    cbrnn_eval_sums total = {0, 0, 0, 0}, lin_total = {0, 0, 0, 0};
    long total_frames = 0;
    for (int i = 0; i < inputs.n; i++) {
        const char *path = inputs.paths[i];
        char *teacher_path = NULL;
        if (suffix) {
            if (corpus_stem_has_suffix(path, suffix))
                continue; /* a teacher, not an input */
            teacher_path = corpus_teacher_path(path, suffix);
        } else if (pairs) {
            teacher_path = strdup(teachers.paths[i]);
        }
        int frc = model_features(m, &fe, path, &ft, msg, sizeof msg), T = ft.T;
        if (frc == 2) {
            free(teacher_path);
            status = 2;
            if (bad_file(strict, msg, &n_skipped))
                goto out;
            continue;
        }
        if (frc) {
            free(teacher_path);
            fprintf(stderr, PROG ": %s\n", msg);
            status = frc;
            goto out;
        }
        if (teacher_path) {
            int tT = 0, tdim = 0;
            free(t);
            t = NULL;
            int rc = audio_features(teacher_path, &fe, 0, FEAT_BLOCK, &t, &tT, &tdim, msg,
                                    sizeof msg);
            if (rc) {
                free(teacher_path);
                char why[sizeof msg + 64];
                snprintf(why, sizeof why, "%s: its teacher %s", path, msg);
                status = 2;
                if (bad_file(strict, why, &n_skipped))
                    goto out;
                continue;
            }
            if (abs(tT - T) > 1) {
                fprintf(stderr, PROG ": %s has %d frames but its teacher %s has %d: they must "
                                "have the same length (within one frame)\n", path, T,
                        teacher_path, tT);
                free(teacher_path);
                goto out;
            }
            free(teacher_path);
            if (tT < T)
                T = tT;
        }
        int k = m->target == CBRNN_TARGET_PREDICT ? m->horizon : 0;
        if (T <= k) {
            snprintf(msg, sizeof msg, "%s: %d frames, too short to evaluate (horizon %d)", path, T,
                     k);
            status = 2;
            if (bad_file(strict, msg, &n_skipped))
                goto out;
            continue;
        }
        /* The input went through cbrnn_model_normalise_seq as the engine
         * normalises live; a teacher gets the stored normaliser (map models
         * have no running one). */
        if (t)
            cbrnn_model_normalise_seq(m, t, T);
        ft.T = T;
        cbrnn_seq s = feats_seq(m, &ft, k);
        if (m->target == CBRNN_TARGET_MAP)
            s.y = t;
        else if (m->target == CBRNN_TARGET_CLASSIFY) {
            char *lp = labels_path_for(labels_dir, path);
            labels_free(&lf);
            if (!lp || labels_read(lp, &lf, msg, sizeof msg)) {
                fprintf(stderr, PROG ": %s\n", lp ? msg : "out of memory");
                free(lp);
                goto out;
            }
            free(lp);
            audio_in *a = audio_in_open(path, 0, msg, sizeof msg);
            if (!a) {
                fprintf(stderr, PROG ": %s\n", msg);
                goto out;
            }
            cbrnn_feat_config fr = m->feat;
            fr.sample_rate = audio_in_file_rate(a);
            audio_in_close(a);
            free(labels);
            labels = malloc((size_t)T * sizeof *labels);
            if (!labels) {
                status = 1;
                fprintf(stderr, PROG ": out of memory\n");
                goto out;
            }
            if (labels_to_frames(labels, &lf, (const char *const *)m->class_names, m->n_classes,
                                 fr.sample_rate, cbrnn_feat_config_hop(&fr),
                                 cbrnn_feat_config_win(&fr), T, msg, sizeof msg)) {
                fprintf(stderr, PROG ": %s\n", msg);
                goto out;
            }
            s.labels = labels;
        }
        free(out);
        out = malloc((size_t)s.T * (size_t)O * sizeof *out);
        if (!out) {
            status = 1;
            fprintf(stderr, PROG ": out of memory\n");
            goto out;
        }
        cbrnn_eval_sums fs = {0, 0, 0, 0};
        int rc = cbrnn_eval_seq(m, &s, out, &fs);
        if (rc) {
            status = 1;
            fprintf(stderr, PROG ": %s: evaluation failed: %s\n", path, cbrnn_strerror(rc));
            goto out;
        }
        if (npy && npy_append(npy, out, s.T)) {
            status = 1;
            fprintf(stderr, PROG ": %s: writing failed: %s\n", outputs, strerror(errno));
            goto out;
        }
        cbrnn_eval_sums ls = {0, 0, 0, 0};
        if (lin && (rc = cbrnn_linpred_eval(lin, &s, NULL, &ls))) {
            status = 1;
            fprintf(stderr, PROG ": %s: linear baseline failed: %s\n", path, cbrnn_strerror(rc));
            goto out;
        }
        lin_total.loss += ls.loss;
        lin_total.persist += ls.persist;
        lin_total.count += ls.count;
        res[n].lin = ls;
        res[n].path = path;
        res[n].frames = s.T;
        res[n].s = fs;
        n++;
        total.loss += fs.loss;
        total.persist += fs.persist;
        total.count += fs.count;
        total.correct += fs.correct;
        total_frames += s.T;
    }
    if (n == 0) {
        if (n_skipped)
            fprintf(stderr, PROG ": no file left to evaluate: %d skipped (unreadable or no audio; "
                            "see the warnings)\n", n_skipped);
        else
            fprintf(stderr, PROG ": no audio files to evaluate (empty corpus)\n");
        goto out;
    }
    if (npy) {
        npy_writer *w = npy;
        npy = NULL;
        if (npy_close(w, msg, sizeof msg)) {
            status = 1;
            fprintf(stderr, PROG ": %s\n", msg);
            goto out;
        }
    }
    if (json) {
        printf("{\"model\":");
        fput_json_string(stdout, model_path);
        printf(",\"target\":\"%s\"", target_names[m->target]);
        if (m->target == CBRNN_TARGET_PREDICT)
            printf(",\"horizon\":%d", m->horizon);
        printf(",\"files\":[");
        for (int i = 0; i < n; i++) {
            printf("%s{\"file\":", i ? "," : "");
            fput_json_string(stdout, res[i].path);
            putchar(',');
            json_sums(m, &res[i].s, lin ? &res[i].lin : NULL, res[i].frames);
            putchar('}');
        }
        printf("],\"overall\":{\"files\":%d,\"skipped\":%d,", n, n_skipped);
        json_sums(m, &total, lin ? &lin_total : NULL, total_frames);
        printf("}}\n");
    } else {
        printf("# %s: target %s", model_path, target_names[m->target]);
        if (m->target == CBRNN_TARGET_PREDICT)
            printf(", %d frame%s ahead", m->horizon, m->horizon == 1 ? "" : "s");
        printf("\n%-40s %8s %10s", "file", "frames", "loss");
        if (m->target == CBRNN_TARGET_CLASSIFY)
            printf(" %9s %9s\n", "labelled", "accuracy");
        else
            printf(" %12s %8s%s\n", "persistence", "skill", lin ? "     linear lin_skill" : "");
        for (int i = 0; i < n; i++)
            text_sums(m, res[i].path, &res[i].s, lin ? &res[i].lin : NULL, res[i].frames);
        text_sums(m, "overall", &total, lin ? &lin_total : NULL, total_frames);
        if (n_skipped)
            printf("# %d file%s skipped (unreadable or no audio; see the warnings)\n", n_skipped,
                   n_skipped == 1 ? "" : "s");
    }
    if (n_skipped)
        fprintf(stderr, PROG ": %d file%s skipped (unreadable or no audio)\n", n_skipped,
                n_skipped == 1 ? "" : "s");
    status = fflush(stdout) ? 1 : 0;
out:
    if (npy) {
        /* Do not leave a partial output behind. */
        char ignore[256];
        npy_close(npy, ignore, sizeof ignore);
        unlink(outputs);
    }
    labels_free(&lf);
    free(labels);
    free(out);
    feats_free(&ft);
    free(t);
    free(res);
    corpus_free(&inputs);
    corpus_free(&teachers);
    corpus_free(&lin_spec);
    cbrnn_linpred_destroy(lin);
    cbrnn_model_destroy(m);
    return status;
}
