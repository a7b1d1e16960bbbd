"""PyTorch peer of `cbrnn bench --items online` (and, with learn=False, of
`infer`, see peer_infer.py): the seed's CBRNN (seed_torch_cbrnn.CBRNN)
doing the engine's per-frame work at batch 1 on a stream: the cortex
steps one frame under no_grad carrying its hidden state, the cerebellum
predicts, and (online) the prediction made at the previous frame is
scored with MSE against the frame now seen, backpropagated through the
cerebellum only, and torch.optim.SGD (lr 1e-3, momentum 0.9: the engine's
defaults) steps. Timed like item_online.c: 16 warm-up frames, then the best
of args.repeats rounds of at least args.seconds; microseconds per frame."""
import time

import torch
import torch.nn as nn

from seed_torch_cbrnn import CBRNN

N_FRAMES = 64


def run_stream(args, item, learn):
    rows = []
    for (F, N, H, O) in args.sizes:
        torch.manual_seed(1)
        model = CBRNN(F, N, H, O)
        for p in model.cortex.parameters():
            p.requires_grad_(False)
        opt = torch.optim.SGD(model.cerebellum.parameters(), lr=1e-3, momentum=0.9)
        lossf = nn.MSELoss()
        xs = torch.randn(N_FRAMES, 1, 1, F)
        state = {"h": torch.zeros(1, 1, N), "feat": None, "prev": None, "t": 0}

        def frame():
            x = xs[state["t"] % N_FRAMES]
            state["t"] += 1
            if learn and state["prev"] is not None:
                # the prediction made at the previous frame meets this frame
                opt.zero_grad()
                loss = lossf(state["prev"], x[:, 0, :O] if O <= F else x[:, 0])
                loss.backward()
                opt.step()
            elif state["prev"] is not None:
                with torch.no_grad():
                    lossf(state["prev"], x[:, 0, :O] if O <= F else x[:, 0])
            with torch.no_grad():
                out, state["h"] = model.cortex.rnn(x, state["h"])
            if learn:
                state["prev"] = model.cerebellum(out[:, 0])
            else:
                with torch.no_grad():
                    state["prev"] = model.cerebellum(out[:, 0])

        for _ in range(16):
            frame()
        best = float("inf")
        for _ in range(args.repeats):
            frames = 0
            t0 = time.perf_counter()
            while True:
                for _ in range(16):
                    frame()
                frames += 16
                dt = time.perf_counter() - t0
                if dt >= args.seconds:
                    break
            best = min(best, 1e6 * dt / frames)
        rows.append({"item": item, "impl": "torch", "us_per_frame": round(best, 3),
                     "core_at_10ms_hop": round(best / 10000.0, 5), "F": F, "N": N, "H": H, "O": O,
                     "threads": torch.get_num_threads()})
    return rows


def run(args):
    return run_stream(args, "online", True)
