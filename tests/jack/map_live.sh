#!/bin/bash
# map_live.sh: the teacher input. A small map model (voice A -> voice B,
# trained here) runs in `cbrnn-jack --learn --record --record-teacher
# --log` while voice A plays into 'input' and voice B into 'teacher'; then
# `cbrnn run --learn --teacher` on the two recordings must give the same
# per-frame numbers to 1e-5, and the model saved at SIGTERM must equal the
# offline run's.
. "$(dirname "$0")/jacklib.sh"
printf '%s\t%s\n' "$SAMPLES/voiceA_us_male_1.wav" "$SAMPLES/voiceB_gb_female_1.wav" >pairs.txt
"$CBRNN" train -q -o map.safetensors --target map --pairs pairs.txt --hidden 32 --cb 32 \
  --warmup-steps 20 --steps 20 --val-fraction 0 >train.log 2>&1 \
  || { cat train.log; fail "cbrnn train --target map"; }
start_jackd 256
"$JACKHOST" --name cbt --model map.safetensors --learn --record rec.wav \
  --record-teacher trec.wav --log live.csv --save live.safetensors >host.out 2>host.err &
HOST=$!
STARTED="$STARTED $HOST"
wait_port cbt:teacher
"$JACKPLAY" --name teacher --connect cbt:teacher --duration 5 "$SAMPLES/voiceB_gb_female_3.wav" &
T=$!
STARTED="$STARTED $T"
"$JACKPLAY" --name player --connect cbt:input --duration 5 "$SAMPLES/voiceA_us_male_3.wav" \
  || fail "cbrnn-jackplay (input) failed"
wait "$T" || fail "cbrnn-jackplay (teacher) failed"
kill -TERM "$HOST"
wait "$HOST"; rc=$?
cat host.err
[ "$rc" -eq 0 ] || fail "cbrnn-jack after SIGTERM: expected exit 0, got $rc"
grep -q "recorded .* to trec.wav" host.err || fail "no teacher recording"
"$CBRNN" run --model map.safetensors --learn --teacher trec.wav --out-dir off \
  --save-model off.safetensors rec.wav || fail "cbrnn run --teacher on the recordings"
"$PY" "$(dirname "$0")/compare_frames.py" live.csv off/frames.csv 1e-5 \
  || fail "live and offline per-frame numbers differ (map)"
same_weights live.safetensors off.safetensors || fail "live and offline adapted weights differ (map)"
"$JACKHOST" --model "$SAMPLES/default.safetensors" --record-teacher x.wav 2>err.txt; rc=$?
[ "$rc" -eq 2 ] && grep -q "record-teacher" err.txt || fail "--record-teacher without a teacher: expected exit 2, got $rc"
echo "map_live: passed"
