#!/usr/bin/python3
"""Input formats and channel mixing of `cbrnn features` (files made now):

  - stereo 16-bit WAV -> features byte-identical to those of a mono float
    WAV holding exactly (left + right) / 2 (the mix is the channel mean);
  - FLAC (lossless, made by sox) -> byte-identical to the WAV it came from;
  - OGG/Vorbis (lossy) -> reads, same width, frame count within the codec's
    padding, log-mel close to the WAV's on average;
  - the .npy itself: NumPy loads it as float32 C-order (frames, features)
    with the expected frame count floor((L - win) / hop) + 1, and its
    header block is a multiple of 64 bytes;
  - a file shorter than one window gives shape (0, 40), exit 0;
  - --rate resamples: a 48 kHz clip at --rate 16000 has the 16 kHz frame
    count and is close to the features of sox's 16 kHz version.

    formats.py CBRNN SAMPLES_DIR
"""
import os
import struct
import subprocess
import sys
import tempfile
import wave

import numpy as np

failures = 0


def check(ok, what, detail):
    global failures
    if ok:
        print("ok   %s" % what)
    else:
        failures += 1
        print("FAIL %s: %s" % (what, detail))


def features(cbrnn, wav, out, *opts):
    p = subprocess.run([cbrnn, "features", wav, "-o", out] + list(opts),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit("formats: cbrnn features %s failed (%d): %s" % (wav, p.returncode, p.stderr))
    return np.load(out), p.stdout


def read_pcm16(path):
    w = wave.open(path, "rb")
    assert w.getsampwidth() == 2 and w.getnchannels() == 1
    x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").copy()
    rate = w.getframerate()
    w.close()
    return x, rate


def write_pcm16(path, rate, x):
    """x: int16 array (frames,) or (frames, channels)."""
    ch = 1 if x.ndim == 1 else x.shape[1]
    w = wave.open(path, "wb")
    w.setnchannels(ch)
    w.setsampwidth(2)
    w.setframerate(rate)
    w.writeframes(x.astype("<i2").tobytes())
    w.close()


def write_float_wav(path, rate, x):
    """Mono IEEE float32 WAV (format tag 3), written by hand so the values
    are exactly those of x."""
    data = x.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE")
        f.write(b"fmt " + struct.pack("<I", len(fmt)) + fmt)
        f.write(b"data" + struct.pack("<I", len(data)) + data)


def main():
    cbrnn, samples = sys.argv[1], sys.argv[2]
    voice = os.path.join(samples, "voiceA_us_male_2.wav")
    with tempfile.TemporaryDirectory(prefix="cbrnn-formats-") as tmp:
        t = lambda name: os.path.join(tmp, name)
        x, rate = read_pcm16(voice)
        win, hop = round(0.025 * rate), round(0.010 * rate)

        # The .npy container and the frame count.
        ref, summary = features(cbrnn, voice, t("ref.npy"))
        n = (len(x) - win) // hop + 1
        check(ref.dtype == np.float32 and ref.flags["C_CONTIGUOUS"] and ref.shape == (n, 40),
              ".npy float32 C-order (frames, 40)", "got %s %s, expected (%d, 40)"
              % (ref.dtype, ref.shape, n))
        with open(t("ref.npy"), "rb") as f:
            head = f.read(10)
        hlen = 10 + struct.unpack("<H", head[8:10])[0]
        check(head[:6] == b"\x93NUMPY" and hlen % 64 == 0, ".npy header block multiple of 64",
              "header %r, length %d" % (head[:8], hlen))
        check(np.isfinite(ref).all(), "finite features", "non-finite values")
        check("%d frames x 40 features" % n in summary, "summary line", summary)

        # Stereo: left = the voice, right = a different signal.
        right = ((np.arange(len(x)) * 7919) % 20001 - 10000).astype(np.int16)
        stereo = np.stack([x, right], axis=1)
        write_pcm16(t("stereo.wav"), rate, stereo)
        write_float_wav(t("mean.wav"), rate,
                        (x.astype(np.float32) / 32768 + right.astype(np.float32) / 32768) / 2)
        a, out = features(cbrnn, t("stereo.wav"), t("stereo.npy"))
        b, _ = features(cbrnn, t("mean.wav"), t("mean.npy"))
        check(a.shape == b.shape and np.array_equal(a, b),
              "stereo mixes to the exact channel mean",
              "shapes %s %s, max |diff| %s" % (a.shape, b.shape,
                                               np.abs(a - b).max() if a.shape == b.shape else "-"))
        check("2 channels mixed" in out, "summary mentions the mix", out)
        check(not np.array_equal(a, ref), "the mix differs from the left channel alone",
              "stereo features equal the voice's")

        # FLAC (lossless): identical samples, identical bytes.
        subprocess.run(["sox", "-q", voice, t("voice.flac")], check=True)
        c, _ = features(cbrnn, t("voice.flac"), t("flac.npy"))
        check(c.shape == ref.shape and np.array_equal(c, ref), "FLAC equals its WAV",
              "shape %s vs %s" % (c.shape, ref.shape))

        # OGG/Vorbis (lossy): readable, comparable.
        subprocess.run(["sox", "-q", voice, "-C", "6", t("voice.ogg")], check=True)
        d, _ = features(cbrnn, t("voice.ogg"), t("ogg.npy"))
        m = min(len(d), len(ref))
        mad = float(np.abs(d[:m] - ref[:m]).mean()) if m else float("inf")
        check(d.shape[1] == 40 and abs(len(d) - len(ref)) <= 2 and mad < 0.5,
              "OGG/Vorbis reads (mean |diff| %.3f vs WAV)" % mad,
              "shape %s vs %s, mean |diff| %.3f" % (d.shape, ref.shape, mad))

        # Shorter than one window: no frames, but a valid empty array.
        write_pcm16(t("short.wav"), rate, x[:win - 1])
        e, _ = features(cbrnn, t("short.wav"), t("short.npy"))
        check(e.shape == (0, 40) and e.dtype == np.float32, "shorter than a window -> (0, 40)",
              "got %s" % (e.shape,))
        write_pcm16(t("one.wav"), rate, x[:win])
        e, _ = features(cbrnn, t("one.wav"), t("one.npy"))
        check(e.shape == (1, 40) and np.array_equal(e[0], ref[0]),
              "exactly one window -> the first frame", "got %s" % (e.shape,))

        # --rate: resampled on the fly (libsamplerate) vs sox's resampling.
        noise48 = os.path.join(samples, "noise_tones_48k.wav")
        f, _ = features(cbrnn, noise48, t("r16.npy"), "--rate", "16000")
        subprocess.run(["sox", "-q", noise48, "-e", "floating-point", "-b", "32",
                        t("sox16.wav"), "rate", "-v", "16000"], check=True)
        g, _ = features(cbrnn, t("sox16.wav"), t("sox16.npy"))
        n16 = (480000 // 3 - 400) // 160 + 1
        check(abs(len(f) - n16) <= 1 and len(g) == n16,
              "--rate 16000 frame count", "cbrnn %d, sox %d, expected %d" % (len(f), len(g), n16))
        m = min(len(f), len(g))
        med = float(np.median(np.abs(f[:m] - g[:m])))
        check(med < 0.05, "--rate 16000 close to sox's resampling (median |diff| %.4f)" % med,
              "median |diff| %.4f" % med)

        # A rate outside 8..192 kHz is refused (bad_input.py) unless the
        # user asks for resampling into the range.
        write_pcm16(t("r4000.wav"), 4000, x[:8000])
        h, _ = features(cbrnn, t("r4000.wav"), t("r4000.npy"), "--rate", "16000")
        n4 = (8000 * 4 - 400) // 160 + 1
        check(abs(len(h) - n4) <= 1 and np.isfinite(h).all(), "4 kHz file with --rate 16000",
              "got %s, expected about (%d, 40)" % (h.shape, n4))
    print("formats: %d failures" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
