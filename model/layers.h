/* layers.h: the network's layers as forward/backward pairs (llm.c style),
 * shared by the BPTT trainer (model/forward.c) and the real-time engine's
 * per-frame online update (rows = 1). Internal to the project: not part of
 * the installed API.
 *
 * Conventions, for every function here:
 * - Argument order: outputs, caches, inputs, parameters, sizes.
 * - Matrices are row-major; a weight W is [out_dim, in_dim] as in
 *   torch.nn.Linear, so a layer computes out = in W^T + b.
 * - Backward functions ACCUMULATE (+=) into every gradient they are given;
 *   zeroing is the caller's job. A NULL gradient pointer means "not wanted"
 *   and its work is skipped (frozen parameters cost nothing).
 * - No function allocates, locks, prints or blocks: all are safe on the
 *   audio thread given preallocated buffers. They call CBLAS (OpenBLAS),
 *   which must be limited to one thread for real-time use
 *   (openblas_set_num_threads(1)) by the host.
 * - Buffers may alias only where a comment says so.
 * - Every CBLAS kernel has a plain-loop twin (suffix _ref) that the tests
 *   compare it with; the _ref versions are for tests, not for speed.
 * - Where they live: the CBLAS kernels in layers.c, everything else
 *   (elementwise layers, the _ref twins) in layers_elem.c, which links
 *   without BLAS. */
#ifndef CBRNN_LAYERS_H
#define CBRNN_LAYERS_H

#include <stddef.h>
#include "cbrnn/cbrnn_model.h"

/* torch.nn.LeakyReLU's default negative slope. */
#define CBRNN_LEAKY_SLOPE 0.01f

/* ---- Linear: out = in W^T + b ----
 * out: [rows, out_dim]; in: [rows, in_dim]; w: [out_dim, in_dim];
 * b: [out_dim] or NULL (no bias). out must not alias in. */
void cbrnn_linear_forward(float *out, const float *in, const float *w, const float *b, int rows,
                          int in_dim, int out_dim);
void cbrnn_linear_forward_ref(float *out, const float *in, const float *w, const float *b,
                              int rows, int in_dim, int out_dim);
/* out += in W^T (no bias): the recurrent term added to a precomputed drive. */
void cbrnn_linear_forward_acc(float *out, const float *in, const float *w, int rows, int in_dim,
                              int out_dim);
/* din += dout W   [rows, in_dim]     (NULL: skipped)
 * dw  += dout^T in [out_dim, in_dim] (NULL: skipped)
 * db  += sum over rows of dout       (NULL: skipped)
 * dout: [rows, out_dim]; in, w as in the forward. */
void cbrnn_linear_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                           const float *w, int rows, int in_dim, int out_dim);
void cbrnn_linear_backward_ref(float *din, float *dw, float *db, const float *dout,
                               const float *in, const float *w, int rows, int in_dim, int out_dim);

/* ---- ReLU (the cerebellum's hidden layers) ----
 * out = max(in, 0); out may be in (in place). */
void cbrnn_relu_forward(float *out, const float *in, size_t n);
/* din += dout * (out > 0), where out is the forward's output; din must
 * not alias dout. */
void cbrnn_relu_backward(float *din, const float *dout, const float *out, size_t n);
/* The fused in-place form: d = d * (out > 0), for a gradient buffer that
 * holds only this layer's output gradient (saves a zeroing pass). */
void cbrnn_relu_backward_inplace(float *d, const float *out, size_t n);

/* ---- Cortex activation f: tanh, relu, leaky_relu (slope 0.01, the
 * torch.nn.LeakyReLU default) ----
 * out = f(pre); out may be pre. */
void cbrnn_act_forward(float *out, const float *pre, size_t n, cbrnn_act act);
/* The same with tanh in double, rounded (the fast tanh is within 1.5 ulp). */
void cbrnn_act_forward_ref(float *out, const float *pre, size_t n, cbrnn_act act);
/* dpre += dout * f'(pre), with f' computed from out = f(pre) (tanh:
 * 1 - out^2; relu, leaky: out > 0). dpre must not alias dout. */
void cbrnn_act_backward(float *dpre, const float *dout, const float *out, size_t n, cbrnn_act act);

/* ---- The leaky Elman cortex, one step for `rows` independent streams ----
 *   drive = x W_ih^T + b_ih + b_hh [+ c]          (cbrnn_cortex_drive)
 *   pre   = drive + h_prev W_hh^T
 *   a     = f(pre)
 *   h     = (1 - alpha) h_prev + alpha a           (cbrnn_cortex_step_forward)
 * The drive is separate so that the trainer can compute it for all B*T
 * rows with one big GEMM; the engine calls both per frame with rows = 1. */

/* drive: out [rows, N]; x: [rows, F]; c: [rows, N] or NULL (readout
 * wiring: no cerebellar input). */
void cbrnn_cortex_drive(float *drive, const float *x, const float *c, const float *w_ih,
                        const float *b_ih, const float *b_hh, int rows, int F, int N);
/* h: out [rows, N], the new state; act: out [rows, N], f(pre), kept for
 * the backward pass (with alpha == 1, h and act are equal and act may be
 * h); pre: scratch [rows, N] that on entry holds the drive and on exit
 * the pre-activation (it may be the caller's drive buffer).
 * h_prev: [rows, N]; h must not alias h_prev. */
void cbrnn_cortex_step_forward(float *h, float *act, float *pre, const float *h_prev,
                               const float *w_hh, cbrnn_act f, float alpha, int rows, int N);
void cbrnn_cortex_step_forward_ref(float *h, float *act, float *pre, const float *h_prev,
                                   const float *w_hh, cbrnn_act f, float alpha, int rows, int N);
/* Backward of one step. dh: in [rows, N], the total dL/dh_t.
 * dpre: out [rows, N], OVERWRITTEN with dL/dpre = alpha dh f'(pre); it is
 * also dL/drive, hence dL/dc in the loop wiring.
 * dh_prev: dh_prev += (1 - alpha) dh + dpre W_hh (NULL: skipped).
 * act: the forward's act. The weight gradients of a step are
 *   cbrnn_linear_backward(dx, dw_ih, db_ih, dpre, x, w_ih, rows, F, N);
 *   cbrnn_linear_backward(NULL, dw_hh, db_hh, dpre, h_prev, w_hh, rows, N, N);
 * which the trainer does once over all steps. */
void cbrnn_cortex_step_backward(float *dpre, float *dh_prev, const float *dh, const float *act,
                                const float *w_hh, cbrnn_act f, float alpha, int rows, int N);
void cbrnn_cortex_step_backward_ref(float *dpre, float *dh_prev, const float *dh,
                                    const float *act, const float *w_hh, cbrnn_act f,
                                    float alpha, int rows, int N);

/* ---- The cerebellum: m->n_cb_layers linear layers, ReLU after all but
 * the last ----
 * a[l]: out [rows, m->cb_dim[l + 1]] for l = 0..L-1: layer l's output
 * (after its ReLU; a[L-1] is the CB output). in: [rows, m->cb_dim[0]]. */
void cbrnn_cb_forward(float *const *a, const float *in, const cbrnn_model *m, int rows);
/* da[l]: scratch [rows, m->cb_dim[l + 1]] per layer; on entry da[L-1]
 * holds dL/d(CB output), and every da[] is overwritten.
 * grad: a block of the model's layout (n_params floats); the CB's weight
 * and bias gradients are added at their places (NULL: none, e.g. a frozen
 * cerebellum). din += dL/d(in) (NULL: skipped; then layer 0 forms no input
 * gradient at all). in, a: the forward's input and outputs. */
void cbrnn_cb_backward(float *din, float *grad, float *const *da, const float *in,
                       const float *const *a, const cbrnn_model *m, int rows);

#endif
