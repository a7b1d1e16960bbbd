#!/bin/bash
# save_guard.sh: what cbrnn-jack's outputs must not destroy.
# (1) A run that learned nothing (learning off; or on with every frame
#     gated) leaves an existing --save file as it was at exit and at
#     autosave, saying so; a path with no file yet is still written; an
#     explicit SIGUSR1 save still writes (as documented). Before: the exit
#     save replaced an adapted model with the loaded weights.
# (2) A second instance naming the same --save, --log or --record refuses
#     at start (exit 2), naming the file and the process that holds it,
#     and leaves the first one's files alone; once the first exits (or is
#     killed), the names are free again. Before: logs were truncated and
#     saves overwritten silently. `cbrnn run --save-model` and `cbrnn
#     train -o` take the same lock (before: they wrote under it).
# (3) --log, --record and --save go through the commands' output guard:
#     the model, an existing model or take as --log, and two outputs
#     that are one file, are refused (exit 2) with the model intact; a
#     FIFO --log is taken. Before: each was truncated.
# (4) An exit save that cannot be written (its folder is a full 400 KiB
#     tmpfs) goes to a rescue copy under $XDG_STATE_HOME, said, exit 1;
#     the copy loads and holds what was learned. Before: lost.
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

note "1: nothing learned"
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

note "2: a second instance on the same files"
"$JACKHOST" --name cbA --model "$MODEL" --learn --log same.csv --save same.safetensors \
  --record same.wav >A.out 2>A.err &
A=$!
STARTED="$STARTED $A"
wait_port cbA:input
sleep 1
# expect_refused NAME FILE ARGS...: exit 2 with FILE and A's pid named.
expect_refused() {
  local name=$1 file=$2
  shift 2
  timeout 20 "$JACKHOST" --name "$name" --model "$MODEL" "$@" >"$name.out" 2>"$name.err"
  local r=$?
  cat "$name.err"
  [ "$r" -eq 2 ] || fail "$name: expected exit 2, got $r"
  grep -q "$file.*process $A" "$name.err" || fail "$name: $file and process $A not named"
}
expect_refused cbB same.safetensors --save same.safetensors --log same.csv
expect_refused cbC same.csv --log same.csv --save other.safetensors
expect_refused cbD same.wav --record same.wav
# the other programs that save a model take the same lock
"$CBRNN" run --model "$MODEL" --learn --save-model same.safetensors --out-dir runD \
  "$SAMPLES/voiceB_gb_female_3.wav" >runD.out 2>runD.err
r=$?
[ "$r" -eq 2 ] || fail "cbrnn run --save-model on a held --save: exit $r, expected 2"
grep -q "same.safetensors: in use by process $A" runD.err || fail "cbrnn run: $(cat runD.err)"
"$CBRNN" train -q -o same.safetensors --hidden 8 --cb 8 --warmup-steps 1 --steps 1 \
  "$SAMPLES/voiceB_gb_female_3.wav" >trainD.out 2>trainD.err
r=$?
[ "$r" -eq 2 ] || fail "cbrnn train -o on a held --save: exit $r, expected 2"
grep -q "same.safetensors: in use by process $A" trainD.err || fail "cbrnn train: $(cat trainD.err)"
kill -0 "$A" 2>/dev/null || fail "the first instance stopped"
kill -TERM "$A"; wait "$A" || fail "the first instance: exit status"
grep -q "saved same.safetensors (SIGTERM" A.err || fail "the first instance did not save"
"$PY" - <<'PY' || fail "the first instance's log was disturbed"
import csv, sys
frames = [int(r["frame"]) for r in csv.DictReader(open("same.csv"))]
print("same.csv: %d frames" % len(frames))
sys.exit(0 if frames == list(range(len(frames))) and len(frames) > 100 else 1)
PY
[ -e same.safetensors.lock ] && fail "the lock file was left behind"
"$JACKHOST" --name cbE --model "$MODEL" --learn --save same.safetensors --log same.csv >E.out 2>E.err &
E=$!
STARTED="$STARTED $E"
wait_port cbE:input
kill -KILL "$E"; wait "$E" 2>/dev/null
run_host F 0.5 --save same.safetensors --log same.csv --record same.wav
cat F.err
[ "$rc" -eq 0 ] || fail "after the holder was killed, the names were still refused (exit $rc)"
note "3: the output guard"
cp "$MODEL" own.safetensors && cp own.safetensors own.orig
cp "$SAMPLES/voiceB_gb_female_3.wav" take.wav
guarded() { # NAME WANT ARGS...
  local name=$1 want=$2
  shift 2
  "$JACKHOST" --name "$name" --model own.safetensors "$@" >"$name.out" 2>"$name.err"
  local r=$?
  [ "$r" -eq 2 ] || fail "$name ($*): expected exit 2, got $r: $(cat "$name.err")"
  grep -qF -- "$want" "$name.err" || fail "$name ($*): no '$want': $(cat "$name.err")"
}
guarded g1 "--log own.safetensors: is the same file as the input own.safetensors" \
  --log own.safetensors
guarded g2 "--record own.safetensors: is the same file as the input" --record own.safetensors
guarded g3 "--log take.wav: exists and is an audio file" --log take.wav
guarded g4 "--record both.out: is the same file as the output both.out" \
  --log both.out --record both.out
guarded g5 "--log x.safetensors: is the same file as the output x.safetensors" \
  --save x.safetensors --log x.safetensors
cp "$MODEL" lg.csv.events
guarded g6 "--log (its events) lg.csv.events: exists and is a cbrnn model" --log lg.csv
cmp -s own.safetensors own.orig || fail "a refused output changed the model"
[ -e x.safetensors ] && fail "a refused run wrote its --save"
mkfifo live.fifo
cat live.fifo >/dev/null &
STARTED="$STARTED $!"
run_host G 0.5 --log live.fifo
[ "$rc" -eq 0 ] || fail "a FIFO --log was refused (exit $rc): $(cat G.err)"

note "4: the exit save on a full disk"
mkdir -p full state
mount -t tmpfs -o size=400k tmpfs full || fail "cannot mount a tmpfs (run as root)"
trap 'umount "$WORK/full" 2>/dev/null; cleanup' EXIT
head -c 300000 /dev/zero >full/filler 2>/dev/null
XDG_STATE_HOME=$WORK/state "$JACKHOST" --name cbR --model "$MODEL" --learn \
  --save full/adapted.safetensors >R.out 2>R.err &
R=$!
STARTED="$STARTED $R"
wait_port cbR:input
"$JACKPLAY" --name playerR --connect cbR:input --duration 2 "$SAMPLES/voiceB_gb_female_3.wav" \
  >/dev/null 2>&1
kill -TERM "$R"; wait "$R"; r=$?
cat R.err
[ "$r" -eq 1 ] || fail "a rescued save: expected exit 1, got $r"
copy=$(sed -n 's/.*saved a rescue copy instead: \(.*\) (SIGTERM.*/\1/p' R.err)
case $copy in "$WORK/state/cbrnn/rescue/"*adapted.safetensors) ;; *) fail "rescue copy '$copy'" ;; esac
"$CBRNN" info "$copy" >/dev/null || fail "the rescue copy does not load"
same_weights "$MODEL" "$copy" && fail "the rescue copy holds the loaded weights"
umount full
echo "save_guard: passed"
