#!/usr/bin/python3
"""Parity of `cbrnn features` with torchaudio, computed now (not stored).

For every WAV in samples/ at one sample rate (--rate; ctest runs 16000,
22050, 44100 and 48000): the clip is resampled with sox to a temporary
32-bit float WAV (or used as is when already at that rate), `cbrnn
features` runs on that file, and the same samples, read back with
torchaudio.load, go through

    torchaudio.transforms.MelSpectrogram(rate, n_fft, win, hop, f_min=20,
        f_max=min(8000, rate/2), n_mels=40, window_fn=torch.hann_window,
        power=2.0, center=False, norm=None, mel_scale="htk")
    then torch.log(x + 1e-6)

in float64. Checked frame by frame, max |diff| <= 1e-3 (--tol), and the
frame counts must agree:
  - the log-mel (40 bands);
  - 13 MFCCs against the log-mel times create_dct(13, 40, norm="ortho");
  - causal deltas (--deltas) of both against
    torchaudio.functional.compute_deltas(win_length=5) of the reference,
    shifted by two frames (cbrnn's row t holds the delta of frame t-2), for
    t >= 2.

Frame alignment: cbrnn's frames are causal, frame t = samples
[t*hop, t*hop + win) (DESIGN.md: no look-ahead beyond the window). torch.stft
with center=False instead takes n_fft samples per frame and centres the
win-long window inside them, i.e. it windows samples
[t*hop + padl, t*hop + padl + win) with padl = (n_fft - win) // 2. Feeding
torchaudio the clip with padl zeros before and n_fft - win - padl zeros after
makes its frame t window exactly cbrnn's samples (the zeros fall where the
window is zero), with the same number of frames, floor((L - win)/hop) + 1.

Exit status 0 when everything agrees; otherwise each failure is printed
(what, file, rate, frame, band, expected, got) and the status is 1.
"""
import argparse
import glob
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torchaudio
import torchaudio.functional as AF


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit("parity: command failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), p.stderr))
    return p


def round_half_up(x):
    # cbrnn rounds ms * rate / 1000 with C's round(): halves go up (Python's
    # round() would send 220.5 to 220).
    return int(math.floor(x + 0.5))


def reference(x, rate):
    """float64 log-mel of x (1-D float64 tensor) aligned to cbrnn's frames."""
    win = round_half_up(0.025 * rate)
    hop = round_half_up(0.010 * rate)
    n_fft = 1 << (win - 1).bit_length()
    padl = (n_fft - win) // 2
    padr = n_fft - win - padl
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=rate, n_fft=n_fft, win_length=win, hop_length=hop, f_min=20.0,
        f_max=min(8000.0, rate / 2), n_mels=40, window_fn=torch.hann_window, power=2.0,
        center=False, norm=None, mel_scale="htk")
    y = torch.nn.functional.pad(x.unsqueeze(0), (padl, padr))
    with torch.no_grad():
        m = mel(y)[0]                   # (40, frames)
    return torch.log(m + 1e-6).T.contiguous(), win, hop   # (frames, 40)


class Checker:
    def __init__(self, tol):
        self.tol = tol
        self.failures = 0
        self.worst = 0.0

    def compare(self, what, where, got, ref, t0=0):
        """got, ref: (frames, bands) arrays; rows from t0 on are compared."""
        if got.shape != ref.shape:
            print("FAIL %s %s: shape expected %s got %s" % (what, where, ref.shape, got.shape))
            self.failures += 1
            return
        if got.shape[0] <= t0:
            return
        d = np.abs(got[t0:].astype(np.float64) - ref[t0:])
        t, b = np.unravel_index(np.argmax(d), d.shape)
        m = float(d[t, b])
        self.worst = max(self.worst, m)
        if not m <= self.tol:
            print("FAIL %s %s: frame %d band %d expected %.7f got %.7f (|diff| %.3g > %.3g)"
                  % (what, where, t + t0, b, ref[t + t0, b], got[t + t0, b], m, self.tol))
            self.failures += 1
        else:
            print("ok   %s %s: %d frames, max |diff| %.3g" % (what, where, got.shape[0], m))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cbrnn", required=True, help="path to the cbrnn executable")
    ap.add_argument("--samples", required=True, help="folder of WAV clips")
    ap.add_argument("--rate", type=int, required=True)
    ap.add_argument("--tol", type=float, default=1e-3)
    a = ap.parse_args()
    torch.set_default_dtype(torch.float64)  # the reference in float64
    torch.set_num_threads(1)
    wavs = sorted(glob.glob(os.path.join(a.samples, "*.wav")))
    if not wavs:
        sys.exit("parity: no WAV files in %s" % a.samples)
    chk = Checker(a.tol)
    dct = AF.create_dct(13, 40, norm="ortho").numpy()      # (40, 13)
    with tempfile.TemporaryDirectory(prefix="cbrnn-parity-") as tmp:
        for wav in wavs:
            name = os.path.basename(wav)
            info = torchaudio.info(wav)
            src = wav
            if info.sample_rate != a.rate:
                src = os.path.join(tmp, "%s.%d.wav" % (name[:-4], a.rate))
                run(["sox", "-q", wav, "-e", "floating-point", "-b", "32", src, "rate", "-v",
                     str(a.rate)])
            where = "%s@%d" % (name, a.rate)
            out = {}
            for key, opts in (("mel", []), ("mel_d", ["--deltas"]),
                              ("mfcc_d", ["--mfcc", "13", "--deltas"])):
                path = os.path.join(tmp, "%s.npy" % key)
                run([a.cbrnn, "features", src, "-o", path] + opts)
                out[key] = np.load(path)
            x, sr = torchaudio.load(src)
            assert sr == a.rate, (src, sr)
            x = x[0].to(torch.float64)
            ref, win, hop = reference(x, a.rate)
            n = (x.numel() - win) // hop + 1
            if ref.shape[0] != n:
                print("FAIL frame count %s: expected %d from causal framing, torch gives %d"
                      % (where, n, ref.shape[0]))
                chk.failures += 1
            ref_np = ref.numpy()
            dref = AF.compute_deltas(ref.T.contiguous(), win_length=5).T.numpy()
            mfcc = ref_np @ dct
            dmfcc = AF.compute_deltas(torch.from_numpy(mfcc).T.contiguous(), win_length=5).T.numpy()
            chk.compare("log-mel", where, out["mel"], ref_np)
            chk.compare("log-mel(--deltas)", where, out["mel_d"][:, :40], ref_np)
            # row t carries the delta of frame t-2: compare rows 2.. with 0..T-3
            got_d = out["mel_d"][:, 40:]
            chk.compare("delta log-mel", where, got_d[2:], dref[:-2] if len(dref) >= 2 else dref[:0])
            chk.compare("mfcc", where, out["mfcc_d"][:, :13], mfcc)
            chk.compare("delta mfcc", where, out["mfcc_d"][2:, 13:],
                        dmfcc[:-2] if len(dmfcc) >= 2 else dmfcc[:0])
    print("parity @%d Hz: %d failures, worst |diff| %.3g (tolerance %.3g)"
          % (a.rate, chk.failures, chk.worst, a.tol))
    return 1 if chk.failures else 0


if __name__ == "__main__":
    sys.exit(main())
