/* util_output.c: see util_output.h. Host-side code: it may allocate and
 * do I/O; it never prints (the commands word the messages it returns). */
#define _XOPEN_SOURCE 700 /* realpath */
#include "util_output.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cbrnn/cbrnn_model.h"
#include "file_replace.h"
#include "host_audio.h"

/* ---- the guard: the corpora of cbrnn train and eval ---- */

int cli_files_inputs(host_files *f, const corpus *c)
{
    for (int i = 0; i < c->n; i++)
        if (host_files_input(f, c->paths[i]))
            return -1;
    return 0;
}

/* The teacher (suffix) and label file (labels_dir) of every file of c. */
static int companions(host_files *f, const corpus *c, const char *suffix, const char *labels_dir)
{
    for (int i = 0; i < c->n; i++) {
        char *t = suffix ? corpus_teacher_path(c->paths[i], suffix) : NULL;
        char *l = labels_dir ? labels_path_for(labels_dir, c->paths[i]) : NULL;
        int bad = (suffix && !t) || (labels_dir && !l) || host_files_input(f, t) ||
                  host_files_input(f, l);
        free(t);
        free(l);
        if (bad)
            return -1;
    }
    return 0;
}

/* The command's own reading of the corpus says what is left out. */
static void ignore_warning(void *user, const char *line, int left_out)
{
    (void)user;
    (void)line;
    (void)left_out;
}

int cli_files_corpus(host_files *f, const char *const *specs, int n, const char *pairs,
                     const char *suffix, const char *labels_dir)
{
    corpus c = {0}, teachers = {0};
    char msg[1024];
    int rc = 0;
    c.warn = ignore_warning; /* every file that can be read; the reader warns */
    for (int i = 0; i < n; i++) {
        corpus_add(&c, specs[i], msg, sizeof msg); /* a bad spec: reported by its reader */
        if (specs[i][0] == '@') /* the list file itself is read too */
            rc = rc || host_files_input(f, specs[i] + 1);
    }
    if (pairs)
        corpus_read_pairs(pairs, &c, &teachers, msg, sizeof msg);
    rc = rc || host_files_input(f, pairs) || cli_files_inputs(f, &c) ||
         cli_files_inputs(f, &teachers) || companions(f, &c, suffix, labels_dir);
    corpus_free(&c);
    corpus_free(&teachers);
    return rc ? -1 : 0;
}

/* ---- temporaries and the signals that remove them ---- */

#define MAX_TMP 16
static char g_tmp[MAX_TMP][4096];
static volatile sig_atomic_t g_used[MAX_TMP];
static volatile sig_atomic_t *g_stop;

/* Removes PATH.tmp.HOST.PID files beside path of this host whose process
 * is gone (killed by SIGKILL or a crash, which no handler sees), as model
 * saves do (model/file_replace.c); a process that is alive, or not ours to
 * ask, keeps its. A pid means nothing on another machine sharing the
 * folder (NFS), so other hosts' temporaries stay, and so do old-format
 * PATH.tmp.PID ones (their machine is unknown). */
static void sweep_stale(const char *path, const char *host)
{
    char dir[PATH_MAX], full[PATH_MAX + 256];
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + (slash == path) : 1,
             slash ? path : ".");
    size_t blen = strlen(base), hlen = strlen(host);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (strncmp(name, base, blen) || strncmp(name + blen, ".tmp.", 5) ||
            strncmp(name + blen + 5, host, hlen) || name[blen + 5 + hlen] != '.')
            continue;
        const char *num = name + blen + 5 + hlen + 1;
        char *end;
        errno = 0;
        long pid = strtol(num, &end, 10);
        if (errno || end == num || *end || *num < '0' || *num > '9' || !cbrnn_file_pid_gone(pid))
            continue;
        snprintf(full, sizeof full, "%s/%s", dir, name);
        unlink(full);
    }
    if (d)
        closedir(d);
}

int cli_tmp_name(char *tmp, size_t n, const char *path)
{
    char host[CBRNN_TMP_HOST_MAX + 1];
    if (cbrnn_file_tmp_host(host) == 0) /* unknown: "unknown-host", and no sweep */
        sweep_stale(path, host);
    int k = snprintf(tmp, n, "%s.tmp.%s.%ld", path, host, (long)getpid());
    return k < 0 || (size_t)k >= n ? -1 : 0;
}

int cli_tmp_add(const char *tmp)
{
    for (int i = 0; i < MAX_TMP; i++)
        if (!g_used[i] && strlen(tmp) < sizeof g_tmp[i]) {
            strcpy(g_tmp[i], tmp);
            g_used[i] = 1;
            return 0;
        }
    return -1;
}

void cli_tmp_forget(const char *tmp)
{
    for (int i = 0; i < MAX_TMP; i++)
        if (g_used[i] && !strcmp(g_tmp[i], tmp))
            g_used[i] = 0;
}

void cli_tmp_drop(const char *tmp)
{
    unlink(tmp);
    cli_tmp_forget(tmp);
}

static void on_signal(int sig)
{
    if (g_stop && !*g_stop) {
        *g_stop = sig;
        return;
    }
    for (int i = 0; i < MAX_TMP; i++)
        if (g_used[i])
            unlink(g_tmp[i]);
    signal(sig, SIG_DFL);
    raise(sig);
}

void cli_catch_signals(volatile sig_atomic_t *stop)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    g_stop = stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* a hangup the caller chose to ignore (nohup) stays ignored. SIGINT
     * is caught even when ignored (a background job of a script): the
     * tools' Ctrl-C and `kill -INT` contract, docs/RELIABILITY.md */
    struct sigaction old;
    if (sigaction(SIGHUP, NULL, &old) != 0 || old.sa_handler != SIG_IGN)
        sigaction(SIGHUP, &sa, NULL);
}

/* ---- writing through a temporary ---- */

int cli_sync_file(const char *path, char *msg, size_t msglen)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        snprintf(msg, msglen, "%s: cannot flush to disk: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* The folder holding path synced, so the rename itself is on disk; a
 * file system that cannot sync folders (EINVAL) is not an error. */
static int sync_dir(const char *path, char *msg, size_t msglen)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + (slash == path) : 1,
             slash ? path : ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return 0;
    int rc = fsync(fd) != 0 && errno != EINVAL && errno != EROFS;
    if (rc)
        snprintf(msg, msglen, "%s: cannot flush the folder %s to disk: %s", path, dir,
                 strerror(errno));
    close(fd);
    return rc ? -1 : 0;
}

int cli_replace(const char *tmp, const char *path, char *msg, size_t msglen)
{
    struct stat st;
    const char *why = lstat(path, &st) == 0 ? host_file_not_regular(&st) : NULL;
    if (why) {
        snprintf(msg, msglen, "%s: %s", path, why);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        snprintf(msg, msglen, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
        return -1;
    }
    cli_tmp_forget(tmp);
    return sync_dir(path, msg, msglen);
}

/* Copies the open file in to the new file to (created 0600, synced). 0
 * or -1 with msg; a failed copy is removed. */
static int copy_new(int in, const char *to, char *msg, size_t msglen)
{
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL, 0600), bad = out < 0;
    char buf[65536];
    ssize_t n = 0;
    while (!bad && (n = read(in, buf, sizeof buf)) > 0)
        for (ssize_t done = 0; !bad && done < n;) {
            ssize_t w = write(out, buf + done, (size_t)(n - done));
            bad = w < 0;
            done += w > 0 ? w : 0;
        }
    bad = bad || n < 0 || fsync(out) != 0;
    int e = errno;
    if (out >= 0 && close(out) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        snprintf(msg, msglen, "%s: cannot write: %s", to, strerror(e));
        if (out >= 0)
            unlink(to);
    }
    return bad ? -1 : 0;
}

int cli_move_new(const char *from, int fd, const char *to, char *msg, size_t msglen)
{
    struct stat st;
    if (lstat(to, &st) == 0) {
        snprintf(msg, msglen, "%s: exists already", to);
        return -1;
    }
    if (link(from, to) == 0) { /* the same file system: never over another file */
        unlink(from);
        return sync_dir(to, msg, msglen);
    }
    int in = fd >= 0 ? fd : open(from, O_RDONLY);
    if (in < 0 || lseek(in, 0, SEEK_SET) != 0) {
        snprintf(msg, msglen, "%s: cannot read: %s", from, strerror(errno));
        if (in >= 0 && in != fd)
            close(in);
        return -1;
    }
    int rc = copy_new(in, to, msg, msglen);
    if (in != fd)
        close(in);
    if (!rc)
        unlink(from);
    return rc ? rc : sync_dir(to, msg, msglen);
}

cli_outfile *cli_out_open(const char *path, char *msg, size_t msglen)
{
    struct stat st;
    const char *why = lstat(path, &st) == 0 ? host_file_not_regular(&st) : NULL;
    cli_outfile *o = why ? NULL : calloc(1, sizeof *o);
    if (!o) {
        snprintf(msg, msglen, "%s: %s", path, why ? why : "out of memory");
        return NULL;
    }
    int fd = -1;
    if (!(o->path = strdup(path)) || cli_tmp_name(o->tmp, sizeof o->tmp, path)) {
        snprintf(msg, msglen, "%s: %s", path, o->path ? "path too long" : "out of memory");
        goto fail;
    }
    /* O_EXCL never clobbers a stranger's file; 0666: the umask decides. */
    if ((fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL, 0666)) < 0 || cli_tmp_add(o->tmp) ||
        !(o->f = fdopen(fd, "wb"))) {
        snprintf(msg, msglen, "%s: cannot create output: %s", path,
                 fd < 0 ? strerror(errno) : "too many open outputs");
        if (fd >= 0) {
            close(fd);
            cli_tmp_drop(o->tmp);
        }
        goto fail;
    }
    return o;
fail:
    free(o->path);
    free(o);
    return NULL;
}

int cli_out_finish(cli_outfile *o, char *msg, size_t msglen)
{
    if (!o->f)
        return 0;
    errno = 0;
    int bad = fflush(o->f) != 0 || ferror(o->f);
    int e = errno;
    if (!bad && fsync(fileno(o->f)) != 0) {
        bad = 1;
        e = errno;
    }
    if (fclose(o->f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    o->f = NULL;
    if (bad) {
        snprintf(msg, msglen, "%s: cannot write: %s", o->path, strerror(e ? e : EIO));
        cli_tmp_drop(o->tmp);
        return -1;
    }
    return 0;
}

int cli_out_commit(cli_outfile *o, char *msg, size_t msglen)
{
    int rc = cli_out_finish(o, msg, msglen);
    if (!rc && (rc = cli_replace(o->tmp, o->path, msg, msglen)))
        cli_tmp_drop(o->tmp);
    free(o->path);
    free(o);
    return rc;
}

void cli_out_abort(cli_outfile *o)
{
    if (!o)
        return;
    if (o->f)
        fclose(o->f);
    cli_tmp_drop(o->tmp);
    free(o->path);
    free(o);
}

int cli_finish_stdout(const char *cmd, int status)
{
    errno = 0;
    int bad = fflush(stdout) != 0;
    int e = errno;
    if (!bad && !ferror(stdout))
        return status;
    fprintf(stderr, "cbrnn %s: writing output: %s\n", cmd,
            e ? strerror(e) : "an earlier write to standard output failed");
    return status ? status : 1;
}

void cli_csv_field(FILE *f, const char *s)
{
    putc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            putc('"', f);
        putc(*s, f);
    }
    putc('"', f);
}
