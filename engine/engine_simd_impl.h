/* engine_simd_impl.h: the bodies of the engine's vector kernels, written
 * once against a small 8-lane vector interface and compiled twice:
 * engine_simd_avx2.c (one 256-bit register per vector, built with -mavx2)
 * and engine_simd_base.c (two 128-bit halves: SSE2, NEON, or plain C).
 * Every lane computes the same thing in both, and every sum runs in the
 * same fixed order (four 8-lane partial sums over blocks of 32, then one
 * over blocks of 8, then the scalar tail; lanes added pairwise), so the
 * two builds give the same bits. Audio thread: no allocation, no lock.
 *
 * The includer defines: V (8 floats), M (8 lane masks), and
 *   V vld(const float *), vst(float *, V), vsplat(float), vadd(V, V),
 *   vsub(V, V), vmul(V, V), float vhsum(V) ((v0+v4)+(v1+v5))+((v2+v6)+(v3+v7)),
 *   M mall(void), M mfinite(M, V), int mtrue(M),
 * and K(name), which names this build's copy of a kernel. */

INLINE float dot(const float *w, const float *x, int n)
{
    V a0 = vsplat(0), a1 = vsplat(0), a2 = vsplat(0), a3 = vsplat(0);
    int j = 0;
    for (; j + 32 <= n; j += 32) {
        a0 = vadd(a0, vmul(vld(w + j), vld(x + j)));
        a1 = vadd(a1, vmul(vld(w + j + 8), vld(x + j + 8)));
        a2 = vadd(a2, vmul(vld(w + j + 16), vld(x + j + 16)));
        a3 = vadd(a3, vmul(vld(w + j + 24), vld(x + j + 24)));
    }
    for (; j + 8 <= n; j += 8)
        a0 = vadd(a0, vmul(vld(w + j), vld(x + j)));
    float s = vhsum(vadd(vadd(a0, a1), vadd(a2, a3)));
    for (; j < n; j++)
        s += w[j] * x[j];
    return s;
}

void K(linear_fwd)(float *y, const float *x, const float *W, const float *b, int in, int out)
{
    for (int i = 0; i < out; i++)
        y[i] = (b ? b[i] : 0.0f) + dot(W + (size_t)i * in, x, in);
}

void K(linear_fwd_acc)(float *y, const float *x, const float *W, int in, int out)
{
    for (int i = 0; i < out; i++)
        y[i] += dot(W + (size_t)i * in, x, in);
}

void K(linear_bwd_in)(float *din, const float *dout, const float *W, int in, int out)
{
    for (int i = 0; i < out; i++) {
        const float d = dout[i];
        if (d == 0.0f)
            continue; /* a ReLU that was off: nothing flows (exact) */
        const float *w = W + (size_t)i * in;
        const V dv = vsplat(d);
        int j = 0;
        for (; j + 8 <= in; j += 8)
            vst(din + j, vadd(vld(din + j), vmul(dv, vld(w + j))));
        for (; j < in; j++)
            din[j] += d * w[j];
    }
}

void K(outer_acc)(float *dW, float *db, const float *dout, const float *x, int in, int out)
{
    for (int i = 0; i < out; i++) {
        const float d = dout[i];
        float *g = dW + (size_t)i * in;
        const V dv = vsplat(d);
        int j = 0;
        for (; j + 8 <= in; j += 8)
            vst(g + j, vadd(vld(g + j), vmul(dv, vld(x + j))));
        for (; j < in; j++)
            g[j] += d * x[j];
        if (db)
            db[i] += d;
    }
}

/* One element of the update, the scalar form every path uses. `decay` is
 * a constant at every call, so no copy carries the branch in its loop. */
INLINE float sgd1(float *w, float *v, float g, float w0, float lr, float mu, float wd,
                  const int decay)
{
    float gi = decay ? g + wd * (*w - w0) : g;
    float vi = mu * *v + gi;
    float wi = *w - lr * vi;
    *v = vi;
    *w = wi;
    return wi;
}

INLINE V sgd8(float *w, float *v, V g, const float *w0, V lr, V mu, V wd, const int decay)
{
    V wv = vld(w);
    V gi = decay ? vadd(g, vmul(wd, vsub(wv, vld(w0)))) : g;
    V vi = vadd(vmul(mu, vld(v)), gi);
    V wi = vsub(wv, vmul(lr, vi));
    vst(v, vi);
    vst(w, wi);
    return wi;
}

INLINE int sgd_impl(float *w, float *v, float *g, const float *w0, size_t n, float lr, float mu,
                    float wd, const int decay)
{
    const V lr8 = vsplat(lr), mu8 = vsplat(mu), wd8 = vsplat(wd);
    M m = mall();
    int ok = 1;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        V wi = sgd8(w + i, v + i, vld(g + i), decay ? w0 + i : NULL, lr8, mu8, wd8, decay);
        vst(g + i, vsplat(0));
        m = mfinite(m, wi);
    }
    for (; i < n; i++) {
        float wi = sgd1(w + i, v + i, g[i], decay ? w0[i] : 0.0f, lr, mu, wd, decay);
        g[i] = 0.0f;
        ok &= fabsf(wi) <= FLT_MAX;
    }
    return ok & mtrue(m);
}

int K(sgd)(float *w, float *v, float *g, const float *w0, size_t n, float lr, float mu, float wd)
{
    return wd > 0.0f ? sgd_impl(w, v, g, w0, n, lr, mu, wd, 1)
                     : sgd_impl(w, v, g, NULL, n, lr, mu, wd, 0);
}

INLINE int sgd_fwd_impl(float *y, float *W, float *b, float *vW, float *vb, const float *W0,
                        const float *b0, const float *dout, const float *x_old,
                        const float *x_new, int in, int out, float lr, float mu, float wd,
                        const int decay)
{
    const V lr8 = vsplat(lr), mu8 = vsplat(mu), wd8 = vsplat(wd);
    M m = mall();
    int ok = 1;
    for (int i = 0; i < out; i++) {
        const float d = dout[i];
        const V dv = vsplat(d);
        float *w = W + (size_t)i * in, *v = vW + (size_t)i * in;
        const float *w0 = decay ? W0 + (size_t)i * in : NULL;
        float bi = sgd1(b + i, vb + i, d, decay ? b0[i] : 0.0f, lr, mu, wd, decay);
        ok &= fabsf(bi) <= FLT_MAX;
        /* The gradient dout[i] x_old[j] is formed as outer_acc forms it
         * into a zeroed buffer (0 + d x = d x exactly), then the update and
         * the forward dot product in dot()'s order. */
        V a0 = vsplat(0), a1 = vsplat(0), a2 = vsplat(0), a3 = vsplat(0);
        int j = 0;
        for (; j + 32 <= in; j += 32) {
            V w1 = sgd8(w + j, v + j, vmul(dv, vld(x_old + j)), decay ? w0 + j : NULL, lr8, mu8,
                        wd8, decay);
            V w2 = sgd8(w + j + 8, v + j + 8, vmul(dv, vld(x_old + j + 8)),
                        decay ? w0 + j + 8 : NULL, lr8, mu8, wd8, decay);
            V w3 = sgd8(w + j + 16, v + j + 16, vmul(dv, vld(x_old + j + 16)),
                        decay ? w0 + j + 16 : NULL, lr8, mu8, wd8, decay);
            V w4 = sgd8(w + j + 24, v + j + 24, vmul(dv, vld(x_old + j + 24)),
                        decay ? w0 + j + 24 : NULL, lr8, mu8, wd8, decay);
            m = mfinite(mfinite(mfinite(mfinite(m, w1), w2), w3), w4);
            a0 = vadd(a0, vmul(w1, vld(x_new + j)));
            a1 = vadd(a1, vmul(w2, vld(x_new + j + 8)));
            a2 = vadd(a2, vmul(w3, vld(x_new + j + 16)));
            a3 = vadd(a3, vmul(w4, vld(x_new + j + 24)));
        }
        for (; j + 8 <= in; j += 8) {
            V w1 = sgd8(w + j, v + j, vmul(dv, vld(x_old + j)), decay ? w0 + j : NULL, lr8, mu8,
                        wd8, decay);
            m = mfinite(m, w1);
            a0 = vadd(a0, vmul(w1, vld(x_new + j)));
        }
        float s = vhsum(vadd(vadd(a0, a1), vadd(a2, a3)));
        for (; j < in; j++) {
            float wj = sgd1(w + j, v + j, d * x_old[j], decay ? w0[j] : 0.0f, lr, mu, wd, decay);
            ok &= fabsf(wj) <= FLT_MAX;
            s += wj * x_new[j];
        }
        y[i] = bi + s;
    }
    return ok & mtrue(m);
}

int K(sgd_fwd)(float *y, float *W, float *b, float *vW, float *vb, const float *W0,
               const float *b0, const float *dout, const float *x_old, const float *x_new, int in,
               int out, float lr, float mu, float wd)
{
    if (wd > 0.0f)
        return sgd_fwd_impl(y, W, b, vW, vb, W0, b0, dout, x_old, x_new, in, out, lr, mu, wd, 1);
    return sgd_fwd_impl(y, W, b, vW, vb, NULL, NULL, dout, x_old, x_new, in, out, lr, mu, wd, 0);
}
