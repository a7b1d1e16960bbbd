/* test_perturb.c: unit tests of the perturbed-feedback DSP (dsp/perturb.c):
 * a delay is exact in samples, a gain exact in value, ramps move linearly
 * and end on their target, the pitch shift moves a sine's frequency by
 * 2^(st/12) (within 0.5%), the shifter's latency is what it reports, the
 * output does not depend on the block sizes, abrupt switches of a few
 * semitones never leave the shifter late, and bad arguments are refused.
 * Deterministic: fixed signals, fixed block sequences. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cbrnn/cbrnn_perturb.h"

static const double PI = 3.14159265358979323846;

#define CHECK(what, cond, ...)                                                               \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            print_error("%s: ", (what));                                                     \
            print_error(__VA_ARGS__);                                                        \
            print_error("\n");                                                               \
            fail();                                                                          \
        }                                                                                    \
    } while (0)

static float *sine(int n, double rate, double hz, double amp)
{
    float *x = malloc((size_t)n * sizeof *x);
    for (int i = 0; i < n; i++)
        x[i] = (float)(amp * sin(2 * PI * hz * i / rate));
    return x;
}

/* Frequency from the rising zero crossings of x[a, b) (interpolated). */
static double freq(const float *x, int a, int b, double rate)
{
    double first = -1, last = -1;
    int n = 0;
    for (int i = a + 1; i < b; i++) {
        if (x[i - 1] < 0 && x[i] >= 0) {
            double t = (i - 1) + x[i - 1] / (x[i - 1] - x[i]);
            if (first < 0)
                first = t;
            else
                n++;
            last = t;
        }
    }
    return n > 0 ? n * rate / (last - first) : 0;
}

static void test_delay_exact(void **state)
{
    (void)state;
    const double rate = 16000;
    int err;
    cbrnn_perturb *p = cbrnn_perturb_create(rate, 100, 0, &err);
    assert_non_null(p);
    CHECK("latency without pitch", cbrnn_perturb_latency(p) == 0, "got %d",
          cbrnn_perturb_latency(p));
    const int n = 4000;
    float *x = sine(n, rate, 313, 0.5), *y = malloc(n * sizeof *y);
    assert_int_equal(cbrnn_perturb_set(p, CBRNN_PERTURB_DELAY, 12.5f, 0), 0); /* 200 samples */
    assert_int_equal(cbrnn_perturb_process(p, y, x, n), 0);
    for (int i = 0; i < n; i++) {
        float want = i >= 200 ? x[i - 200] : 0.0f;
        CHECK("delay 12.5 ms at 16 kHz", y[i] == want, "sample %d: expected %.9g got %.9g", i,
              (double)want, (double)y[i]);
    }
    assert_int_equal(cbrnn_perturb_set(p, CBRNN_PERTURB_DELAY, 101.0f, 0), CBRNN_ERR_ARG);
    free(x);
    free(y);
    cbrnn_perturb_destroy(p);
}

static void test_gain_exact_and_ramps(void **state)
{
    (void)state;
    const double rate = 48000;
    cbrnn_perturb *p = cbrnn_perturb_create(rate, 50, 0, NULL);
    assert_non_null(p);
    const int n = 9600;
    float *x = sine(n, rate, 500, 0.25), *y = malloc(n * sizeof *y);
    cbrnn_perturb_set(p, CBRNN_PERTURB_GAIN, 6.0f, 0);
    cbrnn_perturb_process(p, y, x, 1000);
    const float g = (float)pow(10.0, 6.0 / 20.0);
    for (int i = 0; i < 1000; i++)
        CHECK("gain +6 dB", y[i] == g * x[i], "sample %d: expected %.9g got %.9g", i,
              (double)(g * x[i]), (double)y[i]);
    /* a 100 ms ramp to -6 dB: linear in amplitude, 4800 samples, then exact */
    cbrnn_perturb_set(p, CBRNN_PERTURB_GAIN, -6.0f, 100);
    float ones[8000];
    for (int i = 0; i < 8000; i++)
        ones[i] = 1.0f;
    float out[8000];
    cbrnn_perturb_process(p, out, ones, 8000);
    const double g1 = pow(10.0, -6.0 / 20.0);
    CHECK("gain ramp midpoint", fabs(out[2399] - (g + g1) / 2) < 1e-4, "expected %.6f got %.6f",
          (g + g1) / 2, (double)out[2399]);
    for (int i = 1; i < 4800; i++)
        CHECK("gain ramp falls", out[i] < out[i - 1], "sample %d", i);
    CHECK("gain ramp ends on target", out[4799] == (float)g1 && out[7999] == (float)g1,
          "expected %.9g got %.9g", g1, (double)out[7999]);
    CHECK("gain reads back", fabsf(cbrnn_perturb_get(p, CBRNN_PERTURB_GAIN) + 6.0f) < 1e-4f,
          "got %g", (double)cbrnn_perturb_get(p, CBRNN_PERTURB_GAIN));
    /* a delay ramp 0 -> 10 ms over 100 ms ends exactly 480 samples late */
    cbrnn_perturb_set(p, CBRNN_PERTURB_GAIN, 0.0f, 0);
    cbrnn_perturb_set(p, CBRNN_PERTURB_DELAY, 10.0f, 100);
    cbrnn_perturb_process(p, y, x, n);
    for (int i = 9600 - 100; i < n; i++)
        CHECK("delay after its ramp", y[i] == x[i - 480], "sample %d", i);
    CHECK("delay after its ramp reads back", fabsf(cbrnn_perturb_get(p, CBRNN_PERTURB_DELAY) - 10.0f) < 1e-3f,
          "got %g", (double)cbrnn_perturb_get(p, CBRNN_PERTURB_DELAY));
    free(x);
    free(y);
    cbrnn_perturb_destroy(p);
}

/* Runs x through a new perturber with pitch in blocks of sizes from
 * `blocks` (cycled), setting the pitch to st at sample `at`. */
static float *shift(const float *x, int n, double rate, float st, int at, const int *blocks,
                    int nb)
{
    cbrnn_perturb *p = cbrnn_perturb_create(rate, 10, 1, NULL);
    assert_non_null(p);
    float *y = malloc((size_t)n * sizeof *y);
    int pos = 0, k = 0;
    while (pos < n) {
        int b = blocks[k++ % nb];
        if (pos < at && pos + b > at)
            b = at - pos;
        if (b > n - pos)
            b = n - pos;
        if (pos == at)
            cbrnn_perturb_set(p, CBRNN_PERTURB_PITCH, st, 0);
        cbrnn_perturb_process(p, y + pos, x + pos, b);
        pos += b;
    }
    CHECK("no late output", cbrnn_perturb_underruns(p) == 0, "%lld underruns",
          cbrnn_perturb_underruns(p));
    cbrnn_perturb_destroy(p);
    return y;
}

static void test_pitch_ratio_and_blocks(void **state)
{
    (void)state;
    const double rates[] = {16000, 48000};
    for (int r = 0; r < 2; r++) {
        const double rate = rates[r];
        const int n = (int)(2 * rate);
        float *x = sine(n, rate, 220, 0.4);
        const int b1[] = {64}, b2[] = {1, 480, 17, 1024, 333};
        float *y = shift(x, n, rate, 2.0f, n / 2, b1, 1);
        float *y2 = shift(x, n, rate, 2.0f, n / 2, b2, 5);
        CHECK("block sizes change nothing", !memcmp(y, y2, (size_t)n * sizeof *y),
              "at %.0f Hz, 64-sample blocks against mixed blocks", rate);
        cbrnn_perturb *p = cbrnn_perturb_create(rate, 10, 1, NULL);
        int lat = cbrnn_perturb_latency(p);
        cbrnn_perturb_destroy(p);
        /* before the switch: 220 Hz; a quarter second after it (plus the
         * latency): 220 x 2^(2/12) = 246.94 Hz */
        double f0 = freq(y, lat + (int)(0.1 * rate), n / 2, rate);
        double f1 = freq(y, n / 2 + lat + (int)(0.25 * rate), n, rate);
        double want = 220 * pow(2.0, 2.0 / 12.0);
        CHECK("pitch 0", fabs(f0 / 220 - 1) < 0.005, "at %.0f Hz: %.3f Hz, want 220", rate, f0);
        CHECK("pitch +2 semitones", fabs(f1 / want - 1) < 0.005, "at %.0f Hz: %.3f Hz, want %.3f",
              rate, f1, want);
        /* the latency it reports: the output's onset of a tone that starts
         * at sample 0 comes lat samples late, to within one window of the
         * shifter's own smearing (a fifth of its latency) */
        int onset = 0;
        while (onset < n && fabsf(y[onset]) < 0.05f)
            onset++;
        CHECK("latency", abs(onset - lat) < lat / 5, "at %.0f Hz: onset %d, reported %d", rate,
              onset, lat);
        printf("perturb: %.0f Hz: latency %d samples (%.1f ms), chunk %d; pitch 0: %.3f Hz, "
               "+2: %.3f Hz (want %.3f)\n", rate, lat, 1000.0 * lat / rate,
               (int)(0.005 * rate), f0, f1, want);
        free(x);
        free(y);
        free(y2);
    }
}

/* Sudden switches between 0, +3 and -3 semitones every half second, the
 * experiment's kind of use: the shifter is never late. */
static void test_switches_not_late(void **state)
{
    (void)state;
    const double rate = 44100;
    cbrnn_perturb *p = cbrnn_perturb_create(rate, 10, 1, NULL);
    const int n = (int)(20 * rate), half = (int)(rate / 2);
    float *x = sine(n, rate, 150, 0.3), *y = malloc((size_t)n * sizeof *y);
    const float st[] = {0, 3, -3, 0, -3, 3};
    for (int k = 0; k * half < n; k++) {
        cbrnn_perturb_set(p, CBRNN_PERTURB_PITCH, st[k % 6], k % 4 == 3 ? 200 : 0);
        int b = n - k * half < half ? n - k * half : half;
        cbrnn_perturb_process(p, y + k * half, x + k * half, b);
    }
    CHECK("switches", cbrnn_perturb_underruns(p) == 0, "%lld samples late",
          cbrnn_perturb_underruns(p));
    free(x);
    free(y);
    cbrnn_perturb_destroy(p);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    int err = 0;
    assert_null(cbrnn_perturb_create(4000, 10, 1, &err));
    assert_int_equal(err, CBRNN_ERR_RATE);
    assert_null(cbrnn_perturb_create(16000, 0, 1, &err));
    assert_int_equal(err, CBRNN_ERR_ARG);
    assert_null(cbrnn_perturb_create(16000, NAN, 0, &err));
    cbrnn_perturb *p = cbrnn_perturb_create(16000, 10, 0, &err);
    assert_int_equal(cbrnn_perturb_set(p, CBRNN_PERTURB_PITCH, 1, 0), CBRNN_ERR_UNSUPPORTED);
    assert_int_equal(cbrnn_perturb_set(p, CBRNN_PERTURB_GAIN, 21, 0), CBRNN_ERR_ARG);
    assert_int_equal(cbrnn_perturb_set(p, CBRNN_PERTURB_GAIN, NAN, 0), CBRNN_ERR_ARG);
    assert_int_equal(cbrnn_perturb_set(p, CBRNN_PERTURB_DELAY, -1, 0), CBRNN_ERR_ARG);
    assert_int_equal(cbrnn_perturb_set(p, CBRNN_PERTURB_DELAY, 1, -5), CBRNN_ERR_ARG);
    assert_int_equal(cbrnn_perturb_set(p, 7, 1, 0), CBRNN_ERR_ARG);
    assert_int_equal(cbrnn_perturb_check(CBRNN_PERTURB_PITCH, 12.5f, 0), CBRNN_ERR_ARG);
    assert_int_equal(cbrnn_perturb_process(p, NULL, NULL, 4), CBRNN_ERR_ARG);
    assert_int_equal(cbrnn_perturb_process(p, NULL, NULL, 0), 0);
    cbrnn_perturb_destroy(p);
    cbrnn_perturb_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delay_exact),
        cmocka_unit_test(test_gain_exact_and_ramps),
        cmocka_unit_test(test_pitch_ratio_and_blocks),
        cmocka_unit_test(test_switches_not_late),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
