/* test_pagefaults.c: the audio path must not take page faults. A page
 * fault is a trip into the kernel (and, for a fresh page, an allocation
 * and zeroing), which the engine promises never to make in process(): it
 * touches everything in create. That promise can be broken silently: GCC
 * turns malloc + memset(0) into calloc, and calloc of fresh memory does
 * not touch it, so a ring "touched" that way is faulted in page by page by
 * the audio thread as its write index first goes round (found by
 * scripts/soak.sh: cbrnn-jack's resident memory grew 4.7 kB/s for the
 * 164 s its 16384-record ring takes to fill, then stayed flat).
 * Here: the default model at 48 kHz, learning, snapshots requested every
 * second; after a 2 s warm-up (code pages, first frames), the calling
 * thread's minor and major page faults (getrusage RUSAGE_THREAD) are
 * counted across process() calls only, over 60 s of audio, which writes
 * 6000 records: all of a 4096-record ring. Expected: none.
 * Not in sanitizer builds (ASan maps its shadow memory lazily). */
#define _GNU_SOURCE
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <cmocka.h>

#include "cbrnn/cbrnn_engine.h"
#include "cbrnn/cbrnn_model.h"

#ifndef CBRNN_SAMPLES
#error "CBRNN_SAMPLES (the samples/ folder) must be defined by the build"
#endif

#define RATE 48000
#define BLOCK 256

static long faults_now(long *major)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    *major = ru.ru_majflt;
    return ru.ru_minflt;
}

static void no_page_faults_in_process(void **state)
{
    char msg[1024];
    int err;
    cbrnn_model *m = cbrnn_model_load(CBRNN_SAMPLES "/default.safetensors", &err, msg, sizeof msg);
    if (!m)
        fail_msg("%s", msg);
    cbrnn_engine_config c;
    cbrnn_engine_config_default(&c, RATE);
    c.learn = 1;
    assert_int_equal(c.record_capacity, 4096); /* 41 s of records: 60 s wraps it */
    cbrnn_engine *e = cbrnn_engine_create(m, &c, &err);
    if (!e)
        fail_msg("engine: %s", cbrnn_strerror(err));
    cbrnn_model *snap = cbrnn_model_clone(m, &err);
    assert_non_null(snap);
    static float in[BLOCK], o[5][BLOCK];
    float *outs[5] = {o[0], o[1], o[2], o[3], o[4]};
    uint32_t lcg = 1;
    long minor = 0, major = 0, blocks = 0, records = 0;
    const long warm = 2 * RATE / BLOCK, total = 62 * RATE / BLOCK;
    for (long b = 0; b < total; b++) {
        for (int i = 0; i < BLOCK; i++) {
            lcg = lcg * 1664525u + 1013904223u;
            long t = b * BLOCK + i;
            in[i] = 0.3f * sinf(2.0f * 3.14159265f * 300.0f * (float)t / RATE) +
                    0.05f * ((float)(lcg >> 8) / 16777216.0f - 0.5f);
        }
        if (b % (RATE / BLOCK) == 0) { /* a snapshot a second, as autosave does */
            cbrnn_engine_cmd cmd = {CBRNN_CMD_SNAPSHOT, (int)b, 0};
            cbrnn_engine_send(e, &cmd);
        }
        long maj0, maj1;
        long min0 = faults_now(&maj0);
        assert_int_equal(cbrnn_engine_process(e, outs, 5, in, NULL, BLOCK), 0);
        long min1 = faults_now(&maj1);
        if (b >= warm) {
            minor += min1 - min0;
            major += maj1 - maj0;
            blocks++;
        }
        cbrnn_record r;
        while (cbrnn_engine_read_record(e, &r, NULL))
            records++;
        while (cbrnn_engine_take_snapshot(e, snap, NULL, NULL) == 1)
            ;
    }
    printf("process(): %ld blocks after warm-up, %ld records in all: %ld minor, %ld major page "
           "faults\n", blocks, records, minor, major);
    if (minor || major)
        fail_msg("process() took %ld minor and %ld major page faults in %ld blocks after the "
                 "warm-up; expected none (memory not touched at create?)", minor, major, blocks);
    cbrnn_model_destroy(snap);
    cbrnn_engine_destroy(e);
    cbrnn_model_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(no_page_faults_in_process)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
