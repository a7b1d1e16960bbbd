/* engine_simd_base.c: the portable build of the engine's vector kernels
 * (engine_simd_impl.h): an 8-lane vector is two 16-byte halves, which
 * every target has (SSE2 on x86-64, NEON on ARMv8, scalar otherwise).
 * Same bits as the AVX2 build. Audio thread: no allocation, no lock. */
#include "engine_simd_common.h"

typedef float v4 __attribute__((vector_size(16)));
typedef int v4i __attribute__((vector_size(16)));
typedef struct { v4 lo, hi; } V;
typedef struct { v4i lo, hi; } M;

INLINE V vld(const float *p)
{
    V v;
    memcpy(&v.lo, p, sizeof v.lo);
    memcpy(&v.hi, p + 4, sizeof v.hi);
    return v;
}
INLINE void vst(float *p, V v)
{
    memcpy(p, &v.lo, sizeof v.lo);
    memcpy(p + 4, &v.hi, sizeof v.hi);
}
INLINE V vsplat(float f)
{
    V v = {{f, f, f, f}, {f, f, f, f}};
    return v;
}
INLINE V vadd(V a, V b)
{
    V r = {a.lo + b.lo, a.hi + b.hi};
    return r;
}
INLINE V vsub(V a, V b)
{
    V r = {a.lo - b.lo, a.hi - b.hi};
    return r;
}
INLINE V vmul(V a, V b)
{
    V r = {a.lo * b.lo, a.hi * b.hi};
    return r;
}
INLINE float vhsum(V v)
{
    v4 t = v.lo + v.hi; /* lane k: v_k + v_{k+4} */
    return (t[0] + t[1]) + (t[2] + t[3]);
}
INLINE M mall(void)
{
    M m = {{-1, -1, -1, -1}, {-1, -1, -1, -1}};
    return m;
}
INLINE M mfinite(M m, V v)
{
    v4i lo, hi;
    memcpy(&lo, &v.lo, sizeof lo);
    memcpy(&hi, &v.hi, sizeof hi);
    M r = {m.lo & ((lo & EXP_BITS) != EXP_BITS), m.hi & ((hi & EXP_BITS) != EXP_BITS)};
    return r;
}
INLINE int mtrue(M m)
{
    v4i a = m.lo & m.hi;
    return a[0] && a[1] && a[2] && a[3];
}

#define K(name) base_##name
#include "engine_simd_impl.h"

const struct simd_table simd_base = {base_linear_fwd, base_linear_fwd_acc, base_linear_bwd_in,
                                     base_outer_acc,  base_sgd,            base_sgd_fwd};
