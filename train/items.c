/* items.c: the corpus of a training run (train_internal.h): the inputs,
 * --pairs and --val-files read as path lists, one item per distinct file
 * (the same file under two names is one) with its teacher, every file
 * probed (its rate; unreadable or too short ones left out or, with
 * --strict, an error), the validation split by file, and the
 * --speed-perturb copies. Library code: messages go through train_say. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host_audio.h"
#include "train_internal.h"

/* A corpus file that cannot be read or holds no usable audio (why: "PATH:
 * what is wrong"): with --strict the run stops (-1); otherwise the file is
 * marked to be left out, with a warning, and counted (0). One bad file
 * among thousands must not cost a long run. */
int train_bad_file(struct run *r, struct item *t, const char *why)
{
    if (r->o.strict) {
        train_say(r, CBRNN_TRAIN_MSG_ERROR, "%s (--strict: a bad file is an error)", why);
        return -1;
    }
    train_say(r, CBRNN_TRAIN_MSG_WARNING, "skipping %s", why);
    t->skip = 1;
    r->n_skipped++;
    return 0;
}

void train_say_none_left(struct run *r)
{
    int n_skipped = r->n_skipped;
    train_say(r, CBRNN_TRAIN_MSG_ERROR, "no training file left: %d file%s skipped (unreadable, "
              "no audio or too short; see the warnings)", n_skipped, n_skipped == 1 ? "" : "s");
}

/* They own nothing yet (see train_internal.h). */
int train_drop_skipped(struct item *it, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!it[i].skip)
            it[k++] = it[i];
    return k;
}

/* An entry of a corpus folder left out (corpus.h): said, and counted
 * with the files skipped; a folder that brought nothing: said. */
static void corpus_warning(void *user, const char *line, int left_out)
{
    struct run *r = user;
    train_say(r, CBRNN_TRAIN_MSG_WARNING, "%s%s", left_out ? "skipping " : "", line);
    r->n_skipped += left_out;
}

/* The corpus: INPUTS, the --pairs list and --val-files, as path lists;
 * entries of their folders that cannot be read are left out with a
 * warning (--strict: an error), as corpus files are. */
int train_read_inputs(struct run *r)
{
    r->inputs.warn = r->valc.warn = corpus_warning;
    r->inputs.warn_user = r->valc.warn_user = r;
    r->inputs.strict = r->valc.strict = r->o.strict;
    for (int i = 0; i < r->o.n_inputs; i++)
        if (corpus_add(&r->inputs, r->o.inputs[i], r->msg, sizeof r->msg)) {
            train_say(r, CBRNN_TRAIN_MSG_ERROR, "%s", r->msg);
            return CBRNN_TRAIN_BAD_INPUT;
        }
    if (r->o.pairs &&
        corpus_read_pairs(r->o.pairs, &r->inputs, &r->teachers, r->msg, sizeof r->msg)) {
        train_say(r, CBRNN_TRAIN_MSG_ERROR, "%s", r->msg);
        return CBRNN_TRAIN_BAD_INPUT;
    }
    if (r->o.pairs && r->teachers.n != r->inputs.n) {
        train_say(r, CBRNN_TRAIN_MSG_ERROR, "with --pairs, give the inputs in the pairs list only");
        return CBRNN_TRAIN_BAD_INPUT;
    }
    for (int i = 0; i < r->o.n_val_files; i++)
        if (corpus_add(&r->valc, r->o.val_files[i], r->msg, sizeof r->msg)) {
            train_say(r, CBRNN_TRAIN_MSG_ERROR, "--val-files: %s", r->msg);
            return CBRNN_TRAIN_BAD_INPUT;
        }
    return 0;
}

/* One item per distinct file (inputs, then --val-files), each with its
 * teacher (map). With a teacher suffix, files named like teachers are not
 * inputs; a file named in --val-files is validation even if also an input. */
int train_make_items(struct run *r)
{
    const cbrnn_train_opts *o = &r->o;
    int n_all = r->inputs.n + r->valc.n;
    r->it = calloc((size_t)(n_all ? n_all : 1), sizeof *r->it);
    if (!r->it)
        return train_out_of_memory(r);
    struct item *it = r->it;
    int n = 0;
    for (int i = 0; i < n_all; i++) {
        int is_val = i >= r->inputs.n;
        const char *p = is_val ? r->valc.paths[i - r->inputs.n] : r->inputs.paths[i];
        if (o->teacher_suffix && corpus_stem_has_suffix(p, o->teacher_suffix))
            continue;
        /* The same file under two names (a/b.wav and ./a/b.wav, a link)
         * is one item: it cannot train and validate at once. */
        struct stat sb;
        unsigned long long dev = 0, ino = 0;
        if (stat(p, &sb) == 0) {
            dev = (unsigned long long)sb.st_dev;
            ino = (unsigned long long)sb.st_ino;
        }
        int dup = 0;
        for (int k = 0; k < n && !dup; k++)
            if (ino ? it[k].dev == dev && it[k].ino == ino : !strcmp(it[k].path, p)) {
                dup = 1;
                it[k].val |= is_val;
            }
        if (dup)
            continue;
        it[n].dev = dev;
        it[n].ino = ino;
        it[n].path = p;
        it[n].val = is_val;
        it[n].speed = 1.0;
        if (o->pairs) {
            it[n].teacher = NULL;
            for (int k = 0; k < r->inputs.n; k++)
                if (!strcmp(r->inputs.paths[k], p))
                    it[n].teacher = r->teachers.paths[k];
            if (!it[n].teacher) {
                train_say(r, CBRNN_TRAIN_MSG_ERROR, "--val-files %s is not in the pairs list %s, "
                          "so it has no teacher", p, o->pairs);
                return CBRNN_TRAIN_BAD_INPUT;
            }
        }
        r->n = ++n;
    }
    if (n == 0 && r->n_skipped) {
        train_say_none_left(r);
        return CBRNN_TRAIN_BAD_INPUT;
    }
    if (n == 0) {
        char names[1024] = "";
        if (o->n_inputs)
            corpus_name_specs(names, sizeof names, o->inputs, o->n_inputs);
        else if (o->pairs)
            corpus_name_specs(names, sizeof names, &o->pairs, 1);
        train_say(r, CBRNN_TRAIN_MSG_ERROR, "no audio files to train on%s%s (empty corpus)%s",
                  names[0] ? " in " : "", names,
                  o->n_inputs == 0 && !o->pairs ? ": give INPUTS" : "");
        return CBRNN_TRAIN_BAD_INPUT;
    }
    if (o->teacher_suffix)
        for (int i = 0; i < n; i++) {
            /* Kept alive in the teachers corpus so the item can point at it. */
            char *t = corpus_teacher_path(it[i].path, o->teacher_suffix);
            if (!t || corpus_push(&r->teachers, t)) {
                free(t);
                return train_out_of_memory(r);
            }
            free(t);
            it[i].teacher = r->teachers.paths[r->teachers.n - 1];
        }
    return 0;
}

/* 1 (with the reason in msg) when a file of len samples at rate is
 * surely too short to train on: fewer feature frames than a target needs
 * (frames are counted in ms, so at any rate), with one frame to spare so
 * that the feature pass, which counts exactly, stays the judge of files
 * near the limit. Found before the validation split, so the split does
 * not pick a file that is then dropped. */
static int too_short(const struct run *r, int64_t len, double rate, char *msg, size_t msglen,
                     const char *path)
{
    const cbrnn_train_opts *o = &r->o;
    if (!(rate > 0) || !(o->fc.hop_ms > 0))
        return 0;
    double ms = 1000.0 * (double)len / rate;
    double frames = ms < o->fc.win_ms ? 0 : floor((ms - o->fc.win_ms) / o->fc.hop_ms) + 1;
    int need = (o->target == CBRNN_TARGET_PREDICT ? o->horizon : 0) + 2;
    if (frames + 1 >= need)
        return 0;
    snprintf(msg, msglen, "%s: %.0f ms of audio, about %.0f feature frames (%g ms hop); at least "
             "%d needed", path, ms, frames, o->fc.hop_ms, need);
    return 1;
}

/* Says once that item i's teacher (map) is a recording whose header was
 * never finished, like its input: a teacher shared with an earlier item
 * was said there. A teacher that cannot be opened is left to the feature
 * pass, which says why with its input's name. */
static void warn_teacher(struct run *r, int i)
{
    const char *t = r->it[i].teacher;
    if (!t)
        return;
    char why[256];
    audio_in *a = audio_in_open(t, 0, why, sizeof why);
    if (!a)
        return;
    const char *w = audio_in_warning(a);
    int said = 0;
    for (int k = 0; w && k < i && !said; k++)
        said = r->it[k].teacher && !strcmp(r->it[k].teacher, t);
    if (w && !said)
        train_say(r, CBRNN_TRAIN_MSG_WARNING, "%s", w);
    audio_in_close(a);
}

/* Every file opened once, before the split: its rate, and the files that
 * cannot be read, hold no audio or are too short left out (or --strict
 * stops); a cut recording is said, an input's or a teacher's. */
int train_probe_files(struct run *r)
{
    for (int i = 0; i < r->n; i++) {
        warn_teacher(r, i); /* first: every item's, so "said at an earlier item" holds */
        audio_in *a = audio_in_open(r->it[i].path, 0, r->msg, sizeof r->msg);
        if (!a) {
            if (train_bad_file(r, &r->it[i], r->msg))
                return CBRNN_TRAIN_BAD_INPUT;
            continue;
        }
        if (audio_in_warning(a)) /* read all the same: said, by the caller's printer */
            train_say(r, CBRNN_TRAIN_MSG_WARNING, "%s", audio_in_warning(a));
        r->it[i].rate = audio_in_file_rate(a);
        int64_t len = audio_in_file_frames(a);
        audio_in_close(a);
        if (len >= 0 && too_short(r, len, r->it[i].rate, r->msg, sizeof r->msg, r->it[i].path) &&
            train_bad_file(r, &r->it[i], r->msg))
            return CBRNN_TRAIN_BAD_INPUT;
    }
    r->n = train_drop_skipped(r->it, r->n);
    if (r->n == 0) {
        train_say_none_left(r);
        return CBRNN_TRAIN_BAD_INPUT;
    }
    return 0;
}

/* The validation split, by file: --val-files, or --val-fraction of the
 * files chosen by a shuffle that is deterministic for the seed. */
int train_split_validation(struct run *r)
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
            return train_out_of_memory(r);
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
        train_say(r, CBRNN_TRAIN_MSG_ERROR, "every file is a validation file: nothing left to "
                  "train on");
        return CBRNN_TRAIN_BAD_INPUT;
    }
    return 0;
}

/* --speed-perturb: every training item again at each speed, appended
 * (validation items stay as recorded). */
int train_add_speed_copies(struct run *r)
{
    const cbrnn_train_opts *o = &r->o;
    if (!o->n_speeds)
        return 0;
    int n_train = 0;
    for (int i = 0; i < r->n; i++)
        n_train += !r->it[i].val;
    if ((long)n_train * (o->n_speeds + 1) + (r->n - n_train) > INT_MAX / 2)
        return train_out_of_memory(r);
    int n_all = r->n + n_train * o->n_speeds;
    struct item *it = realloc(r->it, (size_t)n_all * sizeof *it);
    if (!it)
        return train_out_of_memory(r);
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
