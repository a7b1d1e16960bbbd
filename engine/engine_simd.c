/* engine_simd.c: the engine's batch-1 vector kernels (see engine_simd.h).
 * Audio thread: never allocate, lock or call out. Every dot product sums
 * in the same fixed order (four 8-wide partial sums over blocks of 32,
 * then one over blocks of 8, then the scalar tail), so the fused and the
 * separate kernels agree bit for bit. */
#include "engine_simd.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* No fused multiply-add: a contraction would make results differ between
 * compilers and targets (GCC in ISO C mode does not contract anyway). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

typedef float v8 __attribute__((vector_size(32)));

static inline v8 ld(const float *p)
{
    v8 v;
    memcpy(&v, p, sizeof v); /* unaligned load */
    return v;
}

static inline void st(float *p, v8 v)
{
    memcpy(p, &v, sizeof v);
}

static inline v8 splat(float f)
{
    return (v8){f, f, f, f, f, f, f, f};
}

static inline float hsum(v8 v)
{
    /* fixed pairwise order */
    float a = (v[0] + v[4]) + (v[1] + v[5]);
    float b = (v[2] + v[6]) + (v[3] + v[7]);
    return a + b;
}

static inline int finite_all(v8 v)
{
    int ok = 1;
    for (int k = 0; k < 8; k++)
        ok &= fabsf(v[k]) <= FLT_MAX;
    return ok;
}

static inline float dot(const float *w, const float *x, int n)
{
    v8 a0 = splat(0), a1 = splat(0), a2 = splat(0), a3 = splat(0);
    int j = 0;
    for (; j + 32 <= n; j += 32) {
        a0 += ld(w + j) * ld(x + j);
        a1 += ld(w + j + 8) * ld(x + j + 8);
        a2 += ld(w + j + 16) * ld(x + j + 16);
        a3 += ld(w + j + 24) * ld(x + j + 24);
    }
    for (; j + 8 <= n; j += 8)
        a0 += ld(w + j) * ld(x + j);
    float s = hsum((a0 + a1) + (a2 + a3));
    for (; j < n; j++)
        s += w[j] * x[j];
    return s;
}

void k_linear_fwd(float *y, const float *x, const float *W, const float *b, int in, int out)
{
    for (int i = 0; i < out; i++)
        y[i] = (b ? b[i] : 0.0f) + dot(W + (size_t)i * in, x, in);
}

void k_linear_fwd_acc(float *y, const float *x, const float *W, int in, int out)
{
    for (int i = 0; i < out; i++)
        y[i] += dot(W + (size_t)i * in, x, in);
}

void k_linear_bwd_in(float *din, const float *dout, const float *W, int in, int out)
{
    for (int i = 0; i < out; i++) {
        const float d = dout[i];
        if (d == 0.0f)
            continue; /* a ReLU that was off: nothing flows (exact) */
        const float *w = W + (size_t)i * in;
        v8 dv = splat(d);
        int j = 0;
        for (; j + 8 <= in; j += 8)
            st(din + j, ld(din + j) + dv * ld(w + j));
        for (; j < in; j++)
            din[j] += d * w[j];
    }
}

void k_outer_acc(float *dW, float *db, const float *dout, const float *x, int in, int out)
{
    for (int i = 0; i < out; i++) {
        const float d = dout[i];
        float *g = dW + (size_t)i * in;
        v8 dv = splat(d);
        int j = 0;
        for (; j + 8 <= in; j += 8)
            st(g + j, ld(g + j) + dv * ld(x + j));
        for (; j < in; j++)
            g[j] += d * x[j];
        if (db)
            db[i] += d;
    }
}

/* One element of the update, the scalar form every path uses. */
static inline float sgd1(float *w, float *v, float g, float w0, float lr, float mu, float wd)
{
    float gi = wd > 0.0f ? g + wd * (*w - w0) : g;
    float vi = mu * *v + gi;
    float wi = *w - lr * vi;
    *v = vi;
    *w = wi;
    return wi;
}

static inline v8 sgd8(float *w, float *v, v8 g, const float *w0, v8 lr, v8 mu, v8 wd, int decay)
{
    v8 wv = ld(w);
    v8 gi = decay ? g + wd * (wv - ld(w0)) : g;
    v8 vi = mu * ld(v) + gi;
    v8 wi = wv - lr * vi;
    st(v, vi);
    st(w, wi);
    return wi;
}

int k_sgd(float *w, float *v, float *g, const float *w0, size_t n, float lr, float mu, float wd)
{
    const int decay = wd > 0.0f;
    const v8 lr8 = splat(lr), mu8 = splat(mu), wd8 = splat(wd);
    int ok = 1;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8 wi = sgd8(w + i, v + i, ld(g + i), decay ? w0 + i : NULL, lr8, mu8, wd8, decay);
        st(g + i, splat(0));
        ok &= finite_all(wi);
    }
    for (; i < n; i++) {
        float wi = sgd1(w + i, v + i, g[i], decay ? w0[i] : 0.0f, lr, mu, wd);
        g[i] = 0.0f;
        ok &= fabsf(wi) <= FLT_MAX;
    }
    return ok;
}

int k_sgd_fwd(float *y, float *W, float *b, float *vW, float *vb, const float *W0,
              const float *b0, const float *dout, const float *x_old, const float *x_new, int in,
              int out, float lr, float mu, float wd)
{
    const int decay = wd > 0.0f;
    const v8 lr8 = splat(lr), mu8 = splat(mu), wd8 = splat(wd);
    int ok = 1;
    for (int i = 0; i < out; i++) {
        const float d = dout[i];
        const v8 dv = splat(d);
        float *w = W + (size_t)i * in, *v = vW + (size_t)i * in;
        const float *w0 = decay ? W0 + (size_t)i * in : NULL;
        float bi = sgd1(b + i, vb + i, d, decay ? b0[i] : 0.0f, lr, mu, wd);
        ok &= fabsf(bi) <= FLT_MAX;
        /* The gradient dout[i] x_old[j] is formed as k_outer_acc forms it
         * into a zeroed buffer (0 + d x = d x exactly), then the update and
         * the forward dot product in dot()'s order. */
        v8 a0 = splat(0), a1 = splat(0), a2 = splat(0), a3 = splat(0);
        int j = 0;
        for (; j + 32 <= in; j += 32) {
            v8 w1 = sgd8(w + j, v + j, dv * ld(x_old + j), w0 ? w0 + j : NULL, lr8, mu8, wd8, decay);
            v8 w2 = sgd8(w + j + 8, v + j + 8, dv * ld(x_old + j + 8), w0 ? w0 + j + 8 : NULL, lr8,
                         mu8, wd8, decay);
            v8 w3 = sgd8(w + j + 16, v + j + 16, dv * ld(x_old + j + 16), w0 ? w0 + j + 16 : NULL,
                         lr8, mu8, wd8, decay);
            v8 w4 = sgd8(w + j + 24, v + j + 24, dv * ld(x_old + j + 24), w0 ? w0 + j + 24 : NULL,
                         lr8, mu8, wd8, decay);
            ok &= finite_all(w1) & finite_all(w2) & finite_all(w3) & finite_all(w4);
            a0 += w1 * ld(x_new + j);
            a1 += w2 * ld(x_new + j + 8);
            a2 += w3 * ld(x_new + j + 16);
            a3 += w4 * ld(x_new + j + 24);
        }
        for (; j + 8 <= in; j += 8) {
            v8 w1 = sgd8(w + j, v + j, dv * ld(x_old + j), w0 ? w0 + j : NULL, lr8, mu8, wd8, decay);
            ok &= finite_all(w1);
            a0 += w1 * ld(x_new + j);
        }
        float s = hsum((a0 + a1) + (a2 + a3));
        for (; j < in; j++) {
            float wj = sgd1(w + j, v + j, d * x_old[j], w0 ? w0[j] : 0.0f, lr, mu, wd);
            ok &= fabsf(wj) <= FLT_MAX;
            s += wj * x_new[j];
        }
        y[i] = bi + s;
    }
    return ok;
}
