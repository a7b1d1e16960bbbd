#!/bin/sh
# speech_ablation.sh: which levers make next-frame prediction generalise
# to voices and languages no training run heard. Trains one model per row
# on the corpus's TRAINING split (scripts/corpus.sh; 8 kHz telephone files
# left out: their bands above 4 kHz are empty), with the VALIDATION split
# as train's held-out set, then scores each on SPLIT (default test) per
# language group with cbrnn eval, beside persistence and the linear
# predictor fitted on the training split in that model's own inputs.
#   scripts/speech_ablation.sh [--fetch] [CORPUS_DIR] [OUT_DIR] [SPLIT]
#
#   CORPUS_DIR  the fetched corpus (default $XDG_CACHE_HOME/cbrnn-corpus,
#               else ~/.cache/cbrnn-corpus; fetched there when missing)
#   OUT_DIR     results (default build/speech-ablation)
#   SPLIT       the split scored: test (default) or valid
#   --fetch     fetch the corpus (scripts/corpus.sh) into CORPUS_DIR when it
#               holds none; without it only the default folder is fetched into
#   CBRNN=PATH in the environment: the cbrnn binary (default build/cli/cbrnn)
#
# Writes OUT_DIR/ROW.safetensors, ROW.csv (training log), ROW.SPLIT.json
# and table.md (scripts/speech_report.py). Choices were made on the
# validation split (docs/SPEECH.md); the test split is only ever scored.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/corpus_dir.sh
. "$top/scripts/lib/corpus_dir.sh"
corpus_options speech_ablation.sh "$0" '/^#   scripts\/speech_ablation.sh \[/' 3 "$@"
shift "$opts_used"
# Every argument is checked before the first of the hours of training.
case ${1:-} in train|valid|test)
  echo "speech_ablation.sh: '$1' is a split, not a corpus folder: the order is" \
    "[CORPUS_DIR] [OUT_DIR] [SPLIT] (see --help)" >&2; exit 2 ;; esac
split=${3:-test}
case $split in valid|test) ;;
  *) echo "speech_ablation.sh: split '$split': expected valid or test (see --help)" >&2; exit 2 ;; esac
corpus=$(abs_path "${1:-$(corpus_default)}")
out=$(abs_path "${2:-$top/build/speech-ablation}")
out_dir_check speech_ablation.sh "$out" "[CORPUS_DIR] [OUT_DIR] [SPLIT]"
cbrnn=${CBRNN:-"$top/build/cli/cbrnn"}
[ -x "$cbrnn" ] || { echo "speech_ablation.sh: $cbrnn not found: build first (scripts/build.sh)" >&2; exit 2; }
corpus_ready speech_ablation.sh "$top" "$corpus" "$fetch"
mkdir -p "$out"
# Lists with absolute paths, 16 kHz and up.
# shellcheck source=scripts/lib/corpus_lists.sh
. "$top/scripts/lib/corpus_lists.sh"
for s in train valid "$split"; do
  split_files "$corpus" "$s" > "$out/$s.txt"
done
common="--rate 16000 --lr 2e-3 --lr-decay cosine --batch 32 --warmup-steps 800 --steps 800 --seed 1"
row() { # NAME OPTIONS...
  name=$1; shift
  # shellcheck disable=SC2086
  "$cbrnn" train -q -o "$out/$name.safetensors" --log "$out/$name.csv" $common "$@" \
    --val-files "@$out/valid.txt" "@$out/train.txt"
  "$cbrnn" eval "$out/$name.safetensors" "@$out/$split.txt" --linear-fit "@$out/train.txt" \
    --json > "$out/$name.$split.json"
}
row plain        --hidden 128 --cb 256
row residual     --hidden 128 --cb 256 --output-mode residual
row res_stream   --hidden 128 --cb 256 --output-mode residual --stream-norm 1
row res_stream_deltas --hidden 128 --cb 256 --output-mode residual --stream-norm 1 --deltas
# At cortex 256, cerebellum 512: the earlier defaults' recipes (every
# window position equally likely; then each file drawn as often as it has
# frames, and every file also at speeds 0.9 and 1.1: the default until
# 2026-12-01 16:38); then that at cortex 384 with 1500 + 1500 steps (the
# default until 2026-12-01 21:00). The last row is the shipped default
# (samples/train_default.sh: the same with the weights averaged over the
# frozen-cortex phase), scored the same way.
big="--hidden 256 --cb 512 --output-mode residual --stream-norm 1"
# shellcheck disable=SC2086
row size256 $big
# shellcheck disable=SC2086
row size256_frames $big --windows frames
# shellcheck disable=SC2086
row size256_speed $big --windows frames --speed-perturb 0.9,1.1
# shellcheck disable=SC2086
row size384_speed $big --windows frames --speed-perturb 0.9,1.1 --hidden 384 \
  --warmup-steps 1500 --steps 1500
"$cbrnn" eval "$top/samples/default.safetensors" "@$out/$split.txt" --linear-fit "@$out/train.txt" \
  --json > "$out/default.$split.json"
/usr/bin/python3 "$top/scripts/speech_report.py" "$corpus/splits.tsv" --md \
  "$out"/plain."$split".json "$out"/residual."$split".json "$out"/res_stream."$split".json \
  "$out"/res_stream_deltas."$split".json "$out"/size256."$split".json \
  "$out"/size256_frames."$split".json "$out"/size256_speed."$split".json \
  "$out"/size384_speed."$split".json "$out"/default."$split".json | tee "$out/table.md"
