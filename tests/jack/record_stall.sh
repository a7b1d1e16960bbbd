#!/bin/bash
# record_stall.sh: a recording whose disk falls behind is a failed run.
# The audio thread hands --record's samples to the disk thread through a
# ring (REC_RING_FLOATS: 2^21 samples); when the disk stalls longer than
# the ring lasts, the samples that do not fit are dropped and the file has
# a gap it does not show, so `cbrnn run` replays it exactly only up to
# there. cbrnn-jack must say so while running and at exit, naming
# the file and the count, exit 1, and leave a readable WAV; the events
# file (--log) says samples_dropped=N at its end, and `cbrnn run --events`
# refuses it (exit 2) naming the file and the count.
# The stall: stall_write.c (LD_PRELOAD) holds the disk thread's writes to
# rec.wav while the file `stall` exists. The server runs at 192 kHz, where
# the ring lasts 10.9 s (43.7 s at 48 kHz; the dummy backend runs in real
# time whatever its options: -w sets the period, not the pace); the test
# waits for cbrnn-jack's own note of dropped samples, not for a time.
# Extra argument: the stall_write shim.
. "$(dirname "$0")/jacklib.sh"
SHIM=$6
pick_model
start_jackd 1024 192000
touch stall
CBRNN_TEST_STALL_FILE=$PWD/stall CBRNN_TEST_STALL_SUFFIX=/rec.wav LD_PRELOAD=$SHIM \
  "$JACKHOST" --name cbt --model "$MODEL" --record rec.wav --log log.csv >host.out 2>host.err &
HOST=$!
STARTED="$STARTED $HOST"
wait_port cbt:input
# 10.9 s of audio; 60 s at most
wait_said "$HOST" host.err "rec.wav: [0-9]+ samples dropped so far \(the disk does not keep up\)" 60 ||
  { cat host.err; fail "no note of dropped samples while the disk was stalled"; }
rm stall
# the ring drains into the file before the host is stopped (no timing:
# a stalled disk at exit is record_kill's and log_stall's matter)
for _ in $(seq 300); do
  [ $(( ($(stat -c %s rec.wav) - 58) / 4 )) -ge 2000000 ] && break
  sleep 0.1
done
kill -TERM "$HOST"
wait "$HOST"; rc=$?
cat host.err
[ "$rc" -eq 1 ] || fail "expected exit 1 (the recording dropped samples), got $rc"
line=$(grep -E "rec.wav: incomplete \([0-9]+ samples dropped\)" host.err) ||
  fail "no message at exit naming rec.wav and the samples dropped"
dropped=$(printf '%s\n' "$line" | sed -E 's/.*incomplete \(([0-9]+) samples dropped.*/\1/')
# whole periods are dropped: the audio thread never splits one
{ [ "$dropped" -gt 0 ] && [ $((dropped % 1024)) -eq 0 ]; } ||
  fail "dropped count $dropped is not a positive number of 1024-frame periods"
grep -q "write error" host.err && fail "a write error was said: only samples were dropped"
# the file is a complete WAV: the header declares every sample it holds,
# and cbrnn reads it without the unfinished-header warning
held=$(( ($(stat -c %s rec.wav) - 58) / 4 ))
declared=$("$PY" -c 'import struct,sys; print(struct.unpack("<I", open(sys.argv[1],"rb").read()[54:58])[0] // 4)' rec.wav)
note "rec.wav: $held samples held, $declared declared, $dropped dropped"
[ "$declared" -eq "$held" ] || fail "rec.wav declares $declared samples of the $held it holds"
[ "$held" -ge 2000000 ] || fail "rec.wav holds only $held samples: the ring did not drain"
grep -qF "recorded $held samples to rec.wav" host.err || fail "no 'recorded $held samples' line"
"$CBRNN" run --quiet --model "$MODEL" --out-dir out rec.wav 2>run.err ||
  { cat run.err; fail "cbrnn run does not read rec.wav back"; }
grep -q "header not finished" run.err && fail "rec.wav read back with an unfinished header"
# the events file says the recording has gaps, and its replay is refused
grep -qx "# samples_dropped=$dropped" log.csv.events ||
  { tail -3 log.csv.events; fail "log.csv.events does not say samples_dropped=$dropped"; }
"$CBRNN" run --quiet --model "$MODEL" --events log.csv.events --out-dir rep rec.wav 2>rep.err
rc=$?; cat rep.err
[ "$rc" -eq 2 ] || fail "cbrnn run --events of a run with a gapped recording: exit $rc, not 2"
grep -q "log.csv.events: incomplete: .*lacks $dropped samples" rep.err ||
  fail "the refusal does not name the file and the samples dropped"
echo "record_stall: passed ($dropped samples dropped, $held recorded)"
