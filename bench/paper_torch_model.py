#!/usr/bin/python3
"""The paper's model and training loop in PyTorch (Voce, Giannakakis &
Clopath 2026; protocol of issue 5), written the way the authors write it:
a Python time loop over steps. Used by the peer benchmark
(bench/peer_paper_epoch.py) and by the parity test of one training step
(tests/paper/, through --check). Run with Debian's /usr/bin/python3.

Model (loop wiring):
    c_t = fc3(relu(fc2(relu(fc1([h_{t-1}, x_t])))))          (cerebellum)
    h_t = (1-a) h_{t-1} + a leaky_relu(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh + c_t)
    y   = readout(h_M)                                        (last step)
Parameter names are those of cbrnn's safetensors files, so a model saved
by cbrnn loads here with load_state_dict.

    /usr/bin/python3 bench/paper_torch_model.py --check DIR/case.json
compares cbrnn's training steps (losses, updated weights) recorded by the
C test against this implementation in float64; exit status 1 on mismatch.
It must never change the files it checks.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ALPHA = 1.0 / 1.5        # tau = 1.5 (issue 5)
H0_SCALE = 0.1           # initial state 0.1 * U(0,1) per trial
LR, MOMENTUM, CLIP = 0.01, 0.1, 7.5


class _Core(nn.Module):
    def __init__(self, n_in, hidden):
        super().__init__()
        # nn.Linear's parameters and default initialisation, RNN names.
        lin_x, lin_h = nn.Linear(n_in, hidden), nn.Linear(hidden, hidden)
        self.weight_ih_l0 = nn.Parameter(lin_x.weight.detach().clone())
        self.weight_hh_l0 = nn.Parameter(lin_h.weight.detach().clone())
        self.bias_ih_l0 = nn.Parameter(lin_x.bias.detach().clone())
        self.bias_hh_l0 = nn.Parameter(lin_h.bias.detach().clone())


class _Cortex(nn.Module):
    def __init__(self, n_in, hidden):
        super().__init__()
        self.rnn = _Core(n_in, hidden)


class _Cerebellum(nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.n = len(dims) - 1
        for i in range(self.n):
            setattr(self, "fc%d" % (i + 1), nn.Linear(dims[i], dims[i + 1]))
        # Near-zero start (issue 5): biases 0, granule layer N(0, 0.01^2),
        # the others N(0, 0.1^2).
        with torch.no_grad():
            for i in range(self.n):
                fc = getattr(self, "fc%d" % (i + 1))
                fc.bias.zero_()
                fc.weight.normal_(0.0, 0.01 if i == 0 else 0.1)

    def forward(self, z):
        for i in range(self.n):
            z = getattr(self, "fc%d" % (i + 1))(z)
            if i < self.n - 1:
                z = F.relu(z)
        return z


class PaperModel(nn.Module):
    """CB-RNN (cb=(256, 64)) or the baseline RNN (cb=())."""

    def __init__(self, n_in=1, hidden=64, n_out=2, cb=(256, 64), alpha=ALPHA):
        super().__init__()
        self.hidden, self.alpha = hidden, alpha
        self.cortex = _Cortex(n_in, hidden)
        self.cerebellum = _Cerebellum([hidden + n_in] + list(cb) + [hidden]) if cb else None
        self.readout = nn.Linear(hidden, n_out)

    def groups(self):
        """Parameters by cbrnn group: cortex, cerebellum, readout."""
        return {"cortex": list(self.cortex.parameters()),
                "cerebellum": list(self.cerebellum.parameters()) if self.cerebellum else [],
                "readout": list(self.readout.parameters())}

    def forward(self, x, h0):
        """x [B, M, n_in], h0 [B, hidden] -> logits of the last step [B, n_out]."""
        core = self.cortex.rnn
        h = h0
        for t in range(x.shape[1]):
            xt = x[:, t]
            pre = F.linear(xt, core.weight_ih_l0, core.bias_ih_l0) + \
                F.linear(h, core.weight_hh_l0, core.bias_hh_l0)
            if self.cerebellum is not None:
                pre = pre + self.cerebellum(torch.cat([h, xt], dim=1))
            h = (1 - self.alpha) * h + self.alpha * F.leaky_relu(pre)
        return self.readout(h)


def paper_model(variant, n_in=1, n_out=2):
    if variant == "rnn":
        return PaperModel(n_in, 202, n_out, cb=())
    return PaperModel(n_in, 64, n_out, cb=(256, 64))


def make_optimizer(model):
    return torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                           lr=LR, momentum=MOMENTUM, nesterov=True)


def loss_fn(logits, labels):
    """Cross-entropy per 2-class head, summed (multitask: DMS + parity)."""
    total = 0.0
    for k in range(labels.shape[1]):
        total = total + F.cross_entropy(logits[:, 2 * k:2 * k + 2], labels[:, k])
    return total


def train_step(model, opt, x, labels, h0, norms=None):
    """One step; appends the gradient norm before clipping to norms."""
    opt.zero_grad()
    loss = loss_fn(model(x, h0), labels)
    loss.backward()
    norm = nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], CLIP)
    if norms is not None:
        norms.append(float(norm))
    opt.step()
    return loss.item()


def make_batch(task, n, batch, gen=None):
    """One batch as the authors draw it: one length M in [N+2, 4N+2),
    Bernoulli(0.5) bits; labels [B, heads]."""
    m = int(torch.randint(n + 2, 4 * n + 2, (1,), generator=gen))
    bits = torch.bernoulli(torch.full((batch, m), 0.5), generator=gen)
    dms = (bits[:, -n] == bits[:, -1]).long()
    parity = (bits[:, -n:].sum(1) % 2).long()
    labels = {"dms": dms[:, None], "parity": parity[:, None],
              "multitask": torch.stack([dms, parity], 1)}[task]
    return bits[:, :, None], labels


def epoch(model, opt, task, n, batch=64, train_steps=100, test_batches=50, gen=None):
    """One epoch of the protocol: training steps then test batches."""
    losses = []
    for _ in range(train_steps):
        x, labels = make_batch(task, n, batch, gen)
        h0 = H0_SCALE * torch.rand(batch, model.hidden, generator=gen)
        losses.append(train_step(model, opt, x, labels, h0))
    correct = total = 0
    with torch.no_grad():
        for _ in range(test_batches):
            x, labels = make_batch(task, n, batch, gen)
            h0 = H0_SCALE * torch.rand(batch, model.hidden, generator=gen)
            pred = model(x, h0)[:, 0:2].argmax(1)
            correct += int((pred == labels[:, 0]).sum())
            total += batch
    return sum(losses) / max(1, len(losses)), correct / total


# ---- Reading cbrnn's files ----

def load_safetensors(path):
    """{name: float64 tensor} from a safetensors file of F32 tensors."""
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen])
    base = 8 + hlen
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise ValueError("%s: tensor %s has dtype %s, expected F32" % (path, name, info["dtype"]))
        a, b = info["data_offsets"]
        arr = np.frombuffer(raw[base + a:base + b], dtype="<f4").reshape(info["shape"])
        out[name] = torch.from_numpy(arr.astype(np.float64))
    return out


def check(case_path):
    """Replays the training steps of a C test case in float64 and compares."""
    with open(case_path) as f:
        case = json.load(f)
    folder = os.path.dirname(os.path.abspath(case_path))
    init = load_safetensors(os.path.join(folder, case["init"]))
    after = load_safetensors(os.path.join(folder, case["after"]))
    hidden = init["cortex.rnn.weight_hh_l0"].shape[0]
    n_in = init["cortex.rnn.weight_ih_l0"].shape[1]
    n_out = init["readout.weight"].shape[0]
    cb = []
    i = 1
    while "cerebellum.fc%d.weight" % (i + 1) in init:
        cb.append(init["cerebellum.fc%d.weight" % i].shape[0])
        i += 1
    has_cb = "cerebellum.fc1.weight" in init
    torch.set_default_dtype(torch.float64)
    model = PaperModel(n_in, hidden, n_out, cb=tuple(cb) if has_cb else ())
    if has_cb and not cb:
        raise ValueError("a one-layer cerebellum is not the paper's model")
    missing = set(model.state_dict()) ^ set(init)
    if missing:
        raise ValueError("%s: tensors differ from the paper model's: %s" % (case["init"], sorted(missing)))
    model.load_state_dict(init)
    for g, params in model.groups().items():
        for p in params:
            p.requires_grad_(g not in case["frozen"])
    opt = make_optimizer(model)
    failures = []
    norms = []
    for s, step in enumerate(case["steps"]):
        x = torch.from_numpy(np.load(os.path.join(folder, step["x"])).astype(np.float64))
        x = x.reshape(x.shape[0], step["M"], n_in)
        labels = torch.from_numpy(np.load(os.path.join(folder, step["labels"])).astype(np.int64))
        h0 = torch.from_numpy(np.load(os.path.join(folder, step["h0"])).astype(np.float64))
        loss = train_step(model, opt, x, labels, h0, norms)
        rel = abs(loss - step["loss"]) / max(abs(loss), 1e-12)
        if rel > 1e-5:
            failures.append("step %d loss: expected %.9g (torch), got %.9g (cbrnn), rel %.2e"
                            % (s, loss, step["loss"], rel))
    if case.get("expect_clipped") and not any(n > CLIP for n in norms):
        failures.append("gradient norms %s never exceed %g: the case does not exercise clipping"
                        % (norms, CLIP))
    state = model.state_dict()
    worst = 0.0
    for name, ref in state.items():
        got = after[name]
        start = init[name]
        scale = float(ref.abs().max())
        err = float((got - ref).abs().max())
        # Updated weights: 1e-5 relative to the tensor's scale.
        if err > 1e-5 * max(scale, 1e-30):
            failures.append("%s: updated weights differ: max |cbrnn - torch| %.3e, tensor scale %.3e"
                            % (name, err, scale))
        # The update itself (after - before), 1e-3 relative to its own
        # scale: a tighter check of the gradients than the weights alone.
        # cbrnn stores float32 weights, so its update is only known to about
        # two float32 ulps of the weights (2 * 2^-23 * scale).
        d_ref, d_got = ref - start, got - start
        dscale = float(d_ref.abs().max())
        derr = float((d_got - d_ref).abs().max())
        if dscale == 0.0:
            if derr != 0.0:
                failures.append("%s: frozen tensor changed in cbrnn (max change %.3e)" % (name, derr))
        else:
            worst = max(worst, derr / dscale)
            if derr > 1e-3 * dscale + 2.0 * 2.0 ** -23 * scale:
                failures.append("%s: update differs: max |d_cbrnn - d_torch| %.3e, update scale %.3e"
                                % (name, derr, dscale))
    label = os.path.basename(case_path)
    if failures:
        print("%s: %d mismatches against PyTorch:\n  %s" % (label, len(failures), "\n  ".join(failures)))
        return 1
    print("%s: %d steps match PyTorch (losses %s; gradient norms %s; worst update error %.2e "
          "of its scale)" % (label, len(case["steps"]),
                             ", ".join("%.6f" % st["loss"] for st in case["steps"]),
                             ", ".join("%.3g" % n for n in norms), worst))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2]))
    sys.exit("usage: paper_torch_model.py --check CASE.json")
