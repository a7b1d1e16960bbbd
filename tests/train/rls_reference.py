#!/usr/bin/python3
"""The engine's RLS online rule (engine/engine_rls.c) is recursive least
squares, checked against a float64 numpy reference written here.

`cbrnn train --online-rule rls` stores the rule in a tiny readout model
(residual output behind the running normaliser); `cbrnn info` shows it;
`cbrnn run --learn` (rule auto: the model's) runs a clip of another voice.
The reference recomputes every frame from the model file and `cbrnn
features`: corpus normaliser, running normaliser, cortex, cerebellum,
y = x + s * head, and after each scored frame the RLS step on the last
layer,
    u = P phi, c = forget / w + phi.u, W += (r - W phi) u^T / c,
    P = (P - u u^T / c) / forget (w = mean s^2, r = (target - x) / s),
from P = I / prior, forgetting only while trace(P) stays within the
prior's (n / prior), and w times 3 / sqrt(surprise) for a frame whose
surprise ((loss + 0.01) / (running mean + 0.01), the engine's) is above 9. Every frame's loss must agree with frames.csv to 1e-3
of the mean loss, and the adapted model (--save-model) must hold the
reference's last layer to 1e-3 of its scale. The same run with --rule sgd
must differ from the reference by far more (the test tells the rules
apart), and bad --rule values and rls on a classify model are refused.
The adapted model carries the rule's state (rls.P, the reference's P);
learning on from it on another clip is the reference going on from that
P, and with --rls-prior the reference starting afresh from the prior.

usage: rls_reference.py CBRNN WORKDIR SAMPLES_DIR
"""
import csv
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trainlib import safetensors  # noqa: E402


def run(cmd, ok=True):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if ok and r.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {r.returncode}\n{r.stderr}")
    return r


def read_safetensors(path):
    """({name: float64 array}, metadata) of a model file."""
    meta, t = safetensors(path)
    return {k: v.astype(np.float64) for k, v in t.items()}, meta


def reference(t, meta, feats, P0=None):
    """Per-frame losses (frame t scores the prediction of t - 1), the final
    last layer and P, in float64, and how many frames got the Huber weight.
    P0: the rule's saved state to go on from, else I / prior."""
    xg = (feats - t["frontend.mean"]) / t["frontend.std"]
    a = min(float(meta["hop_ms"]) / (1000.0 * float(meta["stream_norm"])), 1.0)
    fl2 = float(meta["stream_norm_floor"]) ** 2
    prior, forget = float(meta["rls_prior"]), float(meta["rls_forget"])
    Wih, Whh = t["cortex.rnn.weight_ih_l0"], t["cortex.rnn.weight_hh_l0"]
    bh = t["cortex.rnn.bias_ih_l0"] + t["cortex.rnn.bias_hh_l0"]
    W1, b1 = t["cerebellum.fc1.weight"], t["cerebellum.fc1.bias"]
    W = np.hstack([t["cerebellum.fc2.weight"], t["cerebellum.fc2.bias"][:, None]])
    n = W.shape[1]
    P = np.eye(n) / prior if P0 is None else P0.copy()
    F = xg.shape[1]
    mu, var, h = np.zeros(F), np.ones(F), np.zeros(Whh.shape[0])
    losses, prev, mean, outliers = [np.nan], None, None, 0
    for k in range(len(xg)):
        d = xg[k] - mu
        mu = mu + a * d
        var = (1 - a) * (var + a * d * d)
        s = np.minimum(np.sqrt(var + fl2), 5.0)
        z = (xg[k] - mu) / s
        if prev is not None:  # score and learn the prediction made at k - 1
            phi, y, base, sc = prev
            loss = float(np.float32(((y - xg[k]) ** 2).mean()))
            losses.append(loss)
            r = (xg[k] - base) / sc
            u = P @ phi
            w = (sc ** 2).mean()
            if mean is not None and (loss + 0.01) / (mean + 0.01) > 9:  # Huber
                w *= 3 / np.sqrt((loss + 0.01) / (mean + 0.01))
                outliers += 1
            mean = loss if mean is None else mean
            mean = float(np.float32(mean + (loss - mean) / 100))  # the surprise's running mean
            c = forget / w + phi @ u
            W += np.outer(r - W @ phi, u) / c
            P = P - np.outer(u, u) / c
            if np.trace(P) / forget <= n / prior:  # forgetting stays within the prior
                P = P / forget
        h = np.tanh(Wih @ z + bh + Whh @ h)
        phi = np.append(np.maximum(W1 @ h + b1, 0), 1.0)
        prev = (phi, xg[k] + s * (W @ phi), xg[k], s)
    return np.array(losses), W, P, outliers


def frame_losses(path):
    with open(path) as f:
        return np.array([float(r["loss"]) if r["loss"] not in ("", "nan") else np.nan
                         for r in csv.DictReader(f)])


def check_resume(cbrnn, work, samples, adapted, P_ref):
    """The adapted model carries the rule's state (rls.P, the reference's P
    to float precision; `cbrnn info` says so), and learning on from it on
    another clip is the reference going on from that P, not from the
    prior."""
    ta, meta = read_safetensors(adapted)
    if "rls.P" not in ta:
        sys.exit("FAIL: the adapted model holds no rls.P")
    pdiff = np.abs(ta["rls.P"] - P_ref).max() / np.abs(P_ref).max()
    print(f"saved rls.P {ta['rls.P'].shape}: max |cbrnn - numpy| = {pdiff:.2e} of its scale")
    if pdiff > 1e-3 or not np.array_equal(ta["rls.P"], ta["rls.P"].T):
        sys.exit("FAIL: the saved rls.P is not the rule's state")
    if "rls state:    saved (rls.P" not in run([cbrnn, "info", adapted]).stdout:
        sys.exit("FAIL: cbrnn info does not show the saved rule state")
    clip2 = os.path.join(samples, "voiceA_us_male_2.wav")
    feats2 = os.path.join(work, "feats2.npy")
    run([cbrnn, "features", clip2, "-o", feats2, "--ref-rate", meta["sample_rate"]])
    x2 = np.load(feats2).astype(np.float64)
    ref2 = reference(ta, meta, x2, P0=ta["rls.P"])[0]
    prior2 = reference(ta, meta, x2)[0]
    out2 = os.path.join(work, "resumed")
    r = run([cbrnn, "run", "--model", adapted, "--learn", "--out-dir", out2, clip2])
    if "from the model's saved state" not in r.stdout:
        sys.exit(f"FAIL: cbrnn run does not say it goes on from the saved state:\n{r.stdout}")
    got2 = frame_losses(os.path.join(out2, "frames.csv"))
    scale = np.nanmean(ref2)
    worst = np.nanmax(np.abs(got2 - ref2)) / scale
    apart = np.nanmax(np.abs(prior2 - ref2)) / scale
    print(f"learning on from the adapted model: max |cbrnn - numpy| = {worst:.2e} of the mean "
          f"loss; from the prior instead it would differ by {apart:.2e}")
    if got2.shape != ref2.shape or worst > 1e-3 or apart < 100 * max(worst, 1e-6):
        sys.exit("FAIL: learning on from a saved model does not go on from its rls.P")
    out3 = os.path.join(work, "fresh")  # a prior asked for: a fresh start from it
    r = run([cbrnn, "run", "--model", adapted, "--learn", "--rls-prior", meta["rls_prior"],
             "--out-dir", out3, clip2])
    fresh = np.nanmax(np.abs(frame_losses(os.path.join(out3, "frames.csv")) - prior2)) / scale
    print(f"--rls-prior {meta['rls_prior']} on it: max |cbrnn - numpy from the prior| = {fresh:.2e}")
    if fresh > 1e-3 or "from the model's saved state" in r.stdout:
        sys.exit("FAIL: --rls-prior does not start afresh from the prior")


def main():
    cbrnn, work, samples = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)
    model = os.path.join(work, "tiny_rls.safetensors")
    clip = os.path.join(samples, "voiceB_gb_female_2.wav")
    run([cbrnn, "train", "-o", model, "-q", "--hidden", "24", "--cb", "48",
         "--output-mode", "residual", "--stream-norm", "0.5", "--online-rule", "rls",
         "--rls-prior", "20", "--rls-forget", "0.999",
         "--warmup-steps", "20", "--steps", "10", "--batch", "4", "--seq-len", "40",
         "--lr", "3e-3", "--val-fraction", "0", "--seed", "5",
         os.path.join(samples, "voiceA_us_male_1.wav")])
    info = run([cbrnn, "info", model]).stdout
    if "online rule:  rls" not in info or "prior 20" not in info:
        sys.exit(f"FAIL: cbrnn info does not show the stored rule:\n{info}")
    t, meta = read_safetensors(model)
    assert meta["online_rule"] == "rls", meta
    feats = os.path.join(work, "feats.npy")
    # at the model's level: it was trained at 16 kHz, the clip is 22.05 kHz
    run([cbrnn, "features", clip, "-o", feats, "--ref-rate", meta["sample_rate"]])
    ref, W_ref, P_ref, outliers = reference(t, meta, np.load(feats).astype(np.float64))
    if outliers < 1:
        sys.exit("FAIL: no frame of the clip reached the Huber weight: the test would not see it")

    out = os.path.join(work, "rls")
    adapted = os.path.join(work, "adapted.safetensors")
    r = run([cbrnn, "run", "--model", model, "--learn", "--out-dir", out,
             "--save-model", adapted, clip])
    if "rule rls, prior 20, forget 0.999" not in r.stdout:
        sys.exit(f"FAIL: cbrnn run does not say it runs the model's rule:\n{r.stdout}")
    got = frame_losses(os.path.join(out, "frames.csv"))
    if got.shape != ref.shape:
        sys.exit(f"FAIL: {got.shape[0]} frames in frames.csv, the reference has {ref.shape[0]}")
    scale = np.nanmean(ref)
    worst = np.nanmax(np.abs(got - ref)) / scale
    print(f"rls: {len(got)} frames ({outliers} down-weighted as outliers), mean loss {np.nanmean(got):.6f} (reference "
          f"{scale:.6f}); max |cbrnn - numpy| = {worst:.2e} of the mean loss")
    ta, _ = read_safetensors(adapted)
    W_got = np.hstack([ta["cerebellum.fc2.weight"], ta["cerebellum.fc2.bias"][:, None]])
    wdiff = np.abs(W_got - W_ref).max() / np.abs(W_ref).max()
    moved = np.abs(W_ref - np.hstack([t["cerebellum.fc2.weight"],
                                      t["cerebellum.fc2.bias"][:, None]])).max()
    print(f"adapted last layer: max |cbrnn - numpy| = {wdiff:.2e} of its scale "
          f"(RLS moved it by up to {moved:.3g})")
    if not (worst <= 1e-3 and wdiff <= 1e-3 and moved > 1e-2):
        sys.exit("FAIL: the engine's RLS does not agree with the reference")
    for k in ("fc1.weight", "fc1.bias"):  # earlier layers keep their loaded weights
        if not np.array_equal(ta["cerebellum." + k], t["cerebellum." + k]):
            sys.exit(f"FAIL: rls changed cerebellum.{k}")

    check_resume(cbrnn, work, samples, adapted, P_ref)

    sgd = os.path.join(work, "sgd")
    r = run([cbrnn, "run", "--model", model, "--learn", "--rule", "sgd", "--out-dir", sgd, clip])
    other = np.nanmax(np.abs(frame_losses(os.path.join(sgd, "frames.csv")) - ref)) / scale
    print(f"--rule sgd: max |sgd - rls reference| = {other:.2e} of the mean loss")
    if other < 100 * max(worst, 1e-6):
        sys.exit("FAIL: --rule sgd is not told apart from rls")

    for bad, want in ((["--rule", "fast"], "--rule 'fast': expected auto, sgd or rls"),
                      (["--rls-forget", "2"], "--rls-forget '2': expected a number in [0.9, 1]"),
                      (["--rls-prior", "0"], "--rls-prior '0': expected a number in [1e-9, 1e9]")):
        r = run([cbrnn, "run", "--model", model, "--learn", "--out-dir", sgd] + bad + [clip],
                ok=False)
        if r.returncode != 2 or want not in r.stderr:
            sys.exit(f"FAIL: {bad}: exit {r.returncode}, stderr {r.stderr!r}")
    r = run([cbrnn, "train", "-o", os.path.join(work, "x.safetensors"), "-q", "--target",
             "classify", "--labels-dir", work, "--online-rule", "rls", clip], ok=False)
    if r.returncode != 2 or "--online-rule rls is for the readout wiring" not in r.stderr:
        sys.exit(f"FAIL: train --online-rule rls on classify: exit {r.returncode}, {r.stderr!r}")
    print("ok: the engine's RLS is recursive least squares, stored, shown and chosen per model")


if __name__ == "__main__":
    main()
