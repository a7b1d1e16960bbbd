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
#include "host_audio.h"

/* ---- the guard ---- */

static struct cli_file *grow(struct cli_file **v, int *n)
{
    struct cli_file *p = realloc(*v, (size_t)(*n + 1) * sizeof *p);
    if (!p)
        return NULL;
    *v = p;
    p += (*n)++;
    memset(p, 0, sizeof *p);
    return p;
}

int cli_files_input(cli_files *f, const char *path)
{
    struct stat st;
    if (!path || stat(path, &st) != 0)
        return 0;
    struct cli_file *x = grow(&f->in, &f->n_in);
    if (!x || !(x->path = strdup(path)))
        return -1;
    x->dev = st.st_dev;
    x->ino = st.st_ino;
    x->exists = 1;
    return 0;
}

int cli_files_inputs(cli_files *f, const corpus *c)
{
    for (int i = 0; i < c->n; i++)
        if (cli_files_input(f, c->paths[i]))
            return -1;
    return 0;
}

/* The teacher (suffix) and label file (labels_dir) of every file of c. */
static int companions(cli_files *f, const corpus *c, const char *suffix, const char *labels_dir)
{
    for (int i = 0; i < c->n; i++) {
        char *t = suffix ? corpus_teacher_path(c->paths[i], suffix) : NULL;
        char *l = labels_dir ? labels_path_for(labels_dir, c->paths[i]) : NULL;
        int bad = (suffix && !t) || (labels_dir && !l) || cli_files_input(f, t) ||
                  cli_files_input(f, l);
        free(t);
        free(l);
        if (bad)
            return -1;
    }
    return 0;
}

int cli_files_corpus(cli_files *f, const char *const *specs, int n, const char *pairs,
                     const char *suffix, const char *labels_dir)
{
    corpus c = {0, NULL}, teachers = {0, NULL};
    char msg[1024];
    int rc = 0;
    for (int i = 0; i < n; i++) {
        corpus_add(&c, specs[i], msg, sizeof msg); /* a bad spec: reported by its reader */
        if (specs[i][0] == '@') /* the list file itself is read too */
            rc = rc || cli_files_input(f, specs[i] + 1);
    }
    if (pairs)
        corpus_read_pairs(pairs, &c, &teachers, msg, sizeof msg);
    rc = rc || cli_files_input(f, pairs) || cli_files_inputs(f, &c) ||
         cli_files_inputs(f, &teachers) || companions(f, &c, suffix, labels_dir);
    corpus_free(&c);
    corpus_free(&teachers);
    return rc ? -1 : 0;
}

/* The real folder of path plus its last name ("/abs/dir/name"), so that
 * two spellings of one file not yet created compare equal. NULL when the
 * folder does not resolve (the writer reports it) or out of memory. */
static char *canonical(const char *path)
{
    char dir[PATH_MAX], real[PATH_MAX];
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + (slash == path) : 1,
             slash ? path : ".");
    if (!realpath(dir, real))
        return NULL;
    size_t n = strlen(real) + strlen(base) + 2;
    char *c = malloc(n);
    if (c)
        snprintf(c, n, "%s/%s", real, base);
    return c;
}

/* Does path start as a safetensors file does (an 8-byte little-endian
 * header length, then '{')? The model loader reads a whole file before
 * judging it; a big CSV of an earlier run is told apart by 9 bytes. */
static int safetensors_start(const char *path)
{
    unsigned char b[9];
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(b, 1, sizeof b, f) : 0;
    if (f)
        fclose(f);
    return n == sizeof b && b[8] == '{';
}

static const char *const A_MODEL = "a cbrnn model";
static const char *const AUDIO = "an audio file";

/* What an existing output would destroy: A_MODEL, another safetensors
 * file (a model of a newer format, a damaged one, someone else's
 * tensors: never replaced), AUDIO or NULL (replacing it loses nothing of
 * ours). */
static const char *precious(const char *path)
{
    int err = 0;
    char msg[256];
    if (safetensors_start(path)) {
        cbrnn_model *m = cbrnn_model_load(path, &err, msg, sizeof msg);
        cbrnn_model_destroy(m);
        return m ? A_MODEL : "a safetensors file that this build cannot load as a model (a newer "
                             "format, a damaged model or other tensors)";
    }
    return audio_file_is_audio(path) ? AUDIO : NULL;
}

/* Why an existing file at path may not be an output, or NULL. */
static const char *not_regular(const struct stat *st)
{
    if (S_ISREG(st->st_mode))
        return NULL;
    return S_ISLNK(st->st_mode)   ? "is a symbolic link (the output would replace the link)"
           : S_ISDIR(st->st_mode) ? "is a directory; give a file name"
           : S_ISFIFO(st->st_mode) ? "is a FIFO (named pipe); outputs must be regular files"
           : S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)
               ? "is a device; outputs must be regular files"
               : "is not a regular file";
}

/* The checks on an existing output (lst: its lstat; st: its stat, the
 * file a symbolic link leads to). 0 or -1 (msg). */
static int check_existing(const cli_files *f, const char *opt, const char *path,
                          const struct stat *lst, const struct stat *st, enum cli_out_kind kind,
                          char *msg, size_t msglen)
{
    for (int i = 0; i < f->n_in; i++)
        if (f->in[i].dev == st->st_dev && f->in[i].ino == st->st_ino) {
            snprintf(msg, msglen,
                     "%s %s: is the same file as the input %s; the output would overwrite it", opt,
                     path, f->in[i].path);
            return -1;
        }
    for (int i = 0; i < f->n_out; i++)
        if (f->out[i].exists && f->out[i].dev == st->st_dev && f->out[i].ino == st->st_ino) {
            snprintf(msg, msglen, "%s %s: is the same file as the output %s", opt, path,
                     f->out[i].path);
            return -1;
        }
    const char *why = not_regular(lst);
    if (why) {
        snprintf(msg, msglen, "%s %s: %s", opt, path, why);
        return -1;
    }
    const char *what = precious(path);
    int ok = !what || (kind == CLI_OUT_MODEL && what == A_MODEL) ||
             (kind == CLI_OUT_AUDIO && what == AUDIO);
    if (!ok) {
        snprintf(msg, msglen, "%s %s: exists and is %s; not overwriting it (remove it first or "
                              "choose another name)", opt, path, what);
        return -1;
    }
    return 0;
}

int cli_files_output(cli_files *f, const char *opt, const char *path, enum cli_out_kind kind,
                     char *msg, size_t msglen)
{
    struct stat lst, st;
    int exists = lstat(path, &lst) == 0;
    if (exists && stat(path, &st) != 0)
        st = lst; /* a dangling symbolic link */
    if (exists && check_existing(f, opt, path, &lst, &st, kind, msg, msglen))
        return -1;
    char *canon = canonical(path);
    for (int i = 0; canon && i < f->n_out; i++)
        if (f->out[i].canon && !strcmp(f->out[i].canon, canon)) {
            snprintf(msg, msglen, "%s %s: is the same file as the output %s", opt, path,
                     f->out[i].path);
            free(canon);
            return -1;
        }
    struct cli_file *x = grow(&f->out, &f->n_out);
    if (!x || !(x->path = strdup(path))) {
        free(canon);
        snprintf(msg, msglen, "out of memory");
        return -1;
    }
    x->canon = canon;
    x->exists = exists;
    x->dev = exists ? st.st_dev : 0;
    x->ino = exists ? st.st_ino : 0;
    return 0;
}

void cli_files_free(cli_files *f)
{
    for (int i = 0; i < f->n_in; i++)
        free(f->in[i].path);
    for (int i = 0; i < f->n_out; i++) {
        free(f->out[i].path);
        free(f->out[i].canon);
    }
    free(f->in);
    free(f->out);
    memset(f, 0, sizeof *f);
}

/* ---- temporaries and the signals that remove them ---- */

#define MAX_TMP 16
static char g_tmp[MAX_TMP][4096];
static volatile sig_atomic_t g_used[MAX_TMP];
static volatile sig_atomic_t *g_stop;

/* Removes PATH.tmp.PID files beside path whose process is gone (killed
 * by SIGKILL or a crash, which no handler sees), as model saves do
 * (model/io.c); a process that is alive, or not ours to ask, keeps its. */
static void sweep_stale(const char *path)
{
    char dir[PATH_MAX], full[PATH_MAX + 256];
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + (slash == path) : 1,
             slash ? path : ".");
    size_t blen = strlen(base);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        const char *name = e->d_name, *num = name + blen + 5;
        if (strncmp(name, base, blen) || strncmp(name + blen, ".tmp.", 5))
            continue;
        char *end;
        errno = 0;
        long pid = strtol(num, &end, 10);
        if (errno || end == num || *end || pid <= 0 || pid == (long)getpid() ||
            kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        snprintf(full, sizeof full, "%s/%s", dir, name);
        unlink(full);
    }
    if (d)
        closedir(d);
}

int cli_tmp_name(char *tmp, size_t n, const char *path)
{
    sweep_stale(path);
    int k = snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
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
    const char *why = lstat(path, &st) == 0 ? not_regular(&st) : NULL;
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

cli_outfile *cli_out_open(const char *path, char *msg, size_t msglen)
{
    struct stat st;
    const char *why = lstat(path, &st) == 0 ? not_regular(&st) : NULL;
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
