/* exp.c: the generic part of a comparison (cbrnn_experiment.h): its units
 * and their names, the results folder and its settings file, running one
 * unit with its failure record, summaries' shared pieces, the figure.
 * The forked pool is pool.c; the kinds of comparison are paper.c and
 * speech.c.
 *
 * Must never: print or exit (messages go through cbrnn_exp_report or msg),
 * or write outside the results folder it is given. */
#include <cblas.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exp_internal.h"

/* ---- Messages ---- */

void exp_say(const cbrnn_exp_report *r, const char *fmt, ...)
{
    if (!r || !r->message)
        return;
    char text[8704];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    r->message(r->user, text);
}

json_t *exp_json_num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

int exp_fail(char *msg, size_t msglen, int code, const char *fmt, ...)
{
    if (msg && msglen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, msglen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---- The comparison and its units ---- */

int exp_init(cbrnn_exp *e, const char *out_dir, const char *extra_dir, int n_variants,
             const int *variants, const char *const *names, int seeds, const char *state_ext,
             char *msg, size_t msglen)
{
    if (!out_dir || !*out_dir)
        return exp_fail(msg, msglen, CBRNN_ERR_ARG, "no results folder given");
    if (strlen(out_dir) >= sizeof e->out)
        return exp_fail(msg, msglen, CBRNN_ERR_ARG, "%s: folder name too long", out_dir);
    if (n_variants < 1 || seeds < 1)
        return exp_fail(msg, msglen, CBRNN_ERR_ARG, "no variants or no seeds");
    snprintf(e->out, sizeof e->out, "%s", out_dir);
    e->extra_dir = extra_dir;
    e->n_units = n_variants * seeds;
    e->units = calloc((size_t)e->n_units, sizeof *e->units);
    if (!e->units)
        return exp_fail(msg, msglen, CBRNN_ERR_NOMEM, "out of memory");
    /* Seeds outer, variants inner: a partial run has every variant. */
    int k = 0;
    for (int s = 0; s < seeds; s++)
        for (int vi = 0; vi < n_variants; vi++, k++) {
            exp_unit *u = &e->units[k];
            u->variant = variants[vi];
            u->seed = s;
            snprintf(u->name, sizeof u->name, "%s-seed%d", names[u->variant], s);
            snprintf(u->curve, sizeof u->curve, "%s/curves/%s.csv", e->out, u->name);
            snprintf(u->state, sizeof u->state, "%s/%s/%s%s", e->out, extra_dir, u->name,
                     state_ext);
        }
    return 0;
}

void cbrnn_exp_destroy(cbrnn_exp *e)
{
    if (!e)
        return;
    cbrnn_exp_unlock(e);
    if (e->ops && e->ops->destroy)
        e->ops->destroy(e);
    free(e->units);
    free(e->settings);
    free(e);
}

int cbrnn_exp_n_units(const cbrnn_exp *e) { return e ? e->n_units : 0; }
const char *cbrnn_exp_out_dir(const cbrnn_exp *e) { return e ? e->out : NULL; }

void cbrnn_exp_unit_name(const cbrnn_exp *e, int k, char *buf, size_t len)
{
    snprintf(buf, len, "%s", e && k >= 0 && k < e->n_units ? e->units[k].name : "?");
}

const char *cbrnn_exp_unit_curve(const cbrnn_exp *e, int k)
{
    return e && k >= 0 && k < e->n_units ? e->units[k].curve : NULL;
}

/* ---- The results folder ---- */

static int make_dir(const char *path)
{
    if (mkdir(path, 0777) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return 0;
        errno = ENOTDIR;
    }
    return -1;
}

/* <out>/settings.txt: written on the first run; a rerun must ask for
 * exactly the same, or its results would mix with others. */
/* The value of key in settings text s ("key value" lines) into out, or
 * "(none)". */
static void setting_of(const char *s, const char *key, size_t klen, char *out, size_t len)
{
    for (const char *p = s; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, key, klen) && (p[klen] == ' ' || p[klen] == '\n' || !p[klen])) {
            const char *v = p + klen + (p[klen] == ' ');
            snprintf(out, len, "%.*s", (int)strcspn(v, "\n"), v);
            return;
        }
    snprintf(out, len, "(none)");
}

/* Appends to out the keys of a whose value in b differs (or is missing). */
static size_t diff_keys(const char *a, const char *b, int a_stored, char *out, size_t at,
                        size_t len)
{
    for (const char *p = a; p && *p && at < len; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        size_t kl = strcspn(p, " \n");
        char va[256], vb[256], key[128];
        snprintf(key, sizeof key, "%.*s", (int)kl, p);
        setting_of(a, key, kl, va, sizeof va);
        setting_of(b, key, kl, vb, sizeof vb);
        if (!kl || !strcmp(va, vb) || (!a_stored && strcmp(vb, "(none)")))
            continue; /* the same; or seen from the stored side already */
        at += (size_t)snprintf(out + at, len - at, "\n  %s: stored %s, asked %s", key,
                               a_stored ? va : vb, a_stored ? vb : va);
    }
    return at;
}

/* Compares <out>/settings.txt, if there is one, with e's: 0 the same, 1
 * no file, CBRNN_ERR_ARG other settings (msg names the keys that differ)
 * or a settings file that cannot be read (msg names it and the reason: an
 * unreadable one is not "no settings", or another task's results would
 * be overwritten). */
static int compare_settings(const cbrnn_exp *e, char *msg, size_t msglen)
{
    char path[EXP_PATH];
    snprintf(path, sizeof path, "%s/settings.txt", e->out);
    const char *want = e->settings;
    FILE *f = fopen(path, "r");
    if (!f && errno == ENOENT)
        return 1;
    if (!f)
        return exp_fail(msg, msglen, CBRNN_ERR_ARG, "%s: %s", path, strerror(errno));
    enum { CAP = 1 << 16 }; /* settings are a few hundred bytes */
    char *have = calloc(CAP + 1, 1);
    if (!have) {
        fclose(f);
        return exp_fail(msg, msglen, CBRNN_ERR_NOMEM, "out of memory");
    }
    size_t n = fread(have, 1, CAP, f);
    int read_err = ferror(f) ? errno : 0;
    fclose(f);
    if (read_err) {
        free(have);
        return exp_fail(msg, msglen, CBRNN_ERR_ARG, "%s: %s", path, strerror(read_err));
    }
    have[n] = 0;
    int rc = 0;
    if (strcmp(have, want)) {
        /* the keys that differ, each with both values */
        size_t at = (size_t)snprintf(msg, msglen, "%s: this folder holds results of other "
                                     "settings; they differ in:", path);
        at = diff_keys(have, want, 1, msg, at, msglen);
        at = diff_keys(want, have, 0, msg, at, msglen);
        if (at < msglen)
            snprintf(msg + at, msglen - at, "\nuse another --out-dir (or remove %s to "
                     "start again)", e->out);
        rc = CBRNN_ERR_ARG;
    }
    free(have);
    return rc;
}

/* 1 if name is what a run of ours can leave in a results folder before
 * its settings.txt exists: cbrnn_exp_prepare writes settings.txt first
 * (through exp_replace_file, whose temporaries are
 * .settings.txt.HOST.PID.N.tmp, or .settings.txt.PID.N.tmp in the old
 * format) and only then curves/, the units' folder and .lock. */
static int settings_leftover(const char *name)
{
    static const char pre[] = ".settings.txt.", suf[] = ".tmp";
    size_t n = strlen(name), lp = sizeof pre - 1, ls = sizeof suf - 1;
    return n > lp + ls && !strncmp(name, pre, lp) && !strcmp(name + n - ls, suf);
}

/* For a results folder without settings.txt: 0 if it holds nothing (or
 * only settings_leftover names), else CBRNN_ERR_ARG with msg naming the
 * folder and what is in it: a folder of other files (a user's notes, say)
 * must not get our summary.md and summary.json over its own. Settings
 * that appear meanwhile (a --unit of the same comparison beside us wrote
 * them, then its folders) are compared as usual. */
static int check_empty(const cbrnn_exp *e, char *msg, size_t msglen)
{
    DIR *d = opendir(e->out);
    if (!d)
        return exp_fail(msg, msglen, CBRNN_ERR_ARG, "--out-dir %s: %s", e->out, strerror(errno));
    char seen[512] = "";
    int n = 0;
    size_t at = 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || settings_leftover(de->d_name))
            continue;
        if (n++ < 3 && at < sizeof seen)
            at += (size_t)snprintf(seen + at, sizeof seen - at, "%s%s", n > 1 ? ", " : "",
                                   de->d_name);
    }
    closedir(d);
    if (n == 0)
        return 0;
    int rc = compare_settings(e, msg, msglen);
    if (rc != 1)
        return rc;
    return exp_fail(msg, msglen, CBRNN_ERR_ARG,
                    "--out-dir %s: not empty and not a results folder of cbrnn experiment (no "
                    "settings.txt); it holds %s%s: use a new or empty folder",
                    e->out, seen, n > 3 ? ", ..." : "");
}

/* compare_settings, then (no settings yet) check_empty: 0 the folder may
 * be used (*fresh: it has no settings.txt yet), else an error in msg. */
static int usable_folder(const cbrnn_exp *e, int *fresh, char *msg, size_t msglen)
{
    int rc = compare_settings(e, msg, msglen);
    *fresh = rc == 1;
    return rc == 1 ? check_empty(e, msg, msglen) : rc;
}

int cbrnn_exp_check_settings(const cbrnn_exp *e, char *msg, size_t msglen)
{
    if (!e)
        return CBRNN_ERR_ARG;
    int fresh;
    struct stat st;
    if (stat(e->out, &st) && errno == ENOENT)
        return 0; /* --plan of a folder not made yet */
    return usable_folder(e, &fresh, msg, msglen);
}

/* exp_fill for a text held in a string (ctx). */
static int put_text(FILE *f, void *ctx) { return fputs(ctx, f) < 0 ? -1 : 0; }

/* The folder's settings.txt agrees with e's, or is written now into a
 * folder that holds nothing else (usable_folder). */
static int check_settings(const cbrnn_exp *e, char *msg, size_t msglen)
{
    int fresh;
    int rc = usable_folder(e, &fresh, msg, msglen);
    if (rc || !fresh)
        return rc;
    char path[EXP_PATH];
    snprintf(path, sizeof path, "%s/settings.txt", e->out);
    return exp_replace_file(path, put_text, e->settings, msg, msglen);
}

int cbrnn_exp_prepare(cbrnn_exp *e, char *msg, size_t msglen)
{
    if (make_dir(e->out))
        return exp_fail(msg, msglen, CBRNN_ERR_ARG, "--out-dir %s: cannot create: %s", e->out,
                        strerror(errno));
    int rc = check_settings(e, msg, msglen);
    if (rc)
        return rc;
    const char *sub[2] = {"curves", e->extra_dir};
    for (int i = 0; i < 2; i++) {
        char path[EXP_PATH];
        snprintf(path, sizeof path, "%s/%s", e->out, sub[i]);
        if (make_dir(path))
            return exp_fail(msg, msglen, CBRNN_ERR_IO, "%s: cannot create: %s", path,
                            strerror(errno));
    }
    return 0;
}

/* ---- One unit ---- */

static void failed_path(const cbrnn_exp *e, int k, char *buf, size_t len)
{
    snprintf(buf, len, "%s/failed/%s.txt", e->out, e->units[k].name);
}

/* Forwards messages to the host and keeps the last one for failed/. */
typedef struct tee {
    const cbrnn_exp_report *host;
    char last[2048];
} tee;

static void tee_message(void *user, const char *text)
{
    tee *t = user;
    snprintf(t->last, sizeof t->last, "%s", text);
    if (t->host && t->host->message)
        t->host->message(t->host->user, text);
}

int cbrnn_exp_run_unit(cbrnn_exp *e, int k, const cbrnn_exp_report *r)
{
    if (!e || k < 0 || k >= e->n_units)
        return CBRNN_ERR_ARG;
    /* One BLAS thread: the units are the parallelism, the products are
     * small, and the bytes must not depend on a thread count. */
    openblas_set_num_threads(1);
    char fpath[EXP_PATH];
    failed_path(e, k, fpath, sizeof fpath);
    remove(fpath);
    tee t = {r, ""};
    cbrnn_exp_report mine = {&t, tee_message, NULL, NULL};
    int rc = e->ops->run_unit(e, k, &mine);
    if (rc) {
        char dir[EXP_PATH];
        snprintf(dir, sizeof dir, "%s/failed", e->out);
        char text[sizeof t.last + 1];
        snprintf(text, sizeof text, "%s\n", t.last[0] ? t.last : cbrnn_strerror(rc));
        if (make_dir(dir) == 0) /* best effort: the unit's own error is what counts */
            exp_replace_file(fpath, put_text, text, NULL, 0);
    }
    return rc;
}

/* ---- Summaries ---- */

void exp_mean_sd(const double *v, int n, double *mean, double *sd)
{
    double s = 0, q = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    *mean = n ? s / n : NAN;
    for (int i = 0; i < n; i++)
        q += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(q / (n - 1)) : 0.0; /* sample sd (n - 1) */
}

FILE *exp_summary_open(const cbrnn_exp *e, exp_summary *s, char *msg, size_t msglen)
{
    s->buf = NULL;
    s->len = 0;
    s->md = open_memstream(&s->buf, &s->len);
    if (!s->md)
        exp_fail(msg, msglen, CBRNN_ERR_NOMEM, "%s/summary.md: out of memory", e->out);
    return s->md;
}

/* exp_fill for summary.md: the bytes composed in an exp_summary. */
static int put_summary(FILE *f, void *ctx)
{
    const exp_summary *s = ctx;
    return fwrite(s->buf, 1, s->len, f) == s->len ? 0 : -1;
}

/* exp_fill for summary.json: as json_dump_file would write it. */
static int put_json(FILE *f, void *ctx)
{
    return json_dumpf(ctx, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER) ? -1 : 0;
}

int exp_summary_close(const cbrnn_exp *e, exp_summary *s, json_t *root, char *msg, size_t msglen)
{
    char path[EXP_PATH];
    snprintf(path, sizeof path, "%s/summary.md", e->out);
    int bad = ferror(s->md); /* a memory stream fails only for want of memory */
    bad = fclose(s->md) || bad;
    int rc = bad ? exp_fail(msg, msglen, CBRNN_ERR_NOMEM, "%s: out of memory", path)
                 : exp_replace_file(path, put_summary, s, msg, msglen);
    if (!rc) {
        snprintf(path, sizeof path, "%s/summary.json", e->out);
        rc = exp_replace_file(path, put_json, root, msg, msglen);
    }
    free(s->buf);
    s->buf = NULL;
    json_decref(root);
    return rc;
}

int cbrnn_exp_unit_state(const cbrnn_exp *e, int k, long *done, long *total, char *why,
                         size_t whylen)
{
    if (!e || k < 0 || k >= e->n_units)
        return CBRNN_ERR_ARG;
    long have = e->ops->progress(e, k);
    if (done)
        *done = have;
    if (total)
        *total = e->work_per_unit;
    if (why && whylen)
        why[0] = 0;
    if (have >= e->work_per_unit) {
        long sure = e->ops->confirmed ? e->ops->confirmed(e, k) : have;
        if (sure >= e->work_per_unit)
            return CBRNN_EXP_UNIT_DONE;
        if (done)
            *done = sure;
        if (why && whylen)
            snprintf(why, whylen, "its curve goes past its last checkpoint (%ld of %ld); "
                     "running it again redoes the rest", sure, e->work_per_unit);
        return CBRNN_EXP_UNIT_PARTIAL;
    }
    char path[EXP_PATH];
    failed_path(e, k, path, sizeof path);
    FILE *f = fopen(path, "r");
    if (f) {
        if (why && whylen && fgets(why, (int)(whylen < 65536 ? whylen : 65536), f))
            why[strcspn(why, "\n")] = 0;
        fclose(f);
        return CBRNN_EXP_UNIT_FAILED;
    }
    return access(e->units[k].curve, F_OK) == 0 ? CBRNN_EXP_UNIT_PARTIAL : CBRNN_EXP_UNIT_MISSING;
}

int exp_summary_has(const cbrnn_exp *e, int k) { return !e->left_out || !e->left_out[k]; }

void exp_summary_partial(const cbrnn_exp *e, FILE *md, json_t *root)
{
    if (!e->left_out)
        return;
    json_t *names = json_array();
    int n = 0;
    fprintf(md, "**Partial summary:** left out (not finished):");
    for (int k = 0; k < e->n_units; k++)
        if (e->left_out[k]) {
            fprintf(md, "%s %s", n++ ? "," : "", e->units[k].name);
            json_array_append_new(names, json_string(e->units[k].name));
        }
    fprintf(md, ". %d of %d runs below.\n\n", e->n_units - n, e->n_units);
    json_object_set_new(root, "partial", json_true());
    json_object_set_new(root, "left_out", names);
}

int cbrnn_exp_summarise(cbrnn_exp *e, int partial, char *msg, size_t msglen)
{
    if (!e)
        return CBRNN_ERR_ARG;
    if (!partial)
        return e->ops->summarise(e, msg, msglen);
    int *out = calloc((size_t)e->n_units, sizeof *out);
    if (!out)
        return exp_fail(msg, msglen, CBRNN_ERR_NOMEM, "out of memory");
    int n_out = 0;
    for (int k = 0; k < e->n_units; k++)
        n_out += out[k] = cbrnn_exp_unit_state(e, k, NULL, NULL, NULL, 0) != CBRNN_EXP_UNIT_DONE;
    int rc;
    if (n_out == e->n_units) {
        rc = exp_fail(msg, msglen, CBRNN_ERR_IO, "no finished run to summarise");
    } else {
        e->left_out = n_out ? out : NULL;
        rc = e->ops->summarise(e, msg, msglen);
        e->left_out = NULL;
    }
    free(out);
    return rc;
}

/* ---- The figure ---- */

/* figure.png through scripts/plot_experiment.py (matplotlib, Debian's
 * /usr/bin/python3). CBRNN_PLOT_SCRIPT overrides where the script is; by
 * default it is this build's source tree's, or, once that is gone, the
 * copy installed in share/cbrnn. */
int cbrnn_exp_figure(const cbrnn_exp *e, char *msg, size_t msglen)
{
    const char *script = getenv("CBRNN_PLOT_SCRIPT");
    if (!script)
        script = access(CBRNN_PLOT_SOURCE, R_OK) == 0 ? CBRNN_PLOT_SOURCE : CBRNN_PLOT_INSTALLED;
    if (access(script, R_OK) || access("/usr/bin/python3", X_OK))
        return exp_fail(msg, msglen, CBRNN_ERR_UNSUPPORTED,
                        "no figure (needs /usr/bin/python3 and %s; set "
                        "CBRNN_PLOT_SCRIPT to scripts/plot_experiment.py)", script);
    fflush(NULL);
    pid_t p = fork();
    if (p == 0) {
        execl("/usr/bin/python3", "python3", script, e->out, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (p < 0 || waitpid(p, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
        return exp_fail(msg, msglen, CBRNN_ERR_IO, "%s failed; no figure.png", script);
    return 0;
}
