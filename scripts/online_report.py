#!/usr/bin/python3
"""online_report.py OUT_DIR: the table of scripts/online_rules.sh. For each
speaker folder of OUT_DIR (its runs frozen, sgd, rls-P: frames.csv of
`cbrnn run`), skill = 1 - loss / persistence loss pooled over the stream,
and each learning run's gain over frozen; last row, the mean over
speakers. Markdown on stdout."""
import csv
import os
import sys


def skill(path):
    loss = pers = 0.0
    n = 0
    with open(path) as f:
        for r in csv.DictReader(f):
            if r["loss"] in ("", "nan") or r["persistence_loss"] in ("", "nan"):
                continue
            loss += float(r["loss"])
            pers += float(r["persistence_loss"])
            n += 1
    return 1.0 - loss / pers, n


def main():
    out = sys.argv[1]
    with open(os.path.join(out, "speakers.txt")) as f:
        speakers = [s.strip() for s in f if s.strip()]
    first = os.path.join(out, speakers[0].replace(":", "_").replace("/", "_"))
    runs = ["frozen", "sgd"] + sorted((r for r in os.listdir(first) if r.startswith("rls-")),
                                      key=lambda r: float(r[4:]))
    print("| speaker | seconds | " + " | ".join(runs) + " |")
    print("|---|---|" + "---|" * len(runs))
    sums = [0.0] * len(runs)
    for spk in speakers:
        d = os.path.join(out, spk.replace(":", "_").replace("/", "_"))
        vals = [skill(os.path.join(d, r, "frames.csv")) for r in runs]
        cells = ["%.3f" % vals[0][0]] + ["%.3f (%+.3f)" % (v, v - vals[0][0]) for v, _ in vals[1:]]
        print("| %s | %.0f | %s |" % (spk, vals[0][1] / 100.0, " | ".join(cells)))
        for i, (v, _) in enumerate(vals):
            sums[i] += v - (vals[0][0] if i else 0.0)
    k = len(speakers)
    print("| mean of %d | | %.3f | %s |" % (k, sums[0] / k,
                                           " | ".join("%+.3f" % (s / k) for s in sums[1:])))


if __name__ == "__main__":
    main()
