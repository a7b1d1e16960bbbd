#!/usr/bin/python3
"""online_report.py OUT_DIR: the tables of scripts/online_rules.sh. For each
speaker folder of OUT_DIR (its runs frozen, sgd, rls-P and hindsight:
frames.csv of `cbrnn run`), skill = 1 - loss / persistence loss pooled
over a window of the stream, and each run's gain over frozen in it; last
row, the mean over speakers. Two windows: the first 60 s (the rules learn
from nothing), and 60-90 s (after a minute, still learning; speakers with
at least 20 s there). A third window, the 30 s after the speaker's minute
(the files of the hindsight run's minute, which end at 62 s or later),
sets the hindsight layer against the learners on frames it never saw:
what a last layer fitted to the minute carries to what comes next. Last,
the files after the minute: the minute's saved model learning on over
them (from its saved RLS state, and from the prior) against learning
straight on. Markdown on stdout."""
import csv
import os
import sys

WINDOWS = (("first 60 s", 0.0, 60.0, 0.0), ("60-90 s, after a minute of learning", 60.0, 90.0, 20.0),
           ("the 30 s after the minute's files (hindsight out of sample)", None, 30.0, 20.0))


def stream_end(path):
    """The time of the last frame of a frames.csv."""
    end = 0.0
    with open(path) as f:
        for r in csv.DictReader(f):
            end = float(r["time"])
    return end


def skill(path, lo, hi):
    loss = pers = 0.0
    n = 0
    with open(path) as f:
        for r in csv.DictReader(f):
            if r["loss"] in ("", "nan") or r["persistence_loss"] in ("", "nan"):
                continue
            if not lo <= float(r["time"]) < hi:
                continue
            loss += float(r["loss"])
            pers += float(r["persistence_loss"])
            n += 1
    return (1.0 - loss / pers if pers > 0 else float("nan")), n


def table(out, speakers, runs, title, lo, hi, min_seconds):
    print("\n%s:\n" % title)
    print("| speaker | seconds | " + " | ".join(runs) + " |")
    print("|---|---|" + "---|" * len(runs))
    sums, k = [0.0] * len(runs), 0
    for spk in speakers:
        d = os.path.join(out, spk.replace(":", "_").replace("/", "_"))
        a, b = lo, hi
        if lo is None:  # hi seconds from the end of the speaker's minute
            a = stream_end(os.path.join(d, "minute", "frames.csv"))
            b = a + hi
        vals = [skill(os.path.join(d, r, "frames.csv"), a, b) for r in runs]
        if vals[0][1] < 100 * max(min_seconds, 1):
            continue
        cells = ["%.3f" % vals[0][0]] + ["%.3f (%+.3f)" % (v, v - vals[0][0]) for v, _ in vals[1:]]
        print("| %s | %.0f | %s |" % (spk, vals[0][1] / 100.0, " | ".join(cells)))
        for i, (v, _) in enumerate(vals):
            sums[i] += v - (vals[0][0] if i else 0.0)
        k += 1
    if k:
        print("| mean of %d | | %.3f | %s |" % (k, sums[0] / k,
                                               " | ".join("%+.3f" % (s / k) for s in sums[1:])))


def main():
    out = sys.argv[1]
    with open(os.path.join(out, "speakers.txt")) as f:
        speakers = [s.strip() for s in f if s.strip()]
    first = os.path.join(out, speakers[0].replace(":", "_").replace("/", "_"))
    rls = sorted((r for r in os.listdir(first) if r.startswith("rls-")), key=lambda r: float(r[4:]))
    for i, (title, lo, hi, min_seconds) in enumerate(WINDOWS):
        runs = ["frozen", "sgd"] + rls + (["hindsight"] if i != 1 else [])
        table(out, speakers, runs, title, lo, hi, min_seconds)
    resumed_table(out, speakers)


def resumed_table(out, speakers):
    """The files after the minute (speakers with at least 20 s of them):
    frozen and rls-30 (learning straight on) from the minute's end in
    their streams, against the minute's saved
    model learning on over them as a new stream (resumed: from its saved
    RLS state; resumed-prior: from the prior around its weights)."""
    print("\nthe files after the minute, learning on from the minute's saved model:\n")
    print("| speaker | seconds | frozen | rls-30, straight on | resumed-prior | resumed |")
    print("|---|---|---|---|---|---|")
    sums, k = [0.0] * 3, 0
    for spk in speakers:
        d = os.path.join(out, spk.replace(":", "_").replace("/", "_"))
        if not os.path.exists(os.path.join(d, "resumed", "frames.csv")):
            continue
        a = stream_end(os.path.join(d, "minute", "frames.csv"))
        fz, n = skill(os.path.join(d, "frozen", "frames.csv"), a, float("inf"))
        if n < 100 * 20:  # at least 20 s, as the windows above
            continue
        vals = [skill(os.path.join(d, "rls-30", "frames.csv"), a, float("inf"))[0]] + \
            [skill(os.path.join(d, r, "frames.csv"), 0.0, float("inf"))[0]
             for r in ("resumed-prior", "resumed")]
        print("| %s | %.0f | %.3f | %s |" % (spk, n / 100.0, fz,
                                           " | ".join("%.3f (%+.3f)" % (v, v - fz) for v in vals)))
        sums = [s + v - fz for s, v in zip(sums, vals)]
        k += 1
    if k:
        print("| mean of %d | | | %s |" % (k, " | ".join("%+.3f" % (s / k) for s in sums)))


if __name__ == "__main__":
    main()
