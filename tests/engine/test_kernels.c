/* test_kernels.c: the engine's vector kernels (engine/engine_simd*.c)
 * against the plain-loop references of model/layers.h (cbrnn_*_ref) on
 * random data of awkward sizes (tails of every length); the fused
 * update-and-forward kernel against the separate kernels bit for bit; and
 * the AVX2 build against the portable build bit for bit. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cbrnn/cbrnn_model.h"
#include "engine_simd.h"
#include "engine_simd_common.h"
#include "layers.h"

static void fill(float *p, size_t n, cbrnn_rng *r)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(2.0 * cbrnn_rng_uniform(r) - 1.0);
}

/* |got - want| <= tol * (sum of |terms|): the bound of a reordered sum. */
static void expect_near(const char *what, int in, int out, int i, float want, float got,
                        double scale)
{
    if (!(fabs((double)got - want) <= 1e-6 * scale + 1e-30))
        fail_msg("%s in=%d out=%d: [%d] expected %.9g, got %.9g", what, in, out, i, want, got);
}

static const int sizes[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40, 63, 64, 65, 100, 257};
#define NS (int)(sizeof sizes / sizeof sizes[0])

static void linear_forward_matches_ref(void **state)
{
    cbrnn_rng r;
    cbrnn_rng_seed(&r, 1);
    for (int a = 0; a < NS; a++)
        for (int b = 0; b < NS; b += 3) {
            int in = sizes[a], out = sizes[b];
            float *W = malloc(sizeof(float) * in * out), *x = malloc(sizeof(float) * in);
            float *bias = malloc(sizeof(float) * out), *y = malloc(sizeof(float) * out);
            float *yr = malloc(sizeof(float) * out);
            fill(W, (size_t)in * out, &r), fill(x, in, &r), fill(bias, out, &r);
            k_linear_fwd(y, x, W, bias, in, out);
            cbrnn_linear_forward_ref(yr, x, W, bias, 1, in, out);
            for (int i = 0; i < out; i++)
                expect_near("k_linear_fwd", in, out, i, yr[i], y[i], in + 1.0);
            /* accumulate form: y += W x */
            memcpy(y, bias, sizeof(float) * out);
            k_linear_fwd_acc(y, x, W, in, out);
            for (int i = 0; i < out; i++)
                expect_near("k_linear_fwd_acc", in, out, i, yr[i], y[i], in + 1.0);
            free(W), free(x), free(bias), free(y), free(yr);
        }
}

static void linear_backward_matches_ref(void **state)
{
    cbrnn_rng r;
    cbrnn_rng_seed(&r, 2);
    for (int a = 0; a < NS; a++)
        for (int b = 1; b < NS; b += 3) {
            int in = sizes[a], out = sizes[b];
            size_t nw = (size_t)in * out;
            float *W = malloc(sizeof(float) * nw), *x = malloc(sizeof(float) * in);
            float *dout = malloc(sizeof(float) * out);
            float *din = calloc(in, sizeof(float)), *dinr = calloc(in, sizeof(float));
            float *dW = calloc(nw, sizeof(float)), *dWr = calloc(nw, sizeof(float));
            float *db = calloc(out, sizeof(float)), *dbr = calloc(out, sizeof(float));
            fill(W, nw, &r), fill(x, in, &r), fill(dout, out, &r);
            dout[0] = 0.0f; /* a ReLU that was off */
            /* accumulate onto non-zero contents, as the header promises */
            fill(din, in, &r), memcpy(dinr, din, sizeof(float) * in);
            fill(dW, nw, &r), memcpy(dWr, dW, sizeof(float) * nw);
            k_linear_bwd_in(din, dout, W, in, out);
            k_outer_acc(dW, db, dout, x, in, out);
            cbrnn_linear_backward_ref(dinr, dWr, dbr, dout, x, W, 1, in, out);
            for (int j = 0; j < in; j++)
                expect_near("k_linear_bwd_in", in, out, j, dinr[j], din[j], out + 1.0);
            for (size_t k = 0; k < nw; k++)
                if (dW[k] != dWr[k]) /* one product and one add: exact */
                    fail_msg("k_outer_acc in=%d out=%d: [%zu] expected %.9g, got %.9g", in, out, k,
                             dWr[k], dW[k]);
            assert_memory_equal(db, dbr, sizeof(float) * out);
            free(W), free(x), free(dout), free(din), free(dinr), free(dW), free(dWr), free(db),
                free(dbr);
        }
}

/* k_sgd against torch.optim.SGD's arithmetic written out in scalars. */
static void sgd_matches_formula(void **state)
{
    cbrnn_rng r;
    cbrnn_rng_seed(&r, 3);
    for (int a = 0; a < NS; a++) {
        size_t n = (size_t)sizes[a];
        for (int decay = 0; decay < 2; decay++) {
            float w[300], v[300], g[300], w0[300], ew[300], ev[300];
            fill(w, n, &r), fill(v, n, &r), fill(g, n, &r), fill(w0, n, &r);
            const float lr = 0.01f, mu = 0.9f, wd = decay ? 0.05f : 0.0f;
            for (size_t i = 0; i < n; i++) {
                float gi = decay ? g[i] + wd * (w[i] - w0[i]) : g[i];
                ev[i] = mu * v[i] + gi;
                ew[i] = w[i] - lr * ev[i];
            }
            assert_int_equal(k_sgd(w, v, g, decay ? w0 : NULL, n, lr, mu, wd), 1);
            assert_memory_equal(w, ew, n * sizeof(float));
            assert_memory_equal(v, ev, n * sizeof(float));
            for (size_t i = 0; i < n; i++)
                assert_true(g[i] == 0.0f);
        }
    }
    float w[9] = {0}, v[9] = {0}, g[9] = {0};
    g[8] = INFINITY;
    assert_int_equal(k_sgd(w, v, g, NULL, 9, 1.0f, 0.0f, 0.0f), 0);
    g[8] = 0.0f;
    g[3] = NAN;
    w[8] = 0.0f;
    assert_int_equal(k_sgd(w, v, g, NULL, 9, 1.0f, 0.0f, 0.0f), 0);
}

/* The fused kernel = k_outer_acc (into zeros) + k_sgd + k_linear_fwd. */
static void fused_equals_separate(void **state)
{
    cbrnn_rng r;
    cbrnn_rng_seed(&r, 4);
    for (int a = 0; a < NS; a++)
        for (int b = 2; b < NS; b += 4)
            for (int decay = 0; decay < 2; decay++) {
                int in = sizes[a], out = sizes[b];
                size_t nw = (size_t)in * out;
                /* one block laid out like a layer: W then b */
                float *P = malloc(sizeof(float) * (nw + out)), *Q = malloc(sizeof(float) * (nw + out));
                float *V = malloc(sizeof(float) * (nw + out)), *U = malloc(sizeof(float) * (nw + out));
                float *P0 = malloc(sizeof(float) * (nw + out));
                float *G = calloc(nw + out, sizeof(float));
                float *xo = malloc(sizeof(float) * in), *xn = malloc(sizeof(float) * in);
                float *d = malloc(sizeof(float) * out), *y = malloc(sizeof(float) * out);
                float *ys = malloc(sizeof(float) * out);
                fill(P, nw + out, &r), fill(V, nw + out, &r), fill(P0, nw + out, &r);
                fill(xo, in, &r), fill(xn, in, &r), fill(d, out, &r);
                memcpy(Q, P, sizeof(float) * (nw + out));
                memcpy(U, V, sizeof(float) * (nw + out));
                const float lr = 0.003f, mu = 0.9f, wd = decay ? 0.01f : 0.0f;
                int ok = k_sgd_fwd(y, P, P + nw, V, V + nw, decay ? P0 : NULL,
                                   decay ? P0 + nw : NULL, d, xo, xn, in, out, lr, mu, wd);
                assert_int_equal(ok, 1);
                k_outer_acc(G, G + nw, d, xo, in, out);
                assert_int_equal(k_sgd(Q, U, G, decay ? P0 : NULL, nw + out, lr, mu, wd), 1);
                k_linear_fwd(ys, xn, Q, Q + nw, in, out);
                if (memcmp(P, Q, sizeof(float) * (nw + out)) ||
                    memcmp(V, U, sizeof(float) * (nw + out)) || memcmp(y, ys, sizeof(float) * out))
                    fail_msg("k_sgd_fwd in=%d out=%d decay=%d: differs from the separate kernels",
                             in, out, decay);
                free(P), free(Q), free(V), free(U), free(P0), free(G), free(xo), free(xn), free(d),
                    free(y), free(ys);
            }
}

/* The AVX2 and the portable build must agree to the bit, so a live run and
 * its replay agree whichever machine each runs on. */
static void avx2_equals_base(void **state)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2")) {
        print_message("this CPU has no AVX2: only the portable build runs here\n");
        skip();
    }
    const struct simd_table *A = &simd_avx2, *B = &simd_base;
    cbrnn_rng r;
    cbrnn_rng_seed(&r, 5);
    for (int a = 0; a < NS; a++)
        for (int b = 0; b < NS; b += 2) {
            int in = sizes[a], out = sizes[b];
            size_t nw = (size_t)in * out, n2 = nw + out;
            float *W = malloc(sizeof(float) * n2), *x = malloc(sizeof(float) * in);
            float *x2 = malloc(sizeof(float) * in), *d = malloc(sizeof(float) * out);
            float *ya = malloc(sizeof(float) * in * 2 + sizeof(float) * out);
            float *yb = malloc(sizeof(float) * in * 2 + sizeof(float) * out);
            float *Wa = malloc(sizeof(float) * n2), *Wb = malloc(sizeof(float) * n2);
            float *Va = malloc(sizeof(float) * n2), *Vb = malloc(sizeof(float) * n2);
            float *W0 = malloc(sizeof(float) * n2);
            fill(W, n2, &r), fill(x, in, &r), fill(x2, in, &r), fill(d, out, &r), fill(W0, n2, &r);
            A->linear_fwd(ya, x, W, W + nw, in, out);
            B->linear_fwd(yb, x, W, W + nw, in, out);
            assert_memory_equal(ya, yb, sizeof(float) * out);
            A->linear_fwd_acc(ya, x2, W, in, out);
            B->linear_fwd_acc(yb, x2, W, in, out);
            assert_memory_equal(ya, yb, sizeof(float) * out);
            memset(ya, 0, sizeof(float) * in), memset(yb, 0, sizeof(float) * in);
            A->linear_bwd_in(ya, d, W, in, out);
            B->linear_bwd_in(yb, d, W, in, out);
            assert_memory_equal(ya, yb, sizeof(float) * in);
            memcpy(Wa, W, sizeof(float) * n2), memcpy(Wb, W, sizeof(float) * n2);
            A->outer_acc(Wa, Wa + nw, d, x, in, out);
            B->outer_acc(Wb, Wb + nw, d, x, in, out);
            assert_memory_equal(Wa, Wb, sizeof(float) * n2);
            for (int decay = 0; decay < 2; decay++) {
                float wd = decay ? 0.02f : 0.0f;
                memcpy(Wa, W, sizeof(float) * n2), memcpy(Wb, W, sizeof(float) * n2);
                fill(Va, n2, &r), memcpy(Vb, Va, sizeof(float) * n2);
                assert_int_equal(A->sgd_fwd(ya, Wa, Wa + nw, Va, Va + nw, W0, W0 + nw, d, x, x2,
                                            in, out, 0.01f, 0.9f, wd), 1);
                assert_int_equal(B->sgd_fwd(yb, Wb, Wb + nw, Vb, Vb + nw, W0, W0 + nw, d, x, x2,
                                            in, out, 0.01f, 0.9f, wd), 1);
                if (memcmp(ya, yb, sizeof(float) * out) || memcmp(Wa, Wb, sizeof(float) * n2) ||
                    memcmp(Va, Vb, sizeof(float) * n2))
                    fail_msg("sgd_fwd in=%d out=%d decay=%d: AVX2 and portable builds differ", in,
                             out, decay);
                float *ga = malloc(sizeof(float) * n2), *gb = malloc(sizeof(float) * n2);
                fill(ga, n2, &r), memcpy(gb, ga, sizeof(float) * n2);
                assert_int_equal(A->sgd(Wa, Va, ga, W0, n2, 0.01f, 0.9f, wd), 1);
                assert_int_equal(B->sgd(Wb, Vb, gb, W0, n2, 0.01f, 0.9f, wd), 1);
                if (memcmp(Wa, Wb, sizeof(float) * n2) || memcmp(Va, Vb, sizeof(float) * n2))
                    fail_msg("sgd n=%zu decay=%d: AVX2 and portable builds differ", n2, decay);
                free(ga), free(gb);
            }
            free(W), free(x), free(x2), free(d), free(ya), free(yb), free(Wa), free(Wb), free(Va),
                free(Vb), free(W0);
        }
#else
    skip();
#endif
}

int main(void)
{
    engine_simd_init();
    print_message("kernels in use: %s\n", engine_simd_name());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(avx2_equals_base),
        cmocka_unit_test(linear_forward_matches_ref),
        cmocka_unit_test(linear_backward_matches_ref),
        cmocka_unit_test(sgd_matches_formula),
        cmocka_unit_test(fused_equals_separate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
