#!/usr/bin/python3
"""plot_log.py LOG.csv OUT.png [--smooth SEC]: the picture of a per-frame
log (cbrnn-jack --log or cbrnn run's frames.csv) that `cbrnn summary`
gives in numbers: loss (top) and surprise (bottom, log scale) over time,
moving averages of --smooth seconds (default 1), gated frames left out,
phases (markers named phase:NAME) as shaded, labelled spans and every
other marker as a thin line. Marker names come from LOG.csv.markers or
markers.csv beside the log. Run with Debian's /usr/bin/python3 (numpy,
matplotlib)."""
import argparse
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def markers(log):
    for p in (log + ".markers", os.path.join(os.path.dirname(log), "markers.csv")):
        if os.path.exists(p):
            return {r["marker"]: r["name"] for r in csv.DictReader(open(p))}
    return {}


def smooth(t, v, sec):
    out = np.full_like(v, np.nan)
    ok = np.isfinite(v)
    for i in range(len(v)):
        w = ok & (t > t[i] - sec) & (t <= t[i])
        if w.any():
            out[i] = v[w].mean()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("out")
    ap.add_argument("--smooth", type=float, default=1.0)
    a = ap.parse_args()
    rows = list(csv.DictReader(open(a.log)))
    if not rows or "loss" not in rows[0]:
        sys.exit("plot_log.py: %s: not a per-frame log" % a.log)
    names = markers(a.log)
    t = np.array([float(r["time"]) for r in rows])
    gated = np.array([int(r["flags"] or 0) & 16 != 0 for r in rows])
    num = lambda k: np.array([float(r[k]) if r[k] else np.nan for r in rows])
    loss, sur = num("loss"), num("surprise")
    loss[gated] = np.nan
    sur[gated] = np.nan
    fig, ax = plt.subplots(2, 1, sharex=True, figsize=(10, 5.5))
    ax[0].plot(t, smooth(t, loss, a.smooth), color="C0", lw=1.2)
    ax[0].set_ylabel("loss (%g s mean)" % a.smooth)
    ax[1].semilogy(t, smooth(t, sur, a.smooth), color="C1", lw=1.2)
    ax[1].set_ylabel("surprise")
    ax[1].set_xlabel("time (s)")
    phases = []
    for r, tt in zip(rows, t):
        for m in filter(None, r["marker"].split(";")):
            n = names.get(m, m)
            if n.startswith("phase:"):
                phases.append((tt, n[6:]))
            else:
                for x in ax:
                    x.axvline(tt, color="0.5", lw=0.6, ls=":")
    colour = {}  # one colour per phase name, in order of first appearance
    for k, (t0, name) in enumerate(phases):
        t1 = phases[k + 1][0] if k + 1 < len(phases) else t[-1]
        c = colour.setdefault(name, "C%d" % (2 + len(colour) % 8))
        for x in ax:
            x.axvspan(t0, t1, color=c, alpha=0.15, lw=0)
        ax[0].text(t0, 1.0, name, transform=ax[0].get_xaxis_transform(), fontsize=7,
                   va="bottom", rotation=0)
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)


if __name__ == "__main__":
    main()
