/* item_gemm.c: `cbrnn bench --items gemm`: the single-precision matrix
 * multiply throughput of the BLAS that training runs on (OpenBLAS sgemm),
 * in GFLOP/s, at the shapes a training step of each --sizes entry is made
 * of: [B*T x N] x [N x H] (the cerebellum's first layer over a batch of
 * windows, the largest GEMM of a step), plus a square 1024 product. It is
 * the ceiling of the bptt and cbonly items: a step does
 * 4FN + 6N^2 + 6NH + 6HO floating-point operations per frame (bptt; cbonly
 * 2FN + 2N^2 + 4NH + 6HO), nearly all of them in GEMMs of these shapes, so
 * frames/s x flops/frame can approach but not pass this number. The peer
 * (bench/peer_gemm.py) times torch.mm on the same shapes: both sides call
 * the same library. Threads as item_bptt.c (OPENBLAS_NUM_THREADS, else 1). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#include "bench.h"

static double time_gemm(const struct bench_args *a, int M, int K, int Nc, const float *A,
                        const float *B, float *C)
{
    double best = INFINITY;
    for (int rep = 0; rep < a->repeats; rep++) {
        long calls = 0;
        double t0 = bench_now(), dt;
        do {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, Nc, K, 1.0f, A, K, B, Nc,
                        0.0f, C, Nc);
            calls++;
            dt = bench_now() - t0;
        } while (dt < a->seconds);
        double g = 2.0 * M * K * Nc * (double)calls / dt / 1e9;
        best = isfinite(best) ? fmax(best, g) : g;
    }
    return best;
}

static int one(const struct bench_args *a, int M, int K, int Nc, int threads)
{
    float *A = malloc((size_t)M * K * sizeof(float)), *B = malloc((size_t)K * Nc * sizeof(float));
    float *C = malloc((size_t)M * Nc * sizeof(float));
    if (!A || !B || !C) {
        fprintf(stderr, "bench gemm: out of memory\n");
        free(A), free(B), free(C);
        return 1;
    }
    for (size_t i = 0; i < (size_t)M * K; i++)
        A[i] = (float)((i * 7919u) % 1000u) * 1e-3f - 0.5f;
    for (size_t i = 0; i < (size_t)K * Nc; i++)
        B[i] = (float)((i * 104729u) % 1000u) * 1e-3f - 0.5f;
    double g = time_gemm(a, M, K, Nc, A, B, C);
    if (a->json)
        fprintf(a->out, "{\"item\":\"gemm\",\"impl\":\"cbrnn\",\"gflops\":%.2f,\"M\":%d,\"K\":%d,"
                        "\"N\":%d,\"threads\":%d}\n", g, M, K, Nc, threads);
    else
        fprintf(a->out, "gemm  %5d x %5d x %5d  %8.2f GFLOP/s  (%d thread%s)\n", M, K, Nc, g,
                threads, threads == 1 ? "" : "s");
    free(A), free(B), free(C);
    return 0;
}

int bench_item_gemm(const struct bench_args *a)
{
    const char *s = getenv("OPENBLAS_NUM_THREADS");
    int threads = s && atoi(s) > 0 ? atoi(s) : 1;
    openblas_set_num_threads(threads);
    int rc = one(a, 1024, 1024, 1024, threads);
    for (int k = 0; k < a->n_sizes && !rc; k++)
        rc = one(a, a->batch * a->seq, a->sizes[k].N, a->sizes[k].H, threads);
    return rc;
}
