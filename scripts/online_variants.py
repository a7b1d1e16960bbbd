#!/usr/bin/python3
"""online_variants.py: other online rules than the engine's, tried on the
voices of a split before any of them is worth building (docs/ADAPTATION.md,
"How far a minute can go").

A float64 numpy copy of what `cbrnn run --learn` does with an RLS model
(the reference of tests/train/rls_reference.py: corpus normaliser, running
normaliser, cortex, cerebellum, y = x + s * head, and after each scored
frame the RLS step with its frame weight, Huber weight and trace guard) run
over each speaker's first ~62 s of a split (scripts/online_rules.sh's
streams; features by `cbrnn features`), with variants of the rule:

  rls                the engine's rule (prior 30): the reference point
  extra:KIND:PRIOR   more RLS inputs, with prior PRIOR on their weights
                     (which start at 0): KIND z (the input frame z_t), h
                     (the cortex state), prev (the last hidden layer one
                     frame earlier), rf256 / rf512 (random ReLU features
                     of [h_t, z_t])
  fisher:E:N         the prior P0^-1 = N C + E I, C the mean of phi phi^T
                     over 13 training voices' first 30 s
  eb:SCALE:E         an empirical-Bayes prior: P0 = SCALE * S (trace n/30)
                     + I / E, S how the hindsight last layer of each
                     training voice (first ~62 s, prior 30) differs from
                     the loaded one, input side
  lowrank:K          the change of the outputs kept to the top K directions
                     of the frozen model's errors on 7 training voices
  sgd1:LR            also SGD (lr LR) on the first cerebellar layer
  forget:F           forgetting F without the trace guard
  inxf:LR            also an input transform z + A z + b before the cortex,
                     learned by SGD (lr LR) through one cortex step
  hindsight:PRIOR    the bound: the last layer fitted (weighted ridge) to the
                     whole stream, scored on it

Prints per speaker the frozen skill and each variant's gain, then the mean
and the weakest gain. Needs the corpus (scripts/corpus.sh) and a build.

usage: online_variants.py MODEL SPLIT CACHE_DIR VARIANT... [--corpus DIR]
"""
import os
import subprocess
import sys

import numpy as np

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "train"))
from rls_reference import read_safetensors  # noqa: E402

CBRNN = os.path.join(TOP, "build", "cli", "cbrnn")
LISTS = os.path.join(TOP, "scripts", "lib", "corpus_lists.sh")


class Corpus:
    def __init__(self, corpus, cache):
        self.corpus, self.cache = corpus, cache
        os.makedirs(cache, exist_ok=True)

    def _sh(self, fn, *args):
        cmd = ". %s; %s %s %s" % (LISTS, fn, self.corpus, " ".join(args))
        return subprocess.run(["sh", "-c", cmd], capture_output=True, text=True,
                              check=True).stdout.split()

    def speakers(self, split):
        return self._sh("split_speakers", split, "30")

    def features(self, split, spk, seconds=62):
        """The speaker's stream: its files' features, one after another."""
        path = os.path.join(self.cache, "%s_%d.npy" % (spk.replace(":", "_"), seconds))
        if not os.path.exists(path):
            tmp = os.path.join(self.cache, "one.npy")
            parts = []
            for f in self._sh("speaker_stream", split, spk, str(seconds)):
                subprocess.run([CBRNN, "features", f, "-o", tmp, "--ref-rate", "16000"],
                               check=True, capture_output=True)
                parts.append(np.load(tmp))
            np.save(path, np.concatenate(parts).astype(np.float64))
        return np.load(path)


def frozen_pass(t, meta, feats):
    """Everything before the last layer: corpus-normalised frames xg, model
    inputs z, running scales s, cortex states h, last hidden layer phi."""
    xg = (feats - t["frontend.mean"]) / t["frontend.std"]
    a = min(float(meta["hop_ms"]) / (1000.0 * float(meta["stream_norm"])), 1.0)
    fl2 = float(meta["stream_norm_floor"]) ** 2
    Wih, Whh = t["cortex.rnn.weight_ih_l0"], t["cortex.rnn.weight_hh_l0"]
    bh = t["cortex.rnn.bias_ih_l0"] + t["cortex.rnn.bias_hh_l0"]
    mu, var, h = np.zeros(xg.shape[1]), np.ones(xg.shape[1]), np.zeros(Whh.shape[0])
    Z, S, H = [], [], []
    for x in xg:
        d = x - mu
        mu = mu + a * d
        var = (1 - a) * (var + a * d * d)
        s = np.minimum(np.sqrt(var + fl2), 5.0)
        z = (x - mu) / s
        h = np.tanh(Wih @ z + bh + Whh @ h)
        Z.append(z)
        S.append(s)
        H.append(h)
    Z, S, H = map(np.array, (Z, S, H))
    phi = np.maximum(H @ t["cerebellum.fc1.weight"].T + t["cerebellum.fc1.bias"], 0)
    return dict(xg=xg, z=Z, s=S, h=H, phi=phi)


def loaded_last(t):
    return np.hstack([t["cerebellum.fc2.weight"], t["cerebellum.fc2.bias"][:, None]])


def with_bias(phi):
    return np.hstack([phi, np.ones((len(phi), 1))])


def rls_skill(t, st, X, P0, forget=0.9999, guard=True, U=None, lr1=0.0, lr_in=0.0):
    """Skill over the stream of RLS from P0 on inputs X (the bias's 1 last;
    weights beyond the loaded layer's start at 0). U: output directions
    the change is kept to; lr1 > 0: SGD on the first layer too (X is then
    recomputed from it); lr_in > 0: the cortex hears z + A z + b (A, b from
    0) moved by SGD through one cortex step (X recomputed: the input-side
    speaker adaptation of feature-space MLLR)."""
    xg, S = st["xg"], st["s"]
    W0 = loaded_last(t)
    n = X.shape[1]
    W = np.zeros((W0.shape[0], n))
    W[:, :W0.shape[1] - 1], W[:, -1] = W0[:, :-1], W0[:, -1]
    W1, b1 = t["cerebellum.fc1.weight"].copy(), t["cerebellum.fc1.bias"].copy()
    P, bound = P0.copy(), np.trace(P0)
    if lr_in > 0:
        Z, Wih, Whh = st["z"], t["cortex.rnn.weight_ih_l0"], t["cortex.rnn.weight_hh_l0"]
        bh = t["cortex.rnn.bias_ih_l0"] + t["cortex.rnn.bias_hh_l0"]
        A, b_in, h = np.zeros((Z.shape[1], Z.shape[1])), np.zeros(Z.shape[1]), np.zeros(Whh.shape[0])
    loss_sum = pers_sum = 0.0
    mean = None
    for k in range(1, len(xg)):
        if lr_in > 0:
            h = np.tanh(Wih @ (Z[k - 1] + A @ Z[k - 1] + b_in) + bh + Whh @ h)
        if lr1 > 0 or lr_in > 0:
            pre = W1 @ (h if lr_in > 0 else st["h"][k - 1]) + b1
            phi = np.append(np.maximum(pre, 0), 1.0)
        else:
            phi = X[k - 1]
        base, sc = xg[k - 1], S[k - 1]
        y = base + sc * (W @ phi)
        loss = ((y - xg[k]) ** 2).mean()
        loss_sum += loss
        pers_sum += ((base - xg[k]) ** 2).mean()
        if lr1 > 0 or lr_in > 0:
            g = (W[:, :-1].T @ (sc * (y - xg[k]))) * (2.0 / len(sc)) * (pre > 0)
        if lr1 > 0:
            W1 -= lr1 * np.outer(g, st["h"][k - 1])
            b1 -= lr1 * g
        if lr_in > 0:
            gz = Wih.T @ ((W1.T @ g) * (1 - h * h))
            A -= lr_in * np.outer(gz, Z[k - 1])
            b_in -= lr_in * gz
        w = (sc ** 2).mean()
        if mean is not None and (loss + 0.01) / (mean + 0.01) > 9:  # Huber
            w *= 3 / np.sqrt((loss + 0.01) / (mean + 0.01))
        mean = loss if mean is None else mean + (loss - mean) / 100
        u = P @ phi
        c = forget / w + phi @ u
        e = (xg[k] - base) / sc - W @ phi
        W += np.outer(e if U is None else U @ (U.T @ e), u) / c
        P = P - np.outer(u, u) / c
        if not guard or np.trace(P) / forget <= bound:
            P = P / forget
    return 1 - loss_sum / pers_sum


def frozen_skill(t, st):
    xg, S = st["xg"], st["s"]
    y = xg[:-1] + S[:-1] * (with_bias(st["phi"])[:-1] @ loaded_last(t).T)
    return 1 - ((y - xg[1:]) ** 2).mean() / ((xg[:-1] - xg[1:]) ** 2).mean()


def hindsight(t, st, prior):
    """The weighted ridge fit of the last layer to the whole stream, toward
    the loaded one (where RLS without forgetting ends)."""
    xg, S = st["xg"], st["s"]
    X, R = with_bias(st["phi"])[:-1], (xg[1:] - xg[:-1]) / S[:-1]
    wk = (S[:-1] ** 2).mean(1)
    A = (X * wk[:, None]).T @ X + prior * np.eye(X.shape[1])
    B = (X * wk[:, None]).T @ R + prior * loaded_last(t).T
    return np.linalg.solve(A, B).T


def extra_inputs(st, kind):
    rng = np.random.default_rng(0)
    if kind.startswith("rf"):
        m = int(kind[2:])
        hz = np.hstack([st["h"], st["z"] / 3])
        A = rng.standard_normal((hz.shape[1], m)) / np.sqrt(hz.shape[1])
        E = np.maximum(hz @ A + 0.5 * rng.standard_normal(m), 0)
        return E / E.std() * st["phi"].std()
    if kind == "prev":
        return np.vstack([np.zeros((1, st["phi"].shape[1])), st["phi"][:-1]])
    return {"z": st["z"], "h": st["h"]}[kind]


class TrainingStats:
    """What the fisher, eb and lowrank priors learn from training voices."""

    def __init__(self, t, meta, corpus):
        self.t, self.meta, self.corpus = t, meta, corpus
        self.spk = corpus.speakers("train")
        self._cov = self._deltas = None

    def stream(self, spk, frames=None):
        st = frozen_pass(self.t, self.meta, self.corpus.features("train", spk))
        return st if frames is None else {k: v[:frames] for k, v in st.items()}

    def cov(self):
        if self._cov is None:
            acc, n = 0, 0
            for spk in self.spk[::max(1, len(self.spk) // 13)][:13]:
                X = with_bias(self.stream(spk, 3000)["phi"])
                acc, n = acc + X.T @ X, n + len(X)
            self._cov = acc / n
        return self._cov

    def deltas(self):
        if self._deltas is None:
            W0 = loaded_last(self.t)
            self._deltas = np.array([hindsight(self.t, self.stream(s), 30.0) - W0
                                     for s in self.spk])
        return self._deltas

    def error_basis(self, k):
        acc = 0
        for spk in self.spk[::max(1, len(self.spk) // 7)][:7]:
            st = self.stream(spk, 3000)
            E = (st["xg"][1:] - st["xg"][:-1]) / st["s"][:-1] \
                - with_bias(st["phi"])[:-1] @ loaded_last(self.t).T
            acc = acc + E.T @ E
        return np.linalg.eigh(acc)[1][:, ::-1][:, :k]


def variant(spec, t, st, train):
    """One variant's skill on one stream."""
    kind, *a = spec.split(":")
    X = with_bias(st["phi"])
    n = X.shape[1]
    iso = np.eye(n) / 30.0
    if kind == "rls":
        return rls_skill(t, st, X, np.eye(n) / float(a[0] if a else 30))
    if kind == "extra":
        E = extra_inputs(st, a[0])
        Xe = np.hstack([st["phi"], E, np.ones((len(E), 1))])
        d = np.concatenate([np.full(st["phi"].shape[1], 1 / 30.0),
                            np.full(E.shape[1], 1 / float(a[1])), [1 / 30.0]])
        return rls_skill(t, st, Xe, np.diag(d))
    if kind == "fisher":
        return rls_skill(t, st, X, np.linalg.inv(float(a[1]) * train.cov() + float(a[0]) * np.eye(n)))
    if kind == "eb":
        D = train.deltas()
        S = np.einsum("voi,voj->ij", D, D) / (D.shape[0] * D.shape[1])
        return rls_skill(t, st, X, float(a[0]) * S / np.trace(S) * n / 30.0 + np.eye(n) / float(a[1]))
    if kind == "lowrank":
        return rls_skill(t, st, X, iso, U=train.error_basis(int(a[0])))
    if kind == "sgd1":
        return rls_skill(t, st, X, iso, lr1=float(a[0]))
    if kind == "forget":
        return rls_skill(t, st, X, iso, forget=float(a[0]), guard=False)
    if kind == "inxf":
        return rls_skill(t, st, X, iso, lr_in=float(a[0]))
    if kind == "hindsight":
        W = hindsight(t, st, float(a[0]))
        xg, S = st["xg"], st["s"]
        y = xg[:-1] + S[:-1] * (X[:-1] @ W.T)
        return 1 - ((y - xg[1:]) ** 2).mean() / ((xg[:-1] - xg[1:]) ** 2).mean()
    sys.exit(f"online_variants.py: unknown variant '{spec}'")


def parse_args(argv, usage):
    """MODEL SPLIT CACHE_DIR SPEC... [--corpus DIR], as both scripts take
    them: (model, split, cache, specs, corpus_dir)."""
    args = list(argv)
    corpus_dir = os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")) + "/cbrnn-corpus"
    if "--corpus" in args:
        i = args.index("--corpus")
        if i + 1 >= len(args):
            sys.exit(usage)
        corpus_dir = args[i + 1]
        del args[i:i + 2]
    if len(args) < 4:
        sys.exit(usage)
    return args[0], args[1], args[2], args[3:], corpus_dir


def main():
    model, split, cache, specs, corpus_dir = parse_args(sys.argv[1:], __doc__)
    t, meta = read_safetensors(model)
    corpus = Corpus(corpus_dir, cache)
    train = TrainingStats(t, meta, corpus)
    print("| speaker | frozen | " + " | ".join(specs) + " |")
    print("|---|---|" + "---|" * len(specs))
    gains = []
    for spk in corpus.speakers(split):
        st = frozen_pass(t, meta, corpus.features(split, spk))
        fz = frozen_skill(t, st)
        g = [variant(v, t, st, train) - fz for v in specs]
        gains.append(g)
        print("| %s | %.3f | %s |" % (spk, fz, " | ".join("%+.3f" % x for x in g)), flush=True)
    gains = np.array(gains)
    print("| mean | | %s |" % " | ".join("%+.3f" % x for x in gains.mean(0)))
    print("| weakest | | %s |" % " | ".join("%+.3f" % x for x in gains.min(0)))


if __name__ == "__main__":
    main()
