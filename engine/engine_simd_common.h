/* engine_simd_common.h: what both builds of the vector kernels share
 * (see engine_simd_impl.h): includes, no FP contraction, the finiteness
 * test by exponent bits, and the table the dispatcher fills. */
#ifndef CBRNN_ENGINE_SIMD_COMMON_H
#define CBRNN_ENGINE_SIMD_COMMON_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

/* No fused multiply-add: a contraction would change the rounding between
 * builds (GCC in ISO C mode does not contract anyway). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define INLINE static inline __attribute__((always_inline))
/* A float is Inf or NaN exactly when its exponent bits are all ones
 * (IEEE 754 binary32). */
#define EXP_BITS 0x7f800000

struct simd_table {
    void (*linear_fwd)(float *, const float *, const float *, const float *, int, int);
    void (*linear_fwd_acc)(float *, const float *, const float *, int, int);
    void (*linear_bwd_in)(float *, const float *, const float *, int, int);
    void (*outer_acc)(float *, float *, const float *, const float *, int, int);
    int (*sgd)(float *, float *, float *, const float *, size_t, float, float, float);
    int (*sgd_fwd)(float *, float *, float *, float *, float *, const float *, const float *,
                   const float *, const float *, const float *, int, int, float, float, float);
};

extern const struct simd_table simd_base;
#if defined(__x86_64__) || defined(__i386__)
extern const struct simd_table simd_avx2;
#endif

#endif
