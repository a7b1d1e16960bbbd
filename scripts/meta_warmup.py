#!/usr/bin/python3
"""meta_warmup.py: a meta-learned warm-up of the cerebellum, tried before it
is worth building into `cbrnn train` (docs/ADAPTATION.md, "A warm-up for
adapting"). Not part of the default recipe: on the validation voices it
did not raise what online learning adds.

The cortex stays as loaded; the cerebellum (fc1, fc2) is trained by Adam on
the training split's speakers (their first ~62 s, one stream each, as
scripts/online_rules.sh makes them) so that online learning of the last
layer pays: each stream in CHUNKS parts, part c predicted by the last layer
ridge-fitted, as RLS would have it (prior 30, RLS frame weights), to parts
0..c-1; the loss is that over the persistence loss, averaged over BATCH
speakers drawn per step. Every 10 steps the same number is measured on the
validation speakers, and the step with the best validation online skill
(frozen skill + what the ridge fits add) is written to OUT.

Prints per 10 steps: validation frozen skill, the gain of the chunked ridge
fits over it (mean, weakest speaker), and every 50 steps the same gain on
the training speakers. Needs the corpus (scripts/corpus.sh), a build
(features by `cbrnn features`), and PyTorch.

--train-chunks 1 trains on the frozen loss alone (plain fine-tuning on the
same streams, the control), still measured with --chunks.

usage: meta_warmup.py MODEL OUT [--steps N] [--lr X] [--chunks K]
                      [--train-chunks K] [--batch B] [--corpus DIR] [--cache DIR]
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import online_variants as ov  # noqa: E402

PRIOR = 30.0


def load_split(t, meta, corpus, split):
    """Per speaker: cortex states H, change targets R, running scales S,
    the persistence loss of the stream."""
    out = []
    for spk in corpus.speakers(split):
        st = ov.frozen_pass(t, meta, corpus.features(split, spk))
        xg, s = st["xg"], st["s"]
        out.append((torch.tensor(st["h"][:-1], dtype=torch.float32),
                    torch.tensor((xg[1:] - xg[:-1]) / s[:-1], dtype=torch.float32),
                    torch.tensor(s[:-1], dtype=torch.float32),
                    float(((xg[1:] - xg[:-1]) ** 2).mean())))
    return out


def voice_losses(params, H, R, S, pers, chunks):
    """(frozen, chunked-online) losses of one stream over its persistence
    loss. Part c uses the last layer plus the ridge fit to parts < c."""
    W1, b1, W2 = params
    phi = torch.cat([torch.relu(H @ W1.T + b1), torch.ones(len(H), 1)], 1)
    E = R - phi @ W2.T
    n, size = len(H), len(H) // chunks
    w = (S ** 2).mean(1, keepdim=True)
    A = PRIOR * torch.eye(phi.shape[1])
    B = torch.zeros(phi.shape[1], R.shape[1])
    total = 0.0
    for c in range(chunks):
        lo, hi = c * size, (c + 1) * size if c < chunks - 1 else n
        Ec = E[lo:hi] if c == 0 else E[lo:hi] - phi[lo:hi] @ torch.linalg.solve(A, B)
        total = total + ((S[lo:hi] * Ec) ** 2).sum()
        pw = phi[lo:hi] * w[lo:hi]
        A = A + pw.T @ phi[lo:hi]
        B = B + pw.T @ E[lo:hi]
    frozen = ((S * E) ** 2).mean() / pers
    return frozen, total / (n * R.shape[1]) / pers


def measure(params, voices, chunks):
    """Mean frozen skill, mean and weakest gain of the chunked fits."""
    with torch.no_grad():
        r = np.array([[v.item() for v in voice_losses(params, *x, chunks)] for x in voices])
    frozen, gain = 1 - r[:, 0], r[:, 0] - r[:, 1]
    return frozen.mean(), gain.mean(), gain.min()


def write_model(model, out, params):
    """The loaded file with the cerebellum's tensors replaced."""
    W1, b1, W2 = (p.detach().numpy() for p in params)
    buf = bytearray(open(model, "rb").read())
    n = int.from_bytes(buf[:8], "little")
    header, base = json.loads(buf[8:8 + n]), 8 + n
    new = {"cerebellum.fc1.weight": W1, "cerebellum.fc1.bias": b1,
           "cerebellum.fc2.weight": W2[:, :-1], "cerebellum.fc2.bias": W2[:, -1]}
    for k, v in new.items():
        lo, hi = header[k]["data_offsets"]
        buf[base + lo:base + hi] = np.ascontiguousarray(v, dtype="<f4").tobytes()
    with open(out + ".tmp", "wb") as f:
        f.write(bytes(buf))
    os.replace(out + ".tmp", out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--chunks", type=int, default=6)
    ap.add_argument("--train-chunks", type=int, default=0,
                    help="the chunks of the training loss (default --chunks; 1: plain fine-tuning)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--corpus", default=os.environ.get(
        "XDG_CACHE_HOME", os.path.expanduser("~/.cache")) + "/cbrnn-corpus")
    ap.add_argument("--cache", default="/tmp/cbrnn-online-variants")
    a = ap.parse_args()
    torch.manual_seed(1)
    t, meta = ov.read_safetensors(a.model)
    corpus = ov.Corpus(a.corpus, a.cache)
    train, valid = (load_split(t, meta, corpus, s) for s in ("train", "valid"))
    print("speakers: train %d, valid %d" % (len(train), len(valid)), flush=True)
    params = [torch.tensor(t["cerebellum.fc1.weight"], dtype=torch.float32, requires_grad=True),
              torch.tensor(t["cerebellum.fc1.bias"], dtype=torch.float32, requires_grad=True),
              torch.tensor(ov.loaded_last(t), dtype=torch.float32, requires_grad=True)]
    opt = torch.optim.Adam(params, lr=a.lr)
    rng = np.random.default_rng(1)
    best, start = None, time.time()
    for step in range(a.steps + 1):
        if step % 10 == 0:
            f, g, weakest = measure(params, valid, a.chunks)
            line = "%4d %5.0f s  valid: frozen %.4f gain %+.4f weakest %+.4f" % (
                step, time.time() - start, f, g, weakest)
            if step % 50 == 0:
                line += "  train: gain %+.4f" % measure(params, train, a.chunks)[1]
            print(line, flush=True)
            if best is None or f + g > best[0]:
                best = (f + g, step, [p.detach().clone() for p in params])
        if step == a.steps:
            break
        opt.zero_grad()
        for i in rng.choice(len(train), a.batch, replace=False):
            _, online = voice_losses(params, *train[i], a.train_chunks or a.chunks)
            (online / a.batch).backward()
        opt.step()
    print("best: step %d, validation online skill %.4f" % (best[1], best[0]))
    write_model(a.model, a.out, best[2])
    print("wrote", a.out)


if __name__ == "__main__":
    main()
