#!/bin/bash
# save_locks.sh: saves that must not destroy what they do not own.
# (1) A --save name too long for a save (its temporary beside it needs
#     room: 195 bytes here) is refused at start, exit 2, as `cbrnn run
#     --save-model` and /cbrnn/save refuse it. Before: accepted, then
#     every save and the rescue copy failed at exit: the adapted weights
#     were lost. The longest name taken saves, and its rescue copy fits.
# (2) /cbrnn/save naming a file another instance holds as its --save
#     (NAME.lock locked by that process) is refused, naming the process,
#     and the file is left as it was. Before: replaced under the lock.
# (3) A NAME.lock that is not a lock file of cbrnn (someone's notes) is
#     neither rewritten nor removed: --save NAME is refused at start, exit
#     2, naming it. A stale lock file of a dead instance (a pid line) is
#     still taken over. Before: truncated, then deleted at exit.
. "$(dirname "$0")/jacklib.sh"
pick_model
start_jackd 1024
J=$(cd "$(dirname "$0")" && pwd)

note "1: a --save name too long for a save"
mkdir s3
N=$(printf 'm%.0s' $(seq 184)).safetensors # 196 bytes
timeout 20 "$JACKHOST" --name bad --model "$MODEL" --learn --save "s3/$N" >o 2>e </dev/null
rc=$?; cat e
[ "$rc" -eq 2 ] || fail "--save with a 196-byte name: expected exit 2, got $rc"
grep -q "too long" e || fail "--save with a 196-byte name: no message"
# 195 bytes: taken; when its exit save fails (a folder put in its place
# meanwhile), the rescue copy's name fits
N=$(printf 'm%.0s' $(seq 183)).safetensors
"$JACKHOST" --name cbt --model "$MODEL" --learn --save "s3/$N" >o 2>e </dev/null &
HOST=$!; STARTED="$STARTED $HOST"
wait_port cbt:input
mkdir "s3/$N"
kill -TERM "$HOST"; wait "$HOST"; rc=$?; cat e
[ "$rc" -eq 1 ] || fail "195-byte name, save failed: expected exit 1 (rescued), got $rc"
grep -q "no rescue copy" e && fail "195-byte name: no rescue copy"
ls "$XDG_STATE_HOME"/cbrnn/rescue/*mmm.safetensors >/dev/null 2>&1 ||
  fail "no rescue copy under \$XDG_STATE_HOME"

note "2: /cbrnn/save onto another instance's --save file"
mkdir L
cp "$MODEL" L/b.safetensors
cp L/b.safetensors b.orig
"$JACKHOST" --name lb --model "$MODEL" --save L/b.safetensors >lb.out 2>lb.err &
LB=$!; STARTED="$STARTED $LB"
wait_port lb:input
OSC=$(free_udp_port)
"$JACKHOST" --name la --model "$MODEL" --learn --save L/a.safetensors --osc "$OSC" \
  >la.out 2>la.err &
LA=$!; STARTED="$STARTED $LA"
wait_port la:input
[ -f L/b.safetensors.lock ] || fail "no L/b.safetensors.lock"
"$PY" "$J/osc.py" "$OSC" /cbrnn/save s b.safetensors || fail "OSC /cbrnn/save"
wait_said "$LA" la.err "b.safetensors.*in use by process $LB" 10 ||
  { cat la.err; fail "/cbrnn/save onto a locked file: not refused naming process $LB"; }
cmp -s L/b.safetensors b.orig || fail "L/b.safetensors was replaced under its lock"
kill -TERM "$LA" "$LB"; wait "$LA"; wait "$LB"
cat la.err lb.err
cmp -s L/b.safetensors b.orig || fail "L/b.safetensors was replaced"
grep -q "nothing learned: L/b.safetensors left as it was" lb.err ||
  fail "LB did not leave its file alone"

note "3: a NAME.lock that is not ours"
mkdir lk
echo "my notes" >lk/notes.lock
timeout 20 "$JACKHOST" --name bad --model "$MODEL" --save lk/notes >o 2>e </dev/null
rc=$?; cat e
[ "$rc" -eq 2 ] || fail "--save beside a foreign notes.lock: expected exit 2, got $rc"
grep -q "notes.lock exists and is not a lock file" e || fail "the foreign lock file not named"
[ "$(cat lk/notes.lock)" = "my notes" ] || fail "lk/notes.lock was rewritten or removed"
# a dead instance's lock file (a pid line): taken over, removed at exit
echo 999999 >lk/stale.safetensors.lock
"$JACKHOST" --name cbt --model "$MODEL" --save lk/stale.safetensors >o 2>e </dev/null &
HOST=$!; STARTED="$STARTED $HOST"
wait_port cbt:input
[ "$(cat lk/stale.safetensors.lock)" = "$HOST" ] || fail "the stale lock file was not taken over"
kill -TERM "$HOST"; wait "$HOST"; rc=$?; cat e
[ "$rc" -eq 0 ] || fail "stale lock: exit $rc"
[ -e lk/stale.safetensors.lock ] && fail "the lock file was left behind"
echo "save_locks: passed"
