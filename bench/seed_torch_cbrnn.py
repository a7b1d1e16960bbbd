"""Shared by bench/peer_bptt.py and bench/peer_cbonly.py (named so that
peer_torch.py does not take it for an item): the seed's PyTorch
CBRNN (CorticalRNN = nn.RNN(batch_first=True), CerebellarModule fc1 -> ReLU
-> fc2) trained with Adam (lr 1e-3) on MSE over B sequences of T frames of
random data, timed as the cbrnn items time themselves (bench/item_bptt.c):
one warm-up step, then the best of args.repeats rounds of at least
args.seconds each; frames = B*T per step.
"""
import time

import torch
import torch.nn as nn


class CorticalRNN(nn.Module):
    def __init__(self, input_dim, hidden_dim):
        super().__init__()
        self.rnn = nn.RNN(input_dim, hidden_dim, batch_first=True)

    def forward(self, x):
        out, _ = self.rnn(x)
        return out


class CerebellarModule(nn.Module):
    def __init__(self, input_dim, hidden_dim, output_dim):
        super().__init__()
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, output_dim)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class CBRNN(nn.Module):
    def __init__(self, input_dim, hidden_dim, cb_hidden, output_dim):
        super().__init__()
        self.cortex = CorticalRNN(input_dim, hidden_dim)
        self.cerebellum = CerebellarModule(hidden_dim, cb_hidden, output_dim)

    def forward(self, x):
        return self.cerebellum(self.cortex(x))


def run_training(args, item, freeze_cortex):
    rows = []
    B, T = args.batch, args.seq
    for (F, N, H, O) in args.sizes:
        torch.manual_seed(1)
        model = CBRNN(F, N, H, O)
        if freeze_cortex:
            for p in model.cortex.parameters():
                p.requires_grad_(False)
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        lossf = nn.MSELoss()
        x = torch.randn(B, T, F)
        y = torch.randn(B, T, O)

        def step():
            opt.zero_grad()
            if freeze_cortex:
                # No gradient can flow into a frozen cortex: run it without
                # building the autograd graph, as a user would.
                with torch.no_grad():
                    h = model.cortex(x)
                out = model.cerebellum(h)
            else:
                out = model(x)
            loss = lossf(out, y)
            loss.backward()
            opt.step()
            return loss

        step()  # warm-up
        best = 0.0
        for _ in range(args.repeats):
            steps = 0
            t0 = time.perf_counter()
            while True:
                step()
                steps += 1
                dt = time.perf_counter() - t0
                if dt >= args.seconds:
                    break
            best = max(best, steps * B * T / dt)
        rows.append({"item": item, "impl": "torch", "frames_per_s": round(best, 1), "F": F,
                     "N": N, "H": H, "O": O, "B": B, "T": T, "threads": torch.get_num_threads()})
    return rows
