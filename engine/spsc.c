/* spsc.c: the engine's lock-free SPSC ring (see spsc.h). push/pop must
 * never allocate, lock or wait: they run in the audio thread. Indices grow
 * without wrapping the storage (free-running size_t counters, masked on
 * access), so full and empty are told apart without a spare slot. */
#include "spsc.h"

#include <stdlib.h>
#include <string.h>

void rt_touch_zero(void *p, size_t n)
{
    volatile unsigned char *touch = p;
    for (size_t i = 0; i < n; i++)
        touch[i] = 0;
}

int spsc_init(spsc *r, size_t capacity, size_t elem)
{
    memset(r, 0, sizeof *r);
    if (capacity == 0 || elem == 0 || capacity > ((size_t)1 << 30))
        return -1;
    size_t cap = 1;
    while (cap < capacity)
        cap <<= 1;
    if (elem > (size_t)-1 / cap)
        return -1;
    /* Touched now so the first pushes in the audio thread take no page
     * fault. */
    r->buf = malloc(cap * elem);
    if (!r->buf)
        return -1;
    rt_touch_zero(r->buf, cap * elem);
    r->mask = cap - 1;
    r->elem = elem;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    return 0;
}

void spsc_free(spsc *r)
{
    free(r->buf);
    r->buf = NULL;
}

int spsc_push(spsc *r, const void *elem)
{
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (head - tail > r->mask)
        return -1;
    memcpy(r->buf + (head & r->mask) * r->elem, elem, r->elem);
    /* release: the element's bytes are visible before the new head. */
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
    return 0;
}

int spsc_pop(spsc *r, void *elem)
{
    size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    if (head == tail)
        return 0;
    memcpy(elem, r->buf + (tail & r->mask) * r->elem, r->elem);
    /* release: the copy is finished before the producer may reuse the slot. */
    atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
    return 1;
}

size_t spsc_count(const spsc *r)
{
    size_t head = atomic_load_explicit(&((spsc *)r)->head, memory_order_acquire);
    size_t tail = atomic_load_explicit(&((spsc *)r)->tail, memory_order_acquire);
    return head - tail;
}

size_t spsc_capacity(const spsc *r)
{
    return r->mask + 1;
}

void spsc_clear(spsc *r)
{
    size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    atomic_store_explicit(&r->tail, head, memory_order_release);
}
