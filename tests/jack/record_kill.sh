#!/bin/bash
# record_kill.sh: a `cbrnn-jack --record` recording outlives the host.
# cbrnn-jack records for 3 s on a dummy-backend server (a voice clip
# played into it) and is killed with SIGKILL, as a crash or power cut
# would stop it: the file's header must already declare most of what was
# recorded (the writer rewrites it each second), and `cbrnn run` must read
# every sample that reached the file, with a warning naming it. Before,
# the sizes were written only at close: the file was "empty" (exit 2).
. "$(dirname "$0")/jacklib.sh"
pick_model
start_jackd 256
"$JACKHOST" --name cbt --model "$MODEL" --record rec.wav >host.out 2>host.err &
HOST=$!
STARTED="$STARTED $HOST"
wait_port cbt:input
"$JACKPLAY" --name player --connect cbt:input --duration 3 "$SAMPLES/voiceB_gb_female_2.wav" \
  || fail "cbrnn-jackplay failed"
kill -KILL "$HOST"
wait "$HOST" 2>/dev/null
cat host.err
held=$(( ($(stat -c %s rec.wav) - 58) / 4 ))
declared=$("$PY" -c 'import struct,sys; print(struct.unpack("<I", open(sys.argv[1],"rb").read()[54:58])[0] // 4)' rec.wav)
note "rec.wav after SIGKILL: $held samples in the file, $declared in its header"
# 3 s played (more recorded: the host ran before and after the clip); at
# most a second's header update and the writer's buffer behind
[ "$held" -ge $((2 * 48000)) ] || fail "rec.wav holds only $held samples after 3 s"
{ [ "$declared" -ge $((held - 48000 - 16384)) ] && [ "$declared" -le "$held" ]; } ||
  fail "rec.wav's header declares $declared samples of the $held in the file"
"$CBRNN" run --quiet --model "$MODEL" --out-dir out rec.wav 2>run.err; rc=$?
cat run.err
[ "$rc" -eq 0 ] || fail "cbrnn run on the killed recording: exit $rc"
if [ "$declared" -lt "$held" ]; then
  grep -qF "warning: rec.wav: header not finished (a recording cut short?): reading the $held samples present" run.err ||
    fail "cbrnn run: no warning with the $held samples"
fi
rows=$(($(wc -l <out/frames.csv) - 1))
[ "$rows" -ge $((held / 480 - 3)) ] || fail "cbrnn run: $rows frames for $held samples"
echo "record_kill: passed ($rows frames replayed)"
