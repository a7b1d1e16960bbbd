#!/bin/sh
# The adaptation experiment of docs/ADAPTATION.md, rerunnable:
#   the default model (samples/train_default.sh: the training split of the
#   real corpus) listens to two voices of the TEST split it never heard,
#   samples/real_it_carlo.wav (Italian, male, 78.6 s) and
#   samples/real_el_tuxpaint.wav (Greek, 65.6 s), through `cbrnn run` (the
#   engine cbrnn-jack runs):
#     1. with the cerebellum frozen (--no-learn),
#     2. learning online with the model's rule (--learn: RLS on the
#        cerebellum's last layer, prior 30, forgetting 0.9999),
#     3. learning online by SGD (--learn --rule sgd: lr 1e-3, momentum 0.9),
#     4. SGD with a pull toward the warm-up weights (--decay);
#   beside persistence and the linear predictor fitted on the training split
#   (cbrnn eval --linear-fit). Then the model adapted on a clip is scored
#   frozen on the rest of that speaker's recordings (not in the clip) and
#   on the warm-up voices (every 40th file of the training split).
# Needs the corpus (scripts/corpus.sh): fetched when missing into the
# default folder, into another CORPUS_DIR only with --fetch.
# Writes docs/figures/adaptation.png and docs/figures/adaptation.json and
# prints the tables of docs/ADAPTATION.md.
# Usage: scripts/adaptation.sh [--fetch] [OUT_DIR] [CORPUS_DIR]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/corpus_dir.sh
. "$top/scripts/lib/corpus_dir.sh"
corpus_options adaptation.sh "$0" '2' 2 "$@"
shift "$opts_used"
out=""
if [ -n "${1:-}" ]; then
  out=$(abs_path "$1")
  out_dir_check adaptation.sh "$out" "[OUT_DIR] [CORPUS_DIR]"
fi
corpus=$(abs_path "${2:-$(corpus_default)}")
corpus_ready adaptation.sh "$top" "$corpus" "$fetch"
"$top/scripts/build.sh" "$top/build" >/dev/null
cbrnn="$top/build/cli/cbrnn"
model="$top/samples/default.safetensors"
[ -n "$out" ] || out=$(mktemp -d)
mkdir -p "$out"
DECAY=1e-1
# shellcheck source=scripts/lib/corpus_lists.sh
. "$top/scripts/lib/corpus_lists.sh"
split_files "$corpus" train > "$out/train.txt"
awk 'NR % 40 == 0' "$out/train.txt" > "$out/warm.txt"
echo "adaptation: runs in $out" >&2
for v in it_carlo:asterisk:Carlo el_tuxpaint:tuxpaint:el; do
  name=${v%%:*} spk=${v#*:}
  clip="$top/samples/real_$name.wav"
  # the speaker's recordings that are not in the clip: held out for the
  # adapted model
  "$top/samples/make_real_samples.sh" --used "$name" "$corpus" | while IFS= read -r f; do
    realpath "$f"; done | sort > "$out/$name.clip.txt"
  speaker_files "$corpus" "$spk" | while IFS= read -r f; do realpath "$f"; done | sort |
    comm -23 - "$out/$name.clip.txt" > "$out/$name.heldout.txt"
  "$cbrnn" run --quiet --model "$model" --no-learn --out-dir "$out/$name.frozen" "$clip"
  "$cbrnn" run --quiet --model "$model" --learn --out-dir "$out/$name.learn" \
    --save-model "$out/$name.adapted.safetensors" "$clip"
  "$cbrnn" run --quiet --model "$model" --learn --rule sgd --out-dir "$out/$name.sgd" "$clip"
  "$cbrnn" run --quiet --model "$model" --learn --rule sgd --decay $DECAY \
    --out-dir "$out/$name.decay" "$clip"
  "$cbrnn" eval "$model" "$clip" --linear-fit "@$out/train.txt" --json > "$out/$name.linear.json"
  for m in "$model" "$out/$name.adapted.safetensors"; do
    tag=$(basename "$m" .safetensors)
    "$cbrnn" eval "$m" "@$out/$name.heldout.txt" --json > "$out/$name.heldout.$tag.json"
    "$cbrnn" eval "$m" "@$out/warm.txt" --json > "$out/$name.warm.$tag.json"
  done
done
/usr/bin/python3 "$top/scripts/plot_adaptation.py" --out-dir "$out" --decay $DECAY \
  --png "$top/docs/figures/adaptation.png" --json "$top/docs/figures/adaptation.json"
