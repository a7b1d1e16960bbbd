#!/usr/bin/python3
"""Training on voice A beats persistence on a held-out voice-A file.

Runs a short `cbrnn train` on samples/voiceA_us_male_{1,2,3}.wav with
voiceA_us_male_4.wav held out (--val-files), then checks:
  - the log (CSV) has the documented columns, starts with an `init` row,
    goes through `warmup` then `frozen`, and its last skill is > 0 (and
    better than at the start);
  - `cbrnn eval --json` on the held-out file gives skill > 0, the same
    numbers as the log's last row (both run the whole file from h = 0);
  - `cbrnn info --json` shows the provenance (files, steps, final skill)
    and the frozen cortex;
  - the same seed gives a byte-identical model file (SOURCE_DATE_EPOCH fixes
    the date).

usage: train_skill.py CBRNN WORKDIR SAMPLES_DIR
"""
import csv
import json
import os
import subprocess
import sys


def run(cmd, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {r.returncode}\n{r.stderr}")
    return r.stdout


def main():
    cbrnn, work, samples = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)
    a = [os.path.join(samples, f"voiceA_us_male_{i}.wav") for i in range(1, 5)]
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
    fails = []

    def train(out, log):
        return run([cbrnn, "train", "-o", out, "--log", log, "-q",
                    "--hidden", "64", "--cb", "128", "--warmup-steps", "150", "--steps", "150",
                    "--batch", "16", "--seq-len", "50", "--eval-every", "50", "--seed", "2",
                    "--val-files", a[3], a[0], a[1], a[2]], env=env)

    model = os.path.join(work, "m.safetensors")
    log = os.path.join(work, "train.csv")
    print(train(model, log).strip())

    with open(log, newline="") as f:
        rows = list(csv.DictReader(f))
        f.seek(0)
        header = f.readline().strip()
    want = "step,phase,train_loss,val_loss,val_persistence_loss,skill,val_accuracy"
    if header != want:
        fails.append(f"log header '{header}', expected '{want}'")
    phases = [r["phase"] for r in rows]
    if phases[0] != "init" or "warmup" not in phases or phases[-1] != "frozen":
        fails.append(f"log phases {phases}: expected init, warmup..., frozen...")
    if phases.index("frozen") < len(phases) - phases[::-1].index("warmup"):
        fails.append(f"log phases {phases}: frozen before warmup ended")
    steps = [int(r["step"]) for r in rows]
    if steps != [0, 50, 100, 150, 200, 250, 300]:
        fails.append(f"log steps {steps}, expected 0, 50, ..., 300")
    first, last = float(rows[0]["skill"]), float(rows[-1]["skill"])
    print(f"log: skill {first:.4f} at step 0 -> {last:.4f} at step {steps[-1]}")
    if not last > 0:
        fails.append(f"held-out skill in the log is {last}, expected > 0")
    if not last > first:
        fails.append(f"skill did not improve: {first} -> {last}")

    ev = json.loads(run([cbrnn, "eval", model, a[3], "--json"]))
    f0 = ev["files"][0]
    print(f"eval: loss {f0['loss']:.6f} persistence {f0['persistence_loss']:.6f} "
          f"skill {f0['skill']:.6f}")
    if not f0["skill"] > 0:
        fails.append(f"cbrnn eval skill on the held-out file is {f0['skill']}, expected > 0")
    for col, key in (("val_loss", "loss"), ("val_persistence_loss", "persistence_loss"),
                     ("skill", "skill")):
        lv, ev_v = float(rows[-1][col]), f0[key]
        if abs(lv - ev_v) > 1e-6 * max(1.0, abs(ev_v)):
            fails.append(f"log {col} {lv} != cbrnn eval {key} {ev_v}")

    info = json.loads(run([cbrnn, "info", model, "--json"]))
    md = info["metadata"]
    checks = {"train_files": "3", "val_files": "1", "steps_done": "300", "seed": "2",
              "date": "2023-11-14T22:13:20Z"}
    for k, v in checks.items():
        if md.get(k) != v:
            fails.append(f"info metadata {k} = {md.get(k)!r}, expected {v!r}")
    if abs(float(md.get("final_skill", "nan")) - f0["skill"]) > 1e-5:
        fails.append(f"info final_skill {md.get('final_skill')} != eval skill {f0['skill']}")
    if info["frozen"] != ["cortex"] or info["target"] != "predict" or not info["normaliser"]:
        fails.append(f"info: frozen {info['frozen']} target {info['target']} "
                     f"normaliser {info['normaliser']}")

    model2 = os.path.join(work, "m2.safetensors")
    train(model2, os.path.join(work, "train2.csv"))
    with open(model, "rb") as f1, open(model2, "rb") as f2:
        b1, b2 = f1.read(), f2.read()
    # The command line differs only in the output names; compare the data.
    n1, n2 = int.from_bytes(b1[:8], "little"), int.from_bytes(b2[:8], "little")
    if b1[8 + n1:] != b2[8 + n2:]:
        fails.append("the same seed gave different parameters")
    else:
        print(f"same seed, same parameters ({len(b1) - 8 - n1} bytes identical)")

    if fails:
        sys.exit("FAIL:\n  " + "\n  ".join(fails))
    print("ok")


if __name__ == "__main__":
    main()
