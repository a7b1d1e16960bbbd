/* replace.c: exp_replace_file, the one way the experiments write a whole
 * result file (a curve cut back, a test table, a checkpoint): composed in
 * memory, then model/file_replace.c's atomic replacement, whose temporary
 * names carry host and pid so that Slurm array tasks on different nodes
 * sharing an NFS results folder never write each other's temporaries.
 *
 * Must never: print, or leave a half-written or missing target after a
 * failure (the previous file stays as it was). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exp_internal.h"
#include "file_replace.h"

/* The folder part of path opened for renameat and fsync; *base gets the
 * name inside it. -1 with errno on failure. */
static int open_folder(const char *path, const char **base)
{
    const char *slash = strrchr(path, '/');
    *base = slash ? slash + 1 : path;
    if (!slash)
        return open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char *dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
    if (!dir)
        return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int err = errno;
    free(dir);
    errno = err;
    return fd;
}

int exp_replace_file(const char *path, exp_fill fill, void *ctx, char *msg, size_t msglen)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return exp_fail(msg, msglen, CBRNN_ERR_NOMEM, "%s: out of memory", path);
    int bad = fill(f, ctx) != 0 || ferror(f);
    if (fclose(f) || bad) {
        free(buf);
        return exp_fail(msg, msglen, CBRNN_ERR_NOMEM, "%s: out of memory", path);
    }
    const char *base;
    int dfd = open_folder(path, &base);
    int rc = dfd < 0 ? exp_fail(msg, msglen, CBRNN_ERR_IO,
                                "%s: cannot create it, its folder cannot be opened: %s", path,
                                strerror(errno))
                     : cbrnn_file_replace_at(dfd, base, path, buf, len, msg, msglen);
    if (dfd >= 0)
        close(dfd);
    free(buf);
    return rc;
}
