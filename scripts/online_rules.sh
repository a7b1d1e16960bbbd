#!/bin/sh
# The online rules of docs/ADAPTATION.md on many voices, rerunnable: for
# every speaker of a split with at least 30 s of audio, its first ~92 s
# (whole files in manifest order) form one stream that the default model
# hears through `cbrnn run` (the engine cbrnn-jack runs):
#   frozen    --no-learn
#   sgd       --learn --rule sgd (lr 1e-3, momentum 0.9)
#   rls-P     --learn --rule rls --rls-prior P (forgetting 0.9999), for
#             each P in PRIORS (valid: 10 30 100, where the prior is
#             chosen; test: 30, the shipped choice)
#   hindsight the bound of the last layer on the first minute: RLS (prior
#             30) over the speaker's first ~62 s saved (--save-model),
#             then that model frozen over the stream: the last layer that
#             fits the whole minute, known in advance
#   resumed   the minute's saved model (weights and RLS state) learning on
#             over the files after the minute, as a new stream; and
#             resumed-prior, the same from the prior around its weights
#             (--rls-prior 30: what a saved model gave before it kept the
#             rule's state)
# and prints skill (1 - loss / persistence loss) over the first 60 s,
# over 60-90 s, and over the 30 s after the minute's files (hindsight on
# frames it was not fitted to; speakers with that much) per speaker and
# the mean over speakers, and over the files after the minute, the
# resumed runs against learning straight on (scripts/online_report.py).
# Needs the corpus (scripts/corpus.sh): fetched when missing into the
# default folder, into another CORPUS_DIR only with --fetch.
# FORGET=X in the environment sets the forgetting factor (default 0.9999);
# MODEL=M another model than samples/default.safetensors. GATE_DB=DB (e.g.
# -50) gives every learning run --gate-db DB (learn only from frames above
# it); skill still counts every frame.
# Usage: scripts/online_rules.sh [--fetch] valid|test [OUT_DIR] [CORPUS_DIR]
#   OUT_DIR defaults to a new temporary folder; CORPUS_DIR to
#   $XDG_CACHE_HOME/cbrnn-corpus, else ~/.cache/cbrnn-corpus.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/corpus_dir.sh
. "$top/scripts/lib/corpus_dir.sh"
corpus_options online_rules.sh "$0" '2' 3 "$@"
shift "$opts_used"
if [ $# -lt 1 ]; then
  echo "usage: online_rules.sh [--fetch] valid|test [OUT_DIR] [CORPUS_DIR] (see --help)" >&2; exit 2
fi
split=$1
case $split in valid) priors="10 30 100" ;; test) priors=30 ;;
  *) echo "online_rules.sh: split '$split': expected valid or test first," \
       "then [OUT_DIR] [CORPUS_DIR] (see --help)" >&2; exit 2 ;; esac
out=""
if [ -n "${2:-}" ]; then
  out=$(abs_path "$2")
  out_dir_check online_rules.sh "$out" "valid|test [OUT_DIR] [CORPUS_DIR]"
fi
corpus=$(abs_path "${3:-$(corpus_default)}")
model=$(abs_path "${MODEL:-$top/samples/default.safetensors}")
[ -f "$model" ] || { echo "online_rules.sh: model '$model' not found" >&2; exit 2; }
corpus_ready online_rules.sh "$top" "$corpus" "$fetch"
"$top/scripts/build.sh" "$top/build" >/dev/null
cbrnn="$top/build/cli/cbrnn"
# shellcheck source=scripts/lib/corpus_lists.sh
. "$top/scripts/lib/corpus_lists.sh"
[ -n "$out" ] || out=$(mktemp -d)
mkdir -p "$out"
echo "online_rules: runs in $out" >&2
split_speakers "$corpus" "$split" 30 > "$out/speakers.txt"
while IFS= read -r spk; do
  d="$out/$(echo "$spk" | tr ':/' '__')"
  mkdir -p "$d"
  speaker_stream "$corpus" "$split" "$spk" 62 > "$d/minute.txt"
  speaker_stream "$corpus" "$split" "$spk" 92 > "$d/files.txt"
  # The streams go to cbrnn as @lists (one path a line): paths may hold spaces.
  "$cbrnn" run --quiet --model "$model" --learn --rule rls --rls-prior 30 \
    --rls-forget "${FORGET:-0.9999}" ${GATE_DB:+--gate-db "$GATE_DB"} --save-model "$d/minute.safetensors" \
    --out-dir "$d/minute" "@$d/minute.txt"
  set -- "@$d/files.txt"
  "$cbrnn" run --quiet --model "$model" --no-learn --out-dir "$d/frozen" "$@"
  "$cbrnn" run --quiet --model "$model" --learn --rule sgd ${GATE_DB:+--gate-db "$GATE_DB"} --out-dir "$d/sgd" "$@"
  for p in $priors; do
    "$cbrnn" run --quiet --model "$model" --learn --rule rls --rls-prior "$p" \
      --rls-forget "${FORGET:-0.9999}" ${GATE_DB:+--gate-db "$GATE_DB"} --out-dir "$d/rls-$p" "$@"
  done
  "$cbrnn" run --quiet --model "$d/minute.safetensors" --no-learn --out-dir "$d/hindsight" "$@"
  # learning on from the minute's saved model (its RLS state), and from the
  # prior around its weights, over the files after the minute
  awk 'NR == FNR { m[$0] = 1; next } !($0 in m)' "$d/minute.txt" "$d/files.txt" > "$d/rest.txt"
  if [ -s "$d/rest.txt" ]; then
    set -- "@$d/rest.txt"
    "$cbrnn" run --quiet --model "$d/minute.safetensors" --learn ${GATE_DB:+--gate-db "$GATE_DB"} \
      --out-dir "$d/resumed" "$@"
    "$cbrnn" run --quiet --model "$d/minute.safetensors" --learn --rls-prior 30 \
      ${GATE_DB:+--gate-db "$GATE_DB"} --out-dir "$d/resumed-prior" "$@"
  fi
done < "$out/speakers.txt"
/usr/bin/python3 "$top/scripts/online_report.py" "$out"
