#!/usr/bin/python3
"""`cbrnn train` / `cbrnn eval` for the map and classify targets, input
lists and folders, and Ctrl-C during training.

- map: the teacher of each file is a low-passed copy (moving average over 8
  samples, written here with numpy + wave), found by --teacher-suffix in the
  same folder (the teachers must not be taken as inputs) and by --pairs;
  after training, eval's loss beats the persistence guess (the input's own
  features) on a held-out file.
- classify: Audacity label files (with a frequency line and CRLF ends);
  the model stores the sorted class names; eval reports accuracy in [0, 1]
  and better than chance on the training file.
- @list input; folder input.
- SIGINT: the step in progress finishes, a usable model is saved
  atomically, exit status 130, metadata interrupted=yes.

usage: train_targets.py CBRNN WORKDIR SAMPLES_DIR
"""
import csv
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import wave

import numpy as np

FAILS = []


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {r.returncode}\n{r.stderr}")
    return r.stdout


def read_wav(path):
    with wave.open(path, "rb") as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768
    return x, rate


def write_wav(path, x, rate):
    y = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(y.tobytes())


def expect(cond, what):
    if not cond:
        FAILS.append(what)
        print(f"FAIL {what}")


def main():
    cbrnn, work, samples = sys.argv[1:4]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    j = lambda *p: os.path.join(work, *p)
    a = [os.path.join(samples, f"voiceA_us_male_{i}.wav") for i in range(1, 5)]
    small = ["--hidden", "32", "--cb", "64", "--batch", "8", "--seq-len", "40", "-q"]

    # ---- map ----
    os.makedirs(j("map"))
    for i in (0, 1, 3):
        x, rate = read_wav(a[i])
        lp = np.convolve(x, np.ones(8) / 8, mode="full")[: len(x)]
        write_wav(j("map", f"a{i}.wav"), x, rate)
        write_wav(j("map", f"a{i}_lp.wav"), lp, rate)
    mm = j("map.safetensors")
    out = run([cbrnn, "train", "-o", mm, *small, "--warmup-steps", "60", "--steps", "60",
               "--target", "map", "--teacher-suffix", "_lp", "--val-files", j("map", "a3.wav"),
               j("map")])
    print("map:", out.strip())
    info = json.loads(run([cbrnn, "info", mm, "--json"]))
    expect(info["target"] == "map", f"map model target {info['target']}")
    expect(info["metadata"]["train_files"] == "2" and info["metadata"]["val_files"] == "1",
           f"map: teacher files were taken as inputs: {info['metadata']}")
    ev = json.loads(run([cbrnn, "eval", mm, j("map", "a3.wav"), "--teacher-suffix", "_lp",
                         "--json"]))
    f0 = ev["files"][0]
    print(f"map eval: loss {f0['loss']:.4f} persistence {f0['persistence_loss']:.4f} "
          f"skill {f0['skill']:.4f}")
    expect(f0["skill"] > 0, f"map: held-out skill {f0['skill']} not > 0")
    with open(j("pairs.txt"), "w") as f:
        f.write("# input, teacher\nmap/a3.wav\tmap/a3_lp.wav\n")
    ev2 = json.loads(run([cbrnn, "eval", mm, "--pairs", j("pairs.txt"), "--json"]))
    expect(ev2["files"][0]["loss"] == f0["loss"], "map: --pairs and --teacher-suffix disagree")
    run([cbrnn, "train", "-o", j("map2.safetensors"), *small, "--warmup-steps", "3", "--steps",
         "3", "--target", "map", "--pairs", j("pairs.txt"), "--val-fraction", "0"])

    # ---- classify ----
    os.makedirs(j("labels"))
    for i in (0, 1):
        x, rate = read_wav(a[i])
        # Label by loudness so the classes are learnable: 100 ms blocks.
        blk = rate // 10
        n = len(x) // blk
        rms = np.sqrt((x[: n * blk].reshape(n, blk) ** 2).mean(axis=1))
        thr = np.median(rms)
        name = os.path.splitext(os.path.basename(a[i]))[0]
        with open(j("labels", name + ".txt"), "w", newline="") as f:
            for k in range(n):
                lab = "loud speech" if rms[k] > thr else "quiet"
                f.write(f"{k * 0.1:.6f}\t{(k + 1) * 0.1:.6f}\t{lab}\r\n")
                if k == 3:
                    f.write("\\\t120.000000\t3400.000000\r\n")
    cm = j("cls.safetensors")
    out = run([cbrnn, "train", "-o", cm, *small, "--warmup-steps", "80", "--steps", "40",
               "--target", "classify", "--labels-dir", j("labels"), "--val-files", a[1],
               "--log", j("cls.csv"), a[0]])
    print("classify:", out.strip())
    info = json.loads(run([cbrnn, "info", cm, "--json"]))
    expect(info["classes"] == ["loud speech", "quiet"], f"classes {info['classes']}")
    expect(info["n_out"] == 2, f"classify n_out {info['n_out']}")
    with open(j("cls.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    expect(rows[-1]["skill"] == "" and rows[-1]["val_accuracy"] != "",
           f"classify log row {rows[-1]}")
    for path in (a[0], a[1]):
        ev = json.loads(run([cbrnn, "eval", cm, path, "--labels-dir", j("labels"), "--json"]))
        acc = ev["files"][0]["accuracy"]
        print(f"classify eval {os.path.basename(path)}: accuracy {acc:.3f} over "
              f"{ev['files'][0]['labelled_frames']} labelled frames")
        expect(0 <= acc <= 1, f"accuracy {acc}")
        if path == a[0]:
            expect(acc > 0.6, f"classify: training-file accuracy {acc} not above chance")
    expect(abs(float(rows[-1]["val_accuracy"]) - acc) < 1e-6,
           f"log val_accuracy {rows[-1]['val_accuracy']} != eval {acc}")

    # ---- inputs from a list and a folder ----
    os.makedirs(j("corpus", "sub"))
    shutil.copy(a[0], j("corpus", "sub", "one.wav"))
    shutil.copy(a[1], j("corpus", "two.WAV"))
    with open(j("corpus", "notes.txt"), "w") as f:
        f.write("not audio: skipped by the folder search\n")
    with open(j("list.txt"), "w") as f:
        f.write(f"corpus\n\n# comment\n{os.path.abspath(a[2])}\n")
    lm = j("list.safetensors")
    run([cbrnn, "train", "-o", lm, *small, "--warmup-steps", "2", "--steps", "2",
         "--val-fraction", "0", "@" + j("list.txt")])
    md = json.loads(run([cbrnn, "info", lm, "--json"]))["metadata"]
    expect(md["train_files"] == "3", f"@list + folder gave {md['train_files']} files, expected 3")

    # ---- Ctrl-C ----
    im = j("int.safetensors")
    log = j("int.csv")

    def interrupt(out):
        p = subprocess.Popen([cbrnn, "train", "-o", out, *small, "--warmup-steps", "1000000",
                              "--eval-every", "1", "--log", log, a[0]],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Wait (without a time limit on correctness) until training is under
        # way: the log, written as LOG.tmp.HOST.PID until the model is saved, has rows.
        deadline = time.time() + 60
        while time.time() < deadline:
            tmp = glob.glob(log + ".tmp.*")
            if tmp and sum(1 for _ in open(tmp[0])) >= 3:
                break
            time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
        return p, err

    p, err = interrupt(im)
    print("interrupt:", err.strip().splitlines()[-1])
    expect(p.returncode == 130, f"SIGINT: exit status {p.returncode}, expected 130")
    expect("interrupted at step" in err, f"SIGINT: message {err!r}")
    if os.path.exists(im):
        md = json.loads(run([cbrnn, "info", im, "--json"]))["metadata"]
        expect(md.get("interrupted") == "yes", f"SIGINT: metadata {md}")
        expect(int(md["steps_done"]) >= 2, f"SIGINT: steps_done {md['steps_done']}")
        ev = json.loads(run([cbrnn, "eval", im, a[1], "--json"]))
        expect(np.isfinite(ev["overall"]["loss"]), "SIGINT: saved model does not evaluate")
    else:
        expect(False, "SIGINT: no model saved")
    # Interrupted again, with a model at -o now: that one is kept, the new
    # one goes beside it.
    if os.path.exists(im):
        with open(im, "rb") as f:
            before = f.read()
        p, err = interrupt(im)
        beside = j("int.interrupted.safetensors")
        with open(im, "rb") as f:
            kept = f.read() == before
        expect(p.returncode == 130 and kept and os.path.exists(beside) and
               "the model already at -o is kept" in err,
               f"SIGINT over an existing model: kept {kept}, beside {os.path.exists(beside)} "
               f"({err.strip().splitlines()[-1] if err.strip() else ''})")
    leftovers = [f for f in os.listdir(work) if f.endswith(".tmp")]
    expect(not leftovers, f"temporary files left: {leftovers}")

    if FAILS:
        sys.exit("FAIL:\n  " + "\n  ".join(FAILS))
    print("ok")


if __name__ == "__main__":
    main()
