/* host_files.c: the output guard (host_files.h). Host-side code: it may
 * allocate and do I/O; it never prints. */
#define _XOPEN_SOURCE 700 /* realpath */
#include "host_files.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cbrnn/cbrnn_model.h"
#include "host_audio.h"

static struct host_file *grow(struct host_file **v, int *n)
{
    struct host_file *p = realloc(*v, (size_t)(*n + 1) * sizeof *p);
    if (!p)
        return NULL;
    *v = p;
    p += (*n)++;
    memset(p, 0, sizeof *p);
    return p;
}

int host_files_input(host_files *f, const char *path)
{
    struct stat st;
    if (!path || stat(path, &st) != 0)
        return 0;
    struct host_file *x = grow(&f->in, &f->n_in);
    if (!x || !(x->path = strdup(path)))
        return -1;
    x->dev = st.st_dev;
    x->ino = st.st_ino;
    x->exists = 1;
    return 0;
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

const char *host_file_not_regular(const struct stat *st)
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
static int check_existing(const host_files *f, const char *opt, const char *path,
                          const struct stat *lst, const struct stat *st, enum host_out_kind kind,
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
    const char *why = host_file_not_regular(lst);
    if (why) {
        snprintf(msg, msglen, "%s %s: %s", opt, path, why);
        return -1;
    }
    const char *what = precious(path);
    int ok = !what || (kind == HOST_OUT_MODEL && what == A_MODEL) ||
             (kind == HOST_OUT_AUDIO && what == AUDIO);
    if (!ok) {
        snprintf(msg, msglen, "%s %s: exists and is %s; not overwriting it (remove it first or "
                              "choose another name)", opt, path, what);
        return -1;
    }
    return 0;
}

int host_files_output(host_files *f, const char *opt, const char *path, enum host_out_kind kind,
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
    struct host_file *x = grow(&f->out, &f->n_out);
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

void host_files_free(host_files *f)
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

char *host_shown_text(char *out, size_t len, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && s[i] && k + 1 < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != 0x7f && c != '\\')
            out[k++] = (char)c;
        else if (k + 5 <= len)
            k += (size_t)snprintf(out + k, len - k, "\\x%02x", c);
        else
            break;
    }
    if (len)
        out[k] = 0;
    return out;
}
