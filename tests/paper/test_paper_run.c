/* test_paper_run.c: runs of the paper's protocol (experiment/tasks.c): a run is
 * deterministic for its seed, a run resumed from a checkpoint continues
 * bit-identically, the frozen and interleaved variants train exactly the
 * groups the issue says in each phase, multitask advances its shared N only
 * when both heads pass, a switch run crosses its task change (N = 12)
 * deterministically and resumes over it bit-identically, and checkpoints
 * that are damaged or belong to another run are refused with a message. Short epochs (few
 * steps) keep it fast; the protocol's own sizes are what
 * cbrnn_paper_config_default gives and are checked here too. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cbrnn/cbrnn_experiment.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cbrnn_paper_run_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void small_config(cbrnn_paper_config *c, int task, int variant, uint64_t seed)
{
    cbrnn_paper_config_default(c, task, variant);
    c->seed = seed;
    c->batch = 16; /* smaller than the protocol's 64: these tests are about bookkeeping */
    c->train_steps = 8;
    c->test_batches = 4;
}

static cbrnn_paper_run *make(const cbrnn_paper_config *c)
{
    int err = 0;
    cbrnn_paper_run *r = cbrnn_paper_run_create(c, &err);
    if (!r)
        fail_msg("cbrnn_paper_run_create: %s", cbrnn_strerror(err));
    return r;
}

static void epochs(cbrnn_paper_run *r, cbrnn_paper_epoch *rows, int n)
{
    for (int i = 0; i < n; i++) {
        int e = cbrnn_paper_run_epoch(r, &rows[i]);
        if (e)
            fail_msg("epoch %d: %s", i + 1, cbrnn_strerror(e));
    }
}

static void same_rows(const cbrnn_paper_epoch *a, const cbrnn_paper_epoch *b, int n, const char *what)
{
    for (int i = 0; i < n; i++)
        if (a[i].epoch != b[i].epoch || a[i].N != b[i].N || a[i].phase != b[i].phase ||
            a[i].train_loss != b[i].train_loss || a[i].test_accuracy != b[i].test_accuracy)
            fail_msg("%s: epoch %d differs: (N %d, phase %d, loss %.9g, acc %.6f) vs "
                     "(N %d, phase %d, loss %.9g, acc %.6f)", what, i + 1, a[i].N, a[i].phase,
                     a[i].train_loss, a[i].test_accuracy, b[i].N, b[i].phase, b[i].train_loss,
                     b[i].test_accuracy);
}

static void test_protocol_defaults(void **state)
{
    (void)state;
    cbrnn_paper_config c;
    cbrnn_paper_config_default(&c, CBRNN_TASK_PARITY, CBRNN_VARIANT_CBRNN);
    assert_int_equal(c.batch, 64);
    assert_int_equal(c.train_steps, 100);
    assert_int_equal(c.test_batches, 50);
    assert_true(c.threshold == 0.98);
    assert_int_equal(c.opt.kind, CBRNN_OPT_SGD);
    assert_true(c.opt.lr == 0.01f && c.opt.momentum == 0.1f && c.opt.nesterov == 1 &&
                c.opt.clip_norm == 7.5f && c.opt.weight_decay == 0.0f);
}

static void test_deterministic(void **state)
{
    (void)state;
    for (int task = 0; task < CBRNN_NTASKS; task++) {
        cbrnn_paper_config c;
        small_config(&c, task, task == CBRNN_TASK_PARITY ? CBRNN_VARIANT_RNN : CBRNN_VARIANT_CBRNN, 5);
        c.threshold = 0.6; /* let the level move within a few epochs */
        cbrnn_paper_epoch a[5], b[5], d[5];
        cbrnn_paper_run *ra = make(&c), *rb = make(&c);
        epochs(ra, a, 5);
        epochs(rb, b, 5);
        same_rows(a, b, 5, cbrnn_task_name(task));
        cbrnn_model *ma = cbrnn_paper_run_model(ra), *mb = cbrnn_paper_run_model(rb);
        if (memcmp(ma->params, mb->params, ma->n_params * sizeof(float)))
            fail_msg("%s: two runs of one seed end with different weights", cbrnn_task_name(task));
        /* another seed is another run */
        c.seed = 6;
        cbrnn_paper_run *rd = make(&c);
        epochs(rd, d, 5);
        int differs = 0;
        for (int i = 0; i < 5; i++)
            differs |= d[i].train_loss != a[i].train_loss;
        if (!differs)
            fail_msg("%s: seeds 5 and 6 gave the same losses", cbrnn_task_name(task));
        if (task == CBRNN_TASK_MULTITASK)
            for (int i = 0; i < 5; i++)
                assert_true(a[i].test_accuracy ==
                            fmin(a[i].head_accuracy[0], a[i].head_accuracy[1]));
        cbrnn_paper_run_destroy(ra);
        cbrnn_paper_run_destroy(rb);
        cbrnn_paper_run_destroy(rd);
    }
}

static void test_resume_identical(void **state)
{
    (void)state;
    for (int variant = 0; variant < CBRNN_NVARIANTS; variant++) {
        cbrnn_paper_config c;
        small_config(&c, CBRNN_TASK_DMS, variant, 9);
        c.threshold = 0.55;
        cbrnn_paper_epoch a[8], b[8];
        cbrnn_paper_run *ra = make(&c);
        epochs(ra, a, 8);
        cbrnn_paper_run *rb = make(&c);
        epochs(rb, b, 4);
        char path[512], msg[512];
        snprintf(path, sizeof path, "%s/%s.ckpt", tmpdir, cbrnn_variant_name(variant));
        if (cbrnn_paper_run_save(rb, path, msg, sizeof msg))
            fail_msg("save: %s", msg);
        cbrnn_paper_run_destroy(rb);
        int err = 0;
        rb = cbrnn_paper_run_load(path, &c, &err, msg, sizeof msg);
        if (!rb)
            fail_msg("load %s: %s", path, msg);
        assert_int_equal(cbrnn_paper_run_epochs(rb), 4);
        epochs(rb, b + 4, 4);
        same_rows(a, b, 8, cbrnn_variant_name(variant));
        cbrnn_model *ma = cbrnn_paper_run_model(ra), *mb = cbrnn_paper_run_model(rb);
        if (memcmp(ma->params, mb->params, ma->n_params * sizeof(float)))
            fail_msg("%s: resumed run ends with other weights", cbrnn_variant_name(variant));
        for (int g = 0; g < CBRNN_NGROUPS; g++)
            assert_int_equal(ma->frozen[g], mb->frozen[g]);
        cbrnn_paper_run_destroy(ra);
        cbrnn_paper_run_destroy(rb);
    }
}

/* Did each group change between two parameter snapshots? */
static void changed(const cbrnn_model *m, const float *before, int out[CBRNN_NGROUPS])
{
    for (int g = 0; g < CBRNN_NGROUPS; g++)
        out[g] = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        const cbrnn_tensor *ts = &m->tensors[t];
        if (memcmp(m->params + ts->offset, before + ts->offset, ts->size * sizeof(float)))
            out[ts->group] = 1;
    }
}

static void test_phases(void **state)
{
    (void)state;
    static const char *gname[3] = {"cortex", "cerebellum", "readout"};
    for (int variant = 0; variant < CBRNN_NVARIANTS; variant++) {
        cbrnn_paper_config c;
        small_config(&c, CBRNN_TASK_PARITY, variant, 3);
        c.train_steps = 2;
        c.test_batches = 1;
        c.threshold = 1e-9; /* every epoch passes: N = 2, 3, ..., 14 */
        cbrnn_paper_run *r = make(&c);
        cbrnn_model *m = cbrnn_paper_run_model(r);
        float *before = malloc(m->n_params * sizeof *before);
        assert_non_null(before);
        for (int e = 1; e <= 13; e++) {
            memcpy(before, m->params, m->n_params * sizeof *before);
            cbrnn_paper_epoch row;
            assert_int_equal(cbrnn_paper_run_epoch(r, &row), 0);
            int N = e + 1;
            assert_int_equal(row.N, N);
            int want_phase = CBRNN_PHASE_ALL;
            int want[3] = {1, variant != CBRNN_VARIANT_RNN, 1};
            if (variant == CBRNN_VARIANT_FROZEN || variant == CBRNN_VARIANT_INTERLEAVED) {
                if (e == 1) { /* warm-up at N = 2: core and head, CB frozen in the loop */
                    want[1] = 0;
                } else if (variant == CBRNN_VARIANT_INTERLEAVED && N == 12) {
                    want_phase = CBRNN_PHASE_INTERLEAVE;
                } else {
                    want_phase = CBRNN_PHASE_CORE_FROZEN;
                    want[0] = 0;
                }
            }
            if (row.phase != want_phase)
                fail_msg("%s epoch %d (N=%d): phase %d, expected %d", cbrnn_variant_name(variant), e,
                         N, row.phase, want_phase);
            int got[3];
            changed(m, before, got);
            for (int g = 0; g < 3; g++)
                if (got[g] != want[g])
                    fail_msg("%s epoch %d (N=%d, phase %d): %s %s, expected it %s",
                             cbrnn_variant_name(variant), e, N, row.phase, gname[g],
                             got[g] ? "changed" : "did not change", want[g] ? "to train" : "frozen");
        }
        free(before);
        cbrnn_paper_run_destroy(r);
    }
}

/* cbrnn_paper_run_set_phase (what bench paper-cost times): a forced phase
 * trains exactly the groups the run itself would train in it. */
static void test_set_phase(void **state)
{
    (void)state;
    cbrnn_paper_config c;
    small_config(&c, CBRNN_TASK_DMS, CBRNN_VARIANT_FROZEN, 5);
    c.train_steps = 2;
    c.test_batches = 1;
    cbrnn_paper_run *r = make(&c);
    cbrnn_model *m = cbrnn_paper_run_model(r);
    float *before = malloc(m->n_params * sizeof *before);
    assert_non_null(before);
    assert_int_equal(cbrnn_paper_run_set_phase(r, -1), CBRNN_ERR_ARG);
    assert_int_equal(cbrnn_paper_run_set_phase(r, CBRNN_PHASE_INTERLEAVE + 1), CBRNN_ERR_ARG);
    assert_int_equal(cbrnn_paper_run_set_level(r, 7), 0);
    assert_int_equal(cbrnn_paper_run_set_phase(r, CBRNN_PHASE_CORE_FROZEN), 0);
    assert_int_equal(cbrnn_paper_run_phase(r), CBRNN_PHASE_CORE_FROZEN);
    memcpy(before, m->params, m->n_params * sizeof *before);
    cbrnn_paper_epoch row;
    assert_int_equal(cbrnn_paper_run_epoch(r, &row), 0);
    assert_int_equal(row.N, 7);
    assert_int_equal(row.phase, CBRNN_PHASE_CORE_FROZEN);
    int got[3];
    changed(m, before, got);
    if (got[0] || !got[1] || !got[2])
        fail_msg("forced core-frozen phase: cortex %d cerebellum %d readout %d changed "
                 "(expected 0 1 1)", got[0], got[1], got[2]);
    free(before);
    cbrnn_paper_run_destroy(r);
}

static void test_cap(void **state)
{
    (void)state;
    cbrnn_paper_config c;
    small_config(&c, CBRNN_TASK_DMS, CBRNN_VARIANT_RNN, 1);
    c.train_steps = 1;
    c.test_batches = 1;
    c.threshold = 1e-9;
    c.max_n = 4;
    cbrnn_paper_run *r = make(&c);
    cbrnn_paper_epoch row[6];
    epochs(r, row, 6);
    int want[6] = {2, 3, 4, 4, 4, 4};
    for (int i = 0; i < 6; i++)
        if (row[i].N != want[i])
            fail_msg("cap 4: epoch %d at N=%d, expected %d", i + 1, row[i].N, want[i]);
    assert_int_equal(cbrnn_paper_run_set_level(r, 5), CBRNN_ERR_ARG);
    cbrnn_paper_run_destroy(r);
}

/* Multitask: one shared N, and it rises only after an epoch in which both
 * heads (DMS and parity) reached the threshold; the epoch's accuracy is the
 * lower head's. Checked row by row against that rule. */
static void test_multitask_curriculum(void **state)
{
    (void)state;
    int advanced = 0, split = 0;
    for (int variant = CBRNN_VARIANT_CBRNN; variant <= CBRNN_VARIANT_RNN; variant++) {
        cbrnn_paper_config c;
        small_config(&c, CBRNN_TASK_MULTITASK, variant, 11);
        c.batch = 32;
        c.train_steps = 30; /* enough to pass N = 2 within a few epochs */
        c.threshold = 0.85;
        enum { E = 8 };
        cbrnn_paper_epoch row[E];
        cbrnn_paper_run *r = make(&c);
        epochs(r, row, E);
        for (int i = 0; i < E; i++) {
            double lo = fmin(row[i].head_accuracy[0], row[i].head_accuracy[1]);
            if (row[i].test_accuracy != lo)
                fail_msg("multitask %s epoch %d: accuracy %.6f, expected the lower head's %.6f "
                         "(dms %.6f, parity %.6f)", cbrnn_variant_name(variant), i + 1,
                         row[i].test_accuracy, lo, row[i].head_accuracy[0], row[i].head_accuracy[1]);
            int next = i + 1 < E ? row[i + 1].N : cbrnn_paper_run_level(r);
            int want = lo >= c.threshold ? row[i].N + 1 : row[i].N;
            advanced += want > row[i].N;
            split += lo < c.threshold && fmax(row[i].head_accuracy[0], row[i].head_accuracy[1]) >=
                                             c.threshold;
            if (next != want)
                fail_msg("multitask %s epoch %d at N=%d (dms %.6f, parity %.6f, threshold %.2f): "
                         "next N %d, expected %d", cbrnn_variant_name(variant), i + 1, row[i].N,
                         row[i].head_accuracy[0], row[i].head_accuracy[1], c.threshold, next, want);
        }
        cbrnn_paper_run_destroy(r);
    }
    if (!advanced)
        fail_msg("multitask: N never rose in 2 x %d epochs; the rule was not exercised", 8);
    /* Epochs with one head above the threshold and the other below: the
     * case that must not advance (seen with this seed; a note, not a check,
     * as float rounding of another BLAS could move an accuracy). */
    printf("multitask: %d advances, %d epochs with only one head above the threshold\n", advanced,
           split);
}

/* Switch across its first task change (DMS at N = 2..11, parity from 12):
 * every epoch passes, so the run walks N = 2..15; two runs of one seed
 * agree, and a run saved at N = 11 and resumed continues bit-identically
 * over the switch. The model reads two inputs (bits and cue). */
static void test_switch_run(void **state)
{
    (void)state;
    for (int variant = 0; variant < CBRNN_NVARIANTS; variant++) {
        cbrnn_paper_config c;
        small_config(&c, CBRNN_TASK_SWITCH, variant, 4);
        c.train_steps = 2;
        c.test_batches = 1;
        c.threshold = 1e-9;
        enum { E = 14 };
        cbrnn_paper_epoch a[E], b[E];
        cbrnn_paper_run *ra = make(&c), *rb = make(&c);
        assert_int_equal(cbrnn_paper_run_model(ra)->cfg.n_in, 2);
        epochs(ra, a, E);
        for (int i = 0; i < E; i++)
            if (a[i].N != i + 2)
                fail_msg("switch %s epoch %d: N=%d, expected %d", cbrnn_variant_name(variant), i + 1,
                         a[i].N, i + 2);
        epochs(rb, b, 10); /* N = 2..11: the DMS block */
        char path[512], msg[512];
        snprintf(path, sizeof path, "%s/switch-%s.ckpt", tmpdir, cbrnn_variant_name(variant));
        if (cbrnn_paper_run_save(rb, path, msg, sizeof msg))
            fail_msg("save: %s", msg);
        cbrnn_paper_run_destroy(rb);
        int err = 0;
        rb = cbrnn_paper_run_load(path, &c, &err, msg, sizeof msg);
        if (!rb)
            fail_msg("load %s: %s", path, msg);
        assert_int_equal(cbrnn_paper_run_level(rb), 12);
        epochs(rb, b + 10, E - 10); /* N = 12..15: parity, with the cue */
        same_rows(a, b, E, cbrnn_variant_name(variant));
        cbrnn_model *ma = cbrnn_paper_run_model(ra), *mb = cbrnn_paper_run_model(rb);
        if (memcmp(ma->params, mb->params, ma->n_params * sizeof(float)))
            fail_msg("switch %s: the run resumed over the switch ends with other weights",
                     cbrnn_variant_name(variant));
        cbrnn_paper_run_destroy(ra);
        cbrnn_paper_run_destroy(rb);
    }
}

static void write_bytes(const char *path, const unsigned char *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void expect_refused(const char *path, const cbrnn_paper_config *c, int code, const char *words)
{
    char msg[512] = "";
    int err = 0;
    cbrnn_paper_run *r = cbrnn_paper_run_load(path, c, &err, msg, sizeof msg);
    if (r)
        fail_msg("%s: loaded, expected refusal with '%s'", path, words);
    if (err != code || !strstr(msg, words) || !strstr(msg, path))
        fail_msg("%s: error %d '%s', expected %d naming the file and saying '%s'", path, err, msg,
                 code, words);
}

static void test_checkpoint_refusals(void **state)
{
    (void)state;
    cbrnn_paper_config c;
    small_config(&c, CBRNN_TASK_PARITY, CBRNN_VARIANT_CBRNN, 2);
    cbrnn_paper_run *r = make(&c);
    cbrnn_paper_epoch row;
    epochs(r, &row, 1);
    char path[512], bad[512], msg[512];
    snprintf(path, sizeof path, "%s/good.ckpt", tmpdir);
    snprintf(bad, sizeof bad, "%s/bad.ckpt", tmpdir);
    assert_int_equal(cbrnn_paper_run_save(r, path, msg, sizeof msg), 0);
    cbrnn_paper_run_destroy(r);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(n > 1000 && n < sizeof buf);

    /* another run's configuration */
    cbrnn_paper_config other = c;
    other.seed = 3;
    expect_refused(path, &other, CBRNN_ERR_SHAPE, "another run");
    other = c;
    other.max_n = 9;
    expect_refused(path, &other, CBRNN_ERR_SHAPE, "another run");
    /* a flipped byte in the weights */
    buf[n / 2] ^= 0x40;
    write_bytes(bad, buf, n);
    expect_refused(bad, &c, CBRNN_ERR_FORMAT, "checksum");
    buf[n / 2] ^= 0x40;
    /* truncated */
    write_bytes(bad, buf, n - 100);
    expect_refused(bad, &c, CBRNN_ERR_FORMAT, "checksum");
    write_bytes(bad, buf, 10);
    expect_refused(bad, &c, CBRNN_ERR_FORMAT, "not a cbrnn checkpoint");
    /* not a checkpoint at all */
    write_bytes(bad, (const unsigned char *)"epoch,N,train_loss\n1,2,3\n", 25);
    expect_refused(bad, &c, CBRNN_ERR_FORMAT, "not a cbrnn checkpoint");
    snprintf(bad, sizeof bad, "%s/missing.ckpt", tmpdir);
    expect_refused(bad, &c, CBRNN_ERR_IO, "cannot open");
    /* saving into a folder that does not exist fails with a message */
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.ckpt", tmpdir);
    r = make(&c);
    assert_int_equal(cbrnn_paper_run_save(r, bad, msg, sizeof msg), CBRNN_ERR_IO);
    assert_non_null(strstr(msg, "cannot create"));
    cbrnn_paper_run_destroy(r);
    /* the good file still loads */
    int err = 0;
    r = cbrnn_paper_run_load(path, &c, &err, msg, sizeof msg);
    if (!r)
        fail_msg("%s: %s", path, msg);
    cbrnn_paper_run_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protocol_defaults),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_resume_identical),
        cmocka_unit_test(test_phases),
        cmocka_unit_test(test_set_phase),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_multitask_curriculum),
        cmocka_unit_test(test_switch_run),
        cmocka_unit_test(test_checkpoint_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
