#!/usr/bin/python3
"""scripts/online_report.py on hand-made runs whose skills are known: the
three windows (first 60 s, 60-90 s, the 30 s after the minute's files),
the gains over frozen, which speakers each window keeps, the means.
usage: online_report_test.py SCRIPTS_DIR WORK_DIR"""
import os
import shutil
import subprocess
import sys


def frames(path, seconds, loss_at):
    """A frames.csv at 100 frames/s; loss_at(time) -> loss, persistence 1."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("frame,time,loss,persistence_loss,surprise,learning,lr,marker,label,flags\n")
        f.write("0,0.0,,,,,,,,\n")  # the first frame scores nothing
        for k in range(1, int(seconds * 100)):
            t = k / 100.0
            f.write("%d,%.2f,%.6f,1.0,,,,,,\n" % (k, t, loss_at(t)))


def speaker(out, name, seconds, minute_end, hindsight):
    d = os.path.join(out, name)
    frames(os.path.join(d, "frozen", "frames.csv"), seconds, lambda t: 0.8)
    frames(os.path.join(d, "sgd", "frames.csv"), seconds, lambda t: 0.75)
    frames(os.path.join(d, "rls-30", "frames.csv"), seconds, lambda t: 0.7 if t < 60 else 0.6)
    frames(os.path.join(d, "hindsight", "frames.csv"), seconds, hindsight)
    frames(os.path.join(d, "minute", "frames.csv"), minute_end, lambda t: 0.7)


def main():
    scripts, work = sys.argv[1], sys.argv[2]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    # a: 100 s, minute's files to 62 s; hindsight fits the minute (0.5), not after (0.65)
    speaker(work, "tux_a", 100, 62.0, lambda t: 0.5 if t < 62 else 0.65)
    # b: 50 s only: in the first window, not in the two later ones
    speaker(work, "tux_b", 50, 50.0, lambda t: 0.4)
    with open(os.path.join(work, "speakers.txt"), "w") as f:
        f.write("tux:a\ntux:b\n")
    out = subprocess.run(["/usr/bin/python3", os.path.join(scripts, "online_report.py"), work],
                         capture_output=True, text=True, check=True).stdout
    sections = out.split("\n\n")
    want = [
        ("first 60 s", ["| tux:a | 60 | 0.200 | 0.250 (+0.050) | 0.300 (+0.100) | 0.500 (+0.300) |",
                        "| tux:b | 50 | 0.200 | 0.250 (+0.050) | 0.300 (+0.100) | 0.600 (+0.400) |",
                        "| mean of 2 | | 0.200 | +0.050 | +0.100 | +0.350 |"]),
        ("60-90 s", ["| tux:a | 30 | 0.200 | 0.250 (+0.050) | 0.400 (+0.200) |",
                     "| mean of 1 | | 0.200 | +0.050 | +0.200 |"]),
        ("after the minute", ["| tux:a | 30 | 0.200 | 0.250 (+0.050) | 0.400 (+0.200) | 0.350 (+0.150) |",
                              "| mean of 1 | | 0.200 | +0.050 | +0.200 | +0.150 |"]),
    ]
    fails = 0
    for (title, rows) in want:
        sec = [s for s in sections if title in s]
        body = out[out.index(sec[0]):] if sec else ""
        body = body[:body.find("\n\n", len(sec[0]) + 2)] if sec else ""
        for row in rows:
            if row not in body:
                print("FAIL %s: missing %r" % (title, row))
                fails += 1
        if title != "first 60 s" and "tux:b" in body:
            print("FAIL %s: tux:b has no 20 s there" % title)
            fails += 1
    if fails:
        print(out)
        return 1
    print("online_report: 3 windows OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
