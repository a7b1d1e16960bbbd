#!/bin/sh
# test_experiment_replace.sh: `cbrnn experiment` replaces its result files
# (experiment/replace.c) without touching other writers' temporaries and
# without losing the previous file when the write fails.
#  A. Temporaries already beside the targets, as Slurm tasks on other nodes
#     sharing the results folder would leave them (the old fixed PATH.tmp,
#     another host's .NAME.HOST.PID.N.tmp with a pid that is dead here),
#     are neither overwritten nor removed, and the results are written; a
#     temporary of this host whose process is gone is swept.
#  B. A curve cut back to its checkpoint (paper.c) into a read-only folder
#     and into a full tmpfs: exit 1, a message naming the curve and the
#     failing step, the previous curve byte-identical, no temporary left.
#     Needs mount (root); exit 77 (ctest: skipped) after A where it fails.
# usage: test_experiment_replace.sh CBRNN_BINARY SAMPLES_DIR
set -u
CBRNN=$1
S=$2
T=$(mktemp -d /tmp/cbrnn_experiment_replace_XXXXXX)
mounted=""
cleanup() {
  for m in $mounted; do umount "$m" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# This host as temporaries name it (model/file_replace.c): [A-Za-z0-9-], 32 bytes.
host=$(uname -n | tr -c 'A-Za-z0-9\n-' '-' | cut -c1-32)
sh -c 'exit 0' & dead=$!
wait $dead # a pid that is certainly gone

# A1. The speech test table (speech.c), on the smallest real run: the
# persistence baseline has nothing to train.
SPEECH="--task speech --corpus $S/voiceA_us_male_1.wav --val-files $S/voiceA_us_male_2.wav
  --test-files $S/voiceB_gb_female_1.wav --variants persistence --steps 2 --eval-every 1
  --seeds 1 --no-figure"
mkdir -p "$T/a/test"
d="$T/a/test"
echo "another writer's" >"$d/persistence-seed0.csv.tmp"
echo "another node's" >"$d/.persistence-seed0.csv.other-node.$dead.0.tmp"
echo "ours, killed" >"$d/.persistence-seed0.csv.$host.$dead.0.tmp"
# shellcheck disable=SC2086
"$CBRNN" experiment $SPEECH --out-dir "$T/a" >/dev/null 2>"$T/err" || fail "speech run: exit $? ($(cat "$T/err"))"
grep -q '^pooled,1,' "$d/persistence-seed0.csv" || fail "no test table written: $(cat "$d/persistence-seed0.csv")"
[ "$(cat "$d/persistence-seed0.csv.tmp")" = "another writer's" ] || fail "PATH.tmp of another writer was clobbered"
[ "$(cat "$d/.persistence-seed0.csv.other-node.$dead.0.tmp" 2>/dev/null)" = "another node's" ] ||
  fail "another node's temporary was clobbered or removed"
[ ! -e "$d/.persistence-seed0.csv.$host.$dead.0.tmp" ] || fail "this host's stale temporary was left"
[ "$(find "$d" -name '*.tmp' | wc -l)" -eq 2 ] || fail "temporaries left: $(ls -a "$d")"

# A2. The checkpoints and curves of a paper unit (tasks.c, paper.c).
Q="--task dms --variants rnn --seeds 1 --epochs 4 --checkpoint-every 2 --train-steps 6
   --test-batches 3 --no-figure"
mkdir -p "$T/g/checkpoints"
k="$T/g/checkpoints"
echo "another node's" >"$k/.rnn-seed0.ckpt.other-node.$dead.0.tmp"
echo "another writer's" >"$k/rnn-seed0.ckpt.tmp"
# shellcheck disable=SC2086
"$CBRNN" experiment $Q --epochs 2 --out-dir "$T/g" >/dev/null 2>"$T/err" || fail "paper run: exit $? ($(cat "$T/err"))"
[ -s "$k/rnn-seed0.ckpt" ] || fail "no checkpoint written"
[ "$(cat "$k/.rnn-seed0.ckpt.other-node.$dead.0.tmp" 2>/dev/null)" = "another node's" ] ||
  fail "another node's checkpoint temporary was clobbered or removed"
[ "$(cat "$k/rnn-seed0.ckpt.tmp")" = "another writer's" ] || fail "rnn-seed0.ckpt.tmp was clobbered"

# B. Forged rows past the checkpoint (epoch 2) make the next run cut the
# curve back: that rewrite is the one made to fail.
c="$T/g/curves/rnn-seed0.csv"
last=$(tail -1 "$c")
{ echo "$last" | sed 's/^2,/3,/'; echo "$last" | sed 's/^2,/4,/'; } >>"$c"
cp "$c" "$T/before.csv"

# $1: what the folder is; $2: the reason the message must give.
expect_kept() {
  # shellcheck disable=SC2086
  "$CBRNN" experiment $Q --out-dir "$T/g" >/dev/null 2>"$T/err"; rc=$?
  [ $rc -eq 1 ] || fail "$1: exit $rc, expected 1 ($(cat "$T/err"))"
  grep -q "$c: .*$2" "$T/err" || fail "$1: the message does not name the curve and '$2': $(cat "$T/err")"
  cmp -s "$c" "$T/before.csv" || fail "$1: the previous curve changed: $(cat "$c")"
  [ -z "$(find "$T/g/curves" -name '*.tmp')" ] || fail "$1: temporary left: $(ls -a "$T/g/curves")"
}

if ! mount --bind "$T/g/curves" "$T/g/curves" 2>/dev/null; then
  [ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
  echo "skip B (a failing write): cannot mount here"
  exit 77
fi
mounted="$T/g/curves"
if mount -o remount,bind,ro "$T/g/curves" 2>/dev/null; then
  expect_kept "read-only folder" "Read-only file system"
else
  fail "cannot remount the bind mount read-only"
fi
umount "$T/g/curves" && mounted=""

# A full tmpfs over curves/ holding the same curve: the temporary's write
# fails. 1 MiB filled to the last block, as scripts/faults.sh does (a
# smaller tmpfs lets a page through: its block count is per-CPU batched).
cp "$c" "$T/curve.csv"
mount -t tmpfs -o size=1m tmpfs "$T/g/curves" || fail "cannot mount a tmpfs after a bind mount"
mounted="$T/g/curves"
cp "$T/curve.csv" "$c"
dd if=/dev/zero of="$T/g/curves/fill" bs=4k 2>/dev/null
expect_kept "full tmpfs" "No space left on device"
umount "$T/g/curves" && mounted=""

if [ $fails -ne 0 ]; then
  echo "$fails failure(s)"
  exit 1
fi
echo "all experiment replace checks passed"
