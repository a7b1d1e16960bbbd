#!/usr/bin/python3
"""PyTorch peer of `cbrnn bench --items paper-epoch`: one N-parity epoch at
N = 10 of the paper's protocol (100 training steps + 50 test batches of 64
trials, SGD Nesterov, clipping), with the model written as the authors
write it (a Python time loop, bench/paper_torch_model.py), for the CB-RNN
and the parameter-matched RNN. Prints the same keys as the C item with
"impl": "torch". Reports the best of --repeats epochs.
"""
import time

import torch

from paper_torch_model import epoch, make_optimizer, paper_model

N = 10


def run(args):
    rows = []
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    for variant in ("cbrnn", "rnn"):
        model = paper_model(variant)
        opt = make_optimizer(model)
        best = float("inf")
        for _ in range(max(1, args.repeats)):
            t0 = time.perf_counter()
            epoch(model, opt, "parity", N, gen=gen)
            best = min(best, time.perf_counter() - t0)
        rows.append({"item": "paper_epoch", "impl": "torch", "model": variant, "N": N,
                     "s_per_epoch": round(best, 4), "torch_threads": torch.get_num_threads()})
    return rows
