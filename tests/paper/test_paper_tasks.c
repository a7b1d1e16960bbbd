/* test_paper_tasks.c: the paper's task generators against a brute-force
 * reading of their definitions (issue 5; multitask's two labels and
 * switch's task blocks and cue included), the sequence-length draw, the
 * curriculum rule, the initial states, and the parameter counts of the
 * paper's models (41,922 and 41,816). Never depends on timing. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cbrnn/cbrnn_experiment.h"

#define B 64

/* Brute force, straight from the words, on the bits of one trial
 * (bits[0..M-1], bits[M-1] the last):
 *   N-DMS: label = (bit at M-N) == (last bit)
 *   N-parity: label = sum of the last N bits mod 2 */
static int brute_dms(const int *bits, int M, int N) { return bits[M - N] == bits[M - 1]; }
static int brute_parity(const int *bits, int M, int N)
{
    int s = 0;
    for (int i = M - N; i < M; i++)
        s += bits[i];
    return s % 2;
}
/* Switch: DMS for the first 10 levels from the start N = 2 (2..11), parity
 * for the next 10 (12..21), and so on; the cue (second input) is 1 at
 * steps 0, 1, 2 of every parity trial and 0 elsewhere. */
static int brute_switch_is_parity(int N) { return N >= 2 && ((N - 2) / 10) % 2 == 1; }

static void check_task(int task, int N, int M, uint64_t seed)
{
    const int F = cbrnn_task_n_in(task), H = cbrnn_task_n_heads(task);
    float *x = malloc((size_t)B * M * F * sizeof *x);
    int *labels = malloc((size_t)B * H * sizeof *labels);
    int bits[512];
    assert_non_null(x);
    assert_non_null(labels);
    assert_true(M <= 512);
    cbrnn_rng r;
    cbrnn_rng_seed(&r, seed);
    assert_int_equal(cbrnn_task_batch(x, labels, &r, task, N, B, M), 0);
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < M; t++) {
            float v = x[((size_t)b * M + t) * F];
            if (v != 0.0f && v != 1.0f)
                fail_msg("%s N=%d M=%d trial %d step %d: input %g is not a bit", cbrnn_task_name(task),
                         N, M, b, t, v);
            bits[t] = (int)v;
        }
        int dms = brute_dms(bits, M, N), par = brute_parity(bits, M, N);
        if (task == CBRNN_TASK_MULTITASK) {
            if (labels[2 * b] != dms || labels[2 * b + 1] != par)
                fail_msg("multitask N=%d M=%d trial %d: labels (dms %d, parity %d), brute force "
                         "(%d, %d)", N, M, b, labels[2 * b], labels[2 * b + 1], dms, par);
            continue;
        }
        int single = task == CBRNN_TASK_SWITCH
                         ? (brute_switch_is_parity(N) ? CBRNN_TASK_PARITY : CBRNN_TASK_DMS)
                         : task;
        int want = single == CBRNN_TASK_DMS ? dms : par;
        if (labels[b] != want)
            fail_msg("%s N=%d M=%d trial %d: label %d, brute force %s gives %d",
                     cbrnn_task_name(task), N, M, b, labels[b], cbrnn_task_name(single), want);
        if (task == CBRNN_TASK_SWITCH) {
            for (int t = 0; t < M; t++) {
                float cue = x[((size_t)b * M + t) * F + 1];
                float want_cue = brute_switch_is_parity(N) && t < 3 ? 1.0f : 0.0f;
                if (cue != want_cue)
                    fail_msg("switch N=%d trial %d step %d: cue %g, expected %g", N, b, t, cue,
                             want_cue);
            }
        }
    }
    free(x);
    free(labels);
}

static void test_labels_brute_force(void **state)
{
    (void)state;
    uint64_t seed = 1;
    for (int task = 0; task < CBRNN_NTASKS; task++)
        for (int N = 1; N <= 40; N++) {
            int lens[3] = {N + 2, (N + 2 + 4 * N + 1) / 2, 4 * N + 1};
            for (int i = 0; i < 3; i++)
                check_task(task, N, lens[i], seed++);
        }
}

/* The generator's bits are fair and both labels occur about half the time
 * (deterministic for the seed: the bounds are > 6 sd wide). */
static void test_bits_and_labels_balanced(void **state)
{
    (void)state;
    const int M = 30, N = 7, reps = 200;
    float *x = malloc((size_t)B * M * sizeof *x);
    int labels[B];
    cbrnn_rng r;
    cbrnn_rng_seed(&r, 42);
    long ones = 0, pos = 0;
    for (int k = 0; k < reps; k++) {
        assert_int_equal(cbrnn_task_batch(x, labels, &r, CBRNN_TASK_PARITY, N, B, M), 0);
        for (int i = 0; i < B * M; i++)
            ones += x[i] == 1.0f;
        for (int b = 0; b < B; b++)
            pos += labels[b];
    }
    double p_bit = (double)ones / ((double)reps * B * M), p_lab = (double)pos / ((double)reps * B);
    if (p_bit < 0.49 || p_bit > 0.51)
        fail_msg("bits: fraction of ones %.4f, expected 0.5 +- 0.01", p_bit);
    if (p_lab < 0.45 || p_lab > 0.55)
        fail_msg("parity labels: fraction of ones %.4f, expected 0.5 +- 0.05", p_lab);
    free(x);
}

static void test_lengths(void **state)
{
    (void)state;
    cbrnn_rng r;
    cbrnn_rng_seed(&r, 7);
    for (int N = 1; N <= 40; N++) {
        int seen[200] = {0};
        for (int i = 0; i < 400 * N; i++) {
            int M = cbrnn_task_draw_len(&r, N);
            if (M < N + 2 || M >= 4 * N + 2)
                fail_msg("N=%d: length %d outside [%d, %d)", N, M, N + 2, 4 * N + 2);
            seen[M]++;
        }
        /* uniform over the 3N values: each about 400N/3N = 133 times */
        for (int M = N + 2; M < 4 * N + 2; M++)
            if (seen[M] < 70 || seen[M] > 200)
                fail_msg("N=%d: length %d drawn %d times of %d, expected about %d", N, M, seen[M],
                         400 * N, 400 / 3);
    }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    float x[64];
    int labels[4];
    cbrnn_rng r;
    cbrnn_rng_seed(&r, 1);
    assert_int_equal(cbrnn_task_batch(x, labels, &r, CBRNN_TASK_DMS, 5, 1, 5), CBRNN_ERR_ARG);
    assert_int_equal(cbrnn_task_batch(x, labels, &r, CBRNN_TASK_DMS, 0, 1, 5), CBRNN_ERR_ARG);
    assert_int_equal(cbrnn_task_batch(x, labels, &r, 9, 2, 1, 5), CBRNN_ERR_ARG);
    assert_int_equal(cbrnn_task_batch(NULL, labels, &r, CBRNN_TASK_DMS, 2, 1, 5), CBRNN_ERR_ARG);
    assert_int_equal(cbrnn_task_parse("parity"), CBRNN_TASK_PARITY);
    assert_int_equal(cbrnn_task_parse("speech"), -1);
    assert_int_equal(cbrnn_variant_parse("interleaved"), CBRNN_VARIANT_INTERLEAVED);
    assert_int_equal(cbrnn_variant_parse("lstm"), -1);
}

static void test_switch_blocks(void **state)
{
    (void)state;
    /* DMS at 2..11, parity at 12..21, DMS at 22..31, ... */
    for (int N = 1; N < 60; N++) {
        int want = brute_switch_is_parity(N) ? CBRNN_TASK_PARITY : CBRNN_TASK_DMS;
        if (cbrnn_task_at_level(CBRNN_TASK_SWITCH, N) != want)
            fail_msg("switch at N=%d: task %s, expected %s", N,
                     cbrnn_task_name(cbrnn_task_at_level(CBRNN_TASK_SWITCH, N)),
                     cbrnn_task_name(want));
    }
    assert_int_equal(cbrnn_task_n_in(CBRNN_TASK_SWITCH), 2);
    assert_int_equal(cbrnn_task_n_out(CBRNN_TASK_MULTITASK), 4);
}

static void test_curriculum(void **state)
{
    (void)state;
    assert_int_equal(cbrnn_curriculum_next(2, 0.98, 0.98, 0), 3);   /* >= advances */
    assert_int_equal(cbrnn_curriculum_next(2, 0.9799, 0.98, 0), 2);
    assert_int_equal(cbrnn_curriculum_next(2, 1.0, 0.98, 0), 3);
    assert_int_equal(cbrnn_curriculum_next(10, 1.0, 0.98, 10), 10); /* cap */
    assert_int_equal(cbrnn_curriculum_next(9, 1.0, 0.98, 10), 10);
    assert_int_equal(cbrnn_curriculum_next(50, 0.99, 0.98, 0), 51); /* no cap */
    /* 0.98 exactly as a fraction of the test trials: 3136 of 3200 */
    assert_int_equal(cbrnn_curriculum_next(4, 3136.0 / 3200.0, CBRNN_PAPER_THRESHOLD, 0), 5);
    assert_int_equal(cbrnn_curriculum_next(4, 3135.0 / 3200.0, CBRNN_PAPER_THRESHOLD, 0), 4);
}

static void test_h0(void **state)
{
    (void)state;
    float h0[B * 64];
    cbrnn_rng r;
    cbrnn_rng_seed(&r, 3);
    cbrnn_task_h0(h0, &r, B, 64, CBRNN_PAPER_H0_SCALE);
    double mean = 0, lo = 1, hi = -1;
    for (int i = 0; i < B * 64; i++) {
        mean += h0[i];
        lo = h0[i] < lo ? h0[i] : lo;
        hi = h0[i] > hi ? h0[i] : hi;
    }
    mean /= B * 64;
    if (lo < 0 || hi >= 0.1 || mean < 0.045 || mean > 0.055)
        fail_msg("h0 = 0.1 U(0,1): min %g max %g mean %g, expected [0, 0.1) with mean 0.05", lo, hi,
                 mean);
}

static void test_param_counts(void **state)
{
    (void)state;
    static const struct { int task, variant; size_t want; } cases[] = {
        {CBRNN_TASK_PARITY, CBRNN_VARIANT_CBRNN, 41922},
        {CBRNN_TASK_DMS, CBRNN_VARIANT_FROZEN, 41922},
        {CBRNN_TASK_DMS, CBRNN_VARIANT_INTERLEAVED, 41922},
        {CBRNN_TASK_PARITY, CBRNN_VARIANT_RNN, 41816},
        {CBRNN_TASK_DMS, CBRNN_VARIANT_RNN, 41816},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cbrnn_model_config c;
        cbrnn_paper_model_config(&c, cases[i].task, cases[i].variant);
        char msg[256];
        assert_int_equal(cbrnn_model_config_check(&c, msg, sizeof msg), 0);
        size_t n = cbrnn_model_config_params(&c);
        int err = 0;
        cbrnn_model *m = cbrnn_model_create(&c, &err);
        assert_non_null(m);
        if (n != cases[i].want || m->n_params != cases[i].want)
            fail_msg("%s/%s: %zu parameters (model %zu), expected %zu",
                     cbrnn_task_name(cases[i].task), cbrnn_variant_name(cases[i].variant), n,
                     m->n_params, cases[i].want);
        if (cases[i].variant != CBRNN_VARIANT_RNN) {
            /* 65 -> 256 -> 64 -> 64 */
            assert_int_equal(m->n_cb_layers, 3);
            assert_int_equal(m->cb_dim[0], 65);
            assert_int_equal(m->cb_dim[1], 256);
            assert_int_equal(m->cb_dim[2], 64);
            assert_int_equal(m->cb_dim[3], 64);
        } else {
            assert_int_equal(m->cfg.n_hidden, 202);
        }
        assert_int_equal(m->cfg.wiring, CBRNN_WIRING_LOOP);
        assert_int_equal(m->cfg.act, CBRNN_ACT_LEAKY_RELU);
        assert_true(m->cfg.alpha == 2.0f / 3.0f);
        cbrnn_model_destroy(m);
    }
    /* the header's own rule agrees that 202 matches the CB-RNN's count */
    assert_int_equal(cbrnn_rnn_hidden_for_params(1, 2, 41922), 202);
}

/* The paper's initialisation: core and head as nn.Linear (U(-1/sqrt fan_in,
 * 1/sqrt fan_in)), the cerebellum near zero (biases 0, W_gc N(0, 0.01^2),
 * the others N(0, 0.1^2)). Checked by ranges and moments. */
static void test_paper_init(void **state)
{
    (void)state;
    cbrnn_paper_config pc;
    cbrnn_paper_config_default(&pc, CBRNN_TASK_PARITY, CBRNN_VARIANT_CBRNN);
    pc.seed = 11;
    int err = 0;
    cbrnn_paper_run *run = cbrnn_paper_run_create(&pc, &err);
    assert_non_null(run);
    cbrnn_model *m = cbrnn_paper_run_model(run);
    struct { const float *p; size_t n; double bound, sd; const char *what; } t[] = {
        {m->w_ih, 64, 1.0, -1, "W_ih (fan_in 1)"},
        {m->w_hh, 64 * 64, 0.125, -1, "W_hh (fan_in 64)"},
        {m->b_hh, 64, 0.125, -1, "b_hh"},
        {m->out_w, 2 * 64, 0.125, -1, "readout"},
        {m->cb_w[0], 256 * 65, -1, 0.01, "W_gc"},
        {m->cb_w[1], 64 * 256, -1, 0.1, "W_pc"},
        {m->cb_w[2], 64 * 64, -1, 0.1, "W_dcn"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        double s = 0, q = 0, mx = 0;
        for (size_t k = 0; k < t[i].n; k++) {
            double v = t[i].p[k];
            s += v;
            q += v * v;
            mx = fabs(v) > mx ? fabs(v) : mx;
        }
        double sd = sqrt(q / t[i].n - (s / t[i].n) * (s / t[i].n));
        if (t[i].bound > 0) {
            /* uniform on [-b, b]: |v| <= b, sd b/sqrt(3) */
            if (mx > t[i].bound || fabs(sd - t[i].bound / sqrt(3.0)) > 0.25 * t[i].bound / sqrt(3.0))
                fail_msg("%s: max |w| %g sd %g, expected U(-%g, %g) (sd %g)", t[i].what, mx, sd,
                         t[i].bound, t[i].bound, t[i].bound / sqrt(3.0));
        } else if (fabs(sd - t[i].sd) > 0.1 * t[i].sd) {
            fail_msg("%s: sd %g, expected %g", t[i].what, sd, t[i].sd);
        }
    }
    for (int l = 0; l < 3; l++)
        for (int k = 0; k < m->cb_dim[l + 1]; k++)
            if (m->cb_b[l][k] != 0.0f)
                fail_msg("cerebellum fc%d.bias[%d] = %g, expected 0", l + 1, k, m->cb_b[l][k]);
    cbrnn_paper_run_destroy(run);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_labels_brute_force),
        cmocka_unit_test(test_bits_and_labels_balanced),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_switch_blocks),
        cmocka_unit_test(test_curriculum),
        cmocka_unit_test(test_h0),
        cmocka_unit_test(test_param_counts),
        cmocka_unit_test(test_paper_init),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
