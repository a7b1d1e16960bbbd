#!/bin/sh
# test_experiment_keep.sh: `cbrnn experiment` never throws away results it
# cannot read, nor writes into a folder that is not its own.
#  1. settings.txt that cannot be read (a symbolic link loop, a folder;
#     unreadable by its user) is not "no settings": a run of another task
#     is refused (exit 2, the file and the reason named), the results kept.
#  2. --out-dir naming a non-empty folder without settings.txt (a user's
#     notes) is refused (exit 2, the folder and what is in it named), its
#     summary.md kept; an empty folder, and one holding only what an
#     interrupted run leaves before settings.txt (a temporary of it), is
#     used.
#  3. A checkpoint that cannot be read (a symbolic link loop; unreadable by
#     its user) or is damaged (bytes changed) stops its unit (exit 1, the
#     file named; for a damaged one, how to restart) and is kept with its
#     curve; removed, the unit restarts from epoch 1 and its curve is
#     replaced whole (a new file), not truncated in place. A checkpoint
#     ahead of its curve (the curve lost rows) is kept the same way.
#  4. A curve that cannot be read is reported with the reason (a folder:
#     "Is a directory"), not as "not a curve file".
#  5. Speech: a finished unit whose files cannot be read (its test table a
#     folder; its curve unreadable by its user) is not run again over them.
#  6. SIGINT and SIGTERM stop the command with 130 and 143, its workers
#     gone, the curve so far kept.
# Parts "unreadable by its user" run as that user: the caller, or, as root
# (which reads everything), `nobody` through setpriv; skipped (said) if
# neither works.
# usage: test_experiment_keep.sh CBRNN_BINARY SAMPLES_DIR
set -u
CBRNN=$1
S=$2
T=$(mktemp -d /tmp/cbrnn_experiment_keep_XXXXXX)
pids=""
cleanup() {
  for p in $pids; do kill -KILL "$p" 2>/dev/null; done
  chmod -R u+rwX "$T" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
Q="--variants cbrnn --seeds 1 --jobs 1 --no-figure --train-steps 5 --test-batches 2"

# as_user CMD...: runs CMD as a user that permissions apply to.
as_user=""
if [ "$(id -u)" -ne 0 ]; then
  as_user="env"
elif command -v setpriv >/dev/null && chmod 755 "$T" &&
  setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$CBRNN" --help >/dev/null 2>&1; then
  as_user="setpriv --reuid=nobody --regid=nogroup --clear-groups --"
else
  echo "note: no user that permissions apply to; the permission cases are skipped"
fi
# user_dir D: makes D (new) the permission user's.
user_dir() {
  mkdir -p "$1" && { [ "$(id -u)" -ne 0 ] || chown nobody:nogroup "$1"; }
}
# run OUT ARGS...: cbrnn experiment ARGS --out-dir OUT as the caller; $rc, $T/err.
run() {
  out=$1; shift
  "$CBRNN" experiment "$@" --out-dir "$out" >"$T/out" 2>"$T/err"; rc=$?
}
urun() {
  out=$1; shift
  $as_user "$CBRNN" experiment "$@" --out-dir "$out" >"$T/out" 2>"$T/err"; rc=$?
}
# expect WHAT RC PATTERN: the last run exited RC and its stderr matches PATTERN.
expect() {
  [ "$rc" -eq "$2" ] || fail "$1: exit $rc, expected $2 ($(cat "$T/err"))"
  grep -q -- "$3" "$T/err" || fail "$1: stderr lacks '$3': $(cat "$T/err")"
}

# ---- 1. unreadable settings.txt ----
# shellcheck disable=SC2086
run "$T/s" --task parity $Q --epochs 2
[ $rc -eq 0 ] || fail "run s: exit $rc ($(cat "$T/err"))"
cp -a "$T/s" "$T/s.before"
mv "$T/s/settings.txt" "$T/settings.txt"
ln -s settings.txt "$T/s/settings.txt" # ELOOP, for root too
# shellcheck disable=SC2086
run "$T/s" --task dms $Q --epochs 2
expect "settings.txt a link loop" 2 "s/settings.txt: Too many levels of symbolic links"
# shellcheck disable=SC2086
run "$T/s" --task dms $Q --epochs 2 --plan
expect "--plan, settings.txt a link loop" 2 "s/settings.txt: Too many levels of symbolic links"
rm "$T/s/settings.txt"
mkdir "$T/s/settings.txt" # opens, but reading fails (EISDIR)
# shellcheck disable=SC2086
run "$T/s" --task dms $Q --epochs 2
expect "settings.txt a folder" 2 "s/settings.txt: Is a directory"
rmdir "$T/s/settings.txt"
mv "$T/settings.txt" "$T/s/settings.txt"
diff -r "$T/s" "$T/s.before" >/dev/null || fail "settings unreadable: the results changed"
if [ -n "$as_user" ]; then
  user_dir "$T/su"
  # shellcheck disable=SC2086
  urun "$T/su" --task parity $Q --epochs 2
  [ $rc -eq 0 ] || fail "run su: exit $rc ($(cat "$T/err"))"
  cp "$T/su/curves/cbrnn-seed0.csv" "$T/su.csv"
  chmod 000 "$T/su/settings.txt"
  # shellcheck disable=SC2086
  urun "$T/su" --task dms $Q --epochs 2
  expect "settings.txt unreadable" 2 "su/settings.txt: Permission denied"
  cmp -s "$T/su/curves/cbrnn-seed0.csv" "$T/su.csv" || fail "settings unreadable: the parity curve changed"
fi

# ---- 2. a folder that is not ours ----
mkdir "$T/notes"
echo "# my results" >"$T/notes/summary.md"
# shellcheck disable=SC2086
run "$T/notes" --task dms $Q --epochs 1
expect "a folder of notes" 2 "notes: not empty and not a results folder.*holds summary.md"
[ "$(cat "$T/notes/summary.md")" = "# my results" ] || fail "notes: summary.md overwritten"
[ "$(ls -A "$T/notes")" = "summary.md" ] || fail "notes: files written: $(ls -A "$T/notes")"
# shellcheck disable=SC2086
run "$T/notes" --task dms $Q --epochs 1 --plan
expect "--plan of a folder of notes" 2 "notes: not empty and not a results folder"
mkdir "$T/empty" "$T/left"
# what a run killed while writing settings.txt leaves (model/file_replace.c)
echo "task dm" >"$T/left/.settings.txt.somehost.12345.0.tmp"
for d in empty left; do
  # shellcheck disable=SC2086
  run "$T/$d" --task dms $Q --epochs 1
  [ $rc -eq 0 ] || fail "$d folder: exit $rc ($(cat "$T/err"))"
  [ -s "$T/$d/summary.md" ] || fail "$d folder: no summary.md"
  # shellcheck disable=SC2086
  run "$T/$d" --task dms $Q --epochs 1 # and resumed (nothing to do)
  [ $rc -eq 0 ] || fail "$d folder, rerun: exit $rc ($(cat "$T/err"))"
done

# ---- 3. a checkpoint that cannot be read or is damaged ----
E="--task parity $Q --epochs 10 --checkpoint-every 3"
# shellcheck disable=SC2086
run "$T/c" $E
[ $rc -eq 0 ] || fail "run c: exit $rc ($(cat "$T/err"))"
k="$T/c/checkpoints/cbrnn-seed0.ckpt"
c="$T/c/curves/cbrnn-seed0.csv"
cp "$k" "$T/ckpt"
cp "$c" "$T/curve"
# $1: what; $2: the reason; the unit must fail, both files kept as they were
kept() {
  # shellcheck disable=SC2086
  run "$T/c" $E --epochs 12
  expect "$1" 1 "c/checkpoints/cbrnn-seed0.ckpt: .*$2"
  grep -q "restarting" "$T/err" && fail "$1: restarted: $(cat "$T/err")"
  cmp -s "$c" "$T/curve" || fail "$1: the curve changed: $(cat "$c")"
}
rm "$k"
ln -s cbrnn-seed0.ckpt "$k"
kept "checkpoint a link loop" "Too many levels of symbolic links"
[ -L "$k" ] || fail "checkpoint a link loop: the link was replaced"
rm "$k"
cp "$T/ckpt" "$k"
printf 'XXXX' | dd of="$k" bs=1 seek=1000 conv=notrunc 2>/dev/null
cp "$k" "$T/damaged"
kept "damaged checkpoint" "checksum mismatch.*to restart cbrnn-seed0 from epoch 1, remove it"
cmp -s "$k" "$T/damaged" || fail "damaged checkpoint: it was replaced"
# a checkpoint ahead of its curve (rows lost, or cut by hand): its epochs
# cannot be told again, but the training is not thrown away for that
cp "$T/ckpt" "$k"
head -6 "$T/curve" >"$c"
cp "$c" "$T/curve"
kept "checkpoint ahead of its curve" "holds 10 epochs, .*cbrnn-seed0.csv 5.*to restart cbrnn-seed0 from epoch 1, remove it"
cmp -s "$k" "$T/ckpt" || fail "checkpoint ahead of its curve: it was replaced"
# removed as told: the unit restarts, its curve replaced whole (a new inode)
ino=$(stat -c %i "$c")
rm "$k"
# shellcheck disable=SC2086
run "$T/c" $E --epochs 12
[ $rc -eq 0 ] || fail "restart after removing the checkpoint: exit $rc ($(cat "$T/err"))"
[ "$(wc -l <"$c")" -eq 13 ] || fail "restarted curve: $(wc -l <"$c") lines, expected 13"
[ "$(stat -c %i "$c")" != "$ino" ] || fail "the restarted curve was rewritten in place"
if [ -n "$as_user" ]; then
  user_dir "$T/cu"
  # shellcheck disable=SC2086
  urun "$T/cu" $E
  [ $rc -eq 0 ] || fail "run cu: exit $rc ($(cat "$T/err"))"
  cp "$T/cu/curves/cbrnn-seed0.csv" "$T/cu.csv"
  cp "$T/cu/checkpoints/cbrnn-seed0.ckpt" "$T/cu.ckpt"
  chmod 000 "$T/cu/checkpoints/cbrnn-seed0.ckpt"
  # shellcheck disable=SC2086
  urun "$T/cu" $E --epochs 12
  expect "checkpoint unreadable" 1 "cu/checkpoints/cbrnn-seed0.ckpt: cannot open: Permission denied"
  chmod 644 "$T/cu/checkpoints/cbrnn-seed0.ckpt"
  cmp -s "$T/cu/checkpoints/cbrnn-seed0.ckpt" "$T/cu.ckpt" || fail "checkpoint unreadable: it was replaced"
  cmp -s "$T/cu/curves/cbrnn-seed0.csv" "$T/cu.csv" || fail "checkpoint unreadable: the curve changed"
fi

# ---- 4. a curve that cannot be read ----
mv "$c" "$T/curve12"
mkdir "$c"
# shellcheck disable=SC2086
run "$T/c" $E --epochs 14
expect "curve a folder" 1 "c/curves/cbrnn-seed0.csv: cannot read: Is a directory"
grep -q "not a curve file" "$T/err" && fail "curve a folder: reported as not a curve: $(cat "$T/err")"
rmdir "$c"
mv "$T/curve12" "$c"

# ---- 5. speech: a finished unit's files that cannot be read ----
SPEECH="--task speech --corpus $S/voiceA_us_male_1.wav --val-files $S/voiceA_us_male_2.wav
  --test-files $S/voiceB_gb_female_1.wav --variants persistence --steps 2 --eval-every 1
  --seeds 1 --no-figure"
user_dir "$T/sp"
# shellcheck disable=SC2086
run "$T/sp" $SPEECH
[ $rc -eq 0 ] || fail "speech run: exit $rc ($(cat "$T/err"))"
t="$T/sp/test/persistence-seed0.csv"
mv "$t" "$T/test.csv"
mkdir "$t"
# shellcheck disable=SC2086
run "$T/sp" $SPEECH
expect "speech test table a folder" 1 "sp/test/persistence-seed0.csv: cannot read: Is a directory"
[ -d "$t" ] || fail "speech test table a folder: it was replaced"
rmdir "$t"
mv "$T/test.csv" "$t"
if [ -n "$as_user" ]; then
  [ "$(id -u)" -ne 0 ] || chown -R nobody:nogroup "$T/sp"
  sc="$T/sp/curves/persistence-seed0.csv"
  cp "$sc" "$T/sp.csv"
  touch -d 2000-01-01 "$sc" # a rewrite of the same bytes shows in its time
  chmod 200 "$sc" # writable, not readable: the old code rewrote it
  # shellcheck disable=SC2086
  urun "$T/sp" $SPEECH
  expect "speech curve unreadable" 1 "sp/curves/persistence-seed0.csv: cannot read: Permission denied"
  chmod 644 "$sc"
  if ! cmp -s "$sc" "$T/sp.csv" || [ "$(date -r "$sc" +%Y)" != 2000 ]; then
    fail "speech curve unreadable: it was rewritten"
  fi
fi

# ---- 6. SIGINT, SIGTERM ----
LONG="--task dms --variants rnn --seeds 1 --epochs 100000 --train-steps 20 --test-batches 2
  --no-figure"
for sig in INT TERM; do
  # shellcheck disable=SC2086
  "$CBRNN" experiment $LONG --out-dir "$T/g$sig" >/dev/null 2>"$T/err" &
  pid=$!
  pids="$pids $pid"
  i=0 # until a few epochs are done (up to 60 s)
  while [ "$({ wc -l <"$T/g$sig/curves/rnn-seed0.csv"; } 2>/dev/null || echo 0)" -lt 3 ] &&
    [ $i -lt 600 ]; do
    sleep 0.1; i=$((i + 1))
  done
  kill -"$sig" "$pid"
  wait "$pid"; rc=$?
  case $sig in INT) want=130 ;; TERM) want=143 ;; esac
  expect "SIG$sig" "$want" "interrupted; rerun the same command to resume"
  sleep 0.5
  pgrep -f "out-dir $T/g$sig" >/dev/null && fail "SIG$sig: workers still running"
  [ "$(wc -l <"$T/g$sig/curves/rnn-seed0.csv")" -ge 3 ] || fail "SIG$sig: the curve was not kept"
done

if [ $fails -ne 0 ]; then
  echo "$fails failure(s)"
  exit 1
fi
echo "all experiment keep checks passed"
