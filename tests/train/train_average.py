#!/usr/bin/python3
"""`cbrnn train --average F` ends on the mean of the weights over the last
fraction F of the last phase's steps. Without --lr-decay the run with
--steps k is the same trajectory cut at step k (same seed, same batches),
so the averaged model of a 40-step phase with --average 0.25 must hold the
mean of the models cut at steps 31..40, tensor by tensor (the cortex,
frozen in that phase, bit for bit). The log gets an "average" row at the
last step, whose skill the model's final_skill records; the metadata
records average. Refused with exit 2 and a message naming the option:
--average 1.5, -0.1, x.

usage: train_average.py CBRNN WORKDIR SAMPLES_DIR
"""
import csv
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trainlib import args, report, run, safetensors  # noqa: E402


def main():
    cbrnn, work, samples = args()
    j = lambda n: os.path.join(work, n)
    files = [os.path.join(samples, "voiceA_us_male_%d.wav" % i) for i in (1, 2)]
    base = [cbrnn, "train", "-q", "--hidden", "16", "--cb", "32", "--warmup-steps", "20",
            "--seed", "5", "--val-files", os.path.join(samples, "voiceA_us_male_3.wav"),
            "--eval-every", "1000", *files]
    for k in range(31, 41):
        run(base + ["-o", j("cut%d.safetensors" % k), "--steps", str(k)])
    run(base + ["-o", j("avg.safetensors"), "--steps", "40", "--average", "0.25",
                "--log", j("avg.csv")])
    fails = []
    cuts = [safetensors(j("cut%d.safetensors" % k))[1] for k in range(31, 41)]
    meta, avg = safetensors(j("avg.safetensors"))
    last = cuts[-1]
    moved = 0
    for name, a in avg.items():
        want = np.mean([c[name].astype(np.float64) for c in cuts], axis=0)
        err = float(np.max(np.abs(a - want)))
        scale = float(np.max(np.abs(want))) or 1.0
        if name.startswith("cortex.") and not np.array_equal(a, last[name]):
            fails.append(f"{name}: the frozen cortex changed")
        elif err > 1e-6 * scale:
            fails.append(f"{name}: max |averaged - mean of steps 31..40| = {err:.3g}")
        if name.startswith("cerebellum.") and not np.array_equal(a, last[name]):
            moved += 1
    if moved == 0:
        fails.append("the averaged cerebellum equals the last step's: nothing was averaged")
    if meta.get("average") != "0.25":
        fails.append(f"metadata average {meta.get('average')!r}, expected '0.25'")
    rows = list(csv.DictReader(open(j("avg.csv"))))
    if rows[-1]["phase"] != "average" or rows[-1]["step"] != "60":
        fails.append(f"last log row {rows[-1]}: expected phase average at step 60")
    elif abs(float(rows[-1]["skill"]) - float(meta.get("final_skill", "nan"))) > 1e-5:
        fails.append(f"final_skill {meta.get('final_skill')} is not the average row's {rows[-1]['skill']}")
    for bad in ("1.5", "-0.1", "x"):
        r = subprocess.run(base + ["-o", j("bad.safetensors"), "--steps", "2", "--average", bad],
                           capture_output=True, text=True)
        if r.returncode != 2 or "--average" not in r.stderr or os.path.exists(j("bad.safetensors")):
            fails.append(f"--average {bad}: exit {r.returncode}, {r.stderr.strip()!r}")
    report(fails, "ok: --average ends on the mean of the last steps' weights")


if __name__ == "__main__":
    main()
