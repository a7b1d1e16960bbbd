#!/usr/bin/python3
"""plot_adaptation.py: the figure and the numbers of docs/ADAPTATION.md
from the runs scripts/adaptation.sh made: per clip NAME, the per-frame logs
NAME.{frozen,learn,sgd,decay}/frames.csv of `cbrnn run` (learn: the
model's rule, RLS; sgd and decay: --rule sgd), NAME.linear.json
(`cbrnn eval --linear-fit` of the default model on the clip) and the
`cbrnn eval` JSON of the default and the adapted model on the speaker's
held-out recordings and on the warm-up voices. Writes a PNG of the loss
over time (5 s trailing means) and a JSON of the numbers, and prints
Markdown tables. Skill = 1 - loss / persistence loss, pooled over frames.
Run with Debian's /usr/bin/python3 (numpy, matplotlib)."""
import argparse
import csv
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

CLIPS = [("it_carlo", "Italian, asterisk voice Carlo"), ("el_tuxpaint", "Greek, tuxpaint voice")]


def load(path):
    t, loss, pers = [], [], []
    with open(path) as f:
        for r in csv.DictReader(f):
            if r["loss"] == "":
                continue
            t.append(float(r["time"]))
            loss.append(float(r["loss"]))
            pers.append(float(r["persistence_loss"]))
    return np.array(t), np.array(loss), np.array(pers)


def trailing(x, n=500):
    """Trailing mean over n frames (5 s at the 10 ms hop)."""
    c = np.cumsum(np.insert(x, 0, 0.0))
    i = np.arange(len(x))
    a = np.maximum(0, i + 1 - n)
    return (c[i + 1] - c[a]) / (i + 1 - a)


def skill(loss, pers):
    return float(1.0 - loss.sum() / pers.sum())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--decay", type=float, required=True)
    ap.add_argument("--png", required=True)
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    res = {}
    fig, axes = plt.subplots(len(CLIPS), 1, figsize=(9, 6.5), sharex=True)
    for ax, (name, label) in zip(axes, CLIPS):
        runs = {k: load(os.path.join(a.out_dir, "%s.%s" % (name, k), "frames.csv"))
                for k in ("frozen", "learn", "sgd", "decay")}
        t, _, pers = runs["frozen"]
        first = t < 60.0
        half = t >= t[-1] / 2
        r = {"seconds": float(t[-1])}
        for k, (_, loss, p) in runs.items():
            r[k] = {"skill_first_60s": skill(loss[first], p[first]),
                    "skill_all": skill(loss, p), "skill_second_half": skill(loss[half], p[half])}
        with open(os.path.join(a.out_dir, name + ".linear.json")) as f:
            ov = json.load(f)["overall"]
        r["linear_skill_all"] = ov["linear_skill"]
        for where in ("heldout", "warm"):
            for tag, key in (("default", "default"), (name + ".adapted", "adapted")):
                with open(os.path.join(a.out_dir, "%s.%s.%s.json" % (name, where, tag))) as f:
                    o = json.load(f)["overall"]
                r["%s_%s" % (where, key)] = {"skill": o["skill"], "frames": o["frames"]}
        res[name] = r
        for k, style in (("frozen", "-"), ("sgd", "-"), ("learn", "-")):
            tt, loss, _ = runs[k]
            ax.plot(tt, trailing(loss), style, lw=1.2,
                    label={"frozen": "frozen cerebellum", "sgd": "learning online, SGD",
                           "learn": "learning online, RLS (default)"}[k])
        ax.plot(t, trailing(pers), "k--", lw=1, label="persistence")
        ax.set_title("%s (never heard in training)" % label, fontsize=10)
        ax.set_ylabel("MSE, 5 s mean")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper right")
    axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(a.png, dpi=110)
    with open(a.json, "w") as f:
        json.dump(res, f, indent=1, sort_keys=True)
    print("| voice | frozen | RLS (default) | SGD | SGD, decay %g | linear | "
          "frozen (2nd half) | RLS (2nd half) | SGD (2nd half) |" % a.decay)
    print("|---|---|---|---|---|---|---|---|---|")
    for name, label in CLIPS:
        r = res[name]
        print("| %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f |" % (
            label, r["frozen"]["skill_first_60s"], r["learn"]["skill_first_60s"],
            r["sgd"]["skill_first_60s"], r["decay"]["skill_first_60s"], r["linear_skill_all"],
            r["frozen"]["skill_second_half"], r["learn"]["skill_second_half"],
            r["sgd"]["skill_second_half"]))
    print()
    print("| voice | held-out recordings: default | adapted | warm-up voices: default | adapted |")
    print("|---|---|---|---|---|")
    for name, label in CLIPS:
        r = res[name]
        print("| %s | %.3f | %.3f | %.3f | %.3f |" % (
            label, r["heldout_default"]["skill"], r["heldout_adapted"]["skill"],
            r["warm_default"]["skill"], r["warm_adapted"]["skill"]))


if __name__ == "__main__":
    main()
