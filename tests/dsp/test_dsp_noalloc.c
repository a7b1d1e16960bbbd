/* test_dsp_noalloc.c: cbrnn_feat_push and cbrnn_feat_reset must not touch
 * the heap (they run in audio callbacks). This program replaces malloc,
 * calloc, realloc, free (and the aligned variants) with versions that
 * forward to glibc's __libc_* functions and count every call made while
 * the `armed` flag is set; it pushes many blocks of varied sizes through
 * extractors of several configurations with the flag set and fails on any
 * counted call. Under AddressSanitizer the sanitizer owns malloc, so the
 * same counting is done through its malloc/free hooks instead.
 * A self-check first proves the counting works (an armed malloc must be
 * seen), so the test cannot pass vacuously. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbrnn/cbrnn_dsp.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NOALLOC_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define NOALLOC_ASAN 1
#endif

static volatile int armed;
static volatile long heap_calls;

#ifdef NOALLOC_ASAN
#include <sanitizer/allocator_interface.h>

static void on_malloc(const volatile void *p, size_t n)
{
    (void)p;
    (void)n;
    if (armed)
        heap_calls++;
}

static void on_free(const volatile void *p)
{
    (void)p;
    if (armed)
        heap_calls++;
}

static void install_counting(void)
{
    __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
}
#else
/* glibc's own entry points, which its malloc/free are aliases of. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

void *malloc(size_t n)
{
    if (armed)
        heap_calls++;
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    if (armed)
        heap_calls++;
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    if (armed)
        heap_calls++;
    return __libc_realloc(p, n);
}

void free(void *p)
{
    if (armed)
        heap_calls++;
    __libc_free(p);
}

/* FFTW allocates its aligned buffers with posix_memalign. */
int posix_memalign(void **out, size_t align, size_t n)
{
    if (armed)
        heap_calls++;
    void *p = __libc_memalign(align, n);
    if (!p)
        return 12; /* ENOMEM */
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t n)
{
    if (armed)
        heap_calls++;
    return __libc_memalign(align, n);
}

static void install_counting(void) {}
#endif

static int failures;

static void check(int ok, const char *what, const char *where, long expected, long got)
{
    if (!ok) {
        fprintf(stderr, "FAIL %s at %s: expected %ld got %ld\n", what, where, expected, got);
        failures++;
    }
}

int main(void)
{
    install_counting();

    /* Self-check: an allocation while armed must be counted. */
    armed = 1;
    void *volatile probe = malloc(64);
    armed = 0;
    check(heap_calls == 1, "self-check: armed malloc counted", "probe", 1, heap_calls);
    free(probe);
    heap_calls = 0;

    static const struct { double rate; int mels, mfcc, deltas; } cfgs[] = {
        {8000, 40, 0, 0}, {16000, 40, 13, 1}, {22050, 64, 0, 1},
        {44100, 40, 20, 0}, {48000, 80, 13, 1}, {192000, 40, 0, 0},
    };
    /* Varied block sizes, including 1, primes, exact hops and huge blocks. */
    static const int blocks[] = {1, 7, 64, 480, 1000, 4096, 13, 10000, 2, 333};
    float *x = malloc(200000 * sizeof *x);
    float *frame = malloc(1024 * sizeof *frame);
    if (!x || !frame)
        return 2;
    uint32_t s = 42;
    for (long i = 0; i < 200000; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((double)(s >> 8) / 16777216.0 - 0.5);
    }
    long total_frames = 0;
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
        cbrnn_feat_config cf;
        cbrnn_feat_config_default(&cf, cfgs[c].rate);
        cf.n_mels = cfgs[c].mels;
        cf.n_mfcc = cfgs[c].mfcc;
        cf.deltas = cfgs[c].deltas;
        cbrnn_feat *f = cbrnn_feat_create(&cf, NULL);
        if (!f) {
            fprintf(stderr, "FAIL create at %g Hz\n", cfgs[c].rate);
            return 1;
        }
        char where[64];
        snprintf(where, sizeof where, "%g Hz, %d mels, %d mfcc, deltas %d", cfgs[c].rate,
                 cfgs[c].mels, cfgs[c].mfcc, cfgs[c].deltas);
        long frames = 0;
        armed = 1;
        for (int round = 0; round < 3; round++) {
            long i = 0;
            for (size_t b = 0; i < 200000; b = (b + 1) % (sizeof blocks / sizeof blocks[0])) {
                long m = blocks[b];
                if (m > 200000 - i)
                    m = 200000 - i;
                const float *p = x + i;
                i += m;
                while (m > 0) {
                    int used;
                    int r = cbrnn_feat_push(f, frame, p, (int)m, &used);
                    if (r < 0)
                        break;
                    frames += r;
                    p += used;
                    m -= used;
                }
            }
            cbrnn_feat_reset(f);
        }
        armed = 0;
        check(heap_calls == 0, "heap calls during push/reset", where, 0, heap_calls);
        int hop = cbrnn_feat_hop(f), win = cbrnn_feat_win(f);
        long expect = 3 * ((200000 - win) / hop + 1);
        check(frames == expect, "frames pushed", where, expect, frames);
        total_frames += frames;
        heap_calls = 0;
        cbrnn_feat_destroy(f);
    }
    free(x);
    free(frame);
    if (failures)
        return 1;
    printf("no heap calls in %ld frames over %zu configurations\n", total_frames,
           sizeof cfgs / sizeof cfgs[0]);
    return 0;
}
