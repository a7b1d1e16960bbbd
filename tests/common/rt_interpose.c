/* rt_interpose.c: proves that an audio path never allocates, locks or
 * waits. Defines malloc, calloc, realloc, free, posix_memalign,
 * aligned_alloc, memalign, pthread_mutex_lock/trylock,
 * pthread_cond_wait/timedwait and sem_wait (forwarding to the real ones
 * through dlsym(RTLD_NEXT)); a program that links it (with ENABLE_EXPORTS,
 * so shared objects it loads see these too) gets every such call from any
 * library in the process. While the calling thread's rt_armed is set the
 * call is counted in rt_calls and the first one named in rt_first_call.
 * Used by tests/engine/test_engine_rt.c (the engine) and
 * tests/lv2/test_lv2_host.c (the LV2 plugin's run()). Not for sanitizer
 * builds: ASan replaces the allocator itself. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <semaphore.h>
#include <stddef.h>

#include "rt_interpose.h"

/* ---- interposition ----
 * The build hides symbols by default; the interposers must be exported
 * (and reach the dynamic symbol table) or the libraries never see them. */
#define EXPORT __attribute__((visibility("default")))
EXPORT _Thread_local int rt_armed;
EXPORT atomic_long rt_calls;
EXPORT const char *_Atomic rt_first_call;

static void note(const char *what)
{
    if (rt_armed) {
        const char *none = NULL;
        atomic_compare_exchange_strong(&rt_first_call, &none, what);
        atomic_fetch_add(&rt_calls, 1);
    }
}

/* dlsym may itself call calloc before the real one is known: serve those
 * few bytes from a static arena (never freed). */
static _Alignas(64) unsigned char boot[8192];
static size_t boot_used;
static int in_boot(void *p) { return (unsigned char *)p >= boot && (unsigned char *)p < boot + sizeof boot; }

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static int (*real_mutex_lock)(pthread_mutex_t *);
static int (*real_mutex_trylock)(pthread_mutex_t *);
static int (*real_cond_wait)(pthread_cond_t *, pthread_mutex_t *);
static int (*real_cond_timedwait)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
static int (*real_sem_wait)(sem_t *);
static int resolving;

static void resolve(void)
{
    if (real_malloc || resolving)
        return;
    resolving = 1;
    real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
    real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    real_posix_memalign = (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
    real_memalign = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
    real_mutex_lock = (int (*)(pthread_mutex_t *))dlsym(RTLD_NEXT, "pthread_mutex_lock");
    real_mutex_trylock = (int (*)(pthread_mutex_t *))dlsym(RTLD_NEXT, "pthread_mutex_trylock");
    real_cond_wait = (int (*)(pthread_cond_t *, pthread_mutex_t *))dlsym(RTLD_NEXT, "pthread_cond_wait");
    real_cond_timedwait = (int (*)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *))dlsym(
        RTLD_NEXT, "pthread_cond_timedwait");
    real_sem_wait = (int (*)(sem_t *))dlsym(RTLD_NEXT, "sem_wait");
    resolving = 0;
}

EXPORT void *malloc(size_t n)
{
    resolve();
    note("malloc");
    if (!real_malloc) {
        void *p = boot + boot_used;
        boot_used += (n + 63) & ~(size_t)63;
        return boot_used <= sizeof boot ? p : NULL;
    }
    return real_malloc(n);
}

EXPORT void *calloc(size_t a, size_t b)
{
    resolve();
    note("calloc");
    if (!real_calloc) {
        void *p = boot + boot_used;
        boot_used += (a * b + 63) & ~(size_t)63;
        return boot_used <= sizeof boot ? p : NULL; /* static: already zero */
    }
    return real_calloc(a, b);
}

EXPORT void *realloc(void *p, size_t n)
{
    resolve();
    note("realloc");
    return real_realloc(p, n);
}

EXPORT void free(void *p)
{
    note("free");
    if (!p || in_boot(p))
        return;
    resolve();
    real_free(p);
}

EXPORT int posix_memalign(void **p, size_t a, size_t n)
{
    resolve();
    note("posix_memalign");
    return real_posix_memalign(p, a, n);
}

EXPORT void *aligned_alloc(size_t a, size_t n)
{
    resolve();
    note("aligned_alloc");
    return real_aligned_alloc(a, n);
}

EXPORT void *memalign(size_t a, size_t n) /* FFTW's fftw_malloc uses this one */
{
    resolve();
    note("memalign");
    return real_memalign(a, n);
}

EXPORT int pthread_mutex_lock(pthread_mutex_t *m)
{
    resolve();
    note("pthread_mutex_lock");
    return real_mutex_lock(m);
}

EXPORT int pthread_mutex_trylock(pthread_mutex_t *m)
{
    resolve();
    note("pthread_mutex_trylock");
    return real_mutex_trylock(m);
}

EXPORT int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
    resolve();
    note("pthread_cond_wait");
    return real_cond_wait(c, m);
}

EXPORT int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *t)
{
    resolve();
    note("pthread_cond_timedwait");
    return real_cond_timedwait(c, m, t);
}

EXPORT int sem_wait(sem_t *s)
{
    resolve();
    note("sem_wait");
    return real_sem_wait(s);
}
