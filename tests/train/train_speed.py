#!/usr/bin/python3
"""`cbrnn train --speed-perturb` and `cbrnn features --speed`: a file read
as if recorded at speed x its rate (pitch, formants and tempo scale
together), checked against sox's `speed` effect as reference.

- `cbrnn features --speed S` of voice A equals `cbrnn features` of sox's
  `speed S` copy frame by frame: the same frame count, and the bands below
  7 kHz (the first 36 of 40 at 16 kHz) within 0.01 nats on average and
  0.05 at the 99th percentile (the two resamplers' roll-offs near Nyquist
  differ, so the top four bands are only held within 1.5 on average);
  the unperturbed file is far from it (the check can fail).
- `cbrnn train` of voice A with --speed-perturb 0.9,1.1 trains on as many
  frames as on voice A plus sox's two copies (within 2 per copy), and its
  corpus normaliser is voice A's alone, bit for bit (it describes the
  recordings, so models with and without copies are scored alike).
- A 44.1 kHz copy of voice A with --rate 16000 gives as many training
  frames (its perturbed copies are resampled straight to the model's rate).
- The validation file is not perturbed: its frame count is the same with
  and without the option; the model records train_files 1 and
  speed_perturb "0.9,1.1"; the summary line names the copies.
- Bad uses exit 2 with a message naming the option: a speed of 1, out of
  range, not a number, more than 8, and --target map; and --speed out of
  range for `cbrnn features`.

usage: train_speed.py CBRNN WORKDIR SAMPLES_DIR
"""
import os
import subprocess

import numpy as np

from trainlib import args, report, run, safetensors


def main():
    cbrnn, work, samples = args()
    a = os.path.join(samples, "voiceA_us_male_1.wav")
    val = os.path.join(samples, "voiceB_gb_female_1.wav")
    copies = []
    for s in ("0.9", "1.1"):
        c = os.path.join(work, f"a_{s}.wav")
        # float output: no dither, so only the speed differs
        run(["sox", "-D", a, "-e", "floating-point", "-b", "32", c, "speed", s])
        copies.append(c)
    fails = []
    for s_, c in zip(("0.9", "1.1"), copies):
        ours, ref = os.path.join(work, "ours.npy"), os.path.join(work, "ref.npy")
        run([cbrnn, "features", "--speed", s_, a, "-o", ours])
        run([cbrnn, "features", c, "-o", ref])
        run([cbrnn, "features", a, "-o", os.path.join(work, "plain.npy")])
        x, y = np.load(ours), np.load(ref)
        p = np.load(os.path.join(work, "plain.npy"))
        if x.shape != y.shape:
            fails.append(f"speed {s_}: {x.shape} frames against sox's {y.shape}")
            continue
        d = np.abs(x - y)
        n = min(len(p), len(y))
        dp = np.abs(p[:n] - y[:n])[:, :36].mean()
        print(f"features at speed {s_} against sox: {len(x)} frames, below 7 kHz mean "
              f"{d[:, :36].mean():.5f} p99 {np.percentile(d[:, :36], 99):.5f} nats, top bands "
              f"{d[:, 36:].mean():.3f}; unperturbed file {dp:.3f}")
        if d[:, :36].mean() > 0.01 or np.percentile(d[:, :36], 99) > 0.05 or d[:, 36:].mean() > 1.5:
            fails.append(f"speed {s_}: features differ from sox's speed effect")
        if dp < 0.1:
            fails.append(f"speed {s_}: the unperturbed file is as close to sox's copy ({dp:.3f})")
    common = ["train", "--hidden", "16", "--cb", "16", "--warmup-steps", "2", "--steps", "2",
              "--val-files", val]
    m_opt, m_sox, m_plain = (os.path.join(work, n + ".safetensors") for n in ("opt", "sox", "plain"))
    r_opt = run([cbrnn, *common, "-o", m_opt, "--speed-perturb", "0.9,1.1", a])
    run([cbrnn, *common, "-o", m_sox, a, *copies])
    r_plain = run([cbrnn, *common, "-o", m_plain, a])
    meta_o, opt = safetensors(m_opt)
    meta_s, _ = safetensors(m_sox)
    meta_p, plain = safetensors(m_plain)
    if not (np.array_equal(opt["frontend.mean"], plain["frontend.mean"]) and
            np.array_equal(opt["frontend.std"], plain["frontend.std"])):
        fails.append("the corpus normaliser is not voice A's alone")
    fo, fs = int(meta_o["train_frames"]), int(meta_s["train_frames"])
    print(f"training frames: option {fo}, sox copies {fs}; voice A {meta_p['train_frames']}")
    if abs(fo - fs) > 4:
        fails.append(f"training frames {fo} against {fs} with sox's copies")
    if meta_o.get("train_files") != "1" or meta_o.get("speed_perturb") != "0.9,1.1":
        fails.append(f"metadata train_files {meta_o.get('train_files')}, speed_perturb "
                     f"{meta_o.get('speed_perturb')}")
    # a 44.1 kHz recording's copies go straight to the model's rate: the
    # same frames, and a normaliser near the 16 kHz file's
    a44 = os.path.join(work, "a44.wav")
    run(["sox", "-D", a, "-r", "44100", "-e", "floating-point", "-b", "32", a44])
    m44 = os.path.join(work, "m44.safetensors")
    run([cbrnn, *common, "--rate", "16000", "-o", m44, "--speed-perturb", "0.9,1.1", a44])
    meta_44, _ = safetensors(m44)
    print(f"training frames from a 44.1 kHz file: {meta_44['train_frames']}")
    if abs(int(meta_44["train_frames"]) - fo) > 4:
        fails.append(f"a 44.1 kHz file gives {meta_44['train_frames']} training frames, not {fo}")
    if "speed_perturb" in meta_p:
        fails.append("a model trained without the option records speed_perturb")
    if "1 training file and 2 speed-perturbed copies" not in r_opt.stderr:
        fails.append(f"summary line: {r_opt.stderr.strip()[-300:]}")
    # the validation file as recorded: same frames with and without
    vals = []
    for r in (r_opt, r_plain):
        v = [l for l in r.stderr.splitlines() if "validation (" in l]
        vals.append(v[0].split("validation (")[1].split()[0] if v else "?")
    print(f"validation frames: {vals[0]} with the option, {vals[1]} without")
    if vals[0] != vals[1] or vals[0] == "?":
        fails.append("the validation file was perturbed")
    for bad in ("1", "0.9,1", "3", "0.4", "x", "0.9,,1.1", "0.9,1.1,0.8,1.2,0.7,1.3,0.6,1.4,0.95"):
        r = subprocess.run([cbrnn, *common, "-o", os.path.join(work, "bad.safetensors"),
                            "--speed-perturb", bad, a], capture_output=True, text=True)
        if r.returncode != 2 or "--speed-perturb" not in r.stderr:
            fails.append(f"--speed-perturb {bad}: exit {r.returncode}: {r.stderr.strip()}")
    r = subprocess.run([cbrnn, "train", "-o", os.path.join(work, "bad.safetensors"), "--target",
                        "map", "--teacher-suffix", "_t", "--speed-perturb", "1.1", a],
                       capture_output=True, text=True)
    if r.returncode != 2 or "--speed-perturb" not in r.stderr:
        fails.append(f"--speed-perturb with --target map: exit {r.returncode}: {r.stderr.strip()}")
    r = subprocess.run([cbrnn, "features", "--speed", "0.3", a, "-o", os.path.join(work, "b.npy")],
                       capture_output=True, text=True)
    if r.returncode != 2 or "--speed" not in r.stderr:
        fails.append(f"features --speed 0.3: exit {r.returncode}: {r.stderr.strip()}")
    if os.path.exists(os.path.join(work, "bad.safetensors")):
        fails.append("a refused run wrote a model")
    report(fails, "train --speed-perturb: ok")


if __name__ == "__main__":
    main()
