#!/bin/sh
# block_invariance.sh CBRNN SAMPLES: `cbrnn features --block N` must give
# byte-identical .npy files for N = 1, 7, 64, 1000, 4096 (DESIGN.md: the
# streaming output does not depend on how the audio is cut into blocks),
# for log-mel, MFCC, deltas and a resampled input, on clips at 16, 22.05
# and 48 kHz. A failure names the file, options and block size.
set -eu
cbrnn=$1
samples=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
runs=0
for wav in voiceA_us_male_1.wav voiceB_gb_female_2.wav noise_tones_48k.wav; do
  for opts in "" "--mfcc 13" "--deltas" "--mfcc 20 --mels 64 --deltas" "--rate 44100"; do
    ref=""
    for b in 4096 1 7 64 1000; do
      out="$tmp/b$b.npy"
      # shellcheck disable=SC2086 # opts is a list of words
      "$cbrnn" features "$samples/$wav" -o "$out" --block "$b" $opts >/dev/null
      runs=$((runs + 1))
      if [ -z "$ref" ]; then
        ref="$tmp/ref.npy"
        mv "$out" "$ref"
        # 128-byte header plus at least one frame: the comparison is not vacuous.
        size=$(wc -c <"$ref")
        if [ "$size" -le 256 ]; then
          echo "FAIL $wav [$opts]: output has no frames ($size bytes)"
          fail=1
        fi
      elif ! cmp -s "$ref" "$out"; then
        echo "FAIL $wav [$opts]: --block $b differs from --block 4096 ($(cmp "$ref" "$out" | head -1))"
        fail=1
      fi
    done
  done
done
[ "$fail" = 0 ] || exit 1
echo "block invariance: $runs runs, all byte-identical per file and options"
