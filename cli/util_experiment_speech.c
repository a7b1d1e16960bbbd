/* util_experiment_speech.c: the front of `cbrnn experiment --task speech`:
 * the paper's comparison carried over to audio (experiment/speech.c does
 * the work; its variants are listed there). This file parses the options,
 * reads the corpus (default samples/) and computes every file's features
 * once, by the same streaming front end the live host uses
 * (audio_features), chooses the validation files (and the test split, from
 * --test-files or a corpus manifest's split column), and hands it all to
 * the experiments module.
 * Must never: write outside --out-dir. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "corpus.h"
#include "host_audio.h"
#include "util_experiment.h"
#include "util_parse.h"

#define PROG "cbrnn experiment --task speech"
/* Samples per call of the front end; any size gives the same frames. */
#define FEAT_BLOCK 4096

/* The curve's columns (experiment/speech.c writes them). */
static const char curve_columns[] =
    "step,phase,train_loss,val_loss,val_persistence_loss,val_skill,wall_s";

static void usage(FILE *f)
{
    fprintf(f,
        "usage: cbrnn experiment --task speech --out-dir D [options]\n"
        "\n"
        "The paper's comparison on audio: next-frame prediction of normalised log-mel\n"
        "frames (40 bands, 25 ms window, 10 ms hop) with the readout wiring, for\n");
    for (int v = 0; v < cbrnn_exp_speech_n_variants(); v++)
        fprintf(f, "  %-11s %s\n", cbrnn_exp_speech_variant_name(v),
                cbrnn_exp_speech_variant_help(v));
    fprintf(f,
        "Writes D/curves/<variant>-seed<k>.csv (%s;\n"
        "skill = 1 - MSE / MSE of predicting the current frame; wall_s = training\n"
        "seconds so far, validation excluded), D/models/<variant>-seed<k>.safetensors\n"
        "(not for the baselines persistence and linear: their curves are flat),\n"
        "D/test/<variant>-seed<k>.csv (with a test split), D/summary.json, D/summary.md\n"
        "and D/figure.png.\n"
        "\n"
        "  --corpus INPUT      audio file, folder or @list (repeatable; default samples/)\n"
        "  --val-files INPUT   held-out files (repeatable; default every 4th file of\n"
        "                      the sorted corpus)\n"
        "  --test-files INPUT  test split (repeatable): never trained or validated on;\n"
        "                      every run's final model (and each baseline) is scored on\n"
        "                      it once, into D/test/<variant>-seed<k>.csv and the summaries\n"
        "  --manifest TSV      the corpus from a manifest instead (scripts/corpus.sh's\n"
        "                      splits.tsv: tab-separated, a header naming at least path,\n"
        "                      group and split; paths relative to the manifest's folder;\n"
        "                      split train, valid or test): the test split is reported\n"
        "                      per language group and pooled\n"
        "  --variants LIST     default: all of the above\n"
        "  --seeds S           default 2\n"
        "  --steps N           training steps per run (default 1500)\n"
        "  --warmup-steps W    cbrnn: steps before the cortex freezes (default 300)\n"
        "  --eval-every K      validate every K steps (default 100)\n"
        "  --hidden H          cortex units of the cbrnn models (default 128)\n"
        "  --cb W[,W..]        cerebellum widths (default 256)\n"
        "  --spectral-radius R reservoir (default 0.9)\n"
        "  --batch B --seq-len T   windows per step and frames per window (16, 100)\n"
        "  --lr X --clip C     Adam learning rate (1e-3) and gradient-norm clip (1)\n"
        "  --jobs J            runs in parallel (default: online CPUs)\n"
        "  --no-figure\n"
        "Rerunning with the same D skips finished runs and restarts unfinished ones.\n"
        "\n" EXPERIMENT_MODES_HELP, curve_columns);
}

static int parse_double(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, PROG ": %s '%s': expected a number in %g..%g\n", opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_iopt(const char *opt, const char *s, int lo, int hi, int *out)
{
    return experiment_parse_iopt(PROG, opt, s, lo, hi, out);
}

static int parse_variants(cbrnn_exp_speech_config *o, const char *s)
{
    const char *names[CBRNN_EXP_SPEECH_MAX_VARIANTS];
    int n = cbrnn_exp_speech_n_variants();
    for (int v = 0; v < n; v++)
        names[v] = cbrnn_exp_speech_variant_name(v);
    return experiment_parse_names(PROG, "--variants", s, names, n, o->variants, &o->n_variants);
}

static int parse_cb(cbrnn_exp_speech_config *o, const char *s)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    o->n_cb = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (o->n_cb == CBRNN_MAX_CB_HIDDEN || cli_parse_int(tok, 1, 65536, &o->cb[o->n_cb])) {
            fprintf(stderr, PROG ": --cb '%s': expected 1 to %d widths W,W,... each 1..65536\n", s,
                    CBRNN_MAX_CB_HIDDEN);
            return -1;
        }
        o->n_cb++;
    }
    if (!o->n_cb) {
        fprintf(stderr, PROG ": --cb '%s': expected at least one width\n", s);
        return -1;
    }
    return 0;
}

/* The default corpus: samples/ here, else the source tree's. */
static const char *default_corpus(char *buf, size_t len)
{
    if (access("samples", R_OK) == 0)
        return "samples";
    snprintf(buf, len, "%s", __FILE__);
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(buf, '/');
        if (!slash)
            return "samples";
        *slash = 0;
    }
    size_t l = strlen(buf);
    snprintf(buf + l, len - l, "/samples");
    return buf;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* What the command line asked for besides the comparison's settings. */
typedef struct sp_front {
    cbrnn_exp_speech_config c;
    experiment_run how;
    const char **specs, **vspecs, **tspecs;
    int n_specs, n_vspecs, n_tspecs;
    const char *manifest;
    corpus mpaths, mgroups; /* the manifest's files and their groups (owned) */
} sp_front;

/* One option of the speech comparison's own. 1 taken, 0 not one of
 * them, -1 bad (after a message). */
static int speech_option(sp_front *f, int ch, const char *arg)
{
    cbrnn_exp_speech_config *o = &f->c;
    int bad = 0;
    switch (ch) {
    case 't': break; /* speech, or we would not be here */
    case 'c': f->specs[f->n_specs++] = arg; break;
    case 'V': f->vspecs[f->n_vspecs++] = arg; break;
    case 'X': f->tspecs[f->n_tspecs++] = arg; break;
    case 'M': f->manifest = arg; break;
    case 'v': bad = parse_variants(o, arg); break;
    case 's': bad = parse_iopt("--seeds", arg, 1, 1000, &o->seeds); break;
    case 'n': bad = parse_iopt("--steps", arg, 1, 100000000, &o->steps); break;
    case 'w': bad = parse_iopt("--warmup-steps", arg, 0, 100000000, &o->warmup); break;
    case 'e': bad = parse_iopt("--eval-every", arg, 1, 100000000, &o->eval_every); break;
    case 'H': bad = parse_iopt("--hidden", arg, 1, 65536, &o->hidden); break;
    case 'b': bad = parse_cb(o, arg); break;
    case 'r': bad = parse_double("--spectral-radius", arg, 1e-6, 100, &o->radius); break;
    case 'B': bad = parse_iopt("--batch", arg, 1, 65536, &o->batch); break;
    case 'T': bad = parse_iopt("--seq-len", arg, 1, 1000000, &o->seq_len); break;
    case 'l': bad = parse_double("--lr", arg, 1e-12, 10, &o->lr); break;
    case 'C': bad = parse_double("--clip", arg, 0, 1e9, &o->clip); break;
    default: return 0;
    }
    return bad ? -1 : 1;
}

/* Options into f. 0, 2 (bad usage, after a message) or -1 (--help shown). */
static int parse_options(sp_front *f, int argc, char **argv)
{
    static const struct option lo[] = {
        EXPERIMENT_COMMON_OPTIONS,
        {"corpus", required_argument, 0, 'c'},      {"val-files", required_argument, 0, 'V'},
        {"test-files", required_argument, 0, 'X'},  {"manifest", required_argument, 0, 'M'},
        {"steps", required_argument, 0, 'n'},       {"warmup-steps", required_argument, 0, 'w'},
        {"eval-every", required_argument, 0, 'e'},  {"hidden", required_argument, 0, 'H'},
        {"cb", required_argument, 0, 'b'},          {"spectral-radius", required_argument, 0, 'r'},
        {"batch", required_argument, 0, 'B'},       {"seq-len", required_argument, 0, 'T'},
        {"lr", required_argument, 0, 'l'},          {"clip", required_argument, 0, 'C'},
        {0, 0, 0, 0}};
    cbrnn_exp_speech_config *o = &f->c;
    optind = 1;
    for (;;) {
        int first = optind, ch = getopt_long(argc, argv, "h", lo, NULL);
        if (ch == -1)
            break;
        int m = experiment_common_option(&f->how, ch, optarg, first, &o->out_dir, usage);
        int rc = experiment_option_result(m ? m : speech_option(f, ch, optarg), usage);
        if (rc)
            return rc;
    }
    if (experiment_no_operands(PROG, argc, argv))
        return 2;
    if (!o->out_dir) {
        fprintf(stderr, PROG ": --out-dir is required (see --help)\n");
        return 2;
    }
    if (f->manifest && (f->n_specs || f->n_vspecs || f->n_tspecs)) {
        fprintf(stderr, PROG ": --manifest gives the files and their splits: no --corpus, "
                             "--val-files or --test-files with it\n");
        return 2;
    }
    return experiment_modes_check(&f->how) ? 2 : 0;
}

/* Column index of name in a tab-separated header (line without '\n'). */
static int tsv_column(const char *header, const char *name)
{
    int col = 0;
    size_t n = strlen(name);
    for (const char *p = header;; col++) {
        const char *tab = strchr(p, '\t');
        size_t len = tab ? (size_t)(tab - p) : strlen(p);
        if (len == n && !strncmp(p, name, n))
            return col;
        if (!tab)
            return -1;
        p = tab + 1;
    }
}

/* Field col of a tab-separated line, cut in place (the line is changed). */
static char *tsv_field(char *line, int col)
{
    char *p = line;
    for (int c = 0; c < col && p; c++) {
        p = strchr(p, '\t');
        p = p ? p + 1 : NULL;
    }
    if (p)
        p[strcspn(p, "\t")] = 0;
    return p;
}

static int grow(cbrnn_exp_speech_file **fl, int *cap)
{
    cbrnn_exp_speech_file *p = realloc(*fl, (size_t)(2 * *cap + 64) * sizeof *p);
    if (p) {
        *fl = p;
        *cap = 2 * *cap + 64;
    }
    return p != NULL;
}

/* lines grown to n (freed and NULL if that fails). */
static int *realloc_lines(int *lines, int n)
{
    int *p = realloc(lines, (size_t)n * sizeof *p);
    if (!p)
        free(lines);
    return p;
}

/* 2 after a message if two of the manifest's n files (paths resolved
 * against its folder; lines[k] the line of file k) are one file (device
 * and inode: another name, a link): it would train on what it tests, or
 * count twice. Files that cannot be seen are left to the feature pass to
 * name. 0 otherwise. */
static int manifest_repeats(const sp_front *f, const int *lines, int n)
{
    struct stat *st = calloc((size_t)(n > 0 ? n : 1), sizeof *st);
    char *seen = calloc((size_t)(n > 0 ? n : 1), 1);
    int status = st && seen ? 0 : 1;
    for (int k = 0; !status && k < n; k++) {
        seen[k] = stat(f->mpaths.paths[k], &st[k]) == 0;
        for (int j = 0; seen[k] && j < k && !status; j++)
            if (seen[j] && st[j].st_dev == st[k].st_dev && st[j].st_ino == st[k].st_ino) {
                fprintf(stderr, PROG ": %s:%d and line %d name the same file (%s, %s): a "
                                     "manifest lists each file once\n", f->manifest, lines[j],
                        lines[k], f->mpaths.paths[j], f->mpaths.paths[k]);
                status = 2;
            }
    }
    if (status == 1)
        fprintf(stderr, PROG ": out of memory\n");
    free(st);
    free(seen);
    return status;
}

/* The manifest's files into fl (split and group); 0 or an exit status. */
static int read_manifest(sp_front *f, cbrnn_exp_speech_file **files, int *n_files)
{
    FILE *in = fopen(f->manifest, "r");
    if (!in) {
        fprintf(stderr, PROG ": --manifest %s: %s\n", f->manifest, strerror(errno));
        return 2;
    }
    const char *slash = strrchr(f->manifest, '/');
    int dirlen = slash ? (int)(slash - f->manifest) + 1 : 0;
    char line[8192];
    int cols[3] = {-1, -1, -1}, lineno = 1, status = 0, cap = 0, n = 0;
    int *lines = NULL; /* each file's line, for messages */
    cbrnn_exp_speech_file *fl = NULL;
    if (fgets(line, sizeof line, in)) {
        line[strcspn(line, "\r\n")] = 0;
        cols[0] = tsv_column(line, "path");
        cols[1] = tsv_column(line, "group");
        cols[2] = tsv_column(line, "split");
    }
    if (cols[0] < 0 || cols[1] < 0 || cols[2] < 0) {
        fprintf(stderr, PROG ": %s: the header line must name the columns path, group and "
                             "split (tab-separated)\n", f->manifest);
        status = 2;
    }
    while (!status && fgets(line, sizeof line, in)) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0])
            continue;
        char *fld[3];
        for (int c = 0; c < 3; c++) {
            char copy[8192];
            memcpy(copy, line, sizeof copy);
            char *v = tsv_field(copy, cols[c]);
            fld[c] = v ? strdup(v) : NULL;
        }
        const char *sp = fld[2];
        int val = sp && (!strcmp(sp, "valid") || !strcmp(sp, "val"));
        int test = sp && !strcmp(sp, "test");
        char path[8300];
        if (!fld[0] || !fld[1] || !sp || !*fld[0] || (!val && !test && strcmp(sp, "train"))) {
            fprintf(stderr, PROG ": %s:%d: expected a path, a group and a split (train, valid or "
                                 "test)\n", f->manifest, lineno);
            status = 2;
        } else if ((n == cap && !grow(&fl, &cap)) ||
                   !(lines = realloc_lines(lines, n + 1))) {
            status = 1;
        } else if (snprintf(path, sizeof path, "%.*s%s", fld[0][0] == '/' ? 0 : dirlen,
                            f->manifest, fld[0]) < 0 ||
                   corpus_push(&f->mpaths, path) || corpus_push(&f->mgroups, fld[1])) {
            status = 1;
        } else {
            fl[n] = (cbrnn_exp_speech_file){.path = NULL, .val = val, .test = test};
            lines[n++] = lineno;
        }
        for (int c = 0; c < 3; c++)
            free(fld[c]);
    }
    fclose(in);
    for (int k = 0; k < n; k++) { /* the strings stay put once all are pushed */
        fl[k].path = f->mpaths.paths[k];
        fl[k].group = fl[k].test ? f->mgroups.paths[k] : NULL;
    }
    *files = fl;
    *n_files = n;
    if (status == 1)
        fprintf(stderr, PROG ": out of memory\n");
    if (!status)
        status = manifest_repeats(f, lines, n);
    free(lines);
    return status;
}

/* The corpus files in byte order, each once; validation files from
 * --val-files, else every 4th. *files is allocated; 0 or an exit status. */
static int list_files(const sp_front *f, corpus *inputs, corpus *vals,
                      cbrnn_exp_speech_file **files, int *n_files)
{
    char msg[8704];
    for (int i = 0; i < f->n_specs; i++)
        if (corpus_add(inputs, f->specs[i], msg, sizeof msg)) {
            fprintf(stderr, PROG ": %s\n", msg);
            return 2;
        }
    for (int i = 0; i < f->n_vspecs; i++)
        if (corpus_add(vals, f->vspecs[i], msg, sizeof msg)) {
            fprintf(stderr, PROG ": --val-files: %s\n", msg);
            return 2;
        }
    int n_in = inputs->n, n_v = vals->n;
    for (int i = 0; i < f->n_tspecs; i++)
        if (corpus_add(vals, f->tspecs[i], msg, sizeof msg)) {
            fprintf(stderr, PROG ": --test-files: %s\n", msg);
            return 2;
        }
    qsort(inputs->paths, (size_t)inputs->n, sizeof *inputs->paths, cmp_str);
    cbrnn_exp_speech_file *fl = calloc((size_t)(inputs->n + vals->n + 1), sizeof *fl);
    if (!fl)
        return 1;
    if ((f->n_vspecs && !n_v) || (f->n_tspecs && vals->n == n_v)) {
        fprintf(stderr, PROG ": --%s-files: no audio files in what it names\n",
                f->n_vspecs && !n_v ? "val" : "test");
        free(fl);
        return 2;
    }
    /* one file however it is named (./a.wav, /abs/a.wav, a link to it):
     * by device and inode, so a held-out file is never also trained on */
    struct stat *id = calloc((size_t)(inputs->n + vals->n + 1), sizeof *id);
    if (!id) {
        free(fl);
        return 1;
    }
    int n = 0, n_val = 0;
    for (int i = 0; i < inputs->n + vals->n; i++) {
        const char *p = i < n_in ? inputs->paths[i] : vals->paths[i - n_in];
        int val = i >= n_in && i < n_in + n_v, test = i >= n_in + n_v, dup = 0;
        if (stat(p, &id[n]))
            memset(&id[n], 0, sizeof id[n]); /* read later, and said there */
        for (int k = 0; k < n && !dup; k++)
            if (id[n].st_ino ? id[k].st_dev == id[n].st_dev && id[k].st_ino == id[n].st_ino
                             : !strcmp(fl[k].path, p)) {
                dup = 1;
                fl[k].val |= val;
                fl[k].test |= test;
            }
        if (!dup) {
            fl[n].path = p;
            fl[n].val = val;
            fl[n].test = test;
            n++;
        }
    }
    free(id);
    *files = fl;
    *n_files = n;
    for (int k = 0; k < n; k++)
        if (fl[k].val && fl[k].test) {
            fprintf(stderr, PROG ": %s: given as a validation and a test file\n", fl[k].path);
            return 2;
        }
    if (!f->n_vspecs) /* every 4th of the files left for training */
        for (int k = 0, c = 0; k < n; k++)
            if (!fl[k].test && ++c % 4 == 0)
                fl[k].val = 1;
    for (int k = 0; k < n; k++)
        n_val += fl[k].val;
    if (n - n_val == 0 || n_val == 0) {
        fprintf(stderr, PROG ": need at least one training and one validation file (corpus has "
                             "%d files, %d held out); give more files or --val-files\n",
                n, n_val);
        return 2;
    }
    return 0;
}

/* Every file's features by the live front end. 0 or an exit status. */
static int compute_features(cbrnn_exp_speech_file *files, int n_files, const cbrnn_feat_config *fc,
                            int *F)
{
    char msg[8704];
    for (int k = 0; k < n_files; k++) {
        float *x = NULL;
        int dim = 0, T = 0;
        if (audio_features(files[k].path, fc, 0, 1.0, FEAT_BLOCK, &x, &T, &dim, msg, sizeof msg)) {
            fprintf(stderr, PROG ": %s\n", msg);
            return 2;
        }
        files[k].x = x;
        files[k].T = T;
        *F = dim;
        if (T < 3) {
            fprintf(stderr, PROG ": %s: only %d feature frames; at least 3 needed\n",
                    files[k].path, T);
            return 2;
        }
    }
    return 0;
}

int experiment_speech(int argc, char **argv)
{
    sp_front f = {0};
    if (experiment_run_init(&f.how, PROG, argc, argv))
        return 1;
    cbrnn_exp_speech_config_default(&f.c);
    corpus inputs = {0}, vals = {0};
    cbrnn_exp_speech_file *files = NULL;
    int n_files = 0, status = 1, F = 0;
    f.specs = calloc((size_t)argc + 1, sizeof *f.specs);
    f.vspecs = calloc((size_t)argc + 1, sizeof *f.vspecs);
    f.tspecs = calloc((size_t)argc + 1, sizeof *f.tspecs);
    if (!f.specs || !f.vspecs || !f.tspecs)
        goto out;
    status = parse_options(&f, argc, argv);
    if (status) {
        status = status < 0 ? 0 : status;
        goto out;
    }
    char defbuf[4096];
    if (!f.n_specs && !f.manifest)
        f.specs[f.n_specs++] = default_corpus(defbuf, sizeof defbuf);
    if ((status = f.manifest ? read_manifest(&f, &files, &n_files)
                             : list_files(&f, &inputs, &vals, &files, &n_files)))
        goto out;
    /* The models are trained at 16 kHz: files at other rates get their
     * features at the 16 kHz level (ref_rate), as the engine would give
     * them to these models live. */
    cbrnn_feat_config fc;
    cbrnn_feat_config_default(&fc, 16000);
    fc.ref_rate = fc.sample_rate;
    if ((status = compute_features(files, n_files, &fc, &F)))
        goto out;
    char desc[512], msg[8704];
    int dl = 0;
    for (int i = 0; i < f.n_specs && dl < (int)sizeof desc - 2; i++) {
        dl += snprintf(desc + dl, sizeof desc - (size_t)dl, "%s%s", i ? "," : "", f.specs[i]);
        dl = dl < (int)sizeof desc ? dl : (int)sizeof desc - 1; /* cut, never past the end */
    }
    if (f.manifest)
        snprintf(desc, sizeof desc, "manifest %s", f.manifest);
    f.c.corpus = desc;
    int err = 0;
    cbrnn_exp *e = cbrnn_exp_speech_create(&f.c, files, n_files, F, &fc, &err, msg, sizeof msg);
    if (!e) {
        fprintf(stderr, PROG ": %s\n", msg);
        status = err == CBRNN_ERR_ARG ? 2 : 1;
        goto out;
    }
    status = experiment_drive(e, &f.how);
out:
    for (int i = 0; files && i < n_files; i++)
        free((float *)files[i].x);
    free(files);
    corpus_free(&inputs);
    corpus_free(&vals);
    free(f.specs);
    free(f.vspecs);
    free(f.tspecs);
    corpus_free(&f.mpaths);
    corpus_free(&f.mgroups);
    experiment_run_free(&f.how);
    return status;
}
