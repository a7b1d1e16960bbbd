/* stall_write.c: an LD_PRELOAD shim that stalls a file's writes, as a
 * disk that stops taking data (a hung NFS mount, a USB stick that
 * stalls) would, so a test can make cbrnn-jack's writer threads fall
 * behind without waiting on real hardware. While the file named by
 * $CBRNN_TEST_STALL_FILE exists, write(2) and pwrite(2) on a descriptor
 * whose path ends with $CBRNN_TEST_STALL_SUFFIX wait (polling every
 * 10 ms); removing the file lets them through. Only threads other than
 * the main one wait: cbrnn-jack writes a recording's and an events
 * file's first bytes from its main thread while starting, and the data
 * from its disk and writer threads, which are what a test stalls. The
 * test decides when the stall ends, so nothing here depends on timing.
 * Tests only (tests/jack/record_stall.sh, tests/jack/events_lost.sh). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

static int stalled_fd(int fd)
{
    const char *suffix = getenv("CBRNN_TEST_STALL_SUFFIX");
    const char *flag = getenv("CBRNN_TEST_STALL_FILE");
    if (!suffix || !*suffix || !flag || syscall(SYS_gettid) == getpid())
        return 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 0)
        return 0;
    path[n] = 0;
    size_t ls = strlen(suffix);
    return (size_t)n >= ls && !strcmp(path + n - ls, suffix);
}

static void wait_while_flagged(int fd)
{
    if (!stalled_fd(fd))
        return;
    const char *flag = getenv("CBRNN_TEST_STALL_FILE");
    struct timespec ts = {0, 10000000L};
    while (!access(flag, F_OK))
        nanosleep(&ts, NULL);
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
    static ssize_t (*real)(int, const void *, size_t);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "write");
    wait_while_flagged(fd);
    return real(fd, buf, n);
}

EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "pwrite");
    wait_while_flagged(fd);
    return real(fd, buf, n, off);
}

EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
    static ssize_t (*real)(int, const void *, size_t, off64_t);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "pwrite64");
    wait_while_flagged(fd);
    return real(fd, buf, n, off);
}
