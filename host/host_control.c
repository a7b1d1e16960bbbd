/* host_control.c: the save-path policy of control surfaces (see
 * cbrnn_control.h), and the perturbed-feedback options both hosts take. A control message may name a file to save the adapted
 * model to; without these checks `/cbrnn/save s PATH` could overwrite any
 * file the process may write. Never prints, never on an audio thread. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cbrnn/cbrnn_control.h"
#include "cbrnn/cbrnn_model.h"
#include "cbrnn/cbrnn_perturb.h"
#include "file_replace.h"
#include "host_output.h"

static void say(char *msg, size_t len, const char *fmt, const char *a, const char *b)
{
    if (msg && len)
        snprintf(msg, len, fmt, a, b ? b : "");
}

/* The folder part of path ("." when it has none) into buf. */
static int parent_of(char *buf, size_t len, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return snprintf(buf, len, ".") >= (int)len ? -1 : 0;
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    if (n >= len)
        return -1;
    memcpy(buf, path, n);
    buf[n] = 0;
    return 0;
}

/* 0 when path is absent, or a regular file that loads as a cbrnn model. */
static int existing_is_model(const char *path, char *msg, size_t msglen)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return errno == ENOENT ? 0 : (say(msg, msglen, "%s: %s", path, strerror(errno)),
                                      CBRNN_ERR_IO);
    if (!S_ISREG(sb.st_mode)) {
        say(msg, msglen, "%s exists and is not a regular file%s", path,
            S_ISLNK(sb.st_mode) ? " (a symbolic link)" : "");
        return CBRNN_ERR_FORMAT;
    }
    int err = 0;
    char why[512];
    cbrnn_model *m = cbrnn_model_load(path, &err, why, sizeof why);
    if (!m) {
        say(msg, msglen, "%s exists and is not a cbrnn model: not overwritten (%s)", path, why);
        return CBRNN_ERR_FORMAT;
    }
    cbrnn_model_destroy(m);
    return 0;
}

/* 1 (said) when base, the file name of path, leaves no room for the
 * temporary a save writes beside it (model/file_replace.c refuses it
 * then, and every save of that name would fail). */
static int name_too_long(const char *path, const char *base, char *msg, size_t msglen)
{
    if (strlen(base) <= CBRNN_REPLACE_NAME_MAX)
        return 0;
    char why[64];
    snprintf(why, sizeof why, "the file name is too long (at most %d bytes)",
             CBRNN_REPLACE_NAME_MAX);
    say(msg, msglen, "%s: %s", path, why);
    return 1;
}

int cbrnn_control_check_name(const char *name, size_t max)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > max)
        return CBRNN_ERR_ARG;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return CBRNN_ERR_ARG;
    return 0;
}

int cbrnn_control_check_save(char *out, size_t outlen, const char *dir, const char *path,
                             char *msg, size_t msglen)
{
    if (!out || !outlen || !path || !*path) {
        say(msg, msglen, "empty save path%s%s", "", NULL);
        return CBRNN_ERR_ARG;
    }
    if (cbrnn_control_check_name(path, PATH_MAX - 1)) {
        say(msg, msglen, "a save path with control characters (newline, tab, ...) is not "
                         "accepted%s%s", "", NULL);
        return CBRNN_ERR_ARG;
    }
    if (!dir) {
        say(msg, msglen, "%s: no folder for saves (give --save or --save-dir)%s", path, NULL);
        return CBRNN_ERR_ARG;
    }
    char full[PATH_MAX], parent[PATH_MAX], rdir[PATH_MAX], rparent[PATH_MAX];
    int n = path[0] == '/' ? snprintf(full, sizeof full, "%s", path)
                           : snprintf(full, sizeof full, "%s/%s", dir, path);
    size_t flen = strlen(full);
    if (n < 0 || (size_t)n >= sizeof full || flen == 0 || full[flen - 1] == '/') {
        say(msg, msglen, "%s: not a file name%s", path, NULL);
        return CBRNN_ERR_ARG;
    }
    const char *base = strrchr(full, '/') ? strrchr(full, '/') + 1 : full;
    if (!strcmp(base, ".") || !strcmp(base, "..")) {
        say(msg, msglen, "%s: not a file name%s", path, NULL);
        return CBRNN_ERR_ARG;
    }
    if (name_too_long(path, base, msg, msglen))
        return CBRNN_ERR_ARG;
    if (!realpath(dir, rdir)) {
        say(msg, msglen, "save folder %s: %s", dir, strerror(errno));
        return CBRNN_ERR_ARG;
    }
    if (parent_of(parent, sizeof parent, full) || !realpath(parent, rparent)) {
        say(msg, msglen, "%s: its folder does not exist%s", path, NULL);
        return CBRNN_ERR_ARG;
    }
    size_t dl = strlen(rdir);
    int inside = !strncmp(rparent, rdir, dl) &&
                 (rparent[dl] == 0 || rparent[dl] == '/' || (dl == 1 && rdir[0] == '/'));
    if (!inside) {
        say(msg, msglen, "%s is outside the save folder %s", path, rdir);
        return CBRNN_ERR_ARG;
    }
    n = snprintf(out, outlen, "%s/%s", rparent, base);
    if (n < 0 || (size_t)n >= outlen) {
        say(msg, msglen, "%s: path too long%s", path, NULL);
        return CBRNN_ERR_ARG;
    }
    long holder = out_lock_holder(out); /* NAME.lock: another program's --save */
    if (holder) {
        char who[64];
        snprintf(who, sizeof who, holder > 0 ? "process %ld" : "another process", holder);
        say(msg, msglen, "%s: in use by %s (another cbrnn program saving there): not "
                         "overwritten", path, who);
        return CBRNN_ERR_ARG;
    }
    return existing_is_model(out, msg, msglen);
}

/* The folder rdir/rel opened one component at a time, following no
 * symbolic link: -1 (errno) when a component is not a real folder now. */
static int open_beneath(const char *rdir, const char *rel)
{
    int fd = open(rdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char part[NAME_MAX + 1];
    while (fd >= 0 && *rel) {
        size_t n = strcspn(rel, "/");
        if (n > NAME_MAX) {
            close(fd);
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(part, rel, n);
        part[n] = 0;
        rel += n + (rel[n] == '/');
        if (n == 0)
            continue;
        int next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(fd);
        fd = next;
    }
    return fd;
}

int cbrnn_control_save_in(const cbrnn_model *m, const char *dir, const char *path, char *msg,
                          size_t msglen)
{
    char ok[PATH_MAX], rdir[PATH_MAX];
    int rc = cbrnn_control_check_save(ok, sizeof ok, dir, path, msg, msglen);
    if (rc)
        return rc;
    if (!realpath(dir, rdir)) {
        say(msg, msglen, "save folder %s: %s", dir, strerror(errno));
        return CBRNN_ERR_ARG;
    }
    /* ok is rdir/SUB.../NAME with no symbolic link in it (the check made
     * it so); walk it again from rdir without following any, so a folder
     * swapped for a link since the check cannot take the file elsewhere. */
    size_t dl = strlen(rdir);
    const char *rel = ok + dl + (ok[dl] == '/');
    const char *slash = strrchr(rel, '/');
    char sub[PATH_MAX];
    size_t sl = slash ? (size_t)(slash - rel) : 0;
    memcpy(sub, rel, sl);
    sub[sl] = 0;
    int dfd = open_beneath(rdir, sub);
    if (dfd < 0) {
        say(msg, msglen, "%s: its folder changed while saving (%s): not saved", path,
            strerror(errno));
        return CBRNN_ERR_ARG;
    }
    rc = cbrnn_model_save_at(m, dfd, slash ? slash + 1 : rel, ok, msg, msglen);
    close(dfd);
    return rc;
}

int cbrnn_control_check_output(const char *path, char *msg, size_t msglen)
{
    char parent[PATH_MAX];
    size_t len = path ? strlen(path) : 0;
    if (!len || path[len - 1] == '/') {
        say(msg, msglen, "'%s': not a file name%s", path ? path : "", NULL);
        return CBRNN_ERR_ARG;
    }
    if (parent_of(parent, sizeof parent, path)) {
        say(msg, msglen, "%s: path too long%s", path, NULL);
        return CBRNN_ERR_ARG;
    }
    if (name_too_long(path, strrchr(path, '/') ? strrchr(path, '/') + 1 : path, msg, msglen))
        return CBRNN_ERR_ARG;
    struct stat sb;
    if (stat(parent, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        say(msg, msglen, "%s: the folder %s does not exist", path, parent);
        return CBRNN_ERR_IO;
    }
    if (access(parent, W_OK | X_OK) != 0) {
        say(msg, msglen, "%s: cannot write in the folder %s", path, parent);
        return CBRNN_ERR_IO;
    }
    return existing_is_model(path, msg, msglen);
}

int cbrnn_host_perturb_option(cbrnn_engine_config *c, const char *opt, const char *arg,
                              char *msg, size_t msglen)
{
    static const struct { const char *name; int param; const char *want; } opts[] = {
        {"perturb-delay", CBRNN_PERTURB_DELAY, "ms in [0, 2000]"},
        {"perturb-gain", CBRNN_PERTURB_GAIN, "dB in [-60, 20]"},
        {"perturb-pitch", CBRNN_PERTURB_PITCH, "semitones in [-12, 12]"},
        {"perturb-max-delay", -1, "ms in (0, 2000]"}};
    if (!c || !opt)
        return CBRNN_ERR_ARG;
    if (!strcmp(opt, "feedback-to-model")) {
        c->listen = 1;
        if (!c->perturb)
            c->perturb = 1;
        return 0;
    }
    for (size_t k = 0; k < sizeof opts / sizeof *opts; k++) {
        if (strcmp(opt, opts[k].name))
            continue;
        char *end;
        errno = 0;
        double v = arg ? strtod(arg, &end) : NAN;
        int p = opts[k].param;
        if (!arg || errno || end == arg || *end || !isfinite(v) ||
            (p >= 0 ? cbrnn_perturb_check(p, (float)v, 0) != 0
                    : !(v > 0 && v <= CBRNN_PERTURB_DELAY_MAX_MS))) {
            if (msg && msglen)
                snprintf(msg, msglen, "--%s '%s': expected %s", opt, arg ? arg : "",
                         opts[k].want);
            return CBRNN_ERR_ARG;
        }
        if (p == CBRNN_PERTURB_PITCH)
            c->perturb = 2;
        else if (!c->perturb)
            c->perturb = 1;
        if (p == CBRNN_PERTURB_DELAY)
            c->perturb_delay_ms = (float)v;
        else if (p == CBRNN_PERTURB_GAIN)
            c->perturb_gain_db = (float)v;
        else if (p == CBRNN_PERTURB_PITCH)
            c->perturb_pitch = (float)v;
        else
            c->perturb_max_delay_ms = (float)v;
        if (c->perturb_delay_ms > c->perturb_max_delay_ms)
            c->perturb_max_delay_ms = c->perturb_delay_ms;
        return 0;
    }
    if (msg && msglen)
        snprintf(msg, msglen, "--%s: not a perturbation option", opt);
    return CBRNN_ERR_ARG;
}

void cbrnn_host_perturb_for_events(cbrnn_engine_config *c, const cbrnn_event *ev, size_t n)
{
    int need;
    float md;
    cbrnn_events_perturb_needs(ev, n, &need, &md);
    if (need > c->perturb)
        c->perturb = need;
    if (md > c->perturb_max_delay_ms)
        c->perturb_max_delay_ms = md;
}
