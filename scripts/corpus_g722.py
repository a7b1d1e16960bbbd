#!/usr/bin/python3
"""corpus_g722.py: decodes every .g722 file below SRC into a 16 kHz 16-bit
mono WAV at the same relative path below DST (name.g722 -> name.wav), for
scripts/corpus.sh. Neither libsndfile nor sox reads G.722; in Debian 12
ffmpeg does. ffmpeg starts once per batch of files (one process per file
costs ten times more), two batches at a time.

  corpus_g722.py SRC DST

Exit 1, naming the batch's files, if ffmpeg fails; finished WAVs appear
only complete (written under a temporary name, then renamed).
"""
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

BATCH = 100


def decode(batch, src, dst):
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
    for rel in batch:
        cmd += ["-f", "g722", "-i", os.path.join(src, rel)]
    tmps = []
    for i, rel in enumerate(batch):
        out = os.path.join(dst, rel[:-len(".g722")] + ".wav")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        tmps.append((out + ".part.wav", out))
        cmd += ["-map", "%d:a" % i, "-ar", "16000", "-ac", "1", "-c:a", "pcm_s16le",
                "-fflags", "+bitexact", "-flags:a", "+bitexact", tmps[-1][0]]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        for t, _ in tmps:
            if os.path.exists(t):
                os.remove(t)
        return "ffmpeg failed on %s .. %s: %s" % (batch[0], batch[-1], r.stderr.strip()[-500:])
    for t, out in tmps:
        os.replace(t, out)
    return None


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: corpus_g722.py SRC DST")
    src, dst = sys.argv[1:]
    files = []
    for d, dirs, names in os.walk(src):
        dirs.sort()
        files += [os.path.relpath(os.path.join(d, n), src) for n in sorted(names)
                  if n.endswith(".g722") and not os.path.islink(os.path.join(d, n))]
    batches = [files[i:i + BATCH] for i in range(0, len(files), BATCH)]
    with ThreadPoolExecutor(2) as pool:
        errors = [e for e in pool.map(lambda b: decode(b, src, dst), batches) if e]
    for e in errors:
        print("corpus: " + e, file=sys.stderr)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
