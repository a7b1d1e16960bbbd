#!/usr/bin/python3
"""`cbrnn train` on a corpus at several sample rates: every file's features
come out at the level of the model's rate (the first training file's), as
the engine gives them to the model live. Voice A at 16 kHz plus a copy at
44.1 kHz (sox) must store the same normaliser (frontend.mean per band
within 0.1 nats, frontend.std within 10%) as voice A plus a second 16 kHz
copy; without the level correction the 44.1 kHz copy moves every band's
mean by about +1.2 nats (half of its +2.4). The model records 16000 as its
rate. And `cbrnn eval` of that model scores the 44.1 kHz copy within 25%
of the 16 kHz file.

usage: train_rates.py CBRNN WORKDIR SAMPLES_DIR
"""
import json
import os
import shutil

import numpy as np

from trainlib import args, report, run, safetensors


def main():
    cbrnn, work, samples = args()
    src = os.path.join(samples, "voiceA_us_male_1.wav")
    a16 = os.path.join(work, "a16.wav")
    b16 = os.path.join(work, "b16.wav")
    b44 = os.path.join(work, "b44.wav")
    shutil.copy(src, a16)
    shutil.copy(src, b16)
    run(["sox", src, "-r", "44100", b44])
    common = ["train", "-q", "--hidden", "16", "--cb", "16", "--warmup-steps", "2", "--steps", "2",
              "--val-fraction", "0"]
    m_same, m_mixed = os.path.join(work, "same.safetensors"), os.path.join(work, "mixed.safetensors")
    run([cbrnn, *common, "-o", m_same, a16, b16])
    run([cbrnn, *common, "-o", m_mixed, a16, b44])
    meta, same = safetensors(m_same)
    meta_m, mixed = safetensors(m_mixed)
    fails = []
    dm = np.abs(mixed["frontend.mean"] - same["frontend.mean"])
    rs = mixed["frontend.std"] / same["frontend.std"]
    print(f"frontend.mean: worst band {dm.max():.3f} nats (mean {dm.mean():.3f}); "
          f"frontend.std ratio {rs.min():.3f}..{rs.max():.3f}; model rate {meta_m['sample_rate']}")
    if dm.max() > 0.1:
        fails.append(f"normaliser mean moved by {dm.max():.3f} nats with a 44.1 kHz copy")
    if rs.min() < 0.9 or rs.max() > 1.1:
        fails.append(f"normaliser std ratio {rs.min():.3f}..{rs.max():.3f}")
    if float(meta_m["sample_rate"]) != 16000:
        fails.append(f"model rate {meta_m['sample_rate']}, expected 16000")
    ev = json.loads(run([cbrnn, "eval", "--json", m_mixed, a16, b44]).stdout)
    losses = {os.path.basename(f["file"]): f["loss"] for f in ev["files"]}
    print(f"eval: {losses}")
    if losses["b44.wav"] > 1.25 * losses["a16.wav"]:
        fails.append(f"eval at 44.1 kHz {losses['b44.wav']:.4f} vs 16 kHz {losses['a16.wav']:.4f}")
    report(fails, "train at mixed rates: ok")


if __name__ == "__main__":
    main()
