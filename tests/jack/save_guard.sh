#!/bin/bash
# save_guard.sh: what cbrnn-jack's outputs must not destroy.
# A run that learned nothing (learning off; or on with every frame
# gated) leaves an existing --save file as it was at exit and at
# autosave, saying so; a path with no file yet is still written; an
# explicit SIGUSR1 save still writes (as documented). Before: the exit
# save replaced an adapted model with the loaded weights.
. "$(dirname "$0")/jacklib.sh"
pick_model
start_jackd 256

# run_host NAME SECONDS ARGS...: cbrnn-jack for SECONDS, then SIGTERM; $rc.
run_host() {
  local name=$1 secs=$2
  shift 2
  "$JACKHOST" --name cbt --model "$MODEL" "$@" >"$name.out" 2>"$name.err" &
  local pid=$!
  STARTED="$STARTED $pid"
  wait_port cbt:input
  sleep "$secs"
  kill -TERM "$pid"
  wait "$pid"; rc=$?
}

"$JACKHOST" --name cbt --model "$MODEL" --learn --save adapted.safetensors >a.out 2>a.err &
HOST=$!
STARTED="$STARTED $HOST"
wait_port cbt:input
"$JACKPLAY" --name player --connect cbt:input --duration 2 "$SAMPLES/voiceB_gb_female_3.wav" \
  >/dev/null 2>&1
kill -TERM "$HOST"; wait "$HOST" || fail "the learning run"
same_weights "$MODEL" adapted.safetensors && fail "the learning run saved the loaded weights"
cp adapted.safetensors before.safetensors

run_host off 1 --save adapted.safetensors --autosave 0.3
cat off.err
[ "$rc" -eq 0 ] || fail "learning off: exit $rc"
cmp -s adapted.safetensors before.safetensors || fail "learning off: the adapted model was replaced"
grep -q "nothing learned: adapted.safetensors left as it was" off.err ||
  fail "learning off: not said"
grep -q "autosave: nothing learned yet" off.err || fail "autosave skipped silently"

run_host gated 1 --learn --gate-db -40 --save adapted.safetensors
cat gated.err
[ "$rc" -eq 0 ] || fail "gated: exit $rc"
grep -q " 0 updates" gated.err || fail "gated: expected 0 updates (no input connected)"
cmp -s adapted.safetensors before.safetensors || fail "0 updates: the adapted model was replaced"

run_host new 1 --save new.safetensors
grep -q "saved new.safetensors (SIGTERM" new.err || fail "a new path was not written"

"$JACKHOST" --name cbt --model "$MODEL" --save adapted.safetensors >usr1.out 2>usr1.err &
HOST=$!
STARTED="$STARTED $HOST"
wait_port cbt:input
kill -USR1 "$HOST"
sleep 1
kill -TERM "$HOST"; wait "$HOST"
cat usr1.err
grep -q "saved adapted.safetensors (SIGUSR1" usr1.err || fail "SIGUSR1 did not save"
cmp -s adapted.safetensors before.safetensors && fail "SIGUSR1 did not write the weights in force"

echo "save_guard: passed"
