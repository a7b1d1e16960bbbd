/* spsc.h: a lock-free single-producer/single-consumer ring of fixed-size
 * elements (C11 atomics), used by the engine for commands in, records and
 * snapshot slots out. Storage is allocated and touched once by spsc_init;
 * push and pop never allocate, lock, wait or call the kernel, so either
 * side may be a real-time thread. Exactly one thread pushes and exactly
 * one pops; a full ring refuses (the caller counts the drop), never waits.
 * Internal to engine/ (tests use it directly). */
#ifndef CBRNN_SPSC_H
#define CBRNN_SPSC_H

#include <stdatomic.h>
#include <stddef.h>

/* Head and tail live on their own cache lines so the two threads do not
 * invalidate each other's line on every operation (64 bytes: x86-64 and
 * most ARMv8 cores). */
#define SPSC_LINE 64

typedef struct spsc {
    _Alignas(SPSC_LINE) atomic_size_t head; /* next slot to write (producer) */
    _Alignas(SPSC_LINE) atomic_size_t tail; /* next slot to read (consumer) */
    _Alignas(SPSC_LINE) size_t mask;        /* capacity - 1, capacity a power of two */
    size_t elem;                            /* bytes per element */
    unsigned char *buf;                     /* capacity * elem bytes */
} spsc;

/* Writes n zero bytes at p through a volatile pointer, so every page of
 * p is resident before an audio thread uses it. Not memset: GCC turns
 * malloc + memset(0) into calloc, which leaves fresh pages untouched (found
 * by tests/hardening/test_pagefaults.c and a live RLS save). */
void rt_touch_zero(void *p, size_t n);

/* Allocates room for at least `capacity` elements of `elem` bytes (rounded
 * up to a power of two). 0, or -1 when out of memory or arguments are bad. */
int spsc_init(spsc *r, size_t capacity, size_t elem);
void spsc_free(spsc *r);
/* Producer: copies elem bytes in. 0, or -1 when full (nothing written). */
int spsc_push(spsc *r, const void *elem);
/* Consumer: copies the oldest element out. 1, or 0 when empty. */
int spsc_pop(spsc *r, void *elem);
/* Elements waiting (exact from either side's own point of view). */
size_t spsc_count(const spsc *r);
size_t spsc_capacity(const spsc *r);
/* Consumer: drops everything waiting. */
void spsc_clear(spsc *r);

#endif
