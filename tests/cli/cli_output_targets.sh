#!/bin/bash
# cli_output_targets.sh CBRNN SAMPLES WORKDIR: the .npy writers (`cbrnn
# features -o`, `cbrnn eval --outputs`) refuse a target that exists and is
# not a regular file (FIFO, symbolic link, folder) with exit 2 and leave it
# as it was; a write that fails (a 64 KiB tmpfs, when this user may mount
# one) exits 1 and keeps the earlier file (and a training that cannot save
# its model keeps the earlier --log); Ctrl-C leaves no temporary,
# and one a SIGKILL left is removed by the next write. Temporaries are
# NAME.tmp.HOST.PID: a write removes only this host's whose process is
# gone, never another host's (a folder shared over NFS by two nodes) nor
# an old-format NAME.tmp.PID (its machine is unknown).
# Never aimed at a real /dev node: every target is made here.
set -u
CBRNN=$1 SAMPLES=$2 WORK=$3
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

mkfifo fifo.npy
echo earlier >target.npy
ln -s target.npy link.npy
mkdir folder.npy
for cmd in "features $IN -o" "eval $MODEL $IN --outputs"; do
  # shellcheck disable=SC2086 # cmd is words on purpose
  expect 2 "fifo.npy: is a FIFO" "$CBRNN" $cmd fifo.npy
  [ -p fifo.npy ] || fail "$cmd replaced the FIFO"
  # shellcheck disable=SC2086
  expect 2 "link.npy: is a symbolic link" "$CBRNN" $cmd link.npy
  [ -L link.npy ] || fail "$cmd replaced the link"
  [ "$(cat target.npy)" = earlier ] || fail "$cmd wrote through the link"
  # shellcheck disable=SC2086
  expect 2 "folder.npy: is a directory" "$CBRNN" $cmd folder.npy
  [ -d folder.npy ] || fail "$cmd replaced the folder"
  no_tmp
done

# Disk full: a 64 KiB tmpfs holds no features of a 20 s file.
mkdir small
if mount -t tmpfs -o size=64k tmpfs small 2>/dev/null; then
  trap 'umount "$WORK/small"' EXIT
  echo earlier >small/f.npy
  expect 1 "small/f.npy: cannot write: No space left on device" \
    "$CBRNN" features "$IN" -o small/f.npy
  [ "$(cat small/f.npy)" = earlier ] || fail "features on a full disk lost the earlier file"
  expect 1 "small/f.npy" "$CBRNN" eval "$MODEL" "$IN" --outputs small/f.npy
  [ "$(cat small/f.npy)" = earlier ] || fail "eval on a full disk lost the earlier file"
  [ "$(ls small)" = f.npy ] || fail "a temporary was left on the full disk: $(ls small)"
  # A training whose model cannot be saved keeps the earlier --log.
  head -c 60000 /dev/zero >small/fill
  echo earlier >log.csv
  mkdir cache
  expect 1 "No space left on device" "$CBRNN" train -q "${TINY[@]}" --cache-dir cache \
    --log log.csv -o small/m.safetensors "$IN"
  [ "$(cat log.csv)" = earlier ] || fail "a training that failed replaced the earlier log"
else
  echo "skip the disk-full case: cannot mount a tmpfs here"
fi

# Ctrl-C while eval works on 10 min of audio (about 2 s): the earlier
# file stays, no temporary is left.
sox -n -r 16000 -b 16 long.wav synth 600 sine 300 2>/dev/null || fail "sox"
echo earlier >e.npy
"$CBRNN" eval "$MODEL" long.wav --outputs e.npy >/dev/null 2>&1 &
pid=$!
sleep 0.5
kill -INT "$pid"
wait "$pid"; rc=$?
if [ "$rc" -eq 0 ]; then
  echo "skip the Ctrl-C case: eval finished before the signal"
else
  [ "$rc" -eq 130 ] || fail "eval after Ctrl-C: exit $rc, expected 130"
  [ "$(cat e.npy)" = earlier ] || fail "eval interrupted lost the earlier file"
  no_tmp
  echo "ok   eval interrupted: exit 130, earlier e.npy kept, no temporary"
fi

# SIGKILL leaves the temporary (no handler sees it); the next write of
# the same output removes it, since its process is gone.
"$CBRNN" eval "$MODEL" long.wav --outputs k.npy >/dev/null 2>&1 &
pid=$!
sleep 0.5
kill -KILL "$pid"
wait "$pid"
host=$(uname -n | tr -c 'A-Za-z0-9\n-' '-' | cut -c1-32) # as cbrnn_file_tmp_host
if [ -e "k.npy.tmp.$host.$pid" ]; then
  "$CBRNN" features "$IN" -o k.npy >/dev/null 2>err.txt || fail "features -o k.npy: $(cat err.txt)"
  no_tmp
  echo "ok   a killed writer's temporary removed by the next write"
else
  echo "skip the SIGKILL case: eval had not created its temporary yet"
fi

# Temporaries of a process that is gone, here and on another node.
bash -c 'exit 0' & dead=$!
wait "$dead" # a pid that is certainly gone
for t in "s.npy.tmp.$host.$dead" "s.npy.tmp.other-node.$dead" "s.npy.tmp.$dead"; do
  echo "$t" >"$t"
done
"$CBRNN" features "$IN" -o s.npy >/dev/null 2>err.txt || fail "features -o s.npy: $(cat err.txt)"
[ ! -e "s.npy.tmp.$host.$dead" ] || fail "this host's stale temporary was left"
[ "$(cat "s.npy.tmp.other-node.$dead" 2>/dev/null)" = "s.npy.tmp.other-node.$dead" ] ||
  fail "another host's temporary was removed or changed"
[ "$(cat "s.npy.tmp.$dead" 2>/dev/null)" = "s.npy.tmp.$dead" ] ||
  fail "an old-format temporary (host unknown) was removed or changed"
rm -f "s.npy.tmp.other-node.$dead" "s.npy.tmp.$dead"
no_tmp
echo "ok   a stale temporary of this host removed, another host's and an old one kept"

# And a normal run still replaces a regular .npy, leaving no temporary.
"$CBRNN" features "$IN" -o target.npy >/dev/null 2>err.txt || fail "features: $(cat err.txt)"
[ "$(head -c 6 target.npy | tail -c 5)" = NUMPY ] || fail "target.npy is not a .npy"
no_tmp
echo "cli_output_targets: ok"
