"""PyTorch peer of `cbrnn bench --items features`: torchaudio doing the same
streaming work, one hop at a time, at args.rate: for every hop, the newest
hop of samples enters a buffer holding the last n_fft samples (torch.stft
with center=False needs n_fft samples for one frame), MelSpectrogram (same
parameters as cbrnn: 25 ms periodic Hann, 10 ms hop, n_fft next power of
two, 40 HTK bands from 20 Hz to min(8 kHz, rate/2), power 2, no norm)
computes that one frame, then log(x + 1e-6). Same audio recipe and timing
rule as bench/item_features.c: best of args.repeats rounds of at least
args.seconds each. Reports microseconds per frame.
"""
import math
import time

import numpy as np
import torch
import torchaudio

AUDIO_SECONDS = 4


def make_audio(n, rate):
    # The recipe of item_features.c: xorshift32 noise through a one-pole
    # low-pass plus a tone gliding from 200 Hz to 4 kHz.
    s = 0x12345678
    white = np.empty(n)
    for i in range(n):
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        white[i] = s / 4294967296.0 * 2.0 - 1.0
    lp = np.empty(n)
    acc = 0.0
    for i in range(n):
        acc = 0.95 * acc + 0.05 * white[i]
        lp[i] = acc
    f = 200.0 + 3800.0 * np.arange(n) / n
    phase = np.cumsum(2.0 * math.pi * f / rate)
    return torch.from_numpy((0.5 * lp + 0.2 * np.sin(phase)).astype(np.float32))


def run(args):
    rate = float(args.rate)
    win = int(math.floor(0.025 * rate + 0.5))
    hop = int(math.floor(0.010 * rate + 0.5))
    n_fft = 1 << (win - 1).bit_length()
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=int(rate), n_fft=n_fft, win_length=win, hop_length=hop, f_min=20.0,
        f_max=min(8000.0, rate / 2), n_mels=40, window_fn=torch.hann_window, power=2.0,
        center=False, norm=None, mel_scale="htk")
    n = int(AUDIO_SECONDS * rate)
    n -= n % hop
    x = make_audio(n, rate)
    best = math.inf
    with torch.inference_mode():
        for _ in range(args.repeats):
            frames = 0
            t0 = time.perf_counter()
            while True:
                buf = torch.zeros(n_fft)
                for i in range(0, n, hop):
                    buf = torch.cat((buf[hop:], x[i:i + hop]))
                    frame = torch.log(mel(buf) + 1e-6)
                    frames += 1
                t = time.perf_counter() - t0
                if t >= args.seconds:
                    break
            best = min(best, 1e6 * t / frames)
    del frame
    return [{"item": "features", "rate": int(rate), "us_per_frame": round(best, 4),
             "impl": "torch"}]
