/* test_dsp.c: unit tests of the feature front end (dsp/): sizes and
 * error codes, the mel bank's defining properties (computed here from the
 * HTK formula, not from dsp/), the extractor against a plain double DFT,
 * framing and timing, MFCC/deltas against their definitions, reset, block
 * invariance, and the statistics (Welford/Chan against two-pass sums).
 * Deterministic: fixed seeds, no timing. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cbrnn/cbrnn_dsp.h"
#include "dsp_internal.h"

static const double PI = 3.14159265358979323846;

/* A failing check says what, where, expected and got. */
#define CHECK_NEAR(what, where, expected, got, tol)                                          \
    do {                                                                                     \
        double e_ = (double)(expected), g_ = (double)(got);                                  \
        if (!(fabs(e_ - g_) <= (tol))) {                                                     \
            print_error("%s at %s: expected %.10g got %.10g (|diff| %.3g > %.3g)\n", (what), \
                        (where), e_, g_, fabs(e_ - g_), (double)(tol));                      \
            fail();                                                                          \
        }                                                                                    \
    } while (0)

#define CHECK_INT(what, where, expected, got)                                                \
    do {                                                                                     \
        long e_ = (long)(expected), g_ = (long)(got);                                        \
        if (e_ != g_) {                                                                      \
            print_error("%s at %s: expected %ld got %ld\n", (what), (where), e_, g_);       \
            fail();                                                                          \
        }                                                                                    \
    } while (0)

static uint32_t rng_state;
static double urand(void) /* xorshift32 in [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return (double)rng_state / 2147483648.0 - 1.0;
}

static float *noise(long n, uint32_t seed, double amp)
{
    float *x = malloc((size_t)n * sizeof *x);
    assert_non_null(x);
    rng_state = seed;
    for (long i = 0; i < n; i++)
        x[i] = (float)(amp * urand());
    return x;
}

/* All frames of x through f, pushed `block` samples at a time. */
static float *extract(cbrnn_feat *f, const float *x, long n, int block, long *n_frames)
{
    int dim = cbrnn_feat_dim(f);
    long cap = n / cbrnn_feat_hop(f) + 2;
    float *out = malloc((size_t)cap * dim * sizeof *out);
    assert_non_null(out);
    long k = 0;
    for (long i = 0; i < n; i += block) {
        long m = n - i < block ? n - i : block;
        const float *p = x + i;
        while (m > 0) {
            int used = 0;
            int r = cbrnn_feat_push(f, out + k * dim, p, (int)m, &used);
            assert_true(r == 0 || r == 1);
            assert_true(used >= 1 && used <= m);
            k += r;
            p += used;
            m -= used;
        }
    }
    *n_frames = k;
    return out;
}

static cbrnn_feat *make(double rate, int mels, int mfcc, int deltas)
{
    cbrnn_feat_config c;
    cbrnn_feat_config_default(&c, rate);
    c.n_mels = mels;
    c.n_mfcc = mfcc;
    c.deltas = deltas;
    int err = 1;
    cbrnn_feat *f = cbrnn_feat_create(&c, &err);
    if (!f) {
        print_error("create at %g Hz: %s\n", rate, cbrnn_strerror(err));
        fail();
    }
    assert_int_equal(err, CBRNN_OK);
    return f;
}

/* ---- configuration ---------------------------------------------------- */

static void test_config_sizes(void **state)
{
    (void)state;
    /* rate, win = round(25 ms), hop = round(10 ms), n_fft */
    static const struct { double rate; int win, hop, nfft; } t[] = {
        {8000, 200, 80, 256},       {16000, 400, 160, 512},    {22050, 551, 221, 1024},
        {44100, 1103, 441, 2048},   {48000, 1200, 480, 2048},  {96000, 2400, 960, 4096},
        {192000, 4800, 1920, 8192}, {11025, 276, 110, 512},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char where[64];
        snprintf(where, sizeof where, "%g Hz", t[i].rate);
        cbrnn_feat_config c;
        cbrnn_feat_config_default(&c, t[i].rate);
        CHECK_INT("config check", where, CBRNN_OK, cbrnn_feat_config_check(&c));
        CHECK_INT("win", where, t[i].win, cbrnn_feat_config_win(&c));
        CHECK_INT("hop", where, t[i].hop, cbrnn_feat_config_hop(&c));
        CHECK_INT("dim", where, 40, cbrnn_feat_config_dim(&c));
        cbrnn_feat *f = cbrnn_feat_create(&c, NULL);
        assert_non_null(f);
        CHECK_INT("feat win", where, t[i].win, cbrnn_feat_win(f));
        CHECK_INT("feat hop", where, t[i].hop, cbrnn_feat_hop(f));
        CHECK_INT("feat nfft", where, t[i].nfft, cbrnn_feat_nfft(f));
        CHECK_INT("feat dim", where, 40, cbrnn_feat_dim(f));
        cbrnn_feat_destroy(f);
    }
    cbrnn_feat_config c;
    cbrnn_feat_config_default(&c, 16000);
    assert_int_equal(c.n_mels, 40);
    assert_true(c.win_ms == 25.0 && c.hop_ms == 10.0 && c.f_min == 20.0 && c.f_max == 0.0);
    assert_int_equal(c.n_mfcc, 0);
    assert_int_equal(c.deltas, 0);
    c.n_mfcc = 13;
    CHECK_INT("dim mfcc", "16 kHz", 13, cbrnn_feat_config_dim(&c));
    c.deltas = 1;
    CHECK_INT("dim mfcc+deltas", "16 kHz", 26, cbrnn_feat_config_dim(&c));
    c.n_mfcc = 0;
    CHECK_INT("dim mel+deltas", "16 kHz", 80, cbrnn_feat_config_dim(&c));
}

static void test_config_errors(void **state)
{
    (void)state;
    cbrnn_feat_config c;
    struct { const char *what; double rate; int field; double value; int code; } t[] = {
        {"rate below 8 kHz", 7999, 0, 0, CBRNN_ERR_RATE},
        {"rate above 192 kHz", 192001, 0, 0, CBRNN_ERR_RATE},
        {"rate NaN", NAN, 0, 0, CBRNN_ERR_RATE},
        {"rate 0", 0, 0, 0, CBRNN_ERR_RATE},
        {"n_mels 0", 16000, 1, 0, CBRNN_ERR_ARG},
        {"n_mels huge", 16000, 1, 100000, CBRNN_ERR_ARG},
        {"n_mfcc > n_mels", 16000, 2, 41, CBRNN_ERR_ARG},
        {"n_mfcc < 0", 16000, 2, -1, CBRNN_ERR_ARG},
        {"deltas 2", 16000, 3, 2, CBRNN_ERR_ARG},
        {"f_max above Nyquist", 16000, 4, 8001, CBRNN_ERR_ARG},
        {"f_min >= f_max", 16000, 5, 9000, CBRNN_ERR_ARG},
        {"f_min negative", 16000, 5, -1, CBRNN_ERR_ARG},
        {"win_ms 0", 16000, 6, 0, CBRNN_ERR_ARG},
        {"hop_ms negative", 16000, 7, -10, CBRNN_ERR_ARG},
        {"win_ms NaN", 16000, 6, NAN, CBRNN_ERR_ARG},
        {"ref_rate below 8 kHz", 16000, 8, 7999, CBRNN_ERR_RATE},
        {"ref_rate above 192 kHz", 16000, 8, 192001, CBRNN_ERR_RATE},
        {"ref_rate negative", 16000, 8, -16000, CBRNN_ERR_RATE},
        {"ref_rate NaN", 16000, 8, NAN, CBRNN_ERR_RATE},
        /* 0.13 ms: 2 samples at 16 kHz, but 1 at ref_rate 8 kHz */
        {"window too short at ref_rate", 16000, 9, 8000, CBRNN_ERR_ARG},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        cbrnn_feat_config_default(&c, t[i].rate);
        switch (t[i].field) {
        case 1: c.n_mels = (int)t[i].value; break;
        case 2: c.n_mfcc = (int)t[i].value; break;
        case 3: c.deltas = (int)t[i].value; break;
        case 4: c.f_max = t[i].value; break;
        case 5: c.f_min = t[i].value; break;
        case 6: c.win_ms = t[i].value; break;
        case 7: c.hop_ms = t[i].value; break;
        case 8: c.ref_rate = t[i].value; break;
        case 9: c.ref_rate = t[i].value; c.win_ms = 0.13; break;
        default: break;
        }
        CHECK_INT("config check", t[i].what, t[i].code, cbrnn_feat_config_check(&c));
        int err = 0;
        cbrnn_feat *f = cbrnn_feat_create(&c, &err);
        if (f) {
            print_error("create accepted %s\n", t[i].what);
            cbrnn_feat_destroy(f);
            fail();
        }
        CHECK_INT("create error", t[i].what, t[i].code, err);
        assert_null(cbrnn_feat_create(&c, NULL)); /* err may be NULL */
    }
    CHECK_INT("check NULL", "config", CBRNN_ERR_ARG, cbrnn_feat_config_check(NULL));
    /* Limits are inclusive. */
    cbrnn_feat_config_default(&c, CBRNN_RATE_MIN);
    CHECK_INT("check", "8000 Hz", CBRNN_OK, cbrnn_feat_config_check(&c));
    cbrnn_feat_config_default(&c, CBRNN_RATE_MAX);
    CHECK_INT("check", "192000 Hz", CBRNN_OK, cbrnn_feat_config_check(&c));
    c.ref_rate = CBRNN_RATE_MIN;
    CHECK_INT("check", "ref_rate 8000 Hz", CBRNN_OK, cbrnn_feat_config_check(&c));
    c.ref_rate = 0;
    CHECK_INT("check", "ref_rate 0 (none)", CBRNN_OK, cbrnn_feat_config_check(&c));
    assert_true(c.ref_rate == 0.0); /* the default: no level change */
    c.ref_rate = NAN;
    assert_true(isnan(cbrnn_feat_config_level_shift(&c)));
    assert_true(isnan(cbrnn_feat_config_level_shift(NULL)));
}

static void test_push_errors(void **state)
{
    (void)state;
    cbrnn_feat *f = make(16000, 40, 0, 0);
    float fr[40], x[10] = {0};
    int used = 77;
    CHECK_INT("push NULL f", "push", CBRNN_ERR_ARG, cbrnn_feat_push(NULL, fr, x, 10, &used));
    CHECK_INT("push NULL frame", "push", CBRNN_ERR_ARG, cbrnn_feat_push(f, NULL, x, 10, &used));
    CHECK_INT("push NULL in", "push", CBRNN_ERR_ARG, cbrnn_feat_push(f, fr, NULL, 10, &used));
    CHECK_INT("push NULL consumed", "push", CBRNN_ERR_ARG, cbrnn_feat_push(f, fr, x, 10, NULL));
    CHECK_INT("push n < 0", "push", CBRNN_ERR_ARG, cbrnn_feat_push(f, fr, x, -1, &used));
    CHECK_INT("push n = 0", "push", 0, cbrnn_feat_push(f, fr, x, 0, &used));
    CHECK_INT("consumed for n = 0", "push", 0, used);
    CHECK_INT("push NULL in, n = 0", "push", 0, cbrnn_feat_push(f, fr, NULL, 0, &used));
    cbrnn_feat_destroy(f);
    cbrnn_feat_destroy(NULL); /* allowed */
    cbrnn_feat_reset(NULL);
    assert_int_equal(cbrnn_feat_dim(NULL), 0);
}

static void test_strerror(void **state)
{
    (void)state;
    for (int c = CBRNN_OK; c >= CBRNN_ERR_UNSUPPORTED; c--) {
        const char *s = cbrnn_strerror(c);
        assert_non_null(s);
        if (!strcmp(s, "unknown error")) {
            print_error("code %d has no text\n", c);
            fail();
        }
    }
    assert_string_equal(cbrnn_strerror(-1000), "unknown error");
}

/* ---- tables ------------------------------------------------------------ */

static double htk_mel(double hz) { return 2595.0 * log10(1.0 + hz / 700.0); }
static double htk_hz(double mel) { return 700.0 * (pow(10.0, mel / 2595.0) - 1.0); }

/* The defining properties of an HTK triangular bank over the FFT grid:
 * weights in [0, 1]; band j is zero outside (c_{j-1}, c_{j+1}) and rises
 * and falls linearly in between (c: corner frequencies equally spaced in
 * mel from f_min to f_max); between the first and last centre the bands
 * sum to 1 (each bin is shared by two adjacent triangles). */
static void test_mel_bank_properties(void **state)
{
    (void)state;
    static const double rates[] = {8000, 11025, 16000, 22050, 44100, 48000, 96000, 192000};
    for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
        double sr = rates[r];
        int n_mels = 40;
        int nfft = dsp_next_pow2((int)round(0.025 * sr));
        int nf = nfft / 2 + 1;
        double fmax = sr / 2 < 8000 ? sr / 2 : 8000, fmin = 20;
        double *fb = malloc((size_t)nf * n_mels * sizeof *fb);
        assert_non_null(fb);
        dsp_mel_bank(fb, sr, nfft, n_mels, fmin, fmax);
        double c[42];
        for (int j = 0; j < n_mels + 2; j++)
            c[j] = htk_hz(htk_mel(fmin) + (htk_mel(fmax) - htk_mel(fmin)) * j / (n_mels + 1));
        char where[96];
        for (int k = 0; k < nf; k++) {
            /* torchaudio's grid: linspace(0, floor(sr / 2), n_freqs). */
            double f = floor(sr / 2) * k / (nf - 1);
            double sum = 0;
            for (int j = 0; j < n_mels; j++) {
                double w = fb[(long)k * n_mels + j];
                snprintf(where, sizeof where, "%g Hz, bin %d (%.2f Hz), band %d", sr, k, f, j);
                double expect = 0;
                if (f > c[j] && f < c[j + 2])
                    expect = f <= c[j + 1] ? (f - c[j]) / (c[j + 1] - c[j])
                                           : (c[j + 2] - f) / (c[j + 2] - c[j + 1]);
                CHECK_NEAR("triangle weight", where, expect, w, 1e-9);
                if (w < 0 || w > 1) {
                    print_error("weight outside [0, 1] at %s: %g\n", where, w);
                    fail();
                }
                sum += w;
            }
            snprintf(where, sizeof where, "%g Hz, bin %d (%.2f Hz)", sr, k, f);
            if (f >= c[1] && f <= c[n_mels])
                CHECK_NEAR("sum over bands (partition of unity)", where, 1.0, sum, 1e-9);
            if (f <= fmin || f >= fmax)
                CHECK_NEAR("weight outside [f_min, f_max]", where, 0.0, sum, 1e-9);
        }
        free(fb);
    }
}

/* A model file chooses the window and the number of bands, so the bank is
 * built band by band and never as the dense [n_freqs][n_mels] table (2 GB
 * at 96 kHz, a 10 s window and 1024 bands). A child creates that front end
 * under a 512 MB address-space limit (not under ASan, whose shadow memory
 * alone needs more). */
#ifndef __has_feature
#define __has_feature(x) 0
#endif
static void test_large_bank_memory(void **state)
{
    (void)state;
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
    skip();
#endif
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit lim = {512L << 20, 512L << 20};
        setrlimit(RLIMIT_AS, &lim);
        cbrnn_feat_config c;
        cbrnn_feat_config_default(&c, 96000);
        c.n_mels = DSP_MAX_MELS;
        c.win_ms = 10000;
        int err = 0;
        cbrnn_feat *f = cbrnn_feat_create(&c, &err);
        _exit(f ? 0 : 10 + err);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("a 1024-band front end at 96 kHz, 10 s window, not created in 512 MB (status %d)",
                 st);
}

static void test_dct_orthonormal(void **state)
{
    (void)state;
    int n = 40;
    double *d = malloc((size_t)n * n * sizeof *d);
    assert_non_null(d);
    dsp_dct_ortho(d, n, n);
    char where[32];
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
            double s = 0;
            for (int i = 0; i < n; i++)
                s += d[a * n + i] * d[b * n + i];
            snprintf(where, sizeof where, "rows %d, %d", a, b);
            CHECK_NEAR("D D^T", where, a == b ? 1.0 : 0.0, s, 1e-12);
        }
    /* Row 0 is the constant 1/sqrt(n). */
    for (int i = 0; i < n; i++)
        CHECK_NEAR("DCT row 0", "ortho", 1.0 / sqrt(n), d[i], 1e-15);
    free(d);
}

/* ---- the extractor ------------------------------------------------------ */

/* Frame t must come out exactly when sample t*hop + win - 1 arrives. */
static void test_frame_timing(void **state)
{
    (void)state;
    cbrnn_feat *f = make(22050, 40, 0, 0);
    int win = cbrnn_feat_win(f), hop = cbrnn_feat_hop(f);
    long n = win + 10L * hop + hop / 2;
    float *x = noise(n, 7, 0.5);
    float fr[40];
    long frames = 0;
    for (long i = 0; i < n; i++) {
        int used = 0;
        int r = cbrnn_feat_push(f, fr, x + i, 1, &used);
        CHECK_INT("consumed of 1", "timing", 1, used);
        int expect = (i >= win - 1 && (i - (win - 1)) % hop == 0) ? 1 : 0;
        char where[48];
        snprintf(where, sizeof where, "sample %ld", i);
        CHECK_INT("frame completes", where, expect, r);
        frames += r;
    }
    CHECK_INT("frames for L samples", "floor((L - win) / hop) + 1", (n - win) / hop + 1, frames);
    /* A push that spans a frame boundary stops right after it. */
    cbrnn_feat_reset(f);
    int used = 0;
    CHECK_INT("push of win + 5", "boundary", 1, cbrnn_feat_push(f, fr, x, win + 5, &used));
    CHECK_INT("consumed up to the frame", "boundary", win, used);
    free(x);
    cbrnn_feat_destroy(f);

    /* A hop longer than the window (5 ms window, 20 ms hop): the samples
     * between windows are skipped, frames still end at t*hop + win - 1. */
    cbrnn_feat_config c;
    cbrnn_feat_config_default(&c, 16000);
    c.win_ms = 5;
    c.hop_ms = 20;
    f = cbrnn_feat_create(&c, NULL);
    assert_non_null(f);
    win = cbrnn_feat_win(f);
    hop = cbrnn_feat_hop(f);
    CHECK_INT("win", "5 ms at 16 kHz", 80, win);
    CHECK_INT("hop", "20 ms at 16 kHz", 320, hop);
    n = 5L * hop;
    x = noise(n, 8, 0.5);
    long nb;
    float *a = extract(f, x, n, 1, &nb);
    CHECK_INT("frames, hop > win", "floor((L - win) / hop) + 1", (n - win) / hop + 1, nb);
    /* Each frame depends only on its own window: recompute frame 3 alone. */
    cbrnn_feat_reset(f);
    long n1;
    float *b = extract(f, x + 3L * hop, win, 1, &n1);
    CHECK_INT("frames of one window", "hop > win", 1, n1);
    if (memcmp(a + 3 * 40, b, 40 * sizeof *b) != 0) {
        print_error("frame 3 with hop > win differs from its window computed alone\n");
        fail();
    }
    free(a);
    free(b);
    free(x);
    cbrnn_feat_destroy(f);
}

/* The plain reference: windowed direct DFT in double, the dense bank,
 * log(x + 1e-6). The fast path must agree to float rounding. */
static void plain_logmel(const float *x, int win, int nfft, double sr, int n_mels,
                         const double *fb, double *out)
{
    int nf = nfft / 2 + 1;
    double *pw = malloc((size_t)nf * sizeof *pw);
    assert_non_null(pw);
    for (int k = 0; k < nf; k++) {
        double re = 0, im = 0;
        for (int i = 0; i < win; i++) {
            double w = 0.5 - 0.5 * cos(2 * PI * i / win);
            double a = 2 * PI * (double)k * i / nfft;
            re += w * x[i] * cos(a);
            im -= w * x[i] * sin(a);
        }
        pw[k] = re * re + im * im;
    }
    for (int j = 0; j < n_mels; j++) {
        double s = 0;
        for (int k = 0; k < nf; k++)
            s += fb[(long)k * n_mels + j] * pw[k];
        out[j] = log(s + 1e-6);
    }
    (void)sr;
    free(pw);
}

static void test_against_plain_dft(void **state)
{
    (void)state;
    static const double rates[] = {8000, 16000, 44100};
    for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
        double sr = rates[r];
        cbrnn_feat *f = make(sr, 40, 0, 0);
        int win = cbrnn_feat_win(f), hop = cbrnn_feat_hop(f), nfft = cbrnn_feat_nfft(f);
        long n = win + 3L * hop;
        float *x = noise(n, 99 + (uint32_t)r, 0.3);
        /* A quiet stretch: bands near the 1e-6 floor, where precision matters. */
        for (long i = win + hop; i < n; i++)
            x[i] *= 1e-4f;
        long nfr;
        float *got = extract(f, x, n, 333, &nfr);
        CHECK_INT("frames", "plain DFT", 4, nfr);
        double *fb = malloc((size_t)(nfft / 2 + 1) * 40 * sizeof *fb);
        assert_non_null(fb);
        dsp_mel_bank(fb, sr, nfft, 40, 20, sr / 2 < 8000 ? sr / 2 : 8000);
        double ref[40];
        for (long t = 0; t < nfr; t++) {
            plain_logmel(x + t * hop, win, nfft, sr, 40, fb, ref);
            for (int j = 0; j < 40; j++) {
                char where[64];
                snprintf(where, sizeof where, "%g Hz frame %ld band %d", sr, t, j);
                CHECK_NEAR("log-mel vs plain DFT", where, ref[j], got[t * 40 + j], 2e-5);
            }
        }
        free(fb);
        free(got);
        free(x);
        cbrnn_feat_destroy(f);
    }
}

static void test_silence_and_tone(void **state)
{
    (void)state;
    double sr = 48000;
    cbrnn_feat *f = make(sr, 40, 0, 0);
    int win = cbrnn_feat_win(f);
    long n = 4L * win;
    float *x = calloc((size_t)n, sizeof *x);
    assert_non_null(x);
    long nfr;
    float *got = extract(f, x, n, 4096, &nfr);
    for (long i = 0; i < nfr * 40; i++)
        CHECK_INT("silence gives exactly (float)log(1e-6)", "48 kHz", 1,
                  got[i] == (float)log(1e-6));
    free(got);
    /* A 1 kHz tone: the loudest band is the one whose centre is nearest. */
    for (long i = 0; i < n; i++)
        x[i] = (float)(0.5 * sin(2 * PI * 1000.0 * i / sr));
    cbrnn_feat_reset(f);
    got = extract(f, x, n, 4096, &nfr);
    int best = 0;
    for (int j = 1; j < 40; j++)
        if (got[(nfr - 1) * 40 + j] > got[(nfr - 1) * 40 + best])
            best = j;
    int nearest = 0;
    double m0 = htk_mel(20), m1 = htk_mel(8000), dbest = 1e9;
    for (int j = 0; j < 40; j++) {
        double cj = htk_hz(m0 + (m1 - m0) * (j + 1) / 41.0);
        if (fabs(cj - 1000) < dbest) {
            dbest = fabs(cj - 1000);
            nearest = j;
        }
    }
    CHECK_INT("loudest band for a 1 kHz tone", "48 kHz", nearest, best);
    free(got);
    free(x);
    cbrnn_feat_destroy(f);
}

/* MFCC = DCT of the log-mel; deltas = the causal regression of the base. */
static void test_mfcc_and_deltas(void **state)
{
    (void)state;
    double sr = 16000;
    cbrnn_feat *fm = make(sr, 40, 0, 0), *fc = make(sr, 40, 13, 1), *fd = make(sr, 40, 0, 1);
    long n = 16000;
    float *x = noise(n, 1234, 0.2);
    for (long i = 0; i < n; i++) /* an envelope so deltas are not ~0 */
        x[i] *= (float)(0.5 + 0.5 * sin(2 * PI * 3.0 * i / sr));
    long nm, nc, nd;
    float *mel = extract(fm, x, n, 500, &nm);
    float *cc = extract(fc, x, n, 777, &nc);
    float *dd = extract(fd, x, n, 64, &nd);
    CHECK_INT("frames mfcc", "16 kHz", nm, nc);
    CHECK_INT("frames deltas", "16 kHz", nm, nd);
    double dct[13 * 40];
    dsp_dct_ortho(dct, 13, 40);
    char where[64];
    for (long t = 0; t < nm; t++) {
        for (int k = 0; k < 13; k++) {
            double s = 0;
            for (int j = 0; j < 40; j++)
                s += dct[k * 40 + j] * mel[t * 40 + j];
            snprintf(where, sizeof where, "frame %ld coef %d", t, k);
            CHECK_NEAR("mfcc = DCT(log-mel)", where, s, cc[t * 26 + k], 1e-4);
        }
        for (int j = 0; j < 40; j++) {
            snprintf(where, sizeof where, "frame %ld band %d", t, j);
            CHECK_NEAR("base of --deltas = log-mel", where, mel[t * 40 + j], dd[t * 80 + j], 0.0);
        }
    }
    /* d_t = sum_n n (x_{t-2+n} - x_{t-2-n}) / 10, x_{<0} = x_0. */
    for (int pass = 0; pass < 2; pass++) {
        const float *v = pass ? cc : dd;
        int D = pass ? 13 : 40, stride = 2 * D;
        for (long t = 0; t < nm; t++)
            for (int i = 0; i < D; i++) {
                long c = t - 2;
                double s = 0;
                for (int m = 1; m <= 2; m++) {
                    long a = c + m < 0 ? 0 : c + m, b = c - m < 0 ? 0 : c - m;
                    s += m * ((double)v[a * stride + i] - (double)v[b * stride + i]);
                }
                snprintf(where, sizeof where, "%s frame %ld dim %d", pass ? "mfcc" : "mel", t, i);
                CHECK_NEAR("causal delta", where, s / 10.0, v[t * stride + D + i], 1e-5);
            }
    }
    for (int i = 0; i < 40; i++)
        CHECK_NEAR("delta of the first frame", "frame 0", 0.0, dd[40 + i], 0.0);
    free(mel);
    free(cc);
    free(dd);
    free(x);
    cbrnn_feat_destroy(fm);
    cbrnn_feat_destroy(fc);
    cbrnn_feat_destroy(fd);
}

static void test_block_invariance(void **state)
{
    (void)state;
    static const double rates[] = {16000, 22050, 48000};
    static const int blocks[] = {1, 7, 64, 1000, 4096};
    for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
        cbrnn_feat *f = make(rates[r], 40, 13, 1);
        long n = (long)(0.7 * rates[r]);
        float *x = noise(n, 55, 0.4);
        long n0;
        float *ref = extract(f, x, n, (int)n, &n0);
        for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++) {
            cbrnn_feat_reset(f);
            long nb;
            float *got = extract(f, x, n, blocks[b], &nb);
            char where[64];
            snprintf(where, sizeof where, "%g Hz block %d", rates[r], blocks[b]);
            CHECK_INT("frames", where, n0, nb);
            if (memcmp(ref, got, (size_t)n0 * 26 * sizeof *got) != 0) {
                print_error("frames differ from whole-signal push at %s\n", where);
                fail();
            }
            free(got);
        }
        free(ref);
        free(x);
        cbrnn_feat_destroy(f);
    }
}

/* After reset the extractor is indistinguishable from a fresh one. */
static void test_reset(void **state)
{
    (void)state;
    cbrnn_feat *used = make(44100, 40, 13, 1), *fresh = make(44100, 40, 13, 1);
    long n = 30000;
    float *junk = noise(n, 3, 0.9), *x = noise(n, 4, 0.3);
    long nj, na, nb;
    free(extract(used, junk, n - 123, 100, &nj)); /* leaves a partial frame */
    cbrnn_feat_reset(used);
    float *a = extract(used, x, n, 512, &na), *b = extract(fresh, x, n, 512, &nb);
    CHECK_INT("frames after reset", "44.1 kHz", nb, na);
    if (memcmp(a, b, (size_t)na * 26 * sizeof *a) != 0) {
        print_error("frames after reset differ from a fresh extractor\n");
        fail();
    }
    free(a);
    free(b);
    free(junk);
    free(x);
    cbrnn_feat_destroy(used);
    cbrnn_feat_destroy(fresh);
}

/* ---- statistics --------------------------------------------------------- */

static void test_stats_merge_vs_two_pass(void **state)
{
    (void)state;
    enum { D = 5, N = 30001 };
    float *x = malloc((size_t)N * D * sizeof *x);
    assert_non_null(x);
    rng_state = 2024;
    /* A large offset and a small spread: the naive sum of squares would
     * cancel catastrophically; Welford must not. */
    for (long i = 0; i < (long)N * D; i++)
        x[i] = (float)(1e4 * (1 + i % D) + urand() * (0.01 + i % D));
    cbrnn_stats all, p[3];
    assert_int_equal(cbrnn_stats_init(&all, D), CBRNN_OK);
    long cut[4] = {0, 7, 20000, N};
    for (int s = 0; s < 3; s++) {
        assert_int_equal(cbrnn_stats_init(&p[s], D), CBRNN_OK);
        for (long i = cut[s]; i < cut[s + 1]; i++)
            cbrnn_stats_add(&p[s], x + i * D);
    }
    for (long i = 0; i < N; i++)
        cbrnn_stats_add(&all, x + i * D);
    cbrnn_stats m;
    assert_int_equal(cbrnn_stats_init(&m, D), CBRNN_OK);
    for (int s = 0; s < 3; s++)
        assert_int_equal(cbrnn_stats_merge(&m, &p[s]), CBRNN_OK);
    CHECK_NEAR("merged count", "stats", N, m.count, 0);
    for (int d = 0; d < D; d++) {
        long double mean = 0, ss = 0;
        for (long i = 0; i < N; i++)
            mean += x[i * D + d];
        mean /= N;
        for (long i = 0; i < N; i++)
            ss += (x[i * D + d] - mean) * (x[i * D + d] - mean);
        double var = (double)(ss / N);
        char where[32];
        snprintf(where, sizeof where, "dim %d", d);
        CHECK_NEAR("Welford mean", where, (double)mean, all.mean[d], 1e-9 * fabs((double)mean));
        CHECK_NEAR("Welford variance", where, var, all.m2[d] / all.count, 1e-9 * var);
        CHECK_NEAR("merged mean", where, (double)mean, m.mean[d], 1e-9 * fabs((double)mean));
        CHECK_NEAR("merged variance", where, var, m.m2[d] / m.count, 1e-9 * var);
        float mu[D], sd[D];
        assert_int_equal(cbrnn_stats_result(&m, mu, sd, 0.0f), CBRNN_OK);
        CHECK_NEAR("result std", where, sqrt(var), sd[d], 1e-6 * sqrt(var));
    }
    for (int s = 0; s < 3; s++)
        cbrnn_stats_free(&p[s]);
    cbrnn_stats_free(&m);
    cbrnn_stats_free(&all);
    free(x);
}

static void test_stats_edges(void **state)
{
    (void)state;
    cbrnn_stats a, b, c;
    CHECK_INT("init dim 0", "stats", CBRNN_ERR_ARG, cbrnn_stats_init(&a, 0));
    CHECK_INT("init NULL", "stats", CBRNN_ERR_ARG, cbrnn_stats_init(NULL, 3));
    assert_int_equal(cbrnn_stats_init(&a, 3), CBRNN_OK);
    assert_int_equal(cbrnn_stats_init(&b, 3), CBRNN_OK);
    assert_int_equal(cbrnn_stats_init(&c, 4), CBRNN_OK);
    float mu[3], sd[3];
    CHECK_INT("result with no frames", "stats", CBRNN_ERR_ARG, cbrnn_stats_result(&a, mu, sd, 1e-3f));
    CHECK_INT("merge dim mismatch", "stats", CBRNN_ERR_SHAPE, cbrnn_stats_merge(&a, &c));
    CHECK_INT("merge NULL", "stats", CBRNN_ERR_ARG, cbrnn_stats_merge(&a, NULL));
    float v1[3] = {1, 2, 3}, v2[3] = {3, 2, 5};
    cbrnn_stats_add(&b, v1);
    cbrnn_stats_add(&b, v2);
    /* Into an empty accumulator: a copy. From an empty one: no change. */
    assert_int_equal(cbrnn_stats_merge(&a, &b), CBRNN_OK);
    cbrnn_stats e;
    assert_int_equal(cbrnn_stats_init(&e, 3), CBRNN_OK);
    assert_int_equal(cbrnn_stats_merge(&a, &e), CBRNN_OK);
    CHECK_NEAR("count", "merge into empty", 2, a.count, 0);
    assert_int_equal(cbrnn_stats_result(&a, mu, sd, 0.5f), CBRNN_OK);
    CHECK_NEAR("mean[0]", "merge into empty", 2, mu[0], 0);
    CHECK_NEAR("std[0]", "merge into empty", 1, sd[0], 0);
    /* Constant feature: std 0 -> the floor. */
    CHECK_NEAR("std floor", "constant feature", 0.5, sd[1], 0);
    CHECK_NEAR("std[2]", "merge into empty", 1, sd[2], 0);
    cbrnn_stats_free(&a);
    cbrnn_stats_free(&b);
    cbrnn_stats_free(&c);
    cbrnn_stats_free(&e);
    cbrnn_stats_free(&e); /* twice is harmless */
    assert_null(e.mean);
}

/* sum of the periodic Hann window squared times the FFT size at rate, from
 * the definitions (not from dsp/). */
static double window_energy_nfft(double rate)
{
    cbrnn_feat_config c;
    cbrnn_feat_config_default(&c, rate);
    int win = cbrnn_feat_config_win(&c), nfft = 1;
    while (nfft < win)
        nfft *= 2;
    double s = 0.0;
    for (int i = 0; i < win; i++) {
        double w = 0.5 - 0.5 * cos(2 * PI * i / win);
        s += w * w;
    }
    return s * nfft;
}

static cbrnn_feat *make_ref(double rate, double ref, int mfcc, int deltas)
{
    cbrnn_feat_config c;
    cbrnn_feat_config_default(&c, rate);
    c.n_mfcc = mfcc;
    c.deltas = deltas;
    c.ref_rate = ref;
    int err = 1;
    cbrnn_feat *f = cbrnn_feat_create(&c, &err);
    if (!f) {
        print_error("create at %g Hz, ref_rate %g: %s\n", rate, ref, cbrnn_strerror(err));
        fail();
    }
    return f;
}

/* ref_rate: no change at all when it is 0 or the stream's own rate (so
 * torchaudio parity holds), the documented shift otherwise, applied
 * before the log floor (silence stays at log(1e-6)). */
static void test_ref_rate(void **state)
{
    (void)state;
    static const double rates[] = {8000, 16000, 22050, 44100, 48000, 96000};
    for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
        double rate = rates[r];
        char where[96];
        long n = (long)(0.5 * rate);
        float *x = noise(n, 21, 0.3);
        for (long i = 0; i < n; i++) /* a tone over noise, with quiet stretches */
            x[i] = (float)(x[i] * (i % 4000 < 1500 ? 1e-4 : 1.0) + 0.2 * sin(2 * PI * 440 * i / rate));
        static const int shapes[][2] = {{0, 0}, {13, 1}, {0, 1}};
        for (int s = 0; s < 3; s++) {
            snprintf(where, sizeof where, "%g Hz, ref_rate = rate, mfcc %d deltas %d", rate,
                     shapes[s][0], shapes[s][1]);
            cbrnn_feat *a = make_ref(rate, 0, shapes[s][0], shapes[s][1]);
            cbrnn_feat *b = make_ref(rate, rate, shapes[s][0], shapes[s][1]);
            long na, nb;
            float *fa = extract(a, x, n, 333, &na), *fb = extract(b, x, n, 333, &nb);
            CHECK_INT("frames", where, na, nb);
            if (memcmp(fa, fb, (size_t)na * cbrnn_feat_dim(a) * sizeof *fa) != 0) {
                print_error("%s: features differ from ref_rate 0; expected bit-identical\n",
                            where);
                fail();
            }
            free(fa);
            free(fb);
            cbrnn_feat_destroy(a);
            cbrnn_feat_destroy(b);
        }
        cbrnn_feat_config c;
        cbrnn_feat_config_default(&c, rate);
        c.ref_rate = rate;
        if (cbrnn_feat_config_level_shift(&c) != 0.0) {
            print_error("level shift at %g Hz with ref_rate = rate: %.17g, expected exactly 0\n",
                        rate, cbrnn_feat_config_level_shift(&c));
            fail();
        }
        c.ref_rate = 0;
        assert_true(cbrnn_feat_config_level_shift(&c) == 0.0);

        /* A model trained at 16 kHz running at this rate. */
        if (rate != 16000) {
            snprintf(where, sizeof where, "%g Hz, ref_rate 16 kHz", rate);
            c.ref_rate = 16000;
            double shift = cbrnn_feat_config_level_shift(&c);
            double expect = log(window_energy_nfft(16000) / window_energy_nfft(rate));
            CHECK_NEAR("level shift", where, expect, shift, 1e-12);
            cbrnn_feat_config back;
            cbrnn_feat_config_default(&back, 16000);
            back.ref_rate = rate;
            CHECK_NEAR("level shift, the other way", where, -shift,
                       cbrnn_feat_config_level_shift(&back), 1e-12);
            /* log-mel: loud bands move by exactly the shift; a frame of
             * digital silence stays at the floor log(1e-6). */
            cbrnn_feat *a = make_ref(rate, 0, 0, 0), *b = make_ref(rate, 16000, 0, 0);
            float *y = calloc((size_t)n, sizeof *y);
            assert_non_null(y);
            for (long i = n / 2; i < n; i++)
                y[i] = (float)(0.5 * sin(2 * PI * 1000 * i / rate)) + x[i];
            long na, nb;
            float *fa = extract(a, y, n, 1000, &na), *fb = extract(b, y, n, 1000, &nb);
            CHECK_INT("frames", where, na, nb);
            int loud = 0;
            for (long t = 0; t < na; t++)
                for (int j = 0; j < 40; j++) {
                    double va = fa[t * 40 + j], vb = fb[t * 40 + j];
                    if (va == (float)log(1e-6)) { /* silent: the floor, untouched */
                        CHECK_NEAR("silent band", where, va, vb, 0.0);
                    } else if (va > 0.0 && va + shift > 0.0) { /* energy >= 1e6 x the floor */
                        CHECK_NEAR("loud band - shift", where, va + shift, vb, 2e-5);
                        loud++;
                    }
                }
            assert_true(loud > 100);
            free(fa);
            free(fb);
            cbrnn_feat_destroy(a);
            cbrnn_feat_destroy(b);
            /* MFCC: only c0 moves, by shift * sqrt(n_mels) (orthonormal
             * DCT), on white noise loud in every band. */
            a = make_ref(rate, 0, 13, 0);
            b = make_ref(rate, 16000, 13, 0);
            float *z = noise(n, 33, 0.3);
            float *ma = extract(a, z, n, 1000, &na), *mb = extract(b, z, n, 1000, &nb);
            assert_true(na > 10);
            for (long t = 0; t < na; t++) {
                CHECK_NEAR("MFCC c0 - shift sqrt(40)", where, ma[t * 13] + shift * sqrt(40.0),
                           mb[t * 13], 1e-4);
                for (int k = 1; k < 13; k++)
                    CHECK_NEAR("MFCC c1..c12", where, ma[t * 13 + k], mb[t * 13 + k], 1e-4);
            }
            free(ma);
            free(mb);
            free(z);
            free(y);
            cbrnn_feat_destroy(a);
            cbrnn_feat_destroy(b);
        }
        free(x);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_sizes),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_push_errors),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_mel_bank_properties),
        cmocka_unit_test(test_large_bank_memory),
        cmocka_unit_test(test_dct_orthonormal),
        cmocka_unit_test(test_frame_timing),
        cmocka_unit_test(test_against_plain_dft),
        cmocka_unit_test(test_silence_and_tone),
        cmocka_unit_test(test_mfcc_and_deltas),
        cmocka_unit_test(test_block_invariance),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_ref_rate),
        cmocka_unit_test(test_stats_merge_vs_two_pass),
        cmocka_unit_test(test_stats_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
