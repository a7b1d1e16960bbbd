#!/usr/bin/python3
"""Draws figure.png of a `cbrnn experiment` folder: the curriculum level N
against epoch for each variant (mean over seeds as a line, min..max over
seeds as a band), like the paper's learning-curve figures. For --task
speech folders it draws validation loss and skill against steps and
against wall-clock time instead. With --levels FILE it also writes a
Markdown table of the epochs each variant needed to first reach each level
N (mean and range over seeds; how many seeds got there), the form of the
paper's claim "reaches a given N in fewer epochs". Reads only the folder's
files; writes only DIR/figure.png (or --out) and the --levels file.

    /usr/bin/python3 scripts/plot_experiment.py DIR [--out FILE] [--title T] [--levels FILE]
"""
import argparse
import csv
import glob
import json
import os
import re
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

COLORS = {"cbrnn": "#1f77b4", "rnn": "#d62728", "frozen": "#2ca02c", "interleaved": "#9467bd",
          "cbrnn-full": "#17becf", "reservoir": "#7f7f7f", "cbrnn-res": "#ff7f0e"}
SPARE = ["#8c564b", "#e377c2", "#bcbd22", "#393b79", "#637939"]  # variants not named above
LABELS = {"cbrnn": "CB-RNN", "cbrnn@speech": "CB-RNN, warm-up then frozen cortex", "rnn": "RNN (param-matched)", "frozen": "CB-RNN, frozen core",
          "interleaved": "CB-RNN, interleaved core", "cbrnn-full": "CB-RNN, all trained",
          "reservoir": "reservoir + CB",
          "cbrnn-res": "CB-RNN, residual output + running normaliser"}


def color_of(variant, seen):
    """One colour per variant (every seed's line, and the legend, share it)."""
    if variant in COLORS:
        return COLORS[variant]
    if variant not in seen:
        seen[variant] = SPARE[len(seen) % len(SPARE)]
    return seen[variant]


def read_csv(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return rows


def curves_by_variant(folder):
    out = {}
    for path in sorted(glob.glob(os.path.join(folder, "curves", "*-seed*.csv"))):
        m = re.match(r"(.+)-seed(\d+)\.csv$", os.path.basename(path))
        if m:
            out.setdefault(m.group(1), []).append(read_csv(path))
    return out


def plot_tasks(folder, summary, out, title):
    curves = curves_by_variant(folder)
    epochs = summary["epochs"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    spare = {}
    for variant in summary["variants"]:
        runs = [r[:epochs] for r in curves.get(variant, []) if len(r) >= epochs]
        if not runs:
            continue
        n = np.array([[int(row["N"]) for row in r] for r in runs], dtype=float)
        x = np.arange(1, epochs + 1)
        c = color_of(variant, spare)
        # interleaved equals frozen until N = 12: dashed, so both stay visible
        ax.plot(x, n.mean(0), color=c, lw=1.6, ls="--" if variant == "interleaved" else "-",
                label="%s (%d seed%s)" % (LABELS.get(variant, variant), len(runs),
                                          "" if len(runs) == 1 else "s"))
        ax.fill_between(x, n.min(0), n.max(0), color=c, alpha=0.18, lw=0)
    if summary["task"] == "switch":
        # the task changes every 10 levels from N = 2 (experiment/tasks.c): DMS
        # at 2..11, parity at 12..21, ...; a dotted line where each block starts
        top = ax.get_ylim()[1]
        for k, start in enumerate(range(12, int(top) + 1, 10)):
            ax.axhline(start - 0.5, color="k", lw=0.8, ls=":")
            ax.text(epochs, start - 0.45, "parity from N = %d" % start if k % 2 == 0
                    else "DMS from N = %d" % start, fontsize=7, va="bottom", ha="right")
    ax.set_xlabel("epoch (%d training steps, batch 64)" % summary.get("train_steps", 100))
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel("curriculum level N")
    cap = summary.get("max_n_cap")
    name = {"multitask": "multitask (DMS + parity heads, shared N)",
            "switch": "switch (DMS / parity every 10 levels)"}.get(summary["task"],
                                                                    "N-" + summary["task"])
    ax.set_title(title or "%s%s: mean over seeds, band min..max"
                 % (name, ", cap N = %d" % cap if cap else ""), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def levels_table(folder, summary, path, step=1):
    """Epochs to first reach each N, per variant: mean [min..max] (k/n seeds)."""
    curves = curves_by_variant(folder)
    epochs = summary["epochs"]
    variants = [v for v in summary["variants"] if curves.get(v)]
    first = {}
    top = 0
    for v in variants:
        runs = [[int(row["N"]) for row in r[:epochs]] for r in curves[v] if len(r) >= epochs]
        first[v] = runs
        top = max([top] + [max(r) for r in runs])
    lines = ["| N | " + " | ".join(variants) + " |",
             "|---:|" + "---:|" * len(variants)]
    for n in range(3, top + 1, step):
        cells = []
        for v in variants:
            hits = [next((i + 1 for i, x in enumerate(r) if x >= n), None) for r in first[v]]
            got = [h for h in hits if h is not None]
            if not got:
                cells.append("- (0/%d)" % len(hits))
                continue
            txt = "%.1f [%d..%d]" % (sum(got) / len(got), min(got), max(got))
            if len(got) < len(hits):
                txt += " (%d/%d)" % (len(got), len(hits))
            cells.append(txt)
        lines.append("| %d | %s |" % (n, " | ".join(cells)))
    with open(path, "w") as f:
        f.write("Epochs to first reach level N: mean [min..max] over seeds; (k/n): only k of n "
                "seeds reached it within %d epochs, mean over those.\n\n" % epochs)
        f.write("\n".join(lines) + "\n")


def plot_speech(folder, summary, out, title):
    curves = curves_by_variant(folder)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    low, high, spare = [], [], {}
    for variant, runs in curves.items():
        c = color_of(variant, spare)
        for i, r in enumerate(runs):
            if not r:
                continue
            steps = np.array([float(row["step"]) for row in r])
            wall = np.array([float(row["wall_s"]) for row in r])
            skill = np.array([float(row["val_skill"]) for row in r])
            lab = LABELS.get(variant + "@speech", LABELS.get(variant, variant)) if i == 0 else None
            if len(skill) > 1:  # the untrained model's skill would squash the axis
                low.append(skill[1:].min())
                high.append(skill.max())
            axes[0].plot(steps, skill, color=c, lw=1.3, label=lab)
            axes[1].plot(wall, skill, color=c, lw=1.3, label=lab)
    axes[0].set_xlabel("training step")
    axes[1].set_xlabel("wall-clock seconds (this machine)")
    for ax in axes:
        ax.set_ylabel("validation skill (1 - MSE / persistence MSE)")
        ax.grid(alpha=0.3)
    if low:
        pad = 0.05 * (max(high) - min(low) + 1e-9)
        for ax in axes:
            ax.set_ylim(min(low) - pad, max(high) + pad)
    axes[0].legend(fontsize=8)
    fig.suptitle(title or "next-frame prediction on %s" % summary.get("corpus", "speech"))
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder")
    p.add_argument("--out")
    p.add_argument("--title")
    p.add_argument("--levels", help="also write the epochs-to-level table (Markdown) here")
    a = p.parse_args()
    spath = os.path.join(a.folder, "summary.json")
    try:
        with open(spath) as f:
            summary = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit("plot_experiment.py: %s: %s" % (spath, e))
    out = a.out or os.path.join(a.folder, "figure.png")
    if summary.get("task") == "speech":
        plot_speech(a.folder, summary, out, a.title)
    else:
        plot_tasks(a.folder, summary, out, a.title)
        if a.levels:
            levels_table(a.folder, summary, a.levels)


if __name__ == "__main__":
    main()
