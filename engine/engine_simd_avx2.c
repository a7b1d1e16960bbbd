/* engine_simd_avx2.c: the AVX2 build of the engine's vector kernels
 * (engine_simd_impl.h), one 256-bit register per 8-lane vector; compiled
 * with -mavx2 (no FMA: same bits as the portable build) and used only
 * when the CPU has AVX2 (engine_simd.c). Audio thread: no allocation. */
#include "engine_simd_common.h"

#if defined(__x86_64__) || defined(__i386__)
typedef float V __attribute__((vector_size(32)));
typedef int M __attribute__((vector_size(32)));

INLINE V vld(const float *p)
{
    V v;
    memcpy(&v, p, sizeof v);
    return v;
}
INLINE void vst(float *p, V v) { memcpy(p, &v, sizeof v); }
INLINE V vsplat(float f) { return (V){f, f, f, f, f, f, f, f}; }
INLINE V vadd(V a, V b) { return a + b; }
INLINE V vsub(V a, V b) { return a - b; }
INLINE V vmul(V a, V b) { return a * b; }
INLINE float vhsum(V v) { return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7])); }
INLINE M mall(void) { return (M){-1, -1, -1, -1, -1, -1, -1, -1}; }
INLINE M mfinite(M m, V v)
{
    M bits;
    memcpy(&bits, &v, sizeof bits);
    return m & ((bits & EXP_BITS) != EXP_BITS);
}
INLINE int mtrue(M m)
{
    int ok = 1;
    for (int k = 0; k < 8; k++)
        ok &= m[k] != 0;
    return ok;
}

#define K(name) avx2_##name
#include "engine_simd_impl.h"

const struct simd_table simd_avx2 = {avx2_linear_fwd, avx2_linear_fwd_acc, avx2_linear_bwd_in,
                                     avx2_outer_acc,  avx2_sgd,            avx2_sgd_fwd};
#endif
