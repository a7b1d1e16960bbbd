/* engine_simd.c: picks the build of the vector kernels for this CPU
 * (AVX2 when it has it, else the portable one; both give the same bits)
 * and forwards to it. The choice is made once, before any audio thread
 * runs (engine_simd_init from cbrnn_engine_create); the calls themselves
 * only read a pointer. CBRNN_SIMD=base in the environment forces the
 * portable build (tests use it to compare the two). */
#include <stdlib.h>

#include "engine_simd.h"
#include "engine_simd_common.h"

static const struct simd_table *_Atomic table = &simd_base;

void engine_simd_init(void)
{
    const struct simd_table *t = &simd_base;
#if defined(__x86_64__) || defined(__i386__)
    const char *force = getenv("CBRNN_SIMD");
    __builtin_cpu_init();
    if (!(force && !strcmp(force, "base")) && __builtin_cpu_supports("avx2"))
        t = &simd_avx2;
#endif
    table = t;
}

const char *engine_simd_name(void)
{
    return table == &simd_base ? "base" : "avx2";
}

void k_linear_fwd(float *y, const float *x, const float *W, const float *b, int in, int out)
{
    table->linear_fwd(y, x, W, b, in, out);
}
void k_linear_fwd_acc(float *y, const float *x, const float *W, int in, int out)
{
    table->linear_fwd_acc(y, x, W, in, out);
}
void k_linear_bwd_in(float *din, const float *dout, const float *W, int in, int out)
{
    table->linear_bwd_in(din, dout, W, in, out);
}
void k_outer_acc(float *dW, float *db, const float *dout, const float *x, int in, int out)
{
    table->outer_acc(dW, db, dout, x, in, out);
}
int k_sgd(float *w, float *v, float *g, const float *w0, size_t n, float lr, float mu, float wd)
{
    return table->sgd(w, v, g, w0, n, lr, mu, wd);
}
int k_sgd_fwd(float *y, float *W, float *b, float *vW, float *vb, const float *W0,
              const float *b0, const float *dout, const float *x_old, const float *x_new, int in,
              int out, float lr, float mu, float wd)
{
    return table->sgd_fwd(y, W, b, vW, vb, W0, b0, dout, x_old, x_new, in, out, lr, mu, wd);
}
