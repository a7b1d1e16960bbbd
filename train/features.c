/* features.c: the features of a training run (train_internal.h): computed
 * once per file with the streaming front end the live hosts use
 * (audio_features_each), the next file on a second thread meanwhile, into
 * the disk feature cache (featcache.h: a corpus larger than memory trains
 * in bounded memory), at the level of the model's rate (ref_rate); then
 * the classify labels as frame classes, and the corpus normaliser from the
 * training files applied in place. Library code: messages go through
 * train_say. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "host_audio.h"
#include "train_internal.h"

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
/* A corpus normaliser is degenerate (cbrnn_std_degenerate), and the run
 * refused, when fewer than one band in 10 varies by more than STD_FLOOR
 * over the training files: digital silence, or one steady tone. Dividing
 * by the floor then scales any real input by ~1000 (a model of 2 s of
 * silence scored loss 1e8 on speech). Speech varies in every band; a
 * corpus with silent files among the speech is not touched. */

/* The feature cache, in --cache-dir or the folder of -o (where the user
 * has room to write). */
int train_open_cache(struct run *r)
{
    const char *cdir = r->o.cache_dir;
    if (!cdir) {
        r->out_dir = strdup(r->o.out);
        if (!r->out_dir)
            return train_out_of_memory(r);
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
        /* a folder that is not there or not ours is the user's to fix;
         * a full disk or no memory is a failure while working */
        int e = errno;
        train_say(r, CBRNN_TRAIN_MSG_ERROR, "%s%s", r->msg,
                  r->o.cache_dir ? "" : " (--cache-dir DIR puts it elsewhere)");
        return e != ENOENT && e != ENOTDIR && e != EACCES && e != EROFS ? CBRNN_TRAIN_FAILED
                                                                        : CBRNN_TRAIN_BAD_INPUT;
    }
    return 0;
}

/* The model is trained at the rate of its first training file (or --rate);
 * files at other rates get their mel energies at that rate's level
 * (ref_rate), as the engine gives them to the model live. */
int train_choose_rate(struct run *r)
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

/* audio_features_each's receiver: frames go straight to the cache. */
struct to_cache {
    feat_cache *c;
    const struct run *r; /* polled: the host's stop */
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
    return train_stopped(tc->r); /* the host asks to stop: stop early */
}

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

/* Appends the features of path to the cache: *off (floats), *T frames,
 * *dim. 0; 1 when stopped; with msg: -1 the input is bad (BAD_INPUT),
 * -2 the cache could not be written (a full disk: FAILED). */
static int features_to_cache(const struct run *r, feat_cache *c, const char *path, double rate,
                             double speed, const cbrnn_feat_config *fc, size_t *off, int *T,
                             int *dim, char *msg, size_t msglen)
{
    struct to_cache tc = {c, r, 0, 0, 0, ""};
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

/* The teacher's features of item i (map), after the item's own: the same
 * length within one frame. 0 (also when the item was skipped) or the
 * status the run ends with. */
static int teacher_features(struct run *r, struct item *t)
{
    int tT = 0, tdim = 0;
    int frc = features_to_cache(r, r->cache, t->teacher, 0, t->speed, &r->o.fc, &t->toff, &tT,
                                &tdim, r->msg, sizeof r->msg);
    if (frc > 0) {
        train_say(r, CBRNN_TRAIN_MSG_ERROR, "interrupted while computing features; no model "
                  "written");
        return CBRNN_TRAIN_STOPPED;
    }
    if (frc == -2) {
        train_say(r, CBRNN_TRAIN_MSG_ERROR, "teacher of %s: %s", t->path, r->msg);
        return CBRNN_TRAIN_FAILED;
    }
    if (frc < 0) {
        char why[sizeof r->msg + 64];
        snprintf(why, sizeof why, "%s: its teacher %s", t->path, r->msg);
        return train_bad_file(r, t, why) ? CBRNN_TRAIN_BAD_INPUT : 0;
    }
    /* Different rates round the hop differently: allow one frame. */
    if (abs(tT - t->T) > 1) {
        train_say(r, CBRNN_TRAIN_MSG_ERROR, "%s has %d frames but its teacher %s has %d: they "
                  "must have the same length (within one %g ms frame)",
                  t->path, t->T, t->teacher, tT, r->o.fc.hop_ms);
        return CBRNN_TRAIN_BAD_INPUT;
    }
    if (tT < t->T)
        t->T = tT;
    return 0;
}

/* Item t's features into the cache, with room for the running normaliser,
 * its teacher's features and its labels. 0 (also when the item was
 * skipped: t->skip) or the status the run ends with. */
static int item_features(struct run *r, struct item *t, const struct prefetch *pre)
{
    const cbrnn_train_opts *o = &r->o;
    int dim = 0;
    int frc = train_stopped(r) ? 1
              : pre  ? prefetched_to_cache(r->cache, pre, &t->xoff, &t->T, &dim, r->msg,
                                           sizeof r->msg)
                     : features_to_cache(r, r->cache, t->path, t->rate, t->speed, &o->fc,
                                         &t->xoff, &t->T, &dim, r->msg, sizeof r->msg);
    if (frc > 0) {
        train_end_line(r);
        train_say(r, CBRNN_TRAIN_MSG_ERROR, "interrupted while computing features; no model "
                  "written");
        return CBRNN_TRAIN_STOPPED;
    }
    if (frc == -2) {
        /* a full disk is not the input's fault */
        train_say(r, CBRNN_TRAIN_MSG_ERROR, "%s", r->msg);
        return CBRNN_TRAIN_FAILED;
    }
    if (frc < 0)
        return train_bad_file(r, t, r->msg) ? CBRNN_TRAIN_BAD_INPUT : 0;
    int need = (o->target == CBRNN_TARGET_PREDICT ? o->horizon : 0) + 2;
    if (t->T < need) {
        snprintf(r->msg, sizeof r->msg,
                 "%s: only %d feature frames (%g ms hop%s); at least %d needed", t->path, t->T,
                 o->fc.hop_ms, t->speed != 1.0 ? ", a --speed-perturb copy" : "", need);
        return train_bad_file(r, t, r->msg) ? CBRNN_TRAIN_BAD_INPUT : 0;
    }
    r->F = dim;
    /* Room for the running normaliser's z and s beside x, filled once
     * the corpus statistics are known. */
    if (o->stream_norm > 0 &&
        reserve_cache(r->cache, &t->zoff, 2 * (size_t)t->T * r->F, r->msg, sizeof r->msg)) {
        train_say(r, CBRNN_TRAIN_MSG_ERROR, "%s", r->msg);
        return CBRNN_TRAIN_FAILED;
    }
    if (t->teacher) {
        int rc = teacher_features(r, t);
        if (rc || t->skip)
            return rc;
    }
    if (o->labels_dir) {
        char *lp = labels_path_for(o->labels_dir, t->path);
        if (!lp || labels_read(lp, &t->lf, r->msg, sizeof r->msg)) {
            train_say(r, CBRNN_TRAIN_MSG_ERROR, "%s", lp ? r->msg : "out of memory");
            free(lp);
            return CBRNN_TRAIN_BAD_INPUT;
        }
        free(lp);
    }
    return 0;
}

/* Features, once per file, into the disk cache; then the cache is mapped
 * and every item's views (x, t, z, s) point into it. */
int train_features(struct run *r)
{
    r->t0 = train_now_s();
    /* Before any feature is made: two inputs of one name sharing a label
     * file is a corpus mistake, not a bad file to skip. */
    if (r->o.labels_dir) {
        const char **paths = malloc((size_t)(r->n ? r->n : 1) * sizeof *paths);
        if (!paths)
            return train_out_of_memory(r);
        for (int i = 0; i < r->n; i++)
            paths[i] = r->it[i].path;
        int bad = labels_check_distinct(r->o.labels_dir, paths, r->n, r->msg, sizeof r->msg);
        free(paths);
        if (bad) {
            train_say(r, CBRNN_TRAIN_MSG_ERROR, "%s", r->msg);
            return CBRNN_TRAIN_BAD_INPUT;
        }
    }
    struct prefetch pf = {.i = -1}, next;
    for (int i = 0; i < r->n; i++) {
        if (r->it[i].skip)
            continue;
        train_progress(r, "features", i, r->n, r->it[i].path);
        /* Files in pairs: the next one on a second thread meanwhile. */
        int j = i + 1;
        while (j < r->n && r->it[j].skip)
            j++;
        int started = pf.i != i && j < r->n && !train_stopped(r) &&
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
    train_progress(r, "features", r->n, r->n, "");
    r->n = train_drop_skipped(r->it, r->n);
    int n_left = 0;
    for (int i = 0; i < r->n; i++)
        n_left += !r->it[i].val;
    if (n_left == 0) {
        train_say_none_left(r);
        return CBRNN_TRAIN_BAD_INPUT;
    }
    float *base = feat_cache_map(r->cache, r->msg, sizeof r->msg);
    if (!base) {
        train_say(r, CBRNN_TRAIN_MSG_ERROR, "%s", r->msg);
        return CBRNN_TRAIN_FAILED;
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

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Classify: the classes are every label of the training files, sorted;
 * each file's labels become per-frame class indices. */
int train_collect_classes(struct run *r)
{
    if (r->o.target != CBRNN_TARGET_CLASSIFY)
        return 0;
    for (int i = 0; i < r->n; i++)
        if (!r->it[i].val && labels_collect(&r->classes, &r->n_classes, CBRNN_MAX_CLASSES,
                                            &r->it[i].lf, r->msg, sizeof r->msg)) {
            train_say(r, CBRNN_TRAIN_MSG_ERROR, "%s", r->msg);
            return CBRNN_TRAIN_BAD_INPUT;
        }
    if (r->n_classes < 2) {
        train_say(r, CBRNN_TRAIN_MSG_ERROR, "the training label files hold %d distinct label%s; "
                  "classify needs at least 2", r->n_classes, r->n_classes == 1 ? "" : "s");
        return CBRNN_TRAIN_BAD_INPUT;
    }
    qsort(r->classes, (size_t)r->n_classes, sizeof *r->classes, cmp_str);
    for (int i = 0; i < r->n; i++) {
        struct item *t = &r->it[i];
        cbrnn_feat_config fr = r->o.fc;
        fr.sample_rate = t->rate;
        t->labels = malloc((size_t)t->T * sizeof(int));
        if (!t->labels)
            return train_out_of_memory(r);
        if (labels_to_frames(t->labels, &t->lf, (const char *const *)r->classes, r->n_classes,
                             t->rate, cbrnn_feat_config_hop(&fr), cbrnn_feat_config_win(&fr),
                             t->T, r->msg, sizeof r->msg)) {
            train_say(r, CBRNN_TRAIN_MSG_ERROR, "%s", r->msg);
            return CBRNN_TRAIN_BAD_INPUT;
        }
    }
    /* Labels past every file's end (times in milliseconds, say) or of
     * zero length name classes but label no frame: the loss would be 0
     * and the model untrained, yet the run "succeed". */
    long labelled = 0;
    for (int i = 0; i < r->n; i++)
        if (!r->it[i].val)
            for (int t = 0; t < r->it[i].T; t++)
                labelled += r->it[i].labels[t] >= 0;
    if (labelled == 0) {
        train_say(r, CBRNN_TRAIN_MSG_ERROR, "%s: no frame of the training files is labelled "
                  "(labels past the files' ends? times in milliseconds?): label times are "
                  "seconds", r->o.labels_dir);
        return CBRNN_TRAIN_BAD_INPUT;
    }
    return 0;
}

/* Whether the normaliser of the training files (r->sd before the floor)
 * is degenerate (cbrnn_std_degenerate); then said, naming the corpus. */
static int degenerate(struct run *r)
{
    int F = r->F, varying = 0, n_files = 0;
    const char *first = NULL;
    if (!cbrnn_std_degenerate(r->sd, F, STD_FLOOR, &varying))
        return 0;
    for (int i = 0; i < r->n; i++)
        if (!r->it[i].val && r->it[i].speed == 1.0 && !r->it[i].skip && n_files++ == 0)
            first = r->it[i].path;
    char more[64] = "";
    if (n_files > 1)
        snprintf(more, sizeof more, " and the %d other training file%s", n_files - 1,
                 n_files == 2 ? "" : "s");
    train_say(r, CBRNN_TRAIN_MSG_ERROR, "%s%s: nothing to learn from: %d of the %d feature bands "
              "vary (standard deviation above %g; at least 1 in %d must): "
              "digital silence? The normaliser would blow any real input up "
              "by about %g", first ? first : "the training files", more, varying, F,
              (double)STD_FLOOR, CBRNN_STD_DEGENERATE_SHARE, 1.0 / (double)STD_FLOOR);
    return 1;
}

/* The corpus normaliser from the training files only, as recorded: not
 * their --speed-perturb copies, so models with and without them are
 * scored in the same space (--init: the model's own, as it was trained
 * and adapted with). Applied in place to every file's features and
 * teacher. */
int train_normalise(struct run *r)
{
    int F = r->F;
    r->mean = malloc((size_t)F * sizeof *r->mean);
    r->sd = malloc((size_t)F * sizeof *r->sd);
    if (!r->mean || !r->sd || cbrnn_stats_init(&r->st, F))
        return train_out_of_memory(r);
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
    cbrnn_stats_result(&r->st, r->mean, r->sd, 0.0f);
    if (!r->o.init_model && degenerate(r))
        return CBRNN_TRAIN_BAD_INPUT;
    for (int f = 0; f < F; f++)
        if (r->sd[f] < STD_FLOOR)
            r->sd[f] = STD_FLOOR;
    if (r->o.init_model) {
        memcpy(r->mean, r->o.init_model->norm_mean, (size_t)F * sizeof *r->mean);
        memcpy(r->sd, r->o.init_model->norm_std, (size_t)F * sizeof *r->sd);
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
