#!/bin/bash
# lv2_host.sh: references from `cbrnn run` for test_lv2_host.c, then runs it.
#   A = 5 s of voice A (16 kHz), learning on, adapted model saved
#       (WORKDIR/adapted.safetensors);
#   B = 4 s of voice B (22.05 kHz: restoring at another rate), learning on,
#       starting from A's adapted model;
#   C = A through a small classify model, labels from a label file (the
#       test host sends the same segments as MIDI notes);
#   M = A with a teacher through a small map model.
# Also two copies of the bundle, one without default.safetensors and one
# with a text file in its place (WORKDIR/nodefault, WORKDIR/textdefault).
# Arguments: TEST_LV2_HOST CBRNN LV2_DIR SAMPLES WORKDIR.
set -u
HOSTPROG=$1 CBRNN=$2 LV2DIR=$3 SAMPLES=$4 WORK=$5
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
fail() { echo "FAIL: $*" >&2; exit 1; }
MODEL=$LV2DIR/cbrnn.lv2/default.safetensors
for c in nodefault textdefault; do
  mkdir "$c" || fail "mkdir $c"
  cp -r "$LV2DIR/cbrnn.lv2" "$c/" || fail "copying the bundle"
done
rm nodefault/cbrnn.lv2/default.safetensors || fail "rm default.safetensors"
echo "not a model, just some text" >textdefault/cbrnn.lv2/default.safetensors
sox "$SAMPLES/voiceA_us_male_2.wav" a.wav trim 0 5 || fail "sox"
sox "$SAMPLES/voiceB_gb_female_2.wav" b.wav trim 0 4 || fail "sox"
"$CBRNN" run --quiet --model "$MODEL" --learn --out-dir refA \
  --save-model "$WORK/adapted.safetensors" a.wav || fail "cbrnn run a.wav"
"$CBRNN" run --quiet --model adapted.safetensors --learn --out-dir refB b.wav \
  || fail "cbrnn run b.wav"
# C = input A through a small classify model (trained here as in
# tests/jack/classify_live.sh) with two labelled segments.
mkdir -p lab
printf '0.0\t8.0\tfirst\n8.0\t16.0\tsecond\n' >lab/voiceA_us_male_1.txt
"$CBRNN" train -q -o cls.safetensors --target classify --labels-dir lab --hidden 32 --cb 32 \
  --warmup-steps 20 --steps 20 --val-fraction 0 "$SAMPLES/voiceA_us_male_1.wav" >train.log 2>&1 \
  || { cat train.log; fail "cbrnn train --target classify"; }
printf '1.0\t2.5\tfirst\n3.0\t4.5\tsecond\n' >a_labels.txt
"$CBRNN" run --quiet --model cls.safetensors --learn --labels a_labels.txt --out-dir refC a.wav \
  || fail "cbrnn run --labels"
# M = input A with teacher T (another voice-A clip at the same rate)
# through a small map model (trained here as in tests/jack/map_live.sh).
printf '%s\t%s\n' "$SAMPLES/voiceA_us_male_1.wav" "$SAMPLES/voiceB_gb_female_1.wav" >pairs.txt
"$CBRNN" train -q -o map.safetensors --target map --pairs pairs.txt --hidden 32 --cb 32 \
  --warmup-steps 20 --steps 20 --val-fraction 0 >train_map.log 2>&1 \
  || { cat train_map.log; fail "cbrnn train --target map"; }
sox "$SAMPLES/voiceA_us_male_3.wav" t.wav trim 0 5 || fail "sox"
"$CBRNN" run --quiet --model map.safetensors --learn --teacher t.wav --out-dir refM a.wav \
  || fail "cbrnn run --teacher"
"$HOSTPROG" "$LV2DIR" a.wav b.wav refA refB "$WORK" "$WORK/cls.safetensors" refC \
  "$WORK/map.safetensors" t.wav refM
