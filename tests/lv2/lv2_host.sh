#!/bin/bash
# lv2_host.sh: references from `cbrnn run` for test_lv2_host.c, then runs it.
#   A = 5 s of voice A (16 kHz), learning on, adapted model saved
#       (WORKDIR/adapted.safetensors);
#   B = 4 s of voice B (22.05 kHz: restoring at another rate), learning on,
#       starting from A's adapted model.
# Arguments: TEST_LV2_HOST CBRNN LV2_DIR SAMPLES WORKDIR.
set -u
HOSTPROG=$1 CBRNN=$2 LV2DIR=$3 SAMPLES=$4 WORK=$5
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
fail() { echo "FAIL: $*" >&2; exit 1; }
MODEL=$LV2DIR/cbrnn.lv2/default.safetensors
sox "$SAMPLES/voiceA_us_male_2.wav" a.wav trim 0 5 || fail "sox"
sox "$SAMPLES/voiceB_gb_female_2.wav" b.wav trim 0 4 || fail "sox"
"$CBRNN" run --quiet --model "$MODEL" --learn --out-dir refA \
  --save-model "$WORK/adapted.safetensors" a.wav || fail "cbrnn run a.wav"
"$CBRNN" run --quiet --model adapted.safetensors --learn --out-dir refB b.wav \
  || fail "cbrnn run b.wav"
"$HOSTPROG" "$LV2DIR" a.wav b.wav refA refB "$WORK"
