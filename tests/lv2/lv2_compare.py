"""lv2_compare.py: checks the LV2 plugin's audio outputs against `cbrnn run`.

usage: lv2_compare.py IN.wav PLUGIN_OUT.wav RUN_DIR
       lv2_compare.py --same A.wav B.wav

PLUGIN_OUT.wav is what lv2apply or lv2file wrote: channels thru, surprise,
out_1..out_4 (the plugin's audio outputs in port order). Checks, exactly:
  - surprise == RUN_DIR/surprise.wav, bit for bit;
  - out_k at the sample that completes frame t (t * hop + win - 1) ==
    RUN_DIR/outputs.npy[t, k - 1] for every frame and k <= outputs;
  - thru == the input delayed by the latency (zeros before).
hop, win and the latency (win - 1 - win / 2, cbrnn_engine_latency) come
from the frame times in RUN_DIR/frames.csv: (t * hop + win - 1) / rate.
Reads float WAVs with its own chunk parser (Debian's Python has no
soundfile). Exit 0 when all hold; otherwise says what, where, expected, got.
--same: A and B hold the same rate, channels and samples, bit for bit. Not
`cmp`: libsndfile's PEAK chunk (which lv2file writes) carries the time of
writing in seconds, so two runs that straddle a second differ there.
"""
import struct
import sys

import numpy as np


def read_float_wav(path):
    """(samples [frames, channels] float32, rate) of a 32-bit float WAV."""
    with open(path, "rb") as f:
        b = f.read()
    if b[:4] != b"RIFF" or b[8:12] != b"WAVE":
        sys.exit(f"{path}: not a WAV file")
    pos, ch, fmt, data, rate = 12, None, None, None, 0
    while pos + 8 <= len(b):
        cid, size = b[pos:pos + 4], struct.unpack("<I", b[pos + 4:pos + 8])[0]
        body = b[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            fmt, ch, rate = struct.unpack("<HHI", body[:8])
            bits = struct.unpack("<H", body[14:16])[0]
            if fmt == 0xFFFE:  # WAVE_FORMAT_EXTENSIBLE: the sub-format's first two bytes
                fmt = struct.unpack("<H", body[24:26])[0]
            if fmt != 3 or bits != 32:
                sys.exit(f"{path}: expected 32-bit float samples (format {fmt}, {bits} bits)")
        elif cid == b"data":
            data = body
        pos += 8 + size + (size & 1)
    if ch is None or data is None:
        sys.exit(f"{path}: no fmt or data chunk")
    return np.frombuffer(data, dtype="<f4").reshape(-1, ch), rate


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    x, rate = read_float_wav(sys.argv[1])
    x = x[:, 0]
    out = read_float_wav(sys.argv[2])[0]
    run_dir = sys.argv[3]
    times = np.loadtxt(run_dir + "/frames.csv", delimiter=",", skiprows=1, usecols=1, ndmin=1)
    if len(times) < 2:
        sys.exit(f"{run_dir}/frames.csv: fewer than two frames")
    win = int(round(times[0] * rate)) + 1
    hop = int(round((times[1] - times[0]) * rate))
    lat = win - 1 - win // 2
    s_run = read_float_wav(run_dir + "/surprise.wav")[0][:, 0]
    y = np.load(run_dir + "/outputs.npy")
    bad = []
    if out.shape != (len(x), 6):
        sys.exit(f"{sys.argv[2]}: shape {out.shape}, expected ({len(x)}, 6)")
    s = out[:, 1]
    if s.tobytes() != s_run.tobytes():
        i = int(np.flatnonzero(s.view(np.uint32) != s_run.view(np.uint32))[0]) \
            if len(s) == len(s_run) else -1
        bad.append(f"surprise differs from surprise.wav (lengths {len(s)}, {len(s_run)}; "
                   f"first at sample {i}: expected {s_run[i] if i >= 0 else '?'}, "
                   f"got {s[i] if i >= 0 else '?'})")
    n_k = min(4, y.shape[1])
    at = np.arange(y.shape[0]) * hop + win - 1
    for k in range(n_k):
        got = out[at, 2 + k]
        if got.tobytes() != y[:, k].astype("<f4").tobytes():
            t = int(np.flatnonzero(got != y[:, k])[0])
            bad.append(f"out_{k + 1} frame {t} (sample {at[t]}): expected {y[t, k]!r}, "
                       f"got {got[t]!r}")
    want = np.concatenate([np.zeros(lat, np.float32), x[:len(x) - lat]])
    if out[:, 0].tobytes() != want.tobytes():
        i = int(np.flatnonzero(out[:, 0] != want)[0])
        bad.append(f"thru sample {i}: expected the input delayed by {lat} ({want[i]!r}), "
                   f"got {out[i, 0]!r}")
    if bad:
        sys.exit("lv2_compare: " + "; ".join(bad))
    print(f"lv2_compare: {len(x)} samples, {y.shape[0]} frames: surprise bit-identical, "
          f"out_1..{n_k} equal outputs.npy, thru = input delayed by {lat}")


def same():
    """--same A B: exit 0 when the two float WAVs' samples are identical."""
    (a, ra), (b, rb) = read_float_wav(sys.argv[2]), read_float_wav(sys.argv[3])
    if ra != rb or a.shape != b.shape:
        sys.exit(f"lv2_compare: {sys.argv[2]} is {a.shape} at {ra} Hz, "
                 f"{sys.argv[3]} is {b.shape} at {rb} Hz")
    diff = np.flatnonzero(a.view("<u4") != b.view("<u4"))
    if diff.size:
        i = diff[0]
        sys.exit(f"lv2_compare: {diff.size} samples differ, the first at frame "
                 f"{i // a.shape[1]} channel {i % a.shape[1]}: {a.flat[i]!r} vs {b.flat[i]!r}")


if len(sys.argv) == 4 and sys.argv[1] == "--same":
    same()
else:
    main()
