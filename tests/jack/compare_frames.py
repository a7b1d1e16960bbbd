#!/usr/bin/python3
"""compare_frames.py LIVE.csv OFFLINE.csv TOL: the per-frame logs of a live
run (cbrnn-jack --log) and its offline replay (cbrnn run frames.csv) must
have the same frames, and on every frame the same loss, persistence loss
and surprise to within TOL (both empty where there is no value) and the
same learning flag. Prints the first mismatches as what, where, expected,
got; exit 0 when they agree, 1 otherwise."""
import csv
import sys


def main():
    live = list(csv.DictReader(open(sys.argv[1])))
    off = list(csv.DictReader(open(sys.argv[2])))
    tol = float(sys.argv[3])
    bad = 0
    if len(live) != len(off):
        print("frames: live log has %d, offline %d" % (len(live), len(off)))
        return 1
    worst = 0.0
    for i, (a, b) in enumerate(zip(live, off)):
        if a["frame"] != b["frame"] or a["learning"] != b["learning"]:
            print("row %d: frame/learning live %s/%s offline %s/%s" %
                  (i, a["frame"], a["learning"], b["frame"], b["learning"]))
            bad += 1
        for k in ("loss", "persistence_loss", "surprise"):
            if (a[k] == "") != (b[k] == ""):
                print("frame %s %s: live %r, offline %r" % (a["frame"], k, a[k], b[k]))
                bad += 1
            elif a[k] != "":
                d = abs(float(a[k]) - float(b[k]))
                worst = max(worst, d)
                if not d <= tol:
                    if bad < 10:
                        print("frame %s %s: expected (live) %s, got (offline) %s, |diff| %.3g > %g"
                              % (a["frame"], k, a[k], b[k], d, tol))
                    bad += 1
    print("%d frames compared, largest |diff| %.3g, %d mismatches" % (len(live), worst, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
