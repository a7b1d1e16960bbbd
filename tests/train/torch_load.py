#!/usr/bin/python3
"""A model saved by `cbrnn train` is the seed's PyTorch CBRNN.

Trains a tiny readout-wired model with `cbrnn train` on one sample clip,
reads the .safetensors file with a reader written here (json + numpy; the
safetensors package is not a dependency), loads the tensors into the seed's
CBRNN (CorticalRNN with nn.RNN(batch_first=True), CerebellarModule
fc1 -> ReLU -> fc2) with load_state_dict(strict=True), and runs it on the
features of another clip from `cbrnn features`, normalised with the stored
frontend.mean / frontend.std. The per-frame outputs must equal
`cbrnn eval --outputs` to 1e-5 relative (max |diff| / max |output|), and
the loss, persistence loss and skill that `cbrnn eval --json` prints must
equal the ones PyTorch computes from the same numbers.

usage: torch_load.py CBRNN WORKDIR SAMPLES_DIR
"""
import json
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn


class CorticalRNN(nn.Module):
    def __init__(self, input_dim, hidden_dim):
        super().__init__()
        self.rnn = nn.RNN(input_dim, hidden_dim, batch_first=True)

    def forward(self, x, h0=None):
        out, h = self.rnn(x, h0)
        return out, h


class CerebellarModule(nn.Module):
    def __init__(self, input_dim, hidden_dim, output_dim):
        super().__init__()
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden_dim, output_dim)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


class CBRNN(nn.Module):
    def __init__(self, input_dim, hidden_dim, cb_hidden_dim, output_dim):
        super().__init__()
        self.cortex = CorticalRNN(input_dim, hidden_dim)
        self.cerebellum = CerebellarModule(hidden_dim, cb_hidden_dim, output_dim)

    def forward(self, x):
        h, _ = self.cortex(x)
        return self.cerebellum(h)


def read_safetensors(path):
    """(tensors, metadata) from a safetensors file, checking its layout."""
    with open(path, "rb") as f:
        b = f.read()
    n = int.from_bytes(b[:8], "little")
    assert 8 + n <= len(b), f"{path}: header length {n} beyond the file"
    header = json.loads(b[8:8 + n])
    meta = header.pop("__metadata__")
    data = b[8 + n:]
    tensors = {}
    for name, t in header.items():
        assert t["dtype"] == "F32", f"{name}: dtype {t['dtype']}"
        lo, hi = t["data_offsets"]
        arr = np.frombuffer(data[lo:hi], dtype="<f4").reshape(t["shape"])
        tensors[name] = torch.from_numpy(arr.copy())
    return tensors, meta


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {r.returncode}\n{r.stderr}")
    return r.stdout


def main():
    cbrnn, work, samples = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)
    model = os.path.join(work, "tiny.safetensors")
    train_wav = os.path.join(samples, "voiceA_us_male_1.wav")
    test_wav = os.path.join(samples, "voiceA_us_male_2.wav")
    run([cbrnn, "train", "-o", model, "-q", "--hidden", "24", "--cb", "48",
         "--warmup-steps", "20", "--steps", "10", "--batch", "4", "--seq-len", "40",
         "--lr", "3e-3", "--val-fraction", "0", "--seed", "5", train_wav])
    out_npy = os.path.join(work, "outputs.npy")
    feat_npy = os.path.join(work, "features.npy")
    ev = json.loads(run([cbrnn, "eval", model, test_wav, "--json", "--outputs", out_npy]))
    run([cbrnn, "features", test_wav, "-o", feat_npy])

    tensors, meta = read_safetensors(model)
    assert meta["format"] == "cbrnn-1" and meta["wiring"] == "readout", meta
    assert meta["target"] == "predict" and meta["horizon"] == "1", meta
    mean = tensors.pop("frontend.mean").double()
    std = tensors.pop("frontend.std").double()
    F, N = int(meta["n_in"]), int(meta["n_hidden"])
    H, O = int(meta["cb_hidden"]), int(meta["n_out"])
    net = CBRNN(F, N, H, O)
    net.load_state_dict(tensors, strict=True)  # raises on a missing/extra/mis-shaped tensor
    # Float64 is the reference: the C float32 result must be within 1e-5 of it.
    net = net.double()

    feats = torch.from_numpy(np.load(feat_npy)).double()
    x = (feats - mean) / std
    with torch.no_grad():
        y = net(x.unsqueeze(0))[0]
    got = torch.from_numpy(np.load(out_npy)).double()
    T = x.shape[0]
    if got.shape != (T - 1, O):
        sys.exit(f"FAIL: cbrnn eval --outputs has shape {tuple(got.shape)}, expected {(T - 1, O)}")
    ref = y[:T - 1]
    diff = (got - ref).abs()
    scale = ref.abs().max().item()
    worst = diff.max().item()
    i, j = divmod(int(diff.argmax()), O)
    rel = worst / scale
    print(f"outputs: {T - 1} frames x {O}; max |cbrnn - torch| = {worst:.3g} "
          f"(frame {i}, output {j}: {got[i, j].item():.7g} vs {ref[i, j].item():.7g}); "
          f"max |torch| = {scale:.3g}; relative {rel:.3g}")
    ok = rel <= 1e-5

    # The loss numbers cbrnn eval prints, recomputed from the same arrays.
    tgt = x[1:]
    loss = ((ref - tgt) ** 2).mean().item()
    persist = ((x[:-1] - tgt) ** 2).mean().item()
    skill = 1 - loss / persist
    f0 = ev["files"][0]
    for name, want in (("loss", loss), ("persistence_loss", persist), ("skill", skill)):
        have = f0[name]
        r = abs(have - want) / max(abs(want), 1e-12)
        print(f"{name}: cbrnn {have:.9g} torch {want:.9g} (relative {r:.3g})")
        if r > 1e-5:
            ok = False
    if f0["frames"] != T - 1:
        print(f"FAIL: cbrnn eval reports {f0['frames']} frames, expected {T - 1}")
        ok = False
    if not ok:
        sys.exit("FAIL: cbrnn and the PyTorch CBRNN loaded from the same file disagree")
    print("ok: the saved model loads into the seed's PyTorch CBRNN (strict) and agrees")


if __name__ == "__main__":
    main()
