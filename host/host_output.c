/* host_output.c: files written by a thread of their own, and advisory
 * locks on output files (host_output.h). Library code: never prints. The
 * queue's mutex guards only memcpy and counters; every write() runs with
 * it released, so a destination that blocks blocks the writer thread
 * alone. */
#define _GNU_SOURCE /* pthread_timedjoin_np */
#include "host_output.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct out_writer {
    pthread_mutex_t mu;
    pthread_cond_t more; /* data queued, or stop */
    pthread_t th;
    int fd;
    char *buf;
    size_t cap, head, len; /* queued bytes: [head - len, head) modulo cap */
    long long lost;
    int error, stop;
    char *name;
};

/* All of n bytes, or 0 with errno set. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = EIO;
            return 0;
        }
        p += k;
        n -= (size_t)k;
    }
    return 1;
}

static void *writer_main(void *arg)
{
    out_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->len && !w->stop)
            pthread_cond_wait(&w->more, &w->mu);
        if (!w->len)
            break;
        size_t tail = (w->head + w->cap - w->len) % w->cap;
        size_t n = w->cap - tail < w->len ? w->cap - tail : w->len;
        pthread_mutex_unlock(&w->mu);
        int ok = write_all(w->fd, w->buf + tail, n);
        int e = errno;
        pthread_mutex_lock(&w->mu);
        w->len -= n;
        if (!ok) { /* the file is incomplete from here: drop the rest */
            w->error = e;
            w->len = 0;
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void writer_free(out_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->more);
    free(w->buf);
    free(w->name);
    free(w);
}

out_writer *out_writer_start(int fd, const char *name, size_t cap)
{
    out_writer *w = calloc(1, sizeof *w);
    if (!w) {
        close(fd);
        return NULL;
    }
    w->fd = fd;
    w->cap = cap ? cap : 1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->more, NULL);
    w->buf = malloc(w->cap);
    w->name = strdup(name ? name : "");
    if (!w->buf || !w->name || pthread_create(&w->th, NULL, writer_main, w)) {
        writer_free(w);
        return NULL;
    }
    return w;
}

int out_writer_put(out_writer *w, const char *buf, size_t n, long items)
{
    pthread_mutex_lock(&w->mu);
    int ok = !w->error && !w->stop && w->cap - w->len >= n;
    if (ok) {
        size_t first = w->cap - w->head < n ? w->cap - w->head : n;
        memcpy(w->buf + w->head, buf, first);
        memcpy(w->buf, buf + first, n - first);
        w->head = (w->head + n) % w->cap;
        w->len += n;
        pthread_cond_signal(&w->more);
    } else {
        w->lost += items;
    }
    pthread_mutex_unlock(&w->mu);
    return ok;
}

void out_writer_get_stats(out_writer *w, out_writer_stats *st)
{
    pthread_mutex_lock(&w->mu);
    st->lost = w->lost;
    st->pending = (long long)w->len;
    st->error = w->error;
    pthread_mutex_unlock(&w->mu);
}

const char *out_writer_name(const out_writer *w)
{
    return w->name;
}

int out_writer_finish(out_writer *w, double limit_s, out_writer_stats *st)
{
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->more);
    pthread_mutex_unlock(&w->mu);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until); /* pthread_timedjoin_np's clock */
    long long ns = (long long)until.tv_nsec + (long long)(limit_s * 1e9);
    until.tv_sec += (time_t)(ns / 1000000000LL);
    until.tv_nsec = (long)(ns % 1000000000LL);
    int timed_out = pthread_timedjoin_np(w->th, NULL, &until) != 0;
    out_writer_stats s;
    out_writer_get_stats(w, &s);
    if (st)
        *st = s;
    if (timed_out)
        return 1;
    if (!s.error && w->fd >= 0 && close(w->fd)) /* a network file system reports here */
        s.error = errno;
    if (st)
        st->error = s.error;
    w->fd = -1;
    writer_free(w);
    return s.error ? -1 : 0;
}

int out_lock_fd(int fd, long *pid)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET; /* start 0, length 0: the whole file, however long */
    *pid = -1;
    if (!fcntl(fd, F_SETLK, &fl))
        return 0;
    if (errno != EACCES && errno != EAGAIN)
        return -1;
    int e = errno;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    *pid = !fcntl(fd, F_GETLK, &fl) && fl.l_type != F_UNLCK ? (long)fl.l_pid : 0;
    errno = e;
    return -1;
}

/* The lock files this process holds (dev, ino): a check of another
 * name's lock must not open one of them, since closing any descriptor of
 * a file drops this process's fcntl locks on it. Control thread only. */
#define OWN_LOCKS 8
static struct { dev_t dev; ino_t ino; int used; } own[OWN_LOCKS];

/* Remembers (on = 1) or forgets (0) the lock file open as fd. */
static void own_lock(int fd, int on)
{
    struct stat st;
    if (fstat(fd, &st))
        return;
    for (int i = 0; i < OWN_LOCKS; i++)
        if (on ? !own[i].used : (own[i].used && own[i].dev == st.st_dev && own[i].ino == st.st_ino)) {
            own[i].used = on;
            own[i].dev = st.st_dev;
            own[i].ino = st.st_ino;
            return;
        }
}

/* 1 when the file of st is a lock file this process holds. */
static int is_own_lock(const struct stat *st)
{
    for (int i = 0; i < OWN_LOCKS; i++)
        if (own[i].used && own[i].dev == st->st_dev && own[i].ino == st->st_ino)
            return 1;
    return 0;
}

/* 1 when the open lock file fd holds what out_lock_beside writes (a pid
 * and a newline) or nothing (a process that died right after creating
 * it): a lock of ours, which a live process may take over. Anything else
 * is someone's file that happens to be named NAME.lock. */
static int holds_pid_line(int fd)
{
    char txt[32];
    ssize_t n = pread(fd, txt, sizeof txt - 1, 0);
    if (n < 0)
        return 0;
    txt[n] = 0;
    size_t d = strspn(txt, "0123456789");
    return n == 0 || (d > 0 && d < 20 && txt[d] == '\n' && (ssize_t)d + 1 == n);
}

/* Opens path's lock file lp: created anew (O_EXCL), or an existing one
 * that is a lock of ours (*foreign set and -1 when it is not: then it is
 * left as it was). -1 with errno on failure. */
static int open_lock_file(const char *lp, int *foreign)
{
    *foreign = 0;
    int fd = open(lp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd >= 0 || errno != EEXIST)
        return fd;
    fd = open(lp, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? open_lock_file(lp, foreign) : -1; /* unlinked meanwhile */
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || !holds_pid_line(fd)) {
        close(fd);
        *foreign = 1;
        errno = EEXIST;
        return -1;
    }
    return fd;
}

/* The lock file is removed at exit, so a process may lock a name that
 * another one just unlinked: after locking, the name must still be the
 * file locked, else try again with the new one. A NAME.lock that is not
 * a lock of ours (its content is not a pid line) is never written nor
 * removed: refused, *pid = -2. */
int out_lock_beside(const char *path, long *pid)
{
    char lp[PATH_MAX];
    if (snprintf(lp, sizeof lp, "%s.lock", path) >= (int)sizeof lp) {
        errno = ENAMETOOLONG;
        *pid = -1;
        return -1;
    }
    for (int tries = 0; tries < 100; tries++) {
        int foreign;
        int fd = open_lock_file(lp, &foreign);
        if (fd < 0) {
            *pid = foreign ? -2 : -1;
            return -1;
        }
        if (out_lock_fd(fd, pid)) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        /* locked now: read again, a process may have written it meanwhile */
        struct stat a, b;
        if (!fstat(fd, &a) && !stat(lp, &b) && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
            if (!holds_pid_line(fd)) {
                close(fd);
                *pid = -2;
                errno = EEXIST;
                return -1;
            }
            char txt[32];
            int n = snprintf(txt, sizeof txt, "%ld\n", (long)getpid());
            if (ftruncate(fd, 0) || pwrite(fd, txt, (size_t)n, 0) != n) {
                /* the pid inside is a courtesy for people: the lock is what counts */
            }
            own_lock(fd, 1);
            return fd;
        }
        close(fd);
    }
    errno = EAGAIN;
    *pid = 0;
    return -1;
}

long out_lock_holder(const char *path)
{
    char lp[PATH_MAX];
    struct stat st;
    if (snprintf(lp, sizeof lp, "%s.lock", path) >= (int)sizeof lp || lstat(lp, &st) ||
        !S_ISREG(st.st_mode) || is_own_lock(&st))
        return 0;
    int fd = open(lp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return 0;
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    long pid = !fcntl(fd, F_GETLK, &fl) && fl.l_type != F_UNLCK ? (fl.l_pid > 0 ? fl.l_pid : -1)
                                                               : 0;
    close(fd);
    return pid;
}

void out_unlock_beside(const char *path, int fd)
{
    char lp[PATH_MAX];
    if (fd < 0)
        return;
    own_lock(fd, 0);
    /* removed while still locked: whoever opens the name next makes a new file */
    if (snprintf(lp, sizeof lp, "%s.lock", path) < (int)sizeof lp)
        unlink(lp);
    close(fd);
}

int out_lock_output(const char *opt, const char *path, char *msg, size_t msglen)
{
    long pid;
    int fd = out_lock_beside(path, &pid);
    if (fd >= 0)
        return fd;
    if (pid == -2)
        snprintf(msg, msglen, "%s %s: %s.lock exists and is not a lock file of cbrnn (it "
                 "holds something else): left alone; move it away or give another name", opt,
                 path, path);
    else if (pid >= 0)
        snprintf(msg, msglen, "%s %s: in use by process %ld (another cbrnn program saving "
                 "there?): give another name", opt, path, pid);
    else
        snprintf(msg, msglen, "%s %s: cannot make its lock file %s.lock: %s", opt, path, path,
                 strerror(errno));
    return -1;
}
