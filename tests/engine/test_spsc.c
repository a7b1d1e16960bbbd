/* test_spsc.c: the engine's lock-free SPSC ring (engine/spsc.c): FIFO
 * order, capacity rounding, full refuses without overwriting, wrap-around
 * of the free-running indices, and two real threads passing a long
 * numbered sequence with no loss, duplication or reordering. */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "spsc.h"

struct item {
    uint64_t seq;
    double payload[3]; /* an element larger than a word: torn copies show */
};

static void fifo_and_full(void **state)
{
    spsc r;
    assert_int_equal(spsc_init(&r, 5, sizeof(struct item)), 0);
    assert_int_equal(spsc_capacity(&r), 8); /* rounded up to a power of two */
    struct item it = {0};
    for (uint64_t i = 0; i < 8; i++) {
        it.seq = i;
        assert_int_equal(spsc_push(&r, &it), 0);
    }
    it.seq = 99;
    assert_int_equal(spsc_push(&r, &it), -1); /* full: refused */
    assert_int_equal(spsc_count(&r), 8);
    for (uint64_t i = 0; i < 8; i++) {
        struct item out;
        assert_int_equal(spsc_pop(&r, &out), 1);
        assert_int_equal(out.seq, i); /* the refused 99 overwrote nothing */
    }
    struct item out;
    assert_int_equal(spsc_pop(&r, &out), 0);
    spsc_free(&r);
}

static void wraps_many_times(void **state)
{
    spsc r;
    assert_int_equal(spsc_init(&r, 4, sizeof(uint32_t)), 0);
    uint32_t next_in = 0, next_out = 0;
    /* Varying fill levels across 10000 laps of the 4-slot storage. */
    for (int round = 0; round < 10000; round++) {
        int k = 1 + round % 4;
        for (int j = 0; j < k; j++) {
            assert_int_equal(spsc_push(&r, &next_in), 0);
            next_in++;
        }
        for (int j = 0; j < k; j++) {
            uint32_t v;
            assert_int_equal(spsc_pop(&r, &v), 1);
            assert_int_equal(v, next_out);
            next_out++;
        }
    }
    spsc_free(&r);
}

static void clear_empties(void **state)
{
    spsc r;
    assert_int_equal(spsc_init(&r, 4, 1), 0);
    unsigned char c = 7;
    spsc_push(&r, &c);
    spsc_push(&r, &c);
    spsc_clear(&r);
    assert_int_equal(spsc_count(&r), 0);
    assert_int_equal(spsc_pop(&r, &c), 0);
    spsc_free(&r);
}

static void bad_arguments(void **state)
{
    spsc r;
    assert_int_equal(spsc_init(&r, 0, 4), -1);
    assert_int_equal(spsc_init(&r, 4, 0), -1);
}

#define N_THREAD_ITEMS 2000000

static void *producer(void *arg)
{
    spsc *r = arg;
    struct item it;
    for (uint64_t i = 0; i < N_THREAD_ITEMS; i++) {
        it.seq = i;
        for (int k = 0; k < 3; k++)
            it.payload[k] = (double)i * (k + 1);
        while (spsc_push(r, &it))
            sched_yield();
    }
    return NULL;
}

static void two_threads(void **state)
{
    spsc r;
    assert_int_equal(spsc_init(&r, 64, sizeof(struct item)), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, producer, &r), 0);
    uint64_t expect = 0;
    while (expect < N_THREAD_ITEMS) {
        struct item it;
        if (!spsc_pop(&r, &it)) {
            sched_yield();
            continue;
        }
        if (it.seq != expect)
            fail_msg("two_threads: item %llu arrived where %llu was expected",
                     (unsigned long long)it.seq, (unsigned long long)expect);
        for (int k = 0; k < 3; k++)
            if (it.payload[k] != (double)expect * (k + 1))
                fail_msg("two_threads: item %llu payload[%d] torn: expected %g, got %g",
                         (unsigned long long)expect, k, (double)expect * (k + 1), it.payload[k]);
        expect++;
    }
    pthread_join(t, NULL);
    assert_int_equal(spsc_count(&r), 0);
    spsc_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fifo_and_full),
        cmocka_unit_test(wraps_many_times),
        cmocka_unit_test(clear_empties),
        cmocka_unit_test(bad_arguments),
        cmocka_unit_test(two_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
