#!/bin/sh
# Checks a model's claim about the corpus it learned from: that it was
# trained on exactly the corpus's training split (its files at 16 kHz and
# up, as samples/train_default.sh lists them) and held out exactly its
# validation split, by the content digests `cbrnn train` records
# (train_set_sha256, val_set_sha256; docs/FORMATS.md), and that no
# recording of the test split is, by content, among those it trained or
# validated on. Names and paths do not matter, only the bytes.
# Exit status: 0 all hold; 1 a digest differs or is missing, or a test
# recording is among them; 2 bad arguments or no corpus.
# Needs the corpus (scripts/corpus.sh): fetched when missing into the
# default folder, into another CORPUS_DIR only with --fetch.
# Usage: scripts/check_lists.sh [--fetch] [MODEL] [CORPUS_DIR]
#   MODEL defaults to samples/default.safetensors; CORPUS_DIR to
#   $XDG_CACHE_HOME/cbrnn-corpus, else ~/.cache/cbrnn-corpus.
#   CBRNN=path/to/cbrnn overrides build/cli/cbrnn.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/corpus_dir.sh
. "$top/scripts/lib/corpus_dir.sh"
corpus_options check_lists.sh "$0" '2' 2 "$@"
shift "$opts_used"
model=${1:-$top/samples/default.safetensors}
corpus=$(abs_path "${2:-$(corpus_default)}")
cbrnn=${CBRNN:-$top/build/cli/cbrnn}
[ -x "$cbrnn" ] || { echo "check_lists.sh: $cbrnn not found: build first (scripts/build.sh)" >&2; exit 2; }
[ -f "$model" ] || { echo "check_lists.sh: model '$model' is not a file" >&2; exit 2; }
info=$("$cbrnn" info "$model") || exit 2
corpus_ready check_lists.sh "$top" "$corpus" "$fetch"
# shellcheck source=scripts/lib/corpus_lists.sh
. "$top/scripts/lib/corpus_lists.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# hashes LIST: the SHA-256 of each file named in LIST (one a line), sorted.
hashes() {
  tr '\n' '\0' < "$1" | xargs -0 -r sha256sum | sed 's/^\\//' | cut -c1-64 | LC_ALL=C sort
}
status=0
for s in train valid test; do
  split_files "$corpus" "$s" > "$work/$s.txt"
  hashes "$work/$s.txt" > "$work/$s.sha"
done
for pair in train:train_set_sha256 valid:val_set_sha256; do
  s=${pair%%:*} key=${pair#*:}
  have=$(printf '%s\n' "$info" | awk -v k="$key" '$1 == k { print $2 }')
  want=$(sha256sum < "$work/$s.sha" | cut -c1-64)
  n=$(wc -l < "$work/$s.txt")
  if [ -z "$have" ]; then
    echo "$s: the model records no $key (trained before cbrnn recorded it, or a file could" \
      "not be read again when it was saved): its $s list cannot be checked"
    status=1
  elif [ "$have" = "$want" ]; then
    echo "$s: the same $n recordings as the corpus's $s split ($key $have)"
  else
    echo "$s: NOT the corpus's $s split ($n recordings): the model's $key is $have," \
      "the split's $want"
    status=1
  fi
done
cat "$work/train.sha" "$work/valid.sha" | LC_ALL=C sort -u > "$work/seen.sha"
shared=$(LC_ALL=C sort -u "$work/test.sha" | LC_ALL=C comm -12 - "$work/seen.sha" | wc -l)
ntest=$(wc -l < "$work/test.txt")
if [ "$shared" -eq 0 ]; then
  echo "test: none of its $ntest recordings is among the training or validation recordings"
else
  echo "test: $shared of its $ntest recordings are, by content, among the training or" \
    "validation recordings"
  status=1
fi
exit "$status"
