/* fuzz_util.h: helpers shared by the libFuzzer targets of tests/fuzz:
 * a private scratch folder (on tmpfs when there is one) for the parsers
 * that only take a path, and CHECK, which aborts so that both libFuzzer
 * and the replay driver (replay_main.c) count a broken invariant as a
 * crash. Tests only: never linked into the library or the hosts. */
#ifndef CBRNN_FUZZ_UTIL_H
#define CBRNN_FUZZ_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* An invariant of the code under test, not of the input: a failure is a
 * bug, reported with where and what, then abort() (a crash to libFuzzer). */
#define CHECK(cond, ...)                                                         \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                 \
            abort();                                                             \
        }                                                                        \
    } while (0)

static char fz_dir[256];

static inline void fz_cleanup(void)
{
    char cmd[300];
    if (!fz_dir[0])
        return;
    /* the folder only ever holds files this process made */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fz_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz: could not remove %s\n", fz_dir);
    fz_dir[0] = 0;
}

/* Removes scratch folders of fuzzing processes that are gone: libFuzzer
 * leaves through _Exit after a crash or a timeout, where atexit handlers
 * do not run. The folder name carries the owner's PID. */
static inline void fz_sweep(const char *base)
{
    DIR *d = opendir(base);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        long pid;
        char tail;
        if (sscanf(de->d_name, "cbrnn-fuzz-%ld%c", &pid, &tail) != 1 || pid <= 0)
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s/%s'", base, de->d_name);
        if (system(cmd) != 0)
            fprintf(stderr, "fuzz: could not remove %s/%s\n", base, de->d_name);
    }
    closedir(d);
}

/* The process's scratch folder: /dev/shm (no disk writes at thousands of
 * executions per second) or $TMPDIR or /tmp; BASE/cbrnn-fuzz-PID. */
static inline const char *fz_scratch(void)
{
    if (fz_dir[0])
        return fz_dir;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    if (!base)
        base = "/tmp";
    fz_sweep(base);
    snprintf(fz_dir, sizeof fz_dir, "%s/cbrnn-fuzz-%ld", base, (long)getpid());
    if (mkdir(fz_dir, 0700) != 0 && errno != EEXIST) {
        perror(fz_dir);
        abort();
    }
    atexit(fz_cleanup);
    return fz_dir;
}

/* Writes data to the scratch file `name` and returns its path (static). */
static inline const char *fz_write(const char *name, const uint8_t *data, size_t size)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", fz_scratch(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) {
        perror(path);
        abort();
    }
    return path;
}

#endif
