/* engine_simd.h: the engine's batch-1 vector kernels (GCC/Clang vector
 * extensions, 8 lanes; an AVX2 build and a portable build with the same
 * bits, engine_simd_impl.h). They
 * run on the audio thread: no allocation, no lock, no CBLAS. Each has a
 * plain-loop twin in model/layers.h (cbrnn_*_ref) that
 * tests/engine/test_kernels.c compares it with. Summation order is fixed
 * by the code (no -ffast-math, no FP contraction), so results do not
 * depend on anything but the inputs. Internal to engine/. */
#ifndef CBRNN_ENGINE_SIMD_H
#define CBRNN_ENGINE_SIMD_H

#include <stddef.h>

/* Chooses the kernels' build for this CPU (AVX2 or portable, same bits).
 * Call once before audio runs; cbrnn_engine_create does. Not RT. */
void engine_simd_init(void);
/* "avx2" or "base": the build in use. */
const char *engine_simd_name(void);

/* y[i] = b[i] + sum_j W[i][j] x[j]   (b may be NULL: 0). W: [out, in]. */
void k_linear_fwd(float *y, const float *x, const float *W, const float *b, int in, int out);
/* y[i] += sum_j W[i][j] x[j]. */
void k_linear_fwd_acc(float *y, const float *x, const float *W, int in, int out);
/* din[j] += sum_i dout[i] W[i][j]. */
void k_linear_bwd_in(float *din, const float *dout, const float *W, int in, int out);
/* dW[i][j] += dout[i] x[j]; db[i] += dout[i] (db may be NULL). */
void k_outer_acc(float *dW, float *db, const float *dout, const float *x, int in, int out);
/* torch.optim.SGD with momentum (dampening 0) and a pull toward w0:
 *   g' = g + wd (w - w0);  v = mu v + g';  w -= lr v;  g = 0.
 * w0 may be NULL when wd == 0. Returns 1 if every new w is finite. */
int k_sgd(float *w, float *v, float *g, const float *w0, size_t n, float lr, float mu, float wd);
/* One linear layer's SGD update from its exact gradient (dout outer
 * x_old) fused with the next forward through the updated weights:
 *   for each row i: the bias and weights update as k_sgd would with
 *   g = dout[i] (bias) and dout[i] x_old[j] (weights); then
 *   y[i] = b[i] + sum_j W[i][j] x_new[j] in k_linear_fwd's order.
 * Bit for bit the same as k_outer_acc + k_sgd + k_linear_fwd, in one pass
 * over the weights and momenta instead of five. vW, vb: momenta laid out
 * like W, b; W0, b0: the anchor (NULL when wd == 0). 1 if all finite. */
int k_sgd_fwd(float *y, float *W, float *b, float *vW, float *vb, const float *W0,
              const float *b0, const float *dout, const float *x_old, const float *x_new, int in,
              int out, float lr, float mu, float wd);

#endif
