/* layers.c: the layer forward/backward pairs of layers.h, each CBLAS
 * kernel next to its plain-loop reference. Called on the audio thread by
 * the engine: nothing here may allocate, lock, print or block. */
#include <cblas.h>
#include <math.h>
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

void cbrnn_act_forward(float *out, const float *pre, size_t n, cbrnn_act act)
{
    switch (act) {
    case CBRNN_ACT_TANH:
        for (size_t i = 0; i < n; i++)
            out[i] = tanhf(pre[i]);
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
    step_tail(h, act, pre, h_prev, f, alpha, (size_t)rows * N);
}

/* dpre = alpha dh f'(act); dh_prev += (1 - alpha) dh (the non-GEMM part). */
static void step_back_tail(float *dpre, float *dh_prev, const float *dh, const float *act,
                           cbrnn_act f, float alpha, size_t n)
{
    memset(dpre, 0, n * sizeof(float));
    cbrnn_act_backward(dpre, dh, act, n, f);
    if (alpha != 1.0f) {
        for (size_t i = 0; i < n; i++)
            dpre[i] *= alpha;
        if (dh_prev) {
            float keep = 1.0f - alpha;
            for (size_t i = 0; i < n; i++)
                dh_prev[i] += keep * dh[i];
        }
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
    step_back_tail(dpre, dh_prev, dh, act, f, alpha, (size_t)rows * N);
    if (dh_prev)
        cbrnn_linear_backward_ref(dh_prev, NULL, NULL, dpre, NULL, w_hh, rows, N, N);
}

void cbrnn_cb_forward(float *const *a, const float *in, const cbrnn_model *m, int rows)
{
    int L = m->n_cb_layers;
    for (int l = 0; l < L; l++) {
        const float *x = l ? a[l - 1] : in;
        cbrnn_linear_forward(a[l], x, m->cb_w[l], m->cb_b[l], rows, m->cb_dim[l],
                             m->cb_dim[l + 1]);
        if (l < L - 1)
            cbrnn_relu_forward(a[l], a[l], (size_t)rows * m->cb_dim[l + 1]);
    }
}

void cbrnn_cb_backward(float *din, float *grad, float *const *da, const float *in,
                       const float *const *a, const cbrnn_model *m, int rows)
{
    int L = m->n_cb_layers;
    for (int l = L - 1; l >= 0; l--) {
        int di = m->cb_dim[l], dout = m->cb_dim[l + 1];
        if (l < L - 1)
            cbrnn_relu_backward_inplace(da[l], a[l], (size_t)rows * dout);
        const float *x = l ? a[l - 1] : in;
        cbrnn_linear_backward(NULL, cbrnn_same_place(grad, m, m->cb_w[l]),
                              cbrnn_same_place(grad, m, m->cb_b[l]), da[l], x, m->cb_w[l],
                              rows, di, dout);
        if (l > 0)
            matmul_w_into(da[l - 1], da[l], m->cb_w[l], rows, di, dout);
        else if (din)
            cbrnn_linear_backward(din, NULL, NULL, da[0], NULL, m->cb_w[0], rows, di, dout);
    }
}
