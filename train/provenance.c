/* provenance.c: the end of a training run (train_internal.h): provenance
 * in the model's metadata (the command, date and version, the corpus
 * split and held-out files, the settings and final losses), the model
 * file replaced atomically, and the closing line. Library code: messages
 * go through train_say. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cbrnn/cbrnn_host.h"
#include "digest.h"
#include "train_internal.h"

/* The names of cbrnn_optim_config.kind and cbrnn_train_config.windows, as
 * `cbrnn train` spells them. */
static const char *const opt_names[] = {"sgd", "adam"};
static const char *const windows_names[] = {"positions", "frames"};

/* The held-out list in the metadata: at most this many names and bytes.
 * A 10 000-file corpus held out 799 files as 64 KiB of absolute paths
 * (the shipped default model), most of the header; 50 names show what
 * was held out, and val_files says how many. */
#define HELD_OUT_NAMES 50
#define HELD_OUT_BYTES 8192

/* *acc keeps the first error code. */
static void keep(int *acc, int rc)
{
    if (!*acc)
        *acc = rc;
}

/* Sets key to val, or removes it when val is empty: the keys that appear
 * only when they apply (docs/FORMATS.md). */
static int set_meta_or_clear(cbrnn_model *m, const char *key, const char *val)
{
    if (!*val) {
        cbrnn_model_del_meta(m, key);
        return 0;
    }
    return cbrnn_model_set_meta(m, key, val);
}

/* Which files were held out, so an evaluation can avoid them: held_out_dir
 * (their common folder, when they have one), held_out (at most
 * HELD_OUT_NAMES names relative to it, ';'-separated) and, when that is
 * not all of them, held_out_truncated ("50 of 799 names"). 0 or -1. */
static int record_held_out(struct run *r)
{
    /* zeroed: gcc 12 takes the list for read uninitialised when n_val is 0 */
    const char **val = calloc((size_t)r->n + 1, sizeof *val);
    char *held = calloc(HELD_OUT_BYTES, 1);
    int n_val = 0, shown = 0, rc = CBRNN_ERR_NOMEM;
    if (!val || !held)
        goto out;
    for (int i = 0; i < r->n; i++)
        if (r->it[i].val)
            val[n_val++] = r->it[i].path;
    size_t dir = corpus_common_dir_len(val, n_val), len = 0;
    for (; shown < n_val && shown < HELD_OUT_NAMES; shown++) {
        size_t l = strlen(val[shown] + dir);
        if (len + l + 2 > HELD_OUT_BYTES)
            break;
        if (len)
            held[len++] = ';';
        memcpy(held + len, val[shown] + dir, l + 1);
        len += l;
    }
    char d[4096] = "", b[64] = "";
    if (dir) /* the folder without its last '/', unless it is the root */
        snprintf(d, sizeof d, "%.*s", (int)(dir > 1 ? dir - 1 : dir), val[0]);
    if (shown < n_val)
        snprintf(b, sizeof b, "%d of %d names", shown, n_val);
    rc = set_meta_or_clear(r->m, "held_out_dir", d);
    keep(&rc, cbrnn_model_set_meta(r->m, "held_out", held));
    keep(&rc, set_meta_or_clear(r->m, "held_out_truncated", b));
out:
    free(val);
    free(held);
    return rc;
}

/* The content digests of the recordings that trained the model and of
 * those held out (digest.h: sha256_file_set), so a model can prove its
 * lists: train_set_sha256, val_set_sha256 (when any was held out). The
 * --speed-perturb copies are the same recordings and are not counted. A
 * file that cannot be read again now is said and its digest left out:
 * the training it ends is not lost for it. */
static int record_digests(struct run *r)
{
    static const char *const keys[2] = {"train_set_sha256", "val_set_sha256"};
    const char **paths = malloc((size_t)(r->n > 0 ? r->n : 1) * sizeof *paths);
    if (!paths)
        return CBRNN_ERR_NOMEM;
    int rc = 0;
    for (int v = 0; v < 2 && !rc; v++) {
        int k = 0;
        for (int i = 0; i < r->n; i++)
            if (r->it[i].val == v && r->it[i].speed == 1.0)
                paths[k++] = r->it[i].path;
        char hex[SHA256_HEX] = "";
        if (k && sha256_file_set(paths, k, hex, r->msg, sizeof r->msg)) {
            train_say(r, CBRNN_TRAIN_MSG_WARNING, "%s; the model records no %s", r->msg,
                      keys[v]);
            hex[0] = '\0';
        }
        rc = set_meta_or_clear(r->m, keys[v], hex);
    }
    free(paths);
    return rc;
}

/* The date the host gave (o->date) or now, ISO 8601 in UTC; "" if it
 * cannot be told. */
static void run_date(const cbrnn_train_opts *o, char *buf, size_t cap)
{
    buf[0] = '\0';
    time_t now = o->date >= 0 ? (time_t)o->date : time(NULL);
    struct tm tmv;
    if (gmtime_r(&now, &tmv))
        strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tmv);
}

/* --speed-perturb's speeds ("0.9,1.1"), or no key without it. */
static int record_speeds(struct run *r)
{
    const cbrnn_train_opts *o = &r->o;
    if (!o->n_speeds)
        return set_meta_or_clear(r->m, "speed_perturb", "");
    char b[CBRNN_TRAIN_MAX_SPEEDS * 24] = "";
    for (int k = 0; k < o->n_speeds; k++)
        snprintf(b + strlen(b), sizeof b - strlen(b), "%s%g", k ? "," : "", o->speeds[k]);
    return cbrnn_model_set_meta(r->m, "speed_perturb", b);
}

/* Provenance in the model's metadata: the command, date and version, the
 * corpus split, the training settings and the final losses. */
int train_record_provenance(struct run *r)
{
    const cbrnn_train_opts *o = &r->o;
    cbrnn_model *m = r->m;
    char date[32];
    run_date(o, date, sizeof date);
    char b[64];
    int mrc = set_meta_or_clear(m, "command", o->command ? o->command : "");
    keep(&mrc, cbrnn_model_set_meta(m, "date", date));
    keep(&mrc, cbrnn_model_set_meta(m, "cbrnn_version", CBRNN_VERSION_STRING));
#define META_F(key, fmt, val)                                                                     \
    do {                                                                                          \
        snprintf(b, sizeof b, fmt, val);                                                          \
        keep(&mrc, cbrnn_model_set_meta(m, key, b));                                              \
    } while (0)
    META_F("train_files", "%d", r->n_train - r->n_copies);
    keep(&mrc, record_speeds(r));
    META_F("val_files", "%d", r->n - r->n_train);
    keep(&mrc, record_held_out(r));
    keep(&mrc, record_digests(r));
    META_F("skipped_files", "%d", r->n_skipped);
    META_F("train_frames", "%ld", r->train_frames);
    META_F("seed", "%llu", (unsigned long long)o->tc.seed);
    META_F("optimizer", "%s", opt_names[o->tc.opt.kind]);
    META_F("lr", "%g", (double)o->tc.opt.lr);
    META_F("batch", "%d", o->tc.batch);
    META_F("seq_len", "%d", o->tc.seq_len);
    META_F("windows", "%s", o->tc.carry_state ? "carry" : windows_names[o->tc.windows]);
    META_F("steps_warmup", "%ld", o->warmup);
    META_F("steps_frozen", "%ld", o->steps);
    META_F("steps_done", "%ld", r->step);
    if (o->average > 0)
        META_F("average", "%g", o->average);
    if (isfinite(r->last_train))
        META_F("final_train_loss", "%.6g", r->last_train);
    if (r->vr.have) {
        META_F("final_val_loss", "%.6g", r->vr.loss);
        if (o->target == CBRNN_TARGET_CLASSIFY) {
            META_F("final_val_accuracy", "%.6g", r->vr.acc);
        } else {
            META_F("final_val_persistence_loss", "%.6g", r->vr.persist);
            META_F("final_skill", "%.6g", r->vr.skill);
        }
    }
    if (r->interrupted)
        keep(&mrc, cbrnn_model_set_meta(m, "interrupted", "yes"));
#undef META_F
    if (mrc) { /* tool keys always fit (CBRNN_MAX_META_OWN) */
        train_say(r, CBRNN_TRAIN_MSG_ERROR, "cannot record the provenance: %s",
                  cbrnn_strerror(mrc));
        return CBRNN_TRAIN_FAILED;
    }
    return 0;
}

/* Tells the host where the model went (cbrnn_train_report.saved). */
static void told_saved(struct run *r, const char *path, int how)
{
    if (r->rep && r->rep->saved)
        r->rep->saved(r->rep->user, path, how);
}

/* out could not be written (r->msg says why: a full disk, its folder
 * gone): the same model as a rescue copy through cbrnn_host_save_rescue
 * (the one cbrnn-jack's exit save falls back on), said with where it is,
 * so the end of a run does not cost its training. The run still fails:
 * CBRNN_TRAIN_FAILED. */
static int save_rescue(struct run *r, const char *out)
{
    char why[sizeof r->msg], where[4096];
    snprintf(why, sizeof why, "%s", r->msg);
    train_say(r, CBRNN_TRAIN_MSG_ERROR, "%s", why);
    /* by NULL: a trained model, not an adapted one (no adapted_* keys) */
    if (cbrnn_host_save_rescue(r->m, out, NULL, NULL, 0, where, sizeof where, r->msg,
                               sizeof r->msg)) {
        train_say(r, CBRNN_TRAIN_MSG_ERROR, "%s; the trained model is lost", r->msg);
        return CBRNN_TRAIN_FAILED;
    }
    train_say(r, CBRNN_TRAIN_MSG_ERROR, "saved a rescue copy instead: %s (%ld steps%s); move it "
              "where it belongs", where, r->step, r->interrupted ? ", interrupted" : "");
    told_saved(r, where, CBRNN_TRAIN_SAVED_RESCUE);
    return CBRNN_TRAIN_FAILED;
}

/* The model file (replaced atomically) and the closing line: the summary
 * (a RESULT line), or when stopped where it stopped. */
int train_save_and_report(struct run *r)
{
    const cbrnn_train_opts *o = &r->o;
    /* An interrupted run never replaces a model already at -o (a finished
     * one, say, being trained again): it goes beside it. */
    char beside[4096];
    const char *out = o->out;
    struct stat st;
    if (r->interrupted && stat(o->out, &st) == 0) {
        size_t n = strlen(o->out), k = strlen(".safetensors");
        int cut = n > k && !strcmp(o->out + n - k, ".safetensors") ? (int)(n - k) : (int)n;
        if (snprintf(beside, sizeof beside, "%.*s.interrupted.safetensors", cut, o->out) <
            (int)sizeof beside)
            out = beside;
    }
    if (cbrnn_model_save(r->m, out, r->msg, sizeof r->msg))
        return save_rescue(r, out);
    told_saved(r, out, out == beside ? CBRNN_TRAIN_SAVED_ASIDE : CBRNN_TRAIN_SAVED_OUT);
    if (r->interrupted) {
        train_say(r, CBRNN_TRAIN_MSG_ERROR, "interrupted at step %ld of %ld; saved the model so "
                  "far to %s%s", r->step, r->total, out,
                  out == beside ? " (the model already at -o is kept)" : "");
        return CBRNN_TRAIN_STOPPED;
    }
    /* room for any double in %.4f (309 digits before the point) */
    char train[512] = "", val[1536] = "";
    if (isfinite(r->last_train))
        snprintf(train, sizeof train, ", train loss %.4f", r->last_train);
    if (r->vr.have) {
        if (o->target == CBRNN_TARGET_CLASSIFY)
            snprintf(val, sizeof val, ", validation loss %.4f accuracy %.3f", r->vr.loss,
                     r->vr.acc);
        else
            snprintf(val, sizeof val, isfinite(r->vr.skill)
                                          ? ", validation loss %.4f persistence %.4f skill %.3f"
                                          : ", validation loss %.4f persistence %.4f skill n/a "
                                            "(the persistence loss is 0)",
                     r->vr.loss, r->vr.persist, r->vr.skill);
    }
    train_say(r, CBRNN_TRAIN_MSG_RESULT, "saved %s: %zu parameters, %ld steps%s%s", o->out,
              r->m->n_params, r->step, train, val);
    return 0;
}

