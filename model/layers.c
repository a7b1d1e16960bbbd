/* layers.c: the layer forward/backward pairs of layers.h that use CBLAS
 * (their plain-loop references and the elementwise layers are in
 * layers_elem.c, which needs no BLAS: the engine and the LV2 plugin link
 * that file alone). Nothing here may allocate, lock, print or block.
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

void cbrnn_cortex_step_forward(float *h, float *act, float *pre, const float *h_prev,
                               const float *w_hh, cbrnn_act f, float alpha, int rows, int N)
{
    cbrnn_linear_forward_acc(pre, h_prev, w_hh, rows, N, N);
    step_tail(h, act, pre, h_prev, f, alpha, (size_t)rows * N);
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
            dpre[i] = alpha * dh[i] * (act[i] > 0.0f ? 1.0f : CBRNN_LEAKY_SLOPE);
        break;
    }
    if (alpha != 1.0f && dh_prev) {
        float keep = 1.0f - alpha;
        for (size_t i = 0; i < n; i++)
            dh_prev[i] += keep * dh[i];
    }
}

void cbrnn_cortex_step_backward(float *dpre, float *dh_prev, const float *dh, const float *act,
                                const float *w_hh, cbrnn_act f, float alpha, int rows, int N)
{
    step_back_tail(dpre, dh_prev, dh, act, f, alpha, (size_t)rows * N);
    if (dh_prev)
        cbrnn_linear_backward(dh_prev, NULL, NULL, dpre, NULL, w_hh, rows, N, N);
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
