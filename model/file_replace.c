/* file_replace.c: atomic replacement of a file through a uniquely named
 * temporary beside it (see file_replace.h), for model saves and experiment
 * results alike: a reader sees the old file or the new one, never half of
 * one, and a save that reported success survives a crash.
 *
 * Must never: print, remove a temporary that another process may still be
 * writing (another machine's in a shared folder included), or leave its
 * own temporary behind after a failure. */
#include "file_replace.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cbrnn/cbrnn.h"

int cbrnn_file_tmp_host(char out[CBRNN_TMP_HOST_MAX + 1])
{
    char h[256];
    if (gethostname(h, sizeof h) != 0 || !h[0]) {
        strcpy(out, "unknown-host");
        return -1;
    }
    h[sizeof h - 1] = '\0'; /* POSIX leaves a cut name unterminated */
    size_t n = 0;
    for (; h[n] && n < CBRNN_TMP_HOST_MAX; n++) {
        char c = h[n];
        int keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        out[n] = keep ? c : '-'; /* no '.': it separates the name's fields */
    }
    out[n] = '\0';
    return 0;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int cbrnn_file_pid_gone(long pid)
{
    return pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* The pid of n if it is `.BASE.HOST.PID.N.tmp` for this base and host,
 * else 0. */
static long own_temporary_pid(const char *n, const char *base, const char *host)
{
    size_t blen = strlen(base), hlen = strlen(host);
    if (n[0] != '.' || strncmp(n + 1, base, blen) || n[1 + blen] != '.' ||
        strncmp(n + 2 + blen, host, hlen) || n[2 + blen + hlen] != '.')
        return 0;
    const char *p = n + 3 + blen + hlen;
    char *end;
    errno = 0;
    long pid = strtol(p, &end, 10);
    if (errno || end == p || *end != '.' || pid <= 0)
        return 0;
    const char *cnt = end + 1;
    strtoul(cnt, &end, 10);
    return end != cnt && !strcmp(end, ".tmp") ? pid : 0;
}

/* Removes this host's temporaries of base in dfd whose process is gone
 * (killed mid-write). A pid means nothing on another machine, so another
 * host's temporaries stay, and so do old-format `.BASE.PID.N.tmp` ones
 * (cbrnn before host names: their machine is unknown, and deleting a
 * live writer's file fails its save, while a leftover only costs space).
 * Best effort: errors are ignored (the save does not need this). */
static void sweep_stale_temporaries(int dfd, const char *base)
{
    char host[CBRNN_TMP_HOST_MAX + 1];
    if (cbrnn_file_tmp_host(host))
        return;
    int fd = dup(dfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long pid = own_temporary_pid(e->d_name, base, host);
        if (cbrnn_file_pid_gone(pid)) /* 0 for a name not ours */
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

/* A new temporary for base in dfd, its name in tmp; -1 with errno if none
 * could be made. O_EXCL with a host-pid-counter name instead of mkstemp so
 * that the file gets the usual 0666 & ~umask permissions. */
static int open_temporary(int dfd, const char *base, char tmp[NAME_MAX + 1])
{
    static atomic_uint counter;
    char host[CBRNN_TMP_HOST_MAX + 1];
    cbrnn_file_tmp_host(host);
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        snprintf(tmp, NAME_MAX + 1, ".%s.%s.%d.%u.tmp", base, host, (int)getpid(),
                 atomic_fetch_add(&counter, 1u));
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    return fd;
}

int cbrnn_file_replace_at(int dfd, const char *base, const char *shown, const void *buf,
                          size_t len, char *msg, size_t msglen)
{
    size_t cap = msg ? msglen : 0; /* snprintf(NULL, 0, ...) writes nothing */
    if (strlen(base) > CBRNN_REPLACE_NAME_MAX) {
        snprintf(msg, cap, "%s: the file name is too long (at most %d bytes here)", shown,
                 CBRNN_REPLACE_NAME_MAX);
        return CBRNN_ERR_ARG;
    }
    sweep_stale_temporaries(dfd, base);
    char tmp[NAME_MAX + 1];
    int fd = open_temporary(dfd, base, tmp);
    if (fd < 0) {
        snprintf(msg, cap, "%s: cannot create a temporary file beside it: %s", shown,
                 strerror(errno));
        return CBRNN_ERR_IO;
    }
    const char *step = NULL;
    int err = 0;
    if (write_all(fd, buf, len))
        step = "writing";
    else if (fsync(fd))
        step = "flushing to disk";
    err = errno;
    if (close(fd) && !step) {
        step = "closing";
        err = errno;
    }
    if (!step && renameat(dfd, tmp, dfd, base)) {
        step = "renaming into place";
        err = errno;
    }
    if (step) {
        unlinkat(dfd, tmp, 0);
        snprintf(msg, cap, "%s: %s %s failed: %s", shown, step, tmp, strerror(err));
        return CBRNN_ERR_IO;
    }
    /* Without this the rename may not survive a crash. File systems that
     * cannot sync a folder say EINVAL (or EROFS): nothing more to do there. */
    if (fsync(dfd) && errno != EINVAL && errno != EROFS) {
        snprintf(msg, cap, "%s: written, but flushing its folder to disk failed: %s", shown,
                 strerror(errno));
        return CBRNN_ERR_IO;
    }
    return 0;
}
