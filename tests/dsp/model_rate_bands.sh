#!/bin/bash
# model_rate_bands.sh CBRNN SAMPLES WORKDIR: a model trained at 8 kHz sees
# the same mel bands at every playback rate (issue 13: the default f_max was
# worked out at the playback rate, 20..8000 Hz at 48 kHz instead of the
# 20..4000 Hz it was trained on, and scored 0.577 instead of 0.123). A small
# model is trained on voice A at 8 kHz (sox); voice B at 8 kHz and the same
# clip upsampled to 48 kHz must score within 10% of each other, through
# `cbrnn eval` and through the engine (`cbrnn run`).
set -u
CBRNN=$1 SAMPLES=$2 WORK=$3
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
fail() { echo "FAIL: $*" >&2; exit 1; }
for i in 1 2 3; do sox "$SAMPLES/voiceA_us_male_$i.wav" -r 8000 "a8_$i.wav" || fail sox; done
sox "$SAMPLES/voiceB_gb_female_2.wav" -r 8000 b8.wav && sox b8.wav -r 48000 b48.wav || fail sox
"$CBRNN" train -q -o m8.safetensors --hidden 32 --cb 64 --warmup-steps 150 --steps 150 \
  --val-fraction 0 a8_*.wav >train.log 2>&1 || { cat train.log; fail "cbrnn train"; }
"$CBRNN" eval --json m8.safetensors b8.wav b48.wav >eval.json || fail "cbrnn eval"
for r in 8 48; do
  "$CBRNN" run --quiet --model m8.safetensors --out-dir "run$r" "b$r.wav" || fail "cbrnn run b$r.wav"
done
/usr/bin/python3 - <<'PY' || exit 1
import csv, json, math, sys
ev = {f["file"].split("/")[-1]: f["loss"] for f in json.load(open("eval.json"))["files"]}
def mean_loss(d):
    v = [float(r["loss"]) for r in csv.DictReader(open(d + "/frames.csv")) if r["loss"]]
    return sum(v) / len(v)
run = {"b8.wav": mean_loss("run8"), "b48.wav": mean_loss("run48")}
bad = 0
for what, l in (("eval", ev), ("run", run)):
    ratio = l["b48.wav"] / l["b8.wav"]
    print("%s: loss at 8 kHz %.4f, at 48 kHz %.4f (ratio %.3f)" % (what, l["b8.wav"], l["b48.wav"], ratio))
    if not abs(ratio - 1) <= 0.10:
        print("FAIL: %s: the 48 kHz loss is not within 10%% of the 8 kHz loss" % what)
        bad = 1
sys.exit(bad)
PY
echo "model_rate_bands: passed"
