#!/usr/bin/python3
"""adapt_bound.py: how much a minute of a voice can teach each part of the
network about what that voice says next (docs/ADAPTATION.md, "How far a
minute can go").

For each speaker of a split: its first ~92 s as one stream (whole files in
manifest order, scripts/lib/corpus_lists.sh), the files that reach 60 s
being "the minute" and the rest "after". Each method fits something to the
minute, knowing all of it in advance, and is scored, frozen, on the frames
after it; the engine's online rule (`rls`) learns through the minute and
on, as `cbrnn run --learn` does, and is scored on the same frames. Skill is
1 - MSE / persistence MSE in the corpus-normalised log-mel space, as
everywhere else; the table gives each method's gain over the frozen model.

  rls              the engine's RLS (prior 30), learning over the whole stream
  last:PRIOR       the last cerebellar layer ridge-fitted to the minute
                   (frame weights as RLS's), toward the loaded one
  cb:LR:STEPS:L2   the whole cerebellum (both layers) fitted to the minute:
                   Adam (LR, STEPS full-batch steps) on the MSE plus
                   L2 * |W - W_loaded|^2 per weight
  all:LR:STEPS:L2  cortex and cerebellum fitted the same way, through the
                   whole minute (backpropagation through time)

Choose hyperparameters on the validation split; score the test split once.
Needs the corpus (scripts/corpus.sh), a build (`cbrnn features`) and
PyTorch (Debian's python3-torch).

usage: adapt_bound.py MODEL SPLIT CACHE_DIR METHOD... [--corpus DIR]
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from online_variants import (Corpus, frozen_pass, hindsight, loaded_last,  # noqa: E402
                             parse_args, read_safetensors, rls_skill, with_bias)

MINUTE, STREAM = 62, 92  # seconds asked of speaker_stream (files end past them)


def minute_frames(corpus, split, spk):
    """The frame where the minute's files end in the 92 s stream."""
    return len(corpus.features(split, spk, MINUTE))


def skill(xg, y, lo):
    """Skill of predictions y[k] of xg[k + 1] over frames k + 1 >= lo."""
    err = ((y[lo - 1:] - xg[lo:]) ** 2).mean()
    return 1 - err / ((xg[lo - 1:-1] - xg[lo:]) ** 2).mean()


def head_frozen(t, st):
    return with_bias(st["phi"]) @ loaded_last(t).T


def predict(st, head):
    return st["xg"][:-1] + st["s"][:-1] * head[:-1]


class Net(torch.nn.Module):
    """The engine's forward pass after the running normaliser, in float64."""

    def __init__(self, t, cortex):
        super().__init__()
        self.cortex = cortex
        cb = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in t.items()
              if k.startswith("cerebellum.")}
        self.cb = torch.nn.ParameterDict({k.split(".", 1)[1].replace(".", "_"): v
                                          for k, v in cb.items()})
        if cortex:
            w = t["cortex.rnn.weight_hh_l0"]
            self.rnn = torch.nn.RNN(t["cortex.rnn.weight_ih_l0"].shape[1], w.shape[0],
                                    nonlinearity="tanh", batch_first=True).double()
            with torch.no_grad():
                for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
                    getattr(self.rnn, k).copy_(torch.tensor(t["cortex.rnn." + k]))
        self.ref = [p.detach().clone() for p in self.parameters()]

    def forward(self, st, n):
        if self.cortex:
            H = self.rnn(torch.tensor(st["z"][:n])[None])[0][0]
        else:
            H = torch.tensor(st["h"][:n])
        c = self.cb
        phi = torch.relu(H @ c["fc1_weight"].T + c["fc1_bias"])
        return phi @ c["fc2_weight"].T + c["fc2_bias"]

    def pull(self):
        return sum(((p - r) ** 2).sum() for p, r in zip(self.parameters(), self.ref))


def fit(t, st, m, lr, steps, l2, cortex):
    """Adam on the minute's MSE (frames 1..m-1 predicted from 0..m-2)."""
    net = Net(t, cortex)
    xg, s = torch.tensor(st["xg"][:m]), torch.tensor(st["s"][:m])
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        head = net(st, m)
        y = xg[:-1] + s[:-1] * head[:-1]
        loss = ((y - xg[1:]) ** 2).mean() + l2 * net.pull()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return net(st, len(st["xg"])).numpy()


def method(spec, t, st, m):
    kind, *a = spec.split(":")
    xg = st["xg"]
    if kind == "rls":
        return None  # scored by rls_after
    if kind == "last":
        sub = {k: v[:m] for k, v in st.items()}
        W = hindsight(t, sub, float(a[0]))
        return skill(xg, predict(st, with_bias(st["phi"]) @ W.T), m)
    if kind in ("cb", "all"):
        head = fit(t, st, m, float(a[0]), int(a[1]), float(a[2]), kind == "all")
        return skill(xg, predict(st, head), m)
    sys.exit(f"adapt_bound.py: unknown method '{spec}'")


def rls_after(t, st, m):
    """The engine's RLS over the whole stream, scored on the frames from m:
    rls_skill scores all frames, so it runs twice (to m and to the end)
    and the sums are told apart by the persistence losses."""
    def sums(n):
        sub = {k: v[:n] for k, v in st.items()}
        X = with_bias(sub["phi"])
        sk = rls_skill(t, sub, X, np.eye(X.shape[1]) / 30.0)
        pers = ((sub["xg"][:-1] - sub["xg"][1:]) ** 2).mean() * (n - 1)
        return (1 - sk) * pers, pers
    la, pa = sums(len(st["xg"]))
    lm, pm = sums(m)
    return 1 - (la - lm) / (pa - pm)


def main():
    model, split, cache, specs, corpus_dir = parse_args(sys.argv[1:], __doc__)
    torch.set_num_threads(2)
    t, meta = read_safetensors(model)
    corpus = Corpus(corpus_dir, cache)
    print("| speaker | after (s) | frozen | " + " | ".join(specs) + " |")
    print("|---|---|---|" + "---|" * len(specs))
    gains = []
    for spk in corpus.speakers(split):
        m = minute_frames(corpus, split, spk)
        st = frozen_pass(t, meta, corpus.features(split, spk, STREAM))
        if len(st["xg"]) - m < 1000:  # under 10 s after the minute
            continue
        fz = skill(st["xg"], predict(st, head_frozen(t, st)), m)
        g = [(rls_after(t, st, m) if v == "rls" else method(v, t, st, m)) - fz for v in specs]
        gains.append(g)
        print("| %s | %.0f | %.3f | %s |" % (spk, (len(st["xg"]) - m) / 100.0, fz,
                                            " | ".join("%+.3f" % x for x in g)), flush=True)
    gains = np.array(gains)
    print("| mean | | | %s |" % " | ".join("%+.3f" % x for x in gains.mean(0)))
    print("| weakest | | | %s |" % " | ".join("%+.3f" % x for x in gains.min(0)))


if __name__ == "__main__":
    main()
