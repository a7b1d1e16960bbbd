#!/bin/bash
# cli_bad_audio.sh CBRNN SAMPLES WORKDIR: the CLI end of two crashers the
# fuzzers found (tests/fuzz/regressions): a float WAV holding NaN/Inf
# samples is refused by name (exit 2, no output file) by the commands that
# compute features, while `cbrnn run` feeds it to the engine, which zeroes
# and counts the bad samples as the live host does; a label file whose
# times are huge but finite is read without undefined behaviour; named
# pipes are refused, not opened.
set -u
CBRNN=$1 SAMPLES=$2 WORK=$3
PY=${CBRNN_PYTHON:-/usr/bin/python3}
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
fail() { echo "FAIL: $*" >&2; exit 1; }

# 1 s of a 440 Hz tone at 16 kHz, 32-bit float WAV; NaN at sample 8000,
# +Inf at 12000 (libsndfile reads them back as they are).
"$PY" - <<'PY' || fail "writing nan.wav"
import math, struct
rate, n = 16000, 16000
x = [0.3 * math.sin(2 * math.pi * 440 * i / rate) for i in range(n)]
x[8000], x[12000] = float("nan"), float("inf")
data = struct.pack("<%df" % n, *x)
fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
open("nan.wav", "wb").write(b"RIFF" + struct.pack("<I", len(body)) + body)
PY

"$CBRNN" features nan.wav -o nan.npy 2>err.txt; rc=$?
[ "$rc" -eq 2 ] || fail "cbrnn features on NaN samples: expected exit 2, got $rc ($(cat err.txt))"
grep -q "nan.wav: sample 8000 (0.500 s) is not a finite number" err.txt ||
  fail "cbrnn features: expected the file and sample 8000 named, got: $(cat err.txt)"
[ ! -e nan.npy ] || fail "cbrnn features left nan.npy behind after refusing"

"$CBRNN" train -q -o m.safetensors --hidden 4 --cb 4 --warmup-steps 1 --steps 1 \
  --val-fraction 0 nan.wav 2>err.txt; rc=$?
[ "$rc" -eq 2 ] || fail "cbrnn train on NaN samples: expected exit 2, got $rc ($(cat err.txt))"
grep -q "nan.wav: sample 8000" err.txt || fail "cbrnn train: file not named: $(cat err.txt)"

"$CBRNN" run --quiet --model "$SAMPLES/default.safetensors" --out-dir run --learn nan.wav \
  2>err.txt || fail "cbrnn run on NaN samples: expected exit 0 ($(cat err.txt))"
"$PY" - <<'PY' || fail "cbrnn run: bad samples not flagged, or non-finite outputs"
import csv, struct, sys
rows = list(csv.DictReader(open("run/frames.csv")))
bad = [int(r["frame"]) for r in rows if int(r["flags"]) & 2]
# frames whose hop (160 samples) received sample 8000 or 12000
ok = bad == [(8000 - 400) // 160 + 1, (12000 - 400) // 160 + 1]
import numpy as np
y = np.load("run/outputs.npy")
print("run: %d frames, flagged %s, outputs finite: %s" % (len(rows), bad, bool(np.isfinite(y).all())))
sys.exit(0 if ok and np.isfinite(y).all() else 1)
PY

# A label ending 1e68 s from now: finite, so accepted, and no UB (the ASan
# build runs this too: UBSan aborts on the float-to-long overflow).
sox -n -r 16000 -b 16 tone.wav synth 1 sine 300 2>/dev/null || fail "sox"
cp tone.wav tone2.wav
mkdir -p lab
printf '0\t0.5\ta\n0.5\t1e68\tb\n' >lab/tone.txt
printf '0\t0.3\tb\n0.3\t1\ta\n' >lab/tone2.txt
"$CBRNN" train -q -o c.safetensors --target classify --labels-dir lab --hidden 4 --cb 4 \
  --warmup-steps 1 --steps 1 --val-fraction 0 tone.wav tone2.wav 2>err.txt ||
  fail "cbrnn train with a 1e68 s label: $(cat err.txt)"
# A named pipe given as audio, or found as a map model's teacher, is
# refused by name at once (opening one with no writer blocked for ever, and
# the stop handler swallowed the first SIGTERM around it).
mkfifo pipe.wav
timeout 20 "$CBRNN" features pipe.wav -o p.npy 2>err.txt; rc=$?
if [ "$rc" -ne 2 ] || ! grep -q "pipe.wav: not a regular file (a named pipe)" err.txt; then
  fail "cbrnn features on a FIFO: exit $rc ($(cat err.txt))"
fi
mkdir -p m && cp "$SAMPLES/voiceA_us_male_1.wav" m/a.wav && cp "$SAMPLES/voiceA_us_male_2.wav" m/b.wav &&
  cp m/b.wav m/b_t.wav && mkfifo m/a_t.wav
timeout 60 "$CBRNN" train -q -o mt.safetensors --target map --teacher-suffix _t --hidden 4 --cb 4 \
  --warmup-steps 1 --steps 1 --val-fraction 0 m 2>err.txt; rc=$?
if [ "$rc" -ne 0 ] || ! grep -q "a_t.wav: not a regular file (a named pipe)" err.txt; then
  fail "cbrnn train with a FIFO teacher: exit $rc ($(cat err.txt))"
fi
echo "cli_bad_audio: passed"
