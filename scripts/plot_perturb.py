#!/usr/bin/python3
"""plot_perturb.py DIR --png OUT.png --json OUT.json: the figure and numbers
of the perturbed-feedback experiment (scripts/perturb_adaptation.sh). DIR
holds the runs adapt, control, frozen, fcontrol (cbrnn run output folders).

The perturbation's cost to a model at each frame is its loss minus the
loss of the same model (learning or not) on the unperturbed schedule:
adapt - control while learning, frozen - fcontrol while frozen. Both pairs
hear the same samples before the onset, so the cost is exactly 0 there.
Numbers: the mean surprise in the first 0.5 s of the perturbation and of
the washout against the 5 s before, and the step's effect on it (step
minus no step); the cost over the first and the last 10 s of the
perturbation and of the washout, for the learning and the frozen model
and their difference (learning minus frozen: what learning adds to the
cost, with what the speech itself does to both taken out; it falls while
the cerebellum adapts, and a positive value in the washout is an
after-effect). Debian's
/usr/bin/python3 (numpy, matplotlib)."""
import argparse
import csv
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

RUNS = ("adapt", "control", "frozen", "fcontrol")


def load(d):
    rows = list(csv.DictReader(open(os.path.join(d, "frames.csv"))))
    f = lambda k: np.array([float(r[k]) if r[k] != "" else np.nan for r in rows])
    return f("time"), f("loss"), f("surprise")


def phases(d):
    names = {r["marker"]: r["name"] for r in csv.DictReader(open(os.path.join(d, "markers.csv")))}
    at = {}
    for r in csv.DictReader(open(os.path.join(d, "frames.csv"))):
        for m in filter(None, r["marker"].split(";")):
            if names[m].startswith("phase:"):
                at[names[m][6:]] = float(r["time"])
    return at


def smooth(v, n):
    """Trailing (causal) mean over n frames."""
    ok = np.isfinite(v)
    c = np.cumsum(np.r_[0, np.where(ok, v, 0)])
    m = np.cumsum(np.r_[0, ok.astype(float)])
    i = np.arange(1, len(v) + 1)
    j = np.maximum(i - n, 0)
    return (c[i] - c[j]) / np.maximum(m[i] - m[j], 1e-9)


def window(t, v, a, b):
    w = (t >= a) & (t < b) & np.isfinite(v)
    return float(v[w].mean())


def spread(files, out):
    """Mean, sd, min and max over replicates of every number in the JSONs."""
    runs = [json.load(open(f)) for f in files]

    def walk(xs):
        if isinstance(xs[0], dict):
            return {k: walk([x[k] for x in xs]) for k in xs[0]}
        v = np.array(xs, dtype=float)
        return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                "min": float(v.min()), "max": float(v.max())}
    res = {"replicates": len(runs), "numbers": walk(runs)}
    json.dump(res, open(out, "w"), indent=1)
    c = res["numbers"]["cost"]
    for k in c:
        for w, v in c[k].items():
            print("%-22s %-24s mean %+.5f sd %.5f [%+.5f, %+.5f]" % (k, w, v["mean"], v["sd"],
                                                                     v["min"], v["max"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", nargs="+")
    ap.add_argument("--png")
    ap.add_argument("--json", required=True)
    ap.add_argument("--spread", action="store_true",
                    help="the dirs are JSON files of replicates: mean, sd, min, max of each number")
    a = ap.parse_args()
    if a.spread:
        return spread(a.dir, a.json)
    a.dir = a.dir[0]
    r = {k: load(os.path.join(a.dir, k)) for k in RUNS}
    t = r["adapt"][0]
    ph = phases(os.path.join(a.dir, "adapt"))
    on, off = ph["perturbation"], ph["washout"]
    cost_l = r["adapt"][1] - r["control"][1]
    cost_f = r["frozen"][1] - r["fcontrol"][1]
    end = t[-1] + 0.01
    wins = {"perturbation_first_10s": (on, on + 10), "perturbation_last_10s": (off - 10, off),
            "washout_first_10s": (off, off + 10), "washout_last_10s": (end - 10, end)}
    ds_l = r["adapt"][2] - r["control"][2]   # the step's effect on surprise
    ds_f = r["frozen"][2] - r["fcontrol"][2]
    num = {
        "onset_s": on, "washout_s": off,
        "pre_onset_cost_max_abs": float(np.nanmax(np.abs(np.r_[cost_l[t < on], cost_f[t < on]]))),
        "surprise": {k: {"before_onset_5s": window(t, r[k][2], on - 5, on),
                         "onset_0.5s": window(t, r[k][2], on, on + 0.5),
                         "before_washout_5s": window(t, r[k][2], off - 5, off),
                         "washout_0.5s": window(t, r[k][2], off, off + 0.5)}
                     for k in ("adapt", "frozen", "control")},
        "surprise_step_minus_no_step": {
            k: {"onset_0.5s": window(t, d, on, on + 0.5), "onset_2s": window(t, d, on, on + 2),
                "washout_0.5s": window(t, d, off, off + 0.5),
                "washout_2s": window(t, d, off, off + 2)}
            for k, d in (("learning", ds_l), ("frozen", ds_f))},
        # 10 s windows: the first and last of the perturbation, the first
        # and last of the washout
        "cost": {k: {w: window(t, d, a, b) for w, (a, b) in wins.items()}
                 for k, d in (("learning", cost_l), ("frozen", cost_f),
                              ("learning_minus_frozen", cost_l - cost_f))},
        "mean_loss": {k: {p: window(t, r[k][1], s, e) for p, (s, e) in
                          {"baseline": (0, on), "perturbation": (on, off),
                           "washout": (off, t[-1] + 1)}.items()} for k in RUNS},
    }
    json.dump(num, open(a.json, "w"), indent=1)
    print(json.dumps(num, indent=1))
    if not a.png:
        return

    fig, ax = plt.subplots(3, 1, figsize=(10, 8.5), sharex=True)
    n1, n3 = 100, 20  # 1 s and 0.2 s at a 10 ms hop
    for k, c in (("adapt", "C0"), ("control", "C2"), ("frozen", "C3")):
        ax[0].plot(t, smooth(r[k][1], n1), c, lw=1, label=k)
    ax[0].set_ylabel("loss (1 s mean)")
    ax[0].set_ylim(0, 0.2)  # the first second (the normaliser settling) reaches 0.65
    ax[0].legend(loc="upper right", fontsize=8)
    ax[1].plot(t, smooth(cost_l, 3 * n1), "C0", lw=1.2, label="learning: adapt - control")
    ax[1].plot(t, smooth(cost_f, 3 * n1), "C3", lw=1.2, label="frozen: frozen - fcontrol")
    ax[1].axhline(0, color="k", lw=0.5)
    ax[1].set_ylabel("loss, step - no step\n(3 s mean)")
    ax[1].legend(loc="upper right", fontsize=8)
    ax[2].plot(t, smooth(ds_l, n3), "C0", lw=0.8, label="learning: adapt - control")
    ax[2].plot(t, smooth(ds_f, n3), "C3", lw=0.8, label="frozen: frozen - fcontrol")
    ax[2].axhline(0, color="k", lw=0.5)
    ax[2].set_ylabel("surprise, step - no step\n(0.2 s mean)")
    ax[2].set_xlabel("time (s)")
    ax[2].legend(loc="upper right", fontsize=8)
    for x in ax:
        x.axvspan(on, off, color="0.9", zorder=0)
        for p, s in ph.items():
            x.axvline(s, color="0.5", lw=0.5)
    ax[0].set_title("The model hears its own feedback: -1 semitone, a step to +1 at %.0f s, "
                    "back at %.0f s (shaded: perturbation)" % (on, off), fontsize=10)
    fig.tight_layout()
    fig.savefig(a.png, dpi=110)


if __name__ == "__main__":
    main()
