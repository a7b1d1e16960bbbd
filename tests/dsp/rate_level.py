#!/usr/bin/python3
"""The log-mel level across sample rates (`cbrnn features --ref-rate`).

The front end is in physical units, but a mel band's energy for the same
sound grows with sum(window^2) * n_fft, so the same voice comes out ~2.4
nats higher at 44.1 kHz than at 16 kHz. With --ref-rate NATIVE the
features at a foreign rate must come back to the native level. Real
speech from samples/ (voice A at 16 kHz, voice B at 22.05 kHz) is
resampled by sox (its default `rate`, high quality) to 44.1, 48 and
96 kHz; per-band means over the whole file are compared with the native
file's, so frame alignment does not matter.

Bounds, with the measured worst case (Debian 12's sox 14.4.2):
  - every band within 0.4 nats (measured 0.294: voice B's lowest band,
    20-113 Hz, where its 6e-4 DC offset leaks in through the window's
    main lobe and the two rates' FFT grids sample that leak differently);
  - bands 2..39 within 0.15 (measured 0.080: voice A's top band at
    96 kHz, the resampler's roll-off below 8 kHz; 0.114 on voice A's
    third clip);
  - the mean over bands within 0.03 (measured 0.015);
  - without --ref-rate the mean is off by at least 1 nat (measured 1.36 at
    22.05 -> 44.1 kHz up to 3.61 at 16 -> 96 kHz), so the check has teeth;
  - --ref-rate equal to the stream's rate: byte-identical features.

The hosts level a model's features the same way (cbrnn_model_feat_config):
the shipped default model (trained at 16 kHz) on a sox copy of voice A at
44.1 and 96 kHz must score within 1.25x of the 16 kHz file in `cbrnn eval`
(measured x1.006 and x1.001; x4.3 and x8.0 before the correction) and in
`cbrnn run` without learning (the engine), and run and eval must agree on
each file to 2% (same features, same model; measured equal to 4 digits).

    rate_level.py CBRNN SAMPLES_DIR
"""
import csv
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

VOICES = [("voiceA_us_male_1.wav", 16000), ("voiceB_gb_female_1.wav", 22050)]
RATES = [44100, 48000, 96000]
ALL_BANDS, UPPER_BANDS, MEAN = 0.4, 0.15, 0.03
RAW_AT_LEAST = 1.0
TRANSFER = 1.25

failures = 0


def check(ok, what, detail):
    global failures
    if ok:
        print("ok   %s (%s)" % (what, detail))
    else:
        failures += 1
        print("FAIL %s: %s" % (what, detail))


def features(cbrnn, wav, out, *opts):
    p = subprocess.run([cbrnn, "features", wav, "-o", out] + list(opts),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit("cbrnn features %s %s failed (%d): %s" % (wav, " ".join(opts), p.returncode,
                                                          p.stderr))
    return np.load(out)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    cbrnn, samples = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory(prefix="cbrnn_rate_level_") as tmp:
        for name, native in VOICES:
            src = os.path.join(samples, name)
            base = features(cbrnn, src, os.path.join(tmp, "native.npy"))
            same = features(cbrnn, src, os.path.join(tmp, "same.npy"), "--ref-rate", str(native))
            check(base.tobytes() == same.tobytes(), "%s: --ref-rate %d at its own rate" % (name, native),
                  "byte-identical" if base.tobytes() == same.tobytes() else "features differ")
            ref_mean = base.astype(np.float64).mean(0)
            for rate in RATES:
                wav = os.path.join(tmp, "r%d.wav" % rate)
                subprocess.run(["sox", src, "-r", str(rate), wav], check=True)
                fixed = features(cbrnn, wav, os.path.join(tmp, "fixed.npy"), "--ref-rate",
                                 str(native)).astype(np.float64).mean(0)
                raw = features(cbrnn, wav, os.path.join(tmp, "raw.npy")).astype(np.float64).mean(0)
                d, d0 = fixed - ref_mean, raw - ref_mean
                what = "%s at %d Hz, --ref-rate %d" % (name, rate, native)
                worst = int(np.abs(d).argmax())
                check(np.abs(d).max() <= ALL_BANDS, what + ": every band's mean",
                      "worst band %d off by %+.3f nats, bound %.2f" % (worst, d[worst], ALL_BANDS))
                up = np.abs(d[2:]).max()
                check(up <= UPPER_BANDS, what + ": bands 2..39",
                      "worst %.3f nats, bound %.2f" % (up, UPPER_BANDS))
                check(abs(d.mean()) <= MEAN, what + ": mean over bands",
                      "%+.4f nats, bound %.2f" % (d.mean(), MEAN))
                check(d0.mean() >= RAW_AT_LEAST, "%s at %d Hz without --ref-rate" % (name, rate),
                      "mean %+.3f nats (expected >= %.1f: the level the correction removes)"
                      % (d0.mean(), RAW_AT_LEAST))
        model = os.path.join(samples, "default.safetensors")
        src = os.path.join(samples, "voiceA_us_male_2.wav")
        wavs = [src]
        for rate in (44100, 96000):
            wavs.append(os.path.join(tmp, "m%d.wav" % rate))
            subprocess.run(["sox", src, "-r", str(rate), wavs[-1]], check=True)
        p = subprocess.run([cbrnn, "eval", model, "--json"] + wavs, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            sys.exit("cbrnn eval failed (%d): %s" % (p.returncode, p.stderr))
        ev = [f["loss"] for f in json.loads(p.stdout)["files"]]
        runs = []
        for i, wav in enumerate(wavs):
            d = os.path.join(tmp, "run%d" % i)
            subprocess.run([cbrnn, "run", "--model", model, "--out-dir", d, "--quiet", wav],
                           check=True)
            with open(os.path.join(d, "frames.csv")) as f:
                loss = [float(r["loss"]) for r in csv.DictReader(f) if r["loss"] != ""]
            runs.append(sum(loss) / len(loss))
        for i, rate in enumerate((16000, 44100, 96000)):
            if i:
                check(ev[i] <= TRANSFER * ev[0], "default model, cbrnn eval at %d Hz" % rate,
                      "loss %.5f = x%.3f of 16 kHz, bound x%.2f" % (ev[i], ev[i] / ev[0], TRANSFER))
                check(runs[i] <= TRANSFER * runs[0], "default model, cbrnn run at %d Hz" % rate,
                      "loss %.5f = x%.3f of 16 kHz, bound x%.2f"
                      % (runs[i], runs[i] / runs[0], TRANSFER))
            check(abs(runs[i] - ev[i]) <= 0.02 * ev[i], "run and eval agree at %d Hz" % rate,
                  "run %.5f, eval %.5f" % (runs[i], ev[i]))
    if failures:
        print("%d check(s) failed" % failures)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
