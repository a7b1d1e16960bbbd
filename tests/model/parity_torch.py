#!/usr/bin/python3
"""PyTorch parity of the cbrnn model library (run by ctest).

For each case, tests/model/parity_helper (C) initialises a small model,
runs it and writes its parameters, inputs, outputs, loss, BPTT gradients
and parameters after two SGD-Nesterov steps and two Adam steps. This script
builds the same network in PyTorch, loads the same parameters with
load_state_dict(strict=True), and redoes everything:

- readout wiring, tanh/relu, alpha 1: exactly the seed's CBRNN
  (CorticalRNN with nn.RNN(batch_first=True), CerebellarModule fc1 -> ReLU
  -> fc2 [-> ReLU -> fc3]), y = cerebellum(rnn_out);
- readout wiring with alpha < 1 or leaky_relu (nn.RNN cannot): the same
  module names around a time loop h = (1-a) h + a f(W_ih x + b_ih + W_hh h + b_hh);
- loop wiring (the paper's model): the time loop with
  c = cerebellum(cat(h_prev, x)) inside f, y = readout(h);
- rnn baseline: the time loop with a linear readout.

Closeness: |cbrnn - torch| <= 1e-5 * max(|torch|, scale) elementwise, where
scale is the largest |torch| value of that tensor (so entries near zero are
judged on the tensor's scale, not their own). Every mismatch prints the
case, tensor, index, expected (torch) and got (cbrnn); exit status 1.

    /usr/bin/python3 parity_torch.py PATH/TO/parity_helper WORKDIR
"""
import json
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn

TOL = 1e-5

CASES = [
    # the seed's CBRNN with nn.RNN: MSE, weight decay, clipping that bites
    ["--wiring", "readout", "--act", "tanh", "--cb", "16", "--loss", "mse", "--wd", "0.01",
     "--clip", "0.05"],
    ["--wiring", "readout", "--act", "relu", "--cb", "16,8", "--loss", "ce", "--h0"],
    ["--wiring", "readout", "--act", "leaky", "--alpha", "0.5", "--cb", "16", "--loss", "mse",
     "--h0", "--clip", "10"],
    ["--wiring", "readout", "--act", "tanh", "--cb", "16", "--loss", "mse", "--freeze-cortex"],
    # the paper's loop model: several input channels, 2 or 4 outputs, CE on the last step
    ["--wiring", "loop", "--act", "tanh", "--cb", "16", "--sizes", "2,12,4", "--seq", "9",
     "--loss", "ce-last", "--h0"],
    ["--wiring", "loop", "--act", "leaky", "--alpha", "0.3", "--cb", "16,8", "--loss", "mse",
     "--h0", "--wd", "0.001"],
    ["--wiring", "loop", "--act", "relu", "--alpha", "0.7", "--cb", "10", "--sizes", "3,8,2",
     "--loss", "ce", "--freeze-cortex", "--clip", "0.5"],
    # the residual output (y = x[..., :O] + module(x)) after the running
    # normaliser (its recursion redone below in torch), seed CBRNN and loop
    ["--wiring", "readout", "--act", "tanh", "--cb", "16", "--loss", "mse", "--residual",
     "--stream-norm", "0.03", "--seq", "12"],
    ["--wiring", "loop", "--act", "tanh", "--alpha", "0.5", "--cb", "16", "--loss", "mse",
     "--residual", "--h0"],
    # the rnn baseline (no cerebellum, linear readout)
    ["--arch", "rnn", "--act", "tanh", "--alpha", "0.8", "--loss", "mse", "--h0"],
]


class CorticalRNN(nn.Module):
    """The seed's cortex: nn.RNN(input_dim, hidden_dim, batch_first=True)."""

    def __init__(self, input_dim, hidden_dim, nonlinearity="tanh"):
        super().__init__()
        self.rnn = nn.RNN(input_dim, hidden_dim, batch_first=True, nonlinearity=nonlinearity)

    def forward(self, x, h0=None):
        out, _ = self.rnn(x, h0)
        return out


class CerebellarModule(nn.Module):
    """The seed's cerebellum fc1 -> ReLU -> fc2 (-> ReLU -> fc3 ... when deeper)."""

    def __init__(self, dims):
        super().__init__()
        self.n = len(dims) - 1
        for i in range(self.n):
            setattr(self, "fc%d" % (i + 1), nn.Linear(dims[i], dims[i + 1]))

    def forward(self, x):
        for i in range(self.n):
            x = getattr(self, "fc%d" % (i + 1))(x)
            if i < self.n - 1:
                x = torch.relu(x)
        return x


class CBRNN(nn.Module):
    """The seed's model: y = cerebellum(cortex(x))."""

    def __init__(self, input_dim, hidden_dim, cb_dims, nonlinearity):
        super().__init__()
        self.cortex = CorticalRNN(input_dim, hidden_dim, nonlinearity)
        self.cerebellum = CerebellarModule(cb_dims)

    def forward(self, x, h0=None):
        return self.cerebellum(self.cortex(x, h0))


class LeakyCellParams(nn.Module):
    """Holds nn.RNN-named parameters for the hand-written time loop."""

    def __init__(self, F, N):
        super().__init__()
        self.weight_ih_l0 = nn.Parameter(torch.zeros(N, F))
        self.weight_hh_l0 = nn.Parameter(torch.zeros(N, N))
        self.bias_ih_l0 = nn.Parameter(torch.zeros(N))
        self.bias_hh_l0 = nn.Parameter(torch.zeros(N))


class LeakyCortex(nn.Module):
    def __init__(self, F, N):
        super().__init__()
        self.rnn = LeakyCellParams(F, N)


def act_fn(name):
    return {"tanh": torch.tanh, "relu": torch.relu,
            "leaky": lambda v: torch.nn.functional.leaky_relu(v, 0.01)}[name]


class LoopModel(nn.Module):
    """Leaky Elman time loop. loop=True is the paper's model:
    h = (1-a) h + a f(W_ih x + b_ih + W_hh h + b_hh + c), c = CB(cat(h_prev, x)),
    y = readout(h). With a cerebellum and loop=False: y = CB(h) (readout
    wiring where nn.RNN does not apply). Without a cerebellum: y = readout(h)."""

    def __init__(self, F, N, O, cb_dims, act, alpha, loop):
        super().__init__()
        self.cortex = LeakyCortex(F, N)
        self.has_cb = cb_dims is not None
        if self.has_cb:
            self.cerebellum = CerebellarModule(cb_dims)
        if loop or not self.has_cb:
            self.readout = nn.Linear(N, O)
        self.loop, self.f, self.alpha, self.N = loop, act_fn(act), alpha, N

    def forward(self, x, h0=None):
        B, T, _ = x.shape
        p = self.cortex.rnn
        h = h0 if h0 is not None else x.new_zeros(B, self.N)
        hs = []
        for t in range(T):
            xt = x[:, t]
            pre = xt @ p.weight_ih_l0.T + p.bias_ih_l0 + h @ p.weight_hh_l0.T + p.bias_hh_l0
            if self.loop:
                pre = pre + self.cerebellum(torch.cat([h, xt], dim=1))
            h = (1 - self.alpha) * h + self.alpha * self.f(pre)
            hs.append(h)
        H = torch.stack(hs, dim=1)
        if self.has_cb and not self.loop:
            return self.cerebellum(H)
        return self.readout(H)


def read(d, name, n=None, dtype=np.float32):
    a = np.fromfile(os.path.join(d, name + ".bin"), dtype=dtype)
    assert n is None or a.size == n, (name, a.size, n)
    return a


class Checker:
    def __init__(self):
        self.failures = 0

    def close(self, case, what, got, want):
        got = np.asarray(got, dtype=np.float64).ravel()
        want = np.asarray(want, dtype=np.float64).ravel()
        if got.shape != want.shape:
            print("FAIL %s: %s: shape %s, expected %s" % (case, what, got.shape, want.shape))
            self.failures += 1
            return
        scale = np.max(np.abs(want)) if want.size else 0.0
        lim = TOL * np.maximum(np.abs(want), scale)
        bad = np.nonzero(~(np.abs(got - want) <= lim))[0]
        if bad.size:
            self.failures += 1
            for i in bad[:5]:
                print("FAIL %s: %s[%d]: expected %.9g (torch), got %.9g (cbrnn), |diff| %.3g > %.3g"
                      % (case, what, i, want[i], got[i], abs(got[i] - want[i]), lim[i]))
            if bad.size > 5:
                print("FAIL %s: %s: %d of %d entries differ" % (case, what, bad.size, want.size))


def build(meta):
    F, N, O = meta["F"], meta["N"], meta["O"]
    cb = meta["cb"] if meta["arch"] == "cbrnn" else None
    loop = meta["wiring"] == "loop"
    if cb is not None:
        cb_dims = ([N + F] if loop else [N]) + cb + ([N] if loop else [O])
    else:
        cb_dims = None
    if (not loop and cb is not None and meta["alpha"] == 1.0 and meta["act"] in ("tanh", "relu")):
        return CBRNN(F, N, cb_dims, meta["act"]), "seed CBRNN (nn.RNN)"
    return (LoopModel(F, N, O, cb_dims, meta["act"], meta["alpha"], loop),
            "loop model" if loop else "time-loop model")


def stream_norm(x, meta):
    """cbrnn_model.h's running normaliser over [B, T, F], in float32:
    d = x - mu; mu += a d; var = (1 - a)(var + a d^2); s = min(sqrt(var + floor^2), 5);
    z = (x - mu) / s, from mu = 0, var = 1, with a = hop / tau. Returns z, s."""
    a = torch.tensor(min(meta["hop_ms"] / (1000.0 * meta["stream_norm"]), 1.0), dtype=torch.float32)
    fl2 = torch.tensor(meta["stream_floor"], dtype=torch.float32) ** 2
    B, T, F = x.shape
    mu, var = torch.zeros(B, F), torch.ones(B, F)
    z, s = torch.empty_like(x), torch.empty_like(x)
    for t in range(T):
        d = x[:, t] - mu
        mu = mu + a * d
        var = (1 - a) * (var + a * d * d)
        s[:, t] = torch.clamp(torch.sqrt(var + fl2), max=5.0)  # CBRNN_STREAM_NORM_CAP
        z[:, t] = (x[:, t] - mu) / s[:, t]
    return z, s


def run_case(helper, work, idx, args, chk):
    d = os.path.join(work, "case%d" % idx)
    os.makedirs(d, exist_ok=True)
    subprocess.run([helper, "--out", d, "--seed", str(100 + idx)] + args, check=True)
    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)
    B, T, F, N, O, P = meta["B"], meta["T"], meta["F"], meta["N"], meta["O"], meta["n_params"]
    model, kind = build(meta)
    case = "case %d (%s: %s)" % (idx, kind, " ".join(args))
    p0 = read(d, "params0", P)

    def state_from(flat):
        return {t["name"]: torch.from_numpy(flat[t["offset"]:t["offset"] + t["size"]].copy())
                .reshape(t["shape"]) for t in meta["tensors"]}

    # strict=True: the names and shapes of cbrnn's tensor table are exactly
    # the PyTorch module's state_dict.
    model.load_state_dict(state_from(p0), strict=True)
    frozen = {0} if meta["freeze_cortex"] else set()
    groups = {t["name"]: t["group"] for t in meta["tensors"]}
    for name, prm in model.named_parameters():
        prm.requires_grad_(groups[name] not in frozen)
    x = torch.from_numpy(read(d, "x", B * T * F).reshape(B, T, F))
    h0 = torch.from_numpy(read(d, "h0", B * N).reshape(B, N)) if meta["h0"] else None
    tgt = torch.from_numpy(read(d, "target", B * T * O).reshape(B, T, O))
    lab = torch.from_numpy(read(d, "labels", B * T, np.int32).astype(np.int64))

    def loss_of(y):
        if meta["loss_kind"] == "mse":
            return nn.MSELoss()(y, tgt)
        return nn.CrossEntropyLoss(ignore_index=-1)(y.reshape(B * T, O), lab)

    x_raw = torch.from_numpy(read(d, "x_raw", B * T * F).reshape(B, T, F))
    if meta["stream_norm"] > 0:
        z, s = stream_norm(x_raw, meta)
        chk.close(case, "running normaliser z", x.numpy().ravel(), z.numpy().ravel())
        chk.close(case, "running normaliser s", read(d, "scale", B * T * F), s.numpy().ravel())
    else:
        s = torch.ones_like(x_raw)

    def fwd(m):
        if isinstance(m, CBRNN):
            y = m(x, None if h0 is None else h0.unsqueeze(0))
        else:
            y = m(x, h0)
        # the one extra line a residual model needs in PyTorch
        return x_raw[..., :O] + s[..., :O] * y if meta["residual"] else y

    y = fwd(model)
    loss = loss_of(y)
    loss.backward()
    chk.close(case, "outputs y", read(d, "y", B * T * O), y.detach().numpy())
    chk.close(case, "loss", [meta["loss"]], [loss.item()])
    g = read(d, "grad", P)
    pmap = dict(model.named_parameters())
    for t in meta["tensors"]:
        prm = pmap[t["name"]]
        gc = g[t["offset"]:t["offset"] + t["size"]]
        if prm.requires_grad:
            chk.close(case, "grad " + t["name"], gc, prm.grad.numpy())
        elif np.any(gc != 0):
            print("FAIL %s: frozen %s got a gradient" % (case, t["name"]))
            chk.failures += 1

    for opt_name in ("sgd", "adam"):
        m2, _ = build(meta)
        m2.load_state_dict(state_from(p0), strict=True)
        for name, prm in m2.named_parameters():
            prm.requires_grad_(groups[name] not in frozen)
        params = [q for q in m2.parameters() if q.requires_grad]
        if opt_name == "sgd":
            opt = torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True,
                                  weight_decay=meta["wd"])
        else:
            opt = torch.optim.Adam(params, lr=0.01, weight_decay=meta["wd"])
        for step in range(2):
            opt.zero_grad()
            loss = loss_of(fwd(m2))
            loss.backward()
            chk.close(case, "%s step %d loss" % (opt_name, step + 1),
                      [meta["losses_" + opt_name][step]], [loss.item()])
            if meta["clip"] > 0:
                norm = torch.nn.utils.clip_grad_norm_(params, meta["clip"])
            else:
                norm = torch.norm(torch.stack([q.grad.norm() for q in params]))
            chk.close(case, "%s step %d grad norm" % (opt_name, step + 1),
                      [meta["norms_" + opt_name][step]], [norm.item()])
            opt.step()
            pc = read(d, "params_%s_%d" % (opt_name, step + 1), P)
            sd = m2.state_dict()
            for t in meta["tensors"]:
                chk.close(case, "%s step %d param %s" % (opt_name, step + 1, t["name"]),
                          pc[t["offset"]:t["offset"] + t["size"]], sd[t["name"]].numpy())
    print("ok  %s" % case)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    helper, work = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    torch.set_num_threads(1)
    chk = Checker()
    for i, args in enumerate(CASES):
        run_case(helper, work, i, args, chk)
    if chk.failures:
        print("%d parity check(s) failed" % chk.failures)
        sys.exit(1)
    print("all %d cases match PyTorch" % len(CASES))


if __name__ == "__main__":
    main()
