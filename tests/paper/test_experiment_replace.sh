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
#  C. The files exp.c writes: a new results folder gets settings.txt
#     first, which fails (read-only, full tmpfs) leaving none (an empty
#     settings.txt would make every later run refuse the folder as one "of
#     other settings"); a finished comparison run again rewrites
#     summary.md, then summary.json, which fails (full tmpfs) leaving both
#     byte-identical.
#     B and C need mount (root); exit 77 (ctest: skipped) after A where it
#     fails.
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
# (A finished run first: a folder without settings.txt would be refused;
# its test table removed, the unit runs again and writes it.)
# shellcheck disable=SC2086
"$CBRNN" experiment $SPEECH --out-dir "$T/a" >/dev/null 2>"$T/err" || fail "first speech run: exit $? ($(cat "$T/err"))"
d="$T/a/test"
rm -f "$d/persistence-seed0.csv"
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
# (A first epoch before the temporaries appear: a folder without
# settings.txt would be refused; the run below resumes from it.)
# shellcheck disable=SC2086
"$CBRNN" experiment $Q --epochs 1 --out-dir "$T/g" >/dev/null 2>"$T/err" || fail "first paper run: exit $? ($(cat "$T/err"))"
k="$T/g/checkpoints"
cp "$k/rnn-seed0.ckpt" "$T/ckpt1"
echo "another node's" >"$k/.rnn-seed0.ckpt.other-node.$dead.0.tmp"
echo "another writer's" >"$k/rnn-seed0.ckpt.tmp"
# shellcheck disable=SC2086
"$CBRNN" experiment $Q --epochs 2 --out-dir "$T/g" >/dev/null 2>"$T/err" || fail "paper run: exit $? ($(cat "$T/err"))"
if [ ! -s "$k/rnn-seed0.ckpt" ] || cmp -s "$k/rnn-seed0.ckpt" "$T/ckpt1"; then
  fail "no checkpoint written"
fi
[ "$(cat "$k/.rnn-seed0.ckpt.other-node.$dead.0.tmp" 2>/dev/null)" = "another node's" ] ||
  fail "another node's checkpoint temporary was clobbered or removed"
[ "$(cat "$k/rnn-seed0.ckpt.tmp")" = "another writer's" ] || fail "rnn-seed0.ckpt.tmp was clobbered"

# B. Forged rows past the checkpoint (epoch 2) make the next run cut the
# curve back: that rewrite is the one made to fail.
c="$T/g/curves/rnn-seed0.csv"
last=$(tail -1 "$c")
{ echo "$last" | sed 's/^2,/3,/'; echo "$last" | sed 's/^2,/4,/'; } >>"$c"
cp "$c" "$T/before.csv"

# fails_on WHAT REASON FILE OUT [OPTION...]: the run of $Q with OPTIONs
# into OUT exits 1 with a message naming FILE and REASON, and leaves no
# temporary beside FILE.
fails_on() {
  what=$1 why=$2 file=$3 out=$4
  shift 4
  # shellcheck disable=SC2086
  "$CBRNN" experiment $Q "$@" --out-dir "$out" >/dev/null 2>"$T/err"; rc=$?
  [ $rc -eq 1 ] || fail "$what: exit $rc, expected 1 ($(cat "$T/err"))"
  grep -q "$file: .*$why" "$T/err" || fail "$what: the message does not name $file and '$why': $(cat "$T/err")"
  [ -z "$(find "$(dirname "$file")" -maxdepth 1 -name '*.tmp')" ] ||
    fail "$what: temporary left: $(ls -a "$(dirname "$file")")"
}

# $1: what the folder is; $2: the reason the message must give.
expect_kept() {
  fails_on "$1" "$2" "$c" "$T/g"
  cmp -s "$c" "$T/before.csv" || fail "$1: the previous curve changed: $(cat "$c")"
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

# C. An empty folder (s) failed read-only, then as a full tmpfs, and a
# finished comparison (h) on a full tmpfs holding its files. (h is not
# tried read-only: a run opens its .lock first, so a read-only folder stops
# it before any write.)
h="$T/h"
# shellcheck disable=SC2086
"$CBRNN" experiment $Q --epochs 2 --out-dir "$h" >/dev/null 2>"$T/err" || fail "run h: exit $? ($(cat "$T/err"))"
for f in summary.md summary.json settings.txt; do
  [ -s "$h/$f" ] || fail "run h wrote no $f"
done
cp -a "$h" "$T/h.before"
mkdir "$T/s"
# $1: what the folder is; $2: the reason the message must give; $3: the
# folder (default $T/s).
expect_no_settings() {
  sd=${3:-$T/s}
  fails_on "settings, $1" "$2" "$sd/settings.txt" "$sd"
  [ ! -e "$sd/settings.txt" ] || fail "settings, $1: settings.txt left: '$(cat "$sd/settings.txt")'"
}
mount --bind "$T/s" "$T/s" || fail "cannot bind $T/s"
mounted="$T/s"
mount -o remount,bind,ro "$T/s" || fail "cannot remount $T/s read-only"
expect_no_settings "read-only folder" "Read-only file system"
umount "$T/s" && mounted=""
for d in "$h" "$T/s"; do
  mount -t tmpfs -o size=1m tmpfs "$d" || fail "cannot mount a tmpfs on $d"
  mounted="$d $mounted"
done
cp -a "$T/h.before/." "$h/"
# The new results folder is an empty one inside the full tmpfs (a folder
# holding the filler itself would be refused as not ours).
mkdir "$T/s/r"
for d in "$h" "$T/s"; do
  dd if=/dev/zero of="$d/fill" bs=4k 2>/dev/null
done
expect_no_settings "full tmpfs" "No space left on device" "$T/s/r"
fails_on "summary, full tmpfs" "No space left on device" "$h/summary.md" "$h" --epochs 2
for f in summary.md summary.json settings.txt; do
  cmp -s "$h/$f" "$T/h.before/$f" || fail "summary, full tmpfs: the previous $f changed"
done
umount "$h" && umount "$T/s" && mounted=""

if [ $fails -ne 0 ]; then
  echo "$fails failure(s)"
  exit 1
fi
echo "all experiment replace checks passed"
