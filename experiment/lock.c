/* lock.c: cbrnn_exp_lock: one writer at a time on a results folder, with
 * POSIX record locks (fcntl) on <out>/.lock: byte 0 stands for the folder,
 * byte 1 + k for unit k. A local run write-locks the whole file; a unit
 * read-locks byte 0 and write-locks its own byte, so the tasks of a Slurm
 * array run side by side, but never beside a local run or beside the same
 * unit; a reader (--collect, a Slurm submission while it waits)
 * read-locks byte 0. fcntl rather than flock: F_GETLK names the holder's
 * pid, forked workers do not inherit the lock (the parent holds it), and
 * NFS carries these locks (Linux emulates flock on NFS with them anyway).
 * The kernel drops them when the process ends, however it ends.
 *
 * Must never: print, or wait for a lock (a second run refuses at once). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "exp_internal.h"

/* F_SETLK of [start, start + len) (len 0: to the end and beyond). 0 taken,
 * 1 held by another process (*holder its pid, 0 if unknown), or -errno. */
static int take(int fd, short type, off_t start, off_t len, long *holder)
{
    struct flock l = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    if (fcntl(fd, F_SETLK, &l) == 0)
        return 0;
    int err = errno;
    if (err != EACCES && err != EAGAIN)
        return -err;
    struct flock q = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    *holder = fcntl(fd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK ? (long)q.l_pid : 0;
    return 1;
}

void cbrnn_exp_unlock(cbrnn_exp *e)
{
    if (e && e->has_lock) {
        close(e->lock_fd); /* drops every lock of ours on the file */
        e->has_lock = 0;
    }
}

int cbrnn_exp_lock(cbrnn_exp *e, int what, long *holder, char *msg, size_t msglen)
{
    if (holder)
        *holder = 0;
    if (!e || what < CBRNN_EXP_LOCK_READ || what >= e->n_units)
        return exp_fail(msg, msglen, CBRNN_ERR_ARG, "no such lock");
    if (e->has_lock && what == CBRNN_EXP_LOCK_READ) {
        /* From the folder lock (or a unit's) down to the reader's at once,
         * never unlocked in between: byte 0 is converted in place. */
        struct flock rd = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
        struct flock un = {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 1, .l_len = 0};
        if (fcntl(e->lock_fd, F_SETLK, &rd) == 0 && fcntl(e->lock_fd, F_SETLK, &un) == 0)
            return 0;
        return exp_fail(msg, msglen, CBRNN_ERR_IO, "%s/.lock: cannot lock: %s", e->out,
                        strerror(errno));
    }
    cbrnn_exp_unlock(e);
    char path[EXP_PATH];
    snprintf(path, sizeof path, "%s/.lock", e->out);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        return exp_fail(msg, msglen, CBRNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    long who = 0;
    int rc = what == CBRNN_EXP_LOCK_FOLDER ? take(fd, F_WRLCK, 0, 0, &who)
                                           : take(fd, F_RDLCK, 0, 1, &who);
    if (rc == 0 && what >= 0)
        rc = take(fd, F_WRLCK, 1 + (off_t)what, 1, &who);
    if (rc == 0) {
        e->lock_fd = fd;
        e->has_lock = 1;
        return 0;
    }
    close(fd);
    if (rc < 0 && (rc == -ENOLCK || rc == -EOPNOTSUPP || rc == -ENOSYS || rc == -EINVAL))
        return exp_fail(msg, msglen, CBRNN_ERR_UNSUPPORTED, "%s: this file system does not "
                        "lock files (%s)", path, strerror(-rc));
    if (rc < 0)
        return exp_fail(msg, msglen, CBRNN_ERR_IO, "%s: cannot lock: %s", path, strerror(-rc));
    if (holder)
        *holder = who;
    if (who > 0)
        return exp_fail(msg, msglen, 1, "%s: folder in use by another cbrnn experiment (pid %ld)",
                        e->out, who);
    return exp_fail(msg, msglen, 1, "%s: folder in use by another cbrnn experiment", e->out);
}
