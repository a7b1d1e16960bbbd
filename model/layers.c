/* layers.c: the layer forward/backward pairs of layers.h, each CBLAS
 * kernel next to its plain-loop reference. Called on the audio thread by
 * the engine: nothing here may allocate, lock, print or block.
 *
 * Speed: the GEMMs are OpenBLAS's; the elementwise work is fused into one
 * pass per layer (bias + ReLU after the GEMM, mask + bias gradient before
 * it) and written so the compiler vectorises it (model/CMakeLists.txt asks
 * GCC for its dynamic vectoriser cost model; tanh is vectorised by hand). */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "layers.h"
#include "model_internal.h"

/* out = beta * out + in W^T over `rows` rows (contiguous). */
static void matmul_wt(float *out, const float *in, const float *w, int rows, int in_dim,
                      int out_dim, float beta)
{
    if (rows == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, out_dim, in_dim, 1.0f, w, in_dim, in, 1, beta,
                    out, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out_dim, in_dim, 1.0f, in,
                    in_dim, w, in_dim, beta, out, out_dim);
}

/* out = dout W (overwritten) over `rows` rows: a layer's input gradient
 * written without first zeroing the buffer. */
static void matmul_w_into(float *out, const float *dout, const float *w, int rows, int in_dim,
                          int out_dim)
{
    if (rows == 1)
        cblas_sgemv(CblasRowMajor, CblasTrans, out_dim, in_dim, 1.0f, w, in_dim, dout, 1, 0.0f,
                    out, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, in_dim, out_dim, 1.0f, dout,
                    out_dim, w, in_dim, 0.0f, out, in_dim);
}

void cbrnn_linear_forward(float *out, const float *in, const float *w, const float *b, int rows,
                          int in_dim, int out_dim)
{
    if (rows <= 0)
        return;
    if (b) {
        for (int r = 0; r < rows; r++)
            memcpy(out + (size_t)r * out_dim, b, (size_t)out_dim * sizeof(float));
        matmul_wt(out, in, w, rows, in_dim, out_dim, 1.0f);
    } else {
        matmul_wt(out, in, w, rows, in_dim, out_dim, 0.0f);
    }
}

void cbrnn_linear_forward_ref(float *out, const float *in, const float *w, const float *b,
                              int rows, int in_dim, int out_dim)
{
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out_dim; o++) {
            float s = b ? b[o] : 0.0f;
            for (int i = 0; i < in_dim; i++)
                s += in[(size_t)r * in_dim + i] * w[(size_t)o * in_dim + i];
            out[(size_t)r * out_dim + o] = s;
        }
}

void cbrnn_linear_forward_acc(float *out, const float *in, const float *w, int rows, int in_dim,
                              int out_dim)
{
    if (rows > 0)
        matmul_wt(out, in, w, rows, in_dim, out_dim, 1.0f);
}

void cbrnn_linear_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                           const float *w, int rows, int in_dim, int out_dim)
{
    if (rows <= 0)
        return;
    if (din) {
        if (rows == 1)
            cblas_sgemv(CblasRowMajor, CblasTrans, out_dim, in_dim, 1.0f, w, in_dim, dout, 1,
                        1.0f, din, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, in_dim, out_dim, 1.0f,
                        dout, out_dim, w, in_dim, 1.0f, din, in_dim);
    }
    if (dw) {
        if (rows == 1)
            cblas_sger(CblasRowMajor, out_dim, in_dim, 1.0f, dout, 1, in, 1, dw, in_dim);
        else
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out_dim, in_dim, rows, 1.0f,
                        dout, out_dim, in, in_dim, 1.0f, dw, in_dim);
    }
    if (db)
        for (int r = 0; r < rows; r++) {
            const float *d = dout + (size_t)r * out_dim;
            for (int o = 0; o < out_dim; o++)
                db[o] += d[o];
        }
}

void cbrnn_linear_backward_ref(float *din, float *dw, float *db, const float *dout,
                               const float *in, const float *w, int rows, int in_dim, int out_dim)
{
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out_dim; o++) {
            float d = dout[(size_t)r * out_dim + o];
            for (int i = 0; i < in_dim; i++) {
                if (din)
                    din[(size_t)r * in_dim + i] += d * w[(size_t)o * in_dim + i];
                if (dw)
                    dw[(size_t)o * in_dim + i] += d * in[(size_t)r * in_dim + i];
            }
            if (db)
                db[o] += d;
        }
}

void cbrnn_relu_forward(float *out, const float *in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

void cbrnn_relu_backward(float *din, const float *dout, const float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        din[i] += out[i] > 0.0f ? dout[i] : 0.0f;
}

void cbrnn_relu_backward_inplace(float *d, const float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] = out[i] > 0.0f ? d[i] : 0.0f;
}

/* torch.nn.LeakyReLU's default negative slope. */
#define LEAKY_SLOPE 0.01f

/* ---- tanh, four lanes at a time (GCC/clang vector extensions: SSE2 on
 * x86-64, NEON on arm64; no intrinsics, so it builds everywhere).
 * |x| <= 0.625: Cephes tanhf's odd polynomial (S. Moshier, Cephes Math
 * Library 2.2, tanhf.c); above: 1 - 2/(e^{2|x|} + 1) with e^z from Cephes
 * expf.c's range reduction and polynomial, |x| clamped at 10 (from 9.1 on
 * tanh rounds to 1 in float). Measured against double tanh over every
 * float in [-12, 12]: at most 1.33 ulp (glibc's tanhf: up to 1.5 ulp);
 * 4x faster than glibc's tanhf, which had been 18% of a training step.
 * NaN stays NaN (the polynomial branch carries it), +-inf gives +-1. */
typedef float v4sf __attribute__((vector_size(16)));
typedef int32_t v4si __attribute__((vector_size(16)));

static inline v4sf v4_splat(float a)
{
    return (v4sf){a, a, a, a};
}

static inline v4sf v4_select(v4si mask, v4sf a, v4sf b)
{
    return (v4sf)((mask & (v4si)a) | (~mask & (v4si)b));
}

static inline v4sf v4_tanh(v4sf x)
{
    const v4si absmask = {0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff};
    v4sf ax = (v4sf)((v4si)x & absmask);
    v4sf s = x * x;
    v4sf small = ((((-5.70498872745e-3f * s + 2.06390887954e-2f) * s - 5.37397155531e-2f) * s +
                   1.33314422036e-1f) * s - 3.33332819422e-1f) * s * x + x;
    v4sf z = v4_select(ax < v4_splat(10.0f), ax, v4_splat(10.0f)); /* NaN -> 10: no UB below */
    z = z + z;
    v4si n = __builtin_convertvector(z * 1.44269504088896341f + 0.5f, v4si); /* round(z/ln2) */
    v4sf fn = __builtin_convertvector(n, v4sf);
    v4sf r = z - fn * 0.693359375f - fn * -2.12194440e-4f; /* ln2 in two parts */
    v4sf p = (((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r +
                4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f) * r * r + r +
             1.0f;
    v4sf e = p * (v4sf)((n + 127) << 23); /* times 2^n, n in 0..29 */
    v4sf big = 1.0f - 2.0f / (e + 1.0f);
    big = (v4sf)((v4si)big | ((v4si)x & ~absmask)); /* sign of x */
    return v4_select(ax > v4_splat(0.625f), big, small);
}

static void tanh_array(float *out, const float *in, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        v4sf v;
        memcpy(&v, in + i, sizeof v);
        v = v4_tanh(v);
        memcpy(out + i, &v, sizeof v);
    }
    if (i < n) {
        v4sf v = {0.0f, 0.0f, 0.0f, 0.0f};
        memcpy(&v, in + i, (n - i) * sizeof(float));
        v = v4_tanh(v);
        memcpy(out + i, &v, (n - i) * sizeof(float));
    }
}

void cbrnn_act_forward_ref(float *out, const float *pre, size_t n, cbrnn_act act)
{
    for (size_t i = 0; i < n; i++) {
        float v = pre[i];
        out[i] = act == CBRNN_ACT_TANH ? (float)tanh((double)v) /* correctly rounded */
                 : v > 0.0f            ? v
                 : act == CBRNN_ACT_RELU ? 0.0f
                                         : LEAKY_SLOPE * v;
    }
}

void cbrnn_act_forward(float *out, const float *pre, size_t n, cbrnn_act act)
{
    switch (act) {
    case CBRNN_ACT_TANH:
        tanh_array(out, pre, n);
        break;
    case CBRNN_ACT_RELU:
        cbrnn_relu_forward(out, pre, n);
        break;
    case CBRNN_ACT_LEAKY_RELU:
        for (size_t i = 0; i < n; i++)
            out[i] = pre[i] > 0.0f ? pre[i] : LEAKY_SLOPE * pre[i];
        break;
    }
}

void cbrnn_act_backward(float *dpre, const float *dout, const float *out, size_t n, cbrnn_act act)
{
    switch (act) {
    case CBRNN_ACT_TANH:
        for (size_t i = 0; i < n; i++)
            dpre[i] += dout[i] * (1.0f - out[i] * out[i]);
        break;
    case CBRNN_ACT_RELU:
        cbrnn_relu_backward(dpre, dout, out, n);
        break;
    case CBRNN_ACT_LEAKY_RELU:
        for (size_t i = 0; i < n; i++)
            dpre[i] += out[i] > 0.0f ? dout[i] : LEAKY_SLOPE * dout[i];
        break;
    }
}

void cbrnn_cortex_drive(float *drive, const float *x, const float *c, const float *w_ih,
                        const float *b_ih, const float *b_hh, int rows, int F, int N)
{
    for (int r = 0; r < rows; r++) {
        float *d = drive + (size_t)r * N;
        const float *cr = c ? c + (size_t)r * N : NULL;
        for (int j = 0; j < N; j++)
            d[j] = b_ih[j] + b_hh[j] + (cr ? cr[j] : 0.0f);
    }
    cbrnn_linear_forward_acc(drive, x, w_ih, rows, F, N);
}

/* The elementwise tail of a step: act = f(pre), h = (1-a) h_prev + a act. */
static void step_tail(float *h, float *act, const float *pre, const float *h_prev, cbrnn_act f,
                      float alpha, size_t n)
{
    cbrnn_act_forward(act, pre, n, f);
    if (alpha == 1.0f) {
        if (h != act)
            memcpy(h, act, n * sizeof(float));
    } else {
        float keep = 1.0f - alpha;
        for (size_t i = 0; i < n; i++)
            h[i] = keep * h_prev[i] + alpha * act[i];
    }
}

static void step_tail_ref(float *h, float *act, const float *pre, const float *h_prev,
                          cbrnn_act f, float alpha, size_t n)
{
    cbrnn_act_forward_ref(act, pre, n, f);
    for (size_t i = 0; i < n; i++)
        h[i] = alpha == 1.0f ? act[i] : (1.0f - alpha) * h_prev[i] + alpha * act[i];
}

void cbrnn_cortex_step_forward(float *h, float *act, float *pre, const float *h_prev,
                               const float *w_hh, cbrnn_act f, float alpha, int rows, int N)
{
    cbrnn_linear_forward_acc(pre, h_prev, w_hh, rows, N, N);
    step_tail(h, act, pre, h_prev, f, alpha, (size_t)rows * N);
}

void cbrnn_cortex_step_forward_ref(float *h, float *act, float *pre, const float *h_prev,
                                   const float *w_hh, cbrnn_act f, float alpha, int rows, int N)
{
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < N; j++) {
            float s = 0.0f;
            for (int k = 0; k < N; k++)
                s += h_prev[(size_t)r * N + k] * w_hh[(size_t)j * N + k];
            pre[(size_t)r * N + j] += s;
        }
    step_tail_ref(h, act, pre, h_prev, f, alpha, (size_t)rows * N);
}

/* dpre = alpha dh f'(act); dh_prev += (1 - alpha) dh (the non-GEMM part),
 * one pass per activation. */
static void step_back_tail(float *dpre, float *dh_prev, const float *dh, const float *act,
                           cbrnn_act f, float alpha, size_t n)
{
    switch (f) {
    case CBRNN_ACT_TANH:
        for (size_t i = 0; i < n; i++)
            dpre[i] = alpha * dh[i] * (1.0f - act[i] * act[i]);
        break;
    case CBRNN_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            dpre[i] = act[i] > 0.0f ? alpha * dh[i] : 0.0f;
        break;
    case CBRNN_ACT_LEAKY_RELU:
        for (size_t i = 0; i < n; i++)
            dpre[i] = alpha * dh[i] * (act[i] > 0.0f ? 1.0f : LEAKY_SLOPE);
        break;
    }
    if (alpha != 1.0f && dh_prev) {
        float keep = 1.0f - alpha;
        for (size_t i = 0; i < n; i++)
            dh_prev[i] += keep * dh[i];
    }
}

static void step_back_tail_ref(float *dpre, float *dh_prev, const float *dh, const float *act,
                               cbrnn_act f, float alpha, size_t n)
{
    memset(dpre, 0, n * sizeof(float));
    cbrnn_act_backward(dpre, dh, act, n, f);
    for (size_t i = 0; i < n; i++) {
        dpre[i] *= alpha;
        if (dh_prev)
            dh_prev[i] += (1.0f - alpha) * dh[i];
    }
}

void cbrnn_cortex_step_backward(float *dpre, float *dh_prev, const float *dh, const float *act,
                                const float *w_hh, cbrnn_act f, float alpha, int rows, int N)
{
    step_back_tail(dpre, dh_prev, dh, act, f, alpha, (size_t)rows * N);
    if (dh_prev)
        cbrnn_linear_backward(dh_prev, NULL, NULL, dpre, NULL, w_hh, rows, N, N);
}

void cbrnn_cortex_step_backward_ref(float *dpre, float *dh_prev, const float *dh,
                                    const float *act, const float *w_hh, cbrnn_act f,
                                    float alpha, int rows, int N)
{
    step_back_tail_ref(dpre, dh_prev, dh, act, f, alpha, (size_t)rows * N);
    if (dh_prev)
        cbrnn_linear_backward_ref(dh_prev, NULL, NULL, dpre, NULL, w_hh, rows, N, N);
}

/* out = out + b per row, then ReLU if relu: the epilogue of a layer's GEMM. */
static void bias_act_rows(float *restrict out, const float *restrict b, int rows, int dim,
                          int relu)
{
    for (int r = 0; r < rows; r++) {
        float *o = out + (size_t)r * dim;
        if (relu)
            for (int j = 0; j < dim; j++) {
                float v = o[j] + b[j];
                o[j] = v > 0.0f ? v : 0.0f;
            }
        else
            for (int j = 0; j < dim; j++)
                o[j] += b[j];
    }
}

void cbrnn_cb_forward(float *const *a, const float *in, const cbrnn_model *m, int rows)
{
    int L = m->n_cb_layers;
    for (int l = 0; l < L; l++) {
        const float *x = l ? a[l - 1] : in;
        matmul_wt(a[l], x, m->cb_w[l], rows, m->cb_dim[l], m->cb_dim[l + 1], 0.0f);
        bias_act_rows(a[l], m->cb_b[l], rows, m->cb_dim[l + 1], l < L - 1);
    }
}

/* d = d * (a > 0) (a: the layer's ReLU output), and db += column sums of
 * the masked d when db is given: one pass instead of two. */
static void relu_mask_bias_grad(float *restrict d, float *restrict db, const float *restrict a,
                                int rows, int dim)
{
    for (int r = 0; r < rows; r++) {
        float *dr = d + (size_t)r * dim;
        const float *ar = a + (size_t)r * dim;
        if (db)
            for (int j = 0; j < dim; j++) {
                float v = ar[j] > 0.0f ? dr[j] : 0.0f;
                dr[j] = v;
                db[j] += v;
            }
        else
            for (int j = 0; j < dim; j++)
                dr[j] = ar[j] > 0.0f ? dr[j] : 0.0f;
    }
}

void cbrnn_cb_backward(float *din, float *grad, float *const *da, const float *in,
                       const float *const *a, const cbrnn_model *m, int rows)
{
    int L = m->n_cb_layers;
    for (int l = L - 1; l >= 0; l--) {
        int di = m->cb_dim[l], dout = m->cb_dim[l + 1];
        float *db = cbrnn_same_place(grad, m, m->cb_b[l]);
        if (l < L - 1) {
            relu_mask_bias_grad(da[l], db, a[l], rows, dout);
            db = NULL; /* done */
        }
        const float *x = l ? a[l - 1] : in;
        cbrnn_linear_backward(NULL, cbrnn_same_place(grad, m, m->cb_w[l]), db, da[l], x,
                              m->cb_w[l], rows, di, dout);
        if (l > 0)
            matmul_w_into(da[l - 1], da[l], m->cb_w[l], rows, di, dout);
        else if (din)
            cbrnn_linear_backward(din, NULL, NULL, da[0], NULL, m->cb_w[0], rows, di, dout);
    }
}
