#!/usr/bin/python3
"""noise_copies.py LIST OUT_DIR OUT_LIST: a noise-augmentation experiment
(docs/SPEECH.md): every file of LIST again, brought to 16 kHz mono, with
white Gaussian noise at a signal-to-noise ratio drawn per file uniformly
in [5, 25] dB of the file's RMS (seeded by the file's line number, so
the same copies every run), written as 16-bit wav into OUT_DIR; OUT_LIST
names them. Training on LIST plus OUT_LIST is the row "white-noise copies"
of docs/SPEECH.md. Silent files (RMS 0) get no copy; unreadable ones are
named on stderr and skipped."""
import hashlib
import os
import sys

import numpy as np
import torch
import torchaudio

RATE = 16000


def noisy(x, seed):
    rms = float(np.sqrt(np.mean(x * x))) if x.size else 0.0
    if rms <= 0:
        return None
    rng = np.random.default_rng(seed)
    snr_db = rng.uniform(5, 25)
    y = x + rng.standard_normal(x.size) * rms / 10 ** (snr_db / 20)
    return np.clip(y, -1, 1).astype(np.float32)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    lst, out, out_list = sys.argv[1:4]
    os.makedirs(out, exist_ok=True)
    names = []
    with open(lst) as f:
        paths = [line.strip() for line in f if line.strip()]
    for i, path in enumerate(paths):
        try:
            w, sr = torchaudio.load(path)
        except RuntimeError as e:
            print("noise_copies.py: skipping %s: %s" % (path, e), file=sys.stderr)
            continue
        w = w.mean(0)
        if sr != RATE:
            w = torchaudio.functional.resample(w, sr, RATE)
        y = noisy(w.numpy().astype(np.float64), 12345 + i)
        if y is None:
            continue
        name = os.path.join(out, "%05d_%s.wav" % (i, hashlib.md5(path.encode()).hexdigest()[:8]))
        torchaudio.save(name, torch.from_numpy(y)[None], RATE, encoding="PCM_S", bits_per_sample=16)
        names.append(name)
    with open(out_list, "w") as f:
        f.write("".join(n + "\n" for n in names))
    print("noise_copies.py: %d copies in %s" % (len(names), out))


if __name__ == "__main__":
    main()
