/* rng.c: the project's deterministic random numbers. xoshiro256** (Blackman
 * and Vigna, "Scrambled linear pseudorandom number generators", 2018,
 * reference code at prng.di.unimi.it) seeded through splitmix64 as its
 * authors recommend. Same seed, same stream, on every platform: nothing here
 * may depend on libc's rand(), time, or the address of anything. */
#include <math.h>

#include "cbrnn/cbrnn_model.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void cbrnn_rng_seed(cbrnn_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

uint64_t cbrnn_rng_u64(cbrnn_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double cbrnn_rng_uniform(cbrnn_rng *r)
{
    /* The top 53 bits as a double in [0, 1): exact, as the authors advise. */
    return (double)(cbrnn_rng_u64(r) >> 11) * 0x1.0p-53;
}

double cbrnn_rng_normal(cbrnn_rng *r)
{
    /* Box-Muller, one value per call so the state stays the four words of
     * cbrnn_rng (no cached spare). u1 is in (0, 1] so log() is finite. */
    double u1 = 1.0 - cbrnn_rng_uniform(r);
    double u2 = cbrnn_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
