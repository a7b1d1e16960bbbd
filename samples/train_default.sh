#!/bin/sh
# Trains samples/default.safetensors, the model cbrnn ships: the recorded
# command, so anyone can rebuild it (same seed, same corpus, same
# parameters, hence the same weights). Its metadata differs from the
# shipped file's in the date (unless SOURCE_DATE_EPOCH is set) and in
# held_out_dir (the corpus folder used: CORPUS_DIR/pkg). The shipped file
# is this script's output of 2026-12-02, whose tensors are bit for bit
# those of the model first trained on 2026-12-01 (before the model
# recorded the content digests of its lists): `scripts/check_lists.sh`
# checks it against the corpus's splits.
#
#   Corpus: the TRAINING split of the real multi-speaker corpus
#   (scripts/corpus.sh, from Debian packages; docs/CORPUS.md), its files
#   at 16 kHz and up: 22 languages, 38 speakers (the split's Finnish and
#   Swedish files are 8 kHz only and left out); the validation split is
#   train's held-out set. The test split's speakers and languages (it, da,
#   bg, el) are never used: samples/real_*.wav come from there.
#   Model (chosen on the validation split, docs/SPEECH.md): readout wiring,
#   predict 1 frame (10 ms) ahead, residual output behind a running
#   normaliser of 1 s, cortex 384, cerebellum 512 (381,224 parameters,
#   1.5 MB); Adam 2e-3 with cosine decay, batch 32 x 100 frames, 1500
#   warm-up + 1500 frozen-cortex steps. Windows drawn per file as often as
#   it has frames (every voice in proportion to its share, not the long
#   prompts' voices first), every file also heard at speeds 0.9 and 1.1
#   (new pitches and vocal tracts). The model kept is the mean of the
#   weights over the whole frozen-cortex phase (--average 1: validation
#   skill 0.177 -> 0.184, every validation language up; docs/SPEECH.md).
#   Model rate 16 kHz. Online, its
#   cerebellum learns by RLS on its last layer (prior 30, forgetting
#   0.9999; chosen on the validation voices, docs/ADAPTATION.md): hosts
#   run that unless given --rule sgd.
#   Training runs OpenBLAS on 2 threads (both cores here: 300 steps of the
#   earlier cortex-256 default on a tenth of the corpus took 16.2 s against
#   22.8 s on one, 2026-12-01; the command was not recorded: README.md,
#   "What it does", gives one to remeasure it). The thread count and the
#   CPU kernels OpenBLAS picks change the rounding of the matrix products,
#   so both are pinned here: 2 threads and, on x86-64 with AVX2 and FMA,
#   OpenBLAS's Zen kernels (the CPU the shipped model was trained on).
#   The model then comes out the same bytes on any such machine: on
#   2026-12-02 an Intel Xeon with AVX-512 gave the shipped tensors bit for
#   bit with the Zen kernels, and different ones with its own SkylakeX
#   kernels (validation skill 0.18441 against 0.18439).
#   OPENBLAS_NUM_THREADS and OPENBLAS_CORETYPE override them; elsewhere
#   (no AVX2, another architecture) the script says the bytes will differ.
#
#   samples/train_default.sh [--fetch] [CBRNN] [CORPUS_DIR]
#
#   CBRNN       the cbrnn binary (default build/cli/cbrnn, or $CBRNN)
#   CORPUS_DIR  the fetched corpus (default $XDG_CACHE_HOME/cbrnn-corpus,
#               else ~/.cache/cbrnn-corpus; fetched there when missing)
#   --fetch     fetch the corpus (scripts/corpus.sh) into CORPUS_DIR when it
#               holds none; without it only the default folder is fetched into
#
# Trains into a temporary folder in samples/ and moves the model over
# samples/default.safetensors and the training log over
# samples/default_train.csv only when the run completed: a failed or
# interrupted run (Ctrl-C: cbrnn saves what it has, marked interrupted)
# leaves the shipped files as they were. Prints the wall time.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib/corpus_dir.sh
. "$here/../scripts/lib/corpus_dir.sh"
corpus_options train_default.sh "$0" '/^#   samples\/train_default.sh \[/' 2 "$@"
shift "$opts_used"
cbrnn=${1:-${CBRNN:-$here/../build/cli/cbrnn}}
if [ -d "$cbrnn" ]; then
  echo "train_default.sh: '$cbrnn' is a folder, not the cbrnn binary: the binary comes first," \
    "then CORPUS_DIR (see --help)" >&2
  exit 2
fi
[ -x "$cbrnn" ] || { echo "train_default.sh: $cbrnn not found: build first (scripts/build.sh)" >&2; exit 2; }
cbrnn=$(abs_path "$cbrnn")
corpus=$(abs_path "${2:-$(corpus_default)}")
corpus_ready train_default.sh "$here/.." "$corpus" "$fetch"
# The lists and the run's outputs, in samples/ so the final moves are
# renames on one file system; removed however the script ends.
work=$(mktemp -d "$here/.train_default.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# shellcheck source=scripts/lib/corpus_lists.sh
. "$here/../scripts/lib/corpus_lists.sh"
for s in train valid; do
  split_files "$corpus" "$s" > "$work/$s.txt"
done
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-2}"
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  if [ "$(uname -m)" = x86_64 ] && grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
    export OPENBLAS_CORETYPE=Zen
  else
    echo "train_default.sh: no AVX2 and FMA on this CPU: OpenBLAS uses other kernels, so the" \
      "model will not be the shipped one bit for bit (the same recipe, rounded differently)" >&2
  fi
fi
start=$(date +%s)
# Relative names from inside the work folder: the command stored in the
# model's provenance names no temporary path.
cd "$work"
"$cbrnn" train -o default.safetensors --log default_train.csv \
  --target predict --horizon 1 --wiring readout --arch cbrnn \
  --hidden 384 --cb 512 --activation tanh --alpha 1 \
  --output-mode residual --stream-norm 1 --rate 16000 \
  --optimizer adam --lr 2e-3 --lr-decay cosine --clip 1 --batch 32 --seq-len 100 \
  --warmup-steps 1500 --steps 1500 --eval-every 100 --seed 1 \
  --windows frames --speed-perturb 0.9,1.1 --average 1 \
  --online-rule rls --rls-prior 30 --rls-forget 0.9999 \
  --val-files @valid.txt @train.txt
echo "train_default.sh: trained in $(( $(date +%s) - start )) s wall time"
"$cbrnn" info default.safetensors
mv -f default.safetensors "$here/default.safetensors"
mv -f default_train.csv "$here/default_train.csv"
echo "train_default.sh: wrote $here/default.safetensors and $here/default_train.csv"
