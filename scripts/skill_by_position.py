#!/usr/bin/python3
"""skill_by_position.py OUT_DIR: skill (1 - loss / persistence loss) by a
frame's position in its file, from `cbrnn run --reset-each` output
(OUT_DIR/frames.csv and files.csv): is a model weak at the start of each
file (where the running normaliser and the cortex start over) or
throughout? Markdown on stdout.

    cbrnn run --model M --no-learn --reset-each --quiet --out-dir D FILES...
    scripts/skill_by_position.py D
"""
import csv
import os
import sys

BUCKETS = [(0, 10), (10, 30), (30, 100), (100, 200), (200, None)]


def main():
    d = sys.argv[1]
    with open(os.path.join(d, "files.csv")) as f:
        starts = sorted(int(r["first_row"]) for r in csv.DictReader(f))
    sums = [[0.0, 0.0, 0] for _ in BUCKETS]
    k = 0
    with open(os.path.join(d, "frames.csv")) as f:
        for row, r in enumerate(csv.DictReader(f)):
            while k + 1 < len(starts) and row >= starts[k + 1]:
                k += 1
            if r["loss"] in ("", "nan") or r["persistence_loss"] in ("", "nan"):
                continue
            pos = row - starts[k]
            for i, (lo, hi) in enumerate(BUCKETS):
                if pos >= lo and (hi is None or pos < hi):
                    sums[i][0] += float(r["loss"])
                    sums[i][1] += float(r["persistence_loss"])
                    sums[i][2] += 1
    total = sum(s[0] for s in sums)
    print("| frames into the file | frames | skill | share of the loss |")
    print("|---|---|---|---|")
    for (lo, hi), (loss, pers, n) in zip(BUCKETS, sums):
        if n:
            print("| %s | %d | %.3f | %.2f |" % ("%d-%s" % (lo, hi - 1 if hi else "end"), n,
                                              1 - loss / pers, loss / total))
    loss, pers = sum(s[0] for s in sums), sum(s[1] for s in sums)
    print("| all | %d | %.3f | 1.00 |" % (sum(s[2] for s in sums), 1 - loss / pers))


if __name__ == "__main__":
    main()
