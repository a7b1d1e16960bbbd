#!/bin/sh
# The adaptation experiment of docs/ADAPTATION.md, rerunnable:
#   the default model (warm-up on voice A only, samples/train_default.sh)
#   listens to voice B (never heard) as one continuous 69 s stream of the
#   four voice-B clips, through `cbrnn run` (the engine cbrnn-jack runs):
#     1. with the cerebellum frozen (--no-learn),
#     2. learning online (--learn, the default lr 1e-3, momentum 0.9),
#     3. learning online with a pull toward the warm-up weights (--decay);
#   then the model adapted on voice-B clips 1-3 is evaluated frozen on
#   voice-B clip 4 (unheard text) and on voice A (what it knew).
# Writes docs/figures/adaptation.png and docs/figures/adaptation.json and
# prints the tables of docs/ADAPTATION.md.
# Usage: scripts/adaptation.sh [OUT_DIR]   (default: a temporary folder)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/build.sh" "$top/build" >/dev/null
cbrnn="$top/build/cli/cbrnn"
model="$top/samples/default.safetensors"
out=${1:-$(mktemp -d)}
mkdir -p "$out"
B1="$top/samples/voiceB_gb_female_1.wav" B2="$top/samples/voiceB_gb_female_2.wav"
B3="$top/samples/voiceB_gb_female_3.wav" B4="$top/samples/voiceB_gb_female_4.wav"
DECAY=1e-1

echo "adaptation: runs in $out" >&2
"$cbrnn" run --quiet --model "$model" --no-learn --out-dir "$out/frozen" "$B1" "$B2" "$B3" "$B4"
"$cbrnn" run --quiet --model "$model" --learn --out-dir "$out/learn" "$B1" "$B2" "$B3" "$B4"
"$cbrnn" run --quiet --model "$model" --learn --decay $DECAY --out-dir "$out/decay" \
  "$B1" "$B2" "$B3" "$B4"
# Generalisation: adapt on clips 1-3 (with and without decay), then freeze
# and evaluate on clip 4 and on voice A.
"$cbrnn" run --quiet --model "$model" --learn --out-dir "$out/adapt123" \
  --save-model "$out/adapted_B123.safetensors" "$B1" "$B2" "$B3"
"$cbrnn" run --quiet --model "$model" --learn --decay $DECAY --out-dir "$out/adapt123d" \
  --save-model "$out/adapted_B123_decay.safetensors" "$B1" "$B2" "$B3"
for m in "$model" "$out/adapted_B123.safetensors" "$out/adapted_B123_decay.safetensors"; do
  "$cbrnn" eval "$m" "$B4" --json >"$out/eval_B4_$(basename "$m" .safetensors).json"
  "$cbrnn" eval "$m" "$top"/samples/voiceA_us_male_*.wav --json \
    >"$out/eval_A_$(basename "$m" .safetensors).json"
done
# Clip boundaries in seconds of the stream, for the figure.
bounds=$(for f in "$B1" "$B2" "$B3"; do soxi -D "$f"; done | tr '\n' ',')
/usr/bin/python3 "$top/scripts/plot_adaptation.py" --out-dir "$out" --bounds "$bounds" \
  --decay $DECAY --png "$top/docs/figures/adaptation.png" --json "$top/docs/figures/adaptation.json"
