#!/usr/bin/python3
"""plot_adaptation.py: the figure and the numbers of docs/ADAPTATION.md
from the runs scripts/adaptation.sh made (frames.csv of `cbrnn run` with
the cerebellum frozen, learning, and learning with decay; `cbrnn eval`
JSON of the default and the adapted model). Writes a PNG of the loss over
time (1 s moving averages) and a JSON of the numbers, and prints Markdown
tables. Run with Debian's /usr/bin/python3 (numpy, matplotlib)."""
import argparse
import csv
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


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


def smooth(x, n=100):
    """Trailing mean over n frames (1 s at the 10 ms hop): causal, like the
    running estimate a listener would have."""
    c = np.cumsum(np.insert(x, 0, 0.0))
    out = np.empty_like(x)
    for i in range(len(x)):
        a = max(0, i + 1 - n)
        out[i] = (c[i + 1] - c[a]) / (i + 1 - a)
    return out


def window_means(t, x, edges):
    return [float(np.mean(x[(t >= a) & (t < b)])) for a, b in zip(edges[:-1], edges[1:])]


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--bounds", default="", help="clip boundaries in seconds, comma-separated")
    p.add_argument("--decay", default="")
    p.add_argument("--png", required=True)
    p.add_argument("--json", required=True)
    a = p.parse_args()
    runs = {}
    for name in ("frozen", "learn", "decay"):
        runs[name] = load(os.path.join(a.out_dir, name, "frames.csv"))
    t, _, pers = runs["frozen"]
    bounds = [float(b) for b in a.bounds.split(",") if b.strip()]
    edges_b = np.cumsum([0.0] + bounds).tolist() + [float(t[-1]) + 1.0]
    half = float(t[-1]) / 2

    res = {"frames": int(len(t)), "seconds": round(float(t[-1]), 2), "runs": {}}
    for name, (tt, loss, pp) in runs.items():
        res["runs"][name] = {
            "mean_loss": float(np.mean(loss)),
            "first_half": float(np.mean(loss[tt < half])),
            "second_half": float(np.mean(loss[tt >= half])),
            "per_clip": window_means(tt, loss, edges_b),
            "first_second": float(np.mean(loss[tt < tt[0] + 1.0])),
            "seconds_1_to_5": window_means(tt, loss, [tt[0] + k for k in range(6)]),
        }
    res["persistence"] = {"mean_loss": float(np.mean(pers)),
                          "second_half": float(np.mean(pers[t >= half])),
                          "per_clip": window_means(t, pers, edges_b)}
    ev = {}
    for which in ("B4", "A"):
        for m in ("default", "adapted_B123", "adapted_B123_decay"):
            path = os.path.join(a.out_dir, "eval_%s_%s.json" % (which, m))
            with open(path) as f:
                j = json.load(f)
            o = j.get("overall", j)
            ev["%s_%s" % (which, m)] = {k: o.get(k) for k in ("loss", "persistence_loss", "skill")}
    res["eval"] = ev
    with open(a.json, "w") as f:
        json.dump(res, f, indent=1)

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110,
                                  gridspec_kw={"width_ratios": [3, 1]})
    curves = (("persistence (x[t+1] = x[t])", t, pers, "0.6", 1.0),
              ("cerebellum frozen (--no-learn)", runs["frozen"][0], runs["frozen"][1], "tab:red", 1.4),
              ("learning, decay %s toward warm-up" % a.decay, runs["decay"][0], runs["decay"][1],
               "tab:green", 1.0),
              ("learning online (--learn)", runs["learn"][0], runs["learn"][1], "tab:blue", 1.4))
    for label, tt, y, col, lw in curves:
        ax.plot(tt, smooth(y), color=col, lw=lw, label=label)
        first = tt < tt[0] + 5.0
        ax2.plot(tt[first], smooth(y, 10)[first], color=col, lw=lw)
    for b in np.cumsum(bounds):
        ax.axvline(b, color="0.85", lw=0.8, zorder=0)
    ax.set_xlabel("time in the voice-B stream (s); grey lines: clip boundaries")
    ax.set_ylabel("next-frame MSE (1 s trailing mean)")
    ax.set_title("Default model (warm-up on voice A) listening to voice B")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right", fontsize=8)
    ax2.set_title("the first 5 s (0.1 s means)")
    ax2.set_xlabel("time (s)")
    ax2.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(a.png)

    r = res["runs"]
    print("| run | mean loss | first half | second half | " +
          " | ".join("clip %d" % (i + 1) for i in range(len(edges_b) - 1)) + " |")
    print("|---|---|---|---|" + "---|" * (len(edges_b) - 1))
    for name, label in (("frozen", "frozen (--no-learn)"), ("learn", "learning (--learn)"),
                        ("decay", "learning, --decay %s" % a.decay)):
        x = r[name]
        print("| %s | %.4f | %.4f | %.4f | %s |" % (label, x["mean_loss"], x["first_half"],
              x["second_half"], " | ".join("%.4f" % v for v in x["per_clip"])))
    pz = res["persistence"]
    print("| persistence baseline | %.4f | | %.4f | %s |" % (pz["mean_loss"], pz["second_half"],
          " | ".join("%.4f" % v for v in pz["per_clip"])))
    print()
    print("first seconds (mean loss per second): frozen %s; learning %s" % (
        ", ".join("%.3f" % v for v in r["frozen"]["seconds_1_to_5"]),
        ", ".join("%.3f" % v for v in r["learn"]["seconds_1_to_5"])))
    print()
    print("| model, evaluated frozen | voice B clip 4: loss | skill | voice A (all 4 clips): loss | skill |")
    print("|---|---|---|---|---|")
    for m, label in (("default", "default (voice A warm-up)"),
                     ("adapted_B123", "adapted online on voice-B clips 1-3"),
                     ("adapted_B123_decay", "the same with --decay %s" % a.decay)):
        b, aa = ev["B4_" + m], ev["A_" + m]
        print("| %s | %.4f | %.3f | %.4f | %.3f |" % (label, b["loss"], b["skill"], aa["loss"],
                                                     aa["skill"]))


if __name__ == "__main__":
    main()
