#!/usr/bin/python3
"""linear_context.py: would a "speaker context" input pay? A cheap proxy
tried before building one into the model (docs/SPEECH.md).

The idea: the running normaliser hides from the cortex where this voice's
spectrum sits (it sees deviations from the voice's own 1 s average); feed
that back as extra inputs (the running mean, the log running standard
deviation, a slower 10 s mean), as speaker-adapted recognisers feed
i-vectors. The proxy: the least-squares linear predictor of the next
frame's change (in running-scale units, weighted by the squared scale,
i.e. scored in the corpus-normalised space) from the last 8 normalised
frames, with and without those inputs, fitted on every STEP-th training
file and scored on the whole validation split (pooled skill against
persistence, as docs/SPEECH.md scores models). Files are reset (each
starts from the corpus statistics), as `cbrnn eval` does.

usage: linear_context.py CORPUS_DIR CACHE_DIR [STEP]   (STEP: default 3)
Features: `cbrnn features --rate 16000` (build/cli/cbrnn), cached in
CACHE_DIR; the corpus normaliser of samples/default.safetensors. About
20 minutes on the 2-core machine the first time (feature extraction).
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
LAGS = 8
A_FAST, A_SLOW, FLOOR2, CAP = 0.01, 0.001, 0.01, 5.0  # 1 s and 10 s at a 10 ms hop


def split_files(corpus, split):
    cmd = ". %s; split_files %s %s" % (LISTS, corpus, split)
    return subprocess.run(["sh", "-c", cmd], capture_output=True, text=True,
                          check=True).stdout.split()


def features(cache, path):
    out = os.path.join(cache, path.replace("/", "_") + ".npy")
    if not os.path.exists(out):
        subprocess.run([CBRNN, "features", path, "-o", out, "--rate", "16000"], check=True,
                       capture_output=True)
    return np.load(out).astype(np.float64)


def design(x):
    """Lagged normalised frames, running scale and the context inputs."""
    F = x.shape[1]
    mu, var, slow = np.zeros(F), np.ones(F), np.zeros(F)
    Z, S, MU, LS, SLOW = [], [], [], [], []
    for v in x:
        d = v - mu
        mu = mu + A_FAST * d
        var = (1 - A_FAST) * (var + A_FAST * d * d)
        slow = slow + A_SLOW * (v - slow)
        s = np.minimum(np.sqrt(var + FLOOR2), CAP)
        Z.append((v - mu) / s)
        S.append(s)
        MU.append(mu.copy())
        LS.append(np.log(s))
        SLOW.append(slow.copy())
    Z = np.array(Z)
    lags = [np.vstack([np.repeat(Z[:1], k, 0), Z[:len(Z) - k]]) for k in range(LAGS)]
    return dict(lag=np.hstack(lags), s=np.array(S), mu=np.array(MU), ls=np.array(LS),
                slow=np.array(SLOW), x=x)


def load(corpus, cache, split, step, mean, std):
    out = []
    for f in split_files(corpus, split)[::step]:
        try:
            x = features(cache, f)
        except subprocess.CalledProcessError:
            continue
        if len(x) >= 20:
            out.append(design((x - mean) / std))
    return out


def rows(ds, kinds):
    X, Y, W = [], [], []
    for d in ds:
        X.append(np.hstack([d["lag"]] + [d[k] for k in kinds] + [np.ones((len(d["x"]), 1))])[:-1])
        Y.append((d["x"][1:] - d["x"][:-1]) / d["s"][:-1])
        W.append(d["s"][:-1])
    return np.vstack(X), np.vstack(Y), np.vstack(W)


def main():
    if len(sys.argv) not in (3, 4) or sys.argv[1] in ("-h", "--help"):
        sys.exit(__doc__)
    corpus, cache = sys.argv[1], sys.argv[2]
    step = int(sys.argv[3]) if len(sys.argv) == 4 else 3
    os.makedirs(cache, exist_ok=True)
    t, _ = read_safetensors(os.path.join(TOP, "samples", "default.safetensors"))
    mean, std = t["frontend.mean"], t["frontend.std"]
    tr = load(corpus, cache, "train", step, mean, std)
    va = load(corpus, cache, "valid", 1, mean, std)
    print("fitted on %d training files, scored on %d validation files" % (len(tr), len(va)))
    for kinds in [[], ["mu"], ["ls"], ["mu", "ls"], ["mu", "ls", "slow"]]:
        X, Y, W = rows(tr, kinds)
        w = (W ** 2).mean(1)
        A = (X * w[:, None]).T @ X
        A += 1e-3 * np.trace(A) / len(A) * np.eye(len(A))
        B = np.linalg.solve(A, (X * w[:, None]).T @ Y)
        Xv, Yv, Wv = rows(va, kinds)
        err = (Xv @ B - Yv) * Wv
        skill = 1 - (err ** 2).mean() / ((Yv * Wv) ** 2).mean()
        print("last %d frames%s: validation skill %.4f"
              % (LAGS, "".join(" + " + k for k in kinds), skill))


if __name__ == "__main__":
    main()
