"""PyTorch peer of `cbrnn bench --items gemm`: torch.mm in float32 on the
same shapes (a square 1024 product, then [B*T x N] x [N x H] per size),
GFLOP/s, best of args.repeats rounds of at least args.seconds."""
import time

import torch


def one(args, M, K, N):
    a = torch.rand(M, K) - 0.5
    b = torch.rand(K, N) - 0.5
    c = torch.empty(M, N)
    best = 0.0
    for _ in range(args.repeats):
        calls = 0
        t0 = time.perf_counter()
        while True:
            torch.mm(a, b, out=c)
            calls += 1
            dt = time.perf_counter() - t0
            if dt >= args.seconds:
                break
        best = max(best, 2.0 * M * K * N * calls / dt / 1e9)
    return {"item": "gemm", "impl": "torch", "gflops": round(best, 2), "M": M, "K": K, "N": N,
            "threads": torch.get_num_threads()}


def run(args):
    rows = [one(args, 1024, 1024, 1024)]
    for (F, N, H, O) in args.sizes:
        rows.append(one(args, args.batch * args.seq, N, H))
    return rows
