/* test_engine_rt.c: the audio path never allocates, locks or waits.
 * It links tests/common/rt_interpose.c, which defines malloc, calloc,
 * realloc, free, posix_memalign, aligned_alloc, memalign,
 * pthread_mutex_lock/trylock, pthread_cond_wait/timedwait and sem_wait
 * (forwarding to the real ones), so every call from any library in the
 * process lands there first. While the audio thread is inside cbrnn_engine_process or
 * cbrnn_engine_set_label a thread-local flag is up and any such call is
 * counted. The engine runs with learning on over thousands of blocks of
 * varied sizes (1..4096 samples) of real speech at 48 kHz, for both
 * wirings, while a control thread sends every kind of command (learn
 * on/off, lr, momentum, decay, reset, snapshot, marker, label), takes
 * snapshots and drains the record ring; for both online rules (SGD, and
 * RLS with its matrix update), and once with the perturbed feedback
 * (delay, gain, Rubber Band's pitch shifter) in the path, which the model
 * hears, while pitch, delay, gain and listen commands flow. Expected: zero
 * calls.
 * Not built under the sanitizers: ASan replaces the allocator itself. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>
#include <cblas.h>
#include <fftw3.h>

#include "engine_testutil.h"
#include "rt_interpose.h"

/* ---- the control thread: commands in, snapshots and records out ---- */
struct control {
    cbrnn_engine *e;
    cbrnn_model *snap;
    atomic_int stop;
    atomic_long rounds;      /* command rounds sent */
    long records, markers, snapshots, learning_off_seen, events;
    int64_t last_event_frame; /* applied events come in frame order */
    int events_out_of_order;
    int perturb;              /* also send perturbed-feedback commands */
};

static void *control_main(void *arg)
{
    struct control *c = arg;
    cbrnn_record r;
    long round = 0;
    while (!atomic_load(&c->stop)) {
        cbrnn_engine_cmd cmds[] = {
            {CBRNN_CMD_MARK, (int)(round % 1000), 0},
            {CBRNN_CMD_LR, 0, 1e-3f * (float)(1 + round % 3)},
            {CBRNN_CMD_MOMENTUM, 0, 0.5f + 0.1f * (float)(round % 4)},
            {CBRNN_CMD_DECAY, 0, (round % 2) ? 1e-4f : 0.0f},
            {CBRNN_CMD_LABEL, (int)(round % 3), 0},
            {CBRNN_CMD_SNAPSHOT, (int)round, 0},
            {CBRNN_CMD_LEARN, (round % 5) != 4, 0},
            {CBRNN_CMD_RESET, 0, 0},
        };
        int n_cmds = (round % 7 == 6) ? 8 : 7; /* reset now and then */
        for (int i = 0; i < n_cmds; i++)
            cbrnn_engine_send(c->e, &cmds[i]);
        if (c->perturb) {
            /* pitch jumps and ramps over the whole range, delays, gains,
             * and the model switching between input and feedback */
            cbrnn_engine_cmd p[] = {
                {CBRNN_CMD_PITCH, (int)(round % 3) * 20, (float)((round * 7) % 25) - 12.0f},
                {CBRNN_CMD_DELAY, (int)(round % 2) * 30, (float)((round * 13) % 200)},
                {CBRNN_CMD_GAIN, (int)(round % 4) * 10, (float)((round * 5) % 13) - 6.0f},
                {CBRNN_CMD_LISTEN, (int)(round % 5 != 0), 0.0f}};
            for (int i = 0; i < 4; i++)
                if (cbrnn_engine_send(c->e, &p[i]) == CBRNN_ERR_ARG)
                    fail_msg("perturbation command %d refused", p[i].kind);
        }
        atomic_store(&c->rounds, ++round);
        while (cbrnn_engine_read_record(c->e, &r, NULL)) {
            c->records++;
            c->markers += r.marker >= 0;
            c->learning_off_seen += !r.learning;
        }
        cbrnn_event ev;
        while (cbrnn_engine_read_event(c->e, &ev)) { /* the replay log's path */
            c->events++;
            c->events_out_of_order += ev.frame < c->last_event_frame;
            c->last_event_frame = ev.frame;
        }
        int id;
        int64_t frame;
        while (cbrnn_engine_take_snapshot(c->e, c->snap, &id, &frame) == 1)
            c->snapshots++;
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void run_rt(int wiring, int target, int n_hidden, int cb_width, int n_blocks,
                   cbrnn_rule rule, int perturb)
{
    long n;
    double rate;
    float *x = tu_load("voiceB_gb_female_2.wav", 48000.0, &n, &rate);
    cbrnn_model *m = tu_model(wiring, target, n_hidden, cb_width, 29, x, n, rate);
    cbrnn_engine_config cfg;
    cbrnn_engine_config_default(&cfg, rate);
    cfg.learn = 1;
    cfg.bptt_k = 4;
    cfg.record_outputs = 1;
    cfg.gate_db = -30; /* the level gate's per-sample sums run too (and gate pauses) */
    cfg.rule = rule;
    if (perturb) { /* perturbed feedback with the pitch shifter, which the model hears */
        cfg.perturb = 2;
        cfg.listen = 1;
        /* pitch jumps every few milliseconds change the level a lot: no
         * gate, so that the run still learns */
        cfg.gate_db = 0;
    }
    int err;
    cbrnn_engine *e = cbrnn_engine_create(m, &cfg, &err);
    assert_non_null(e);
    /* A schedule too: the audio thread applies it itself (every 7th frame
     * a marker, a rate, learning on/off). */
    static cbrnn_event sched[3000];
    for (int i = 0; i < 3000; i++)
        sched[i] = (cbrnn_event){(i / 3) * 7,
                                 {i % 3 == 0 ? CBRNN_CMD_MARK : i % 3 == 1 ? CBRNN_CMD_LR
                                                                            : CBRNN_CMD_LEARN,
                                  i % 3 == 2 ? (i / 3) % 4 != 3 : 5000 + i, 1e-3f}};
    assert_int_equal(cbrnn_engine_set_schedule(e, sched, 3000), 0);
    const int n_out = cbrnn_engine_n_outputs(e);
    float *bufs[1 + CBRNN_MAX_CLASSES];
    for (int i = 0; i < n_out; i++)
        bufs[i] = calloc(4096, sizeof(float));
    struct control c = {.e = e, .snap = cbrnn_model_clone(m, &err), .perturb = perturb};
    float *fb = calloc(4096, sizeof(float));
    atomic_init(&c.stop, 0);
    atomic_init(&c.rounds, 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, control_main, &c), 0);

    atomic_store(&rt_calls, 0);
    uint32_t lcg = 987654321u;
    long pos = 0, total = 0;
    for (int b = 0; b < n_blocks; b++) {
        lcg = lcg * 1664525u + 1013904223u;
        /* Mostly power-of-two periods as JACK uses, sometimes any size. */
        int size = (lcg >> 29) < 6 ? 1 << ((lcg >> 8) % 13) : 1 + (int)((lcg >> 8) % 4096);
        if (pos + size > n)
            pos = 0; /* loop the clip: a continuous stream */
        if (b % 64 == 0) {
            /* Let the control thread catch up so commands certainly flow
             * during the run (unarmed: the wait is the test's, not the
             * engine's). */
            long want = atomic_load(&c.rounds) + 1;
            while (atomic_load(&c.rounds) < want)
                sched_yield();
        }
        rt_armed = 1;
        if (target == CBRNN_TARGET_CLASSIFY && b % 10 == 0)
            cbrnn_engine_set_label(e, b % 4 - 1);
        int rc = cbrnn_engine_process_fb(e, bufs, n_out, perturb ? fb : NULL, x + pos, NULL, size);
        rt_armed = 0;
        assert_int_equal(rc, 0);
        pos += size;
        total += size;
    }
    atomic_store(&c.stop, 1);
    pthread_join(th, NULL);
    cbrnn_engine_stats st;
    cbrnn_engine_get_stats(e, &st);
    print_message("%s/%s N=%d CB=%d%s: %d blocks, %.1f s of audio, %lld frames, %lld updates, "
                  "%ld records, %ld markers, %ld snapshots, %lld restores\n",
                  wiring ? "loop" : "readout", target == CBRNN_TARGET_CLASSIFY ? "classify" : "predict",
                  n_hidden, cb_width, perturb ? ", perturbed feedback" : "", n_blocks,
                  total / rate, (long long)st.frames,
                  (long long)st.updates, c.records, c.markers, c.snapshots, (long long)st.restores);
    if (perturb)
        print_message("perturbed feedback: %lld samples late (played as 0)\n",
                      cbrnn_engine_perturb_underruns(e));
    long calls = atomic_load(&rt_calls);
    if (calls)
        fail_msg("audio path: expected 0 calls to allocator/lock/wait functions, got %ld "
                 "(first: %s)",
                 calls, atomic_load(&rt_first_call));
    /* The run must really have exercised what it claims. */
    assert_true(st.frames > 1000);
    assert_true(st.updates > 500);
    assert_true(c.markers > 10);
    assert_true(c.snapshots > 10);
    assert_true(c.learning_off_seen > 0);
    assert_true(c.events > 1000); /* applied commands reported from the audio path */
    assert_int_equal(c.events_out_of_order, 0);
    for (int i = 0; i < n_out; i++)
        free(bufs[i]);
    free(fb);
    cbrnn_model_destroy(c.snap);
    cbrnn_engine_destroy(e);
    cbrnn_model_destroy(m);
    free(x);
}

static void readout_predict_default_size(void **state)
{
    run_rt(CBRNN_WIRING_READOUT, CBRNN_TARGET_PREDICT, 256, 512, 3000, CBRNN_RULE_SGD, 0);
}
/* The perturbation path (delay line, gain, Rubber Band's pitch shifter)
 * inside the engine, under pitch jumps and ramps across +-12 semitones. */
static void readout_predict_perturbed(void **state)
{
    run_rt(CBRNN_WIRING_READOUT, CBRNN_TARGET_PREDICT, 64, 96, 3000, CBRNN_RULE_SGD, 1);
}
/* RLS: its matrix update, and its restart on reset and restore. */
static void readout_predict_rls(void **state)
{
    run_rt(CBRNN_WIRING_READOUT, CBRNN_TARGET_PREDICT, 256, 512, 2000, CBRNN_RULE_RLS, 0);
}
static void loop_predict(void **state)
{
    run_rt(CBRNN_WIRING_LOOP, CBRNN_TARGET_PREDICT, 64, 96, 3000, CBRNN_RULE_SGD, 0);
}
static void readout_classify(void **state)
{
    run_rt(CBRNN_WIRING_READOUT, CBRNN_TARGET_CLASSIFY, 64, 96, 2000, CBRNN_RULE_SGD, 0);
}

/* The interposers must see calls at all, or a zero means nothing: calls
 * from this program, from FFTW's allocator and from a shared library that is
 * known to lock (OpenBLAS's sgemv takes a mutex in its buffer allocator,
 * which is why the engine never calls CBLAS). */
static void interposition_works(void **state)
{
    void *(*volatile alloc)(size_t) = malloc; /* not elided by the compiler */
    atomic_store(&rt_calls, 0);
    rt_armed = 1;
    void *p = alloc(16);
    rt_armed = 0;
    assert_int_equal(atomic_load(&rt_calls), 1);
    free(p);
    rt_armed = 1;
    void *q = fftw_malloc(64); /* libfftw3 -> the allocator */
    rt_armed = 0;
    assert_true(atomic_load(&rt_calls) >= 2);
    fftw_free(q);
    static float w[512 * 256], v[512], o[512];
    atomic_store(&rt_calls, 0);
    rt_armed = 1;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, 512, 256, 1.0f, w, 256, v, 1, 0.0f, o, 1);
    rt_armed = 0;
    if (atomic_load(&rt_calls) < 1)
        fail_msg("interposition: OpenBLAS sgemv made no call that was seen; the interposer "
                 "cannot be trusted");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(interposition_works),
        cmocka_unit_test(readout_predict_default_size),
        cmocka_unit_test(readout_predict_rls),
        cmocka_unit_test(readout_predict_perturbed),
        cmocka_unit_test(loop_predict),
        cmocka_unit_test(readout_classify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
