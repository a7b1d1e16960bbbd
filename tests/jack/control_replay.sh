#!/bin/bash
# control_replay.sh: exact replay of a controlled live run (issue 13,
# item 1). A voice-B clip plays into `cbrnn-jack --learn --record rec.wav
# --log live.csv` on a dummy-backend JACK server while random OSC control
# changes arrive (learning off/on, lr, momentum, decay, level gate, reset,
# saves, and
# bundles of four markers, which land in one frame). Then `cbrnn run
# --events live.csv.events rec.wav` must give the same frames.csv byte for
# byte (every column: loss, surprise, learning, lr, markers, flags), the
# same applied events (snapshots aside: they change no number), and the
# same adapted weights as the model cbrnn-jack saved at the end.
. "$(dirname "$0")/jacklib.sh"
pick_model
start_jackd 256
J=$(dirname "$0")
export PYTHONPATH="$J"
OSC=$(free_udp_port)
"$JACKHOST" --name cbt --model "$MODEL" --learn --record rec.wav --log live.csv \
  --save live.safetensors --osc "$OSC" >host.out 2>host.err &
HOST=$!
STARTED="$STARTED $HOST"
wait_port cbt:input
"$JACKPLAY" --name player --connect cbt:input --duration 8 "$SAMPLES/voiceB_gb_female_2.wav" &
PLAY=$!
STARTED="$STARTED $PLAY"
"$PY" - "$OSC" <<'PY' || fail "sending OSC"
import random, socket, sys, time, osc
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
send = lambda data: s.sendto(data, ("127.0.0.1", port))
rng = random.Random(13)
time.sleep(0.5)
marks = 0
for step in range(40):
    kind = rng.choice(["learn", "lr", "momentum", "decay", "reset", "mark", "marks", "save", "gate"])
    if kind == "learn":
        send(osc.encode("/cbrnn/learn", "i", [rng.randint(0, 1)]))
    elif kind == "lr":
        send(osc.encode("/cbrnn/lr", "f", [10 ** rng.uniform(-4, -2)]))
    elif kind == "momentum":
        send(osc.encode("/cbrnn/momentum", "f", [rng.uniform(0, 0.95)]))
    elif kind == "decay":
        send(osc.encode("/cbrnn/decay", "f", [rng.choice([0, 1e-3, 1e-2])]))
    elif kind == "gate":
        send(osc.encode("/cbrnn/gate", "f", [rng.choice([0, -45, -30])]))
    elif kind == "reset":
        send(osc.encode("/cbrnn/reset", "", []))
    elif kind == "save":
        send(osc.encode("/cbrnn/save", "s", ["mid%d.safetensors" % step]))
    elif kind == "mark":
        send(osc.encode("/cbrnn/mark", "s", ["m%d" % step]))
    else:  # four markers in one bundle: one frame
        send(osc.bundle([osc.encode("/cbrnn/mark", "s", ["b%d_%d" % (step, k)]) for k in range(4)]))
    time.sleep(rng.uniform(0.02, 0.2))
send(osc.encode("/cbrnn/learn", "i", [1]))
PY
wait "$PLAY" || fail "cbrnn-jackplay failed"
sleep 0.3
kill -TERM "$HOST"; wait "$HOST"; rc=$?
[ "$rc" -eq 0 ] || { cat host.err; fail "cbrnn-jack after SIGTERM: expected exit 0, got $rc"; }
grep -q "saved live.safetensors (SIGTERM" host.err || { cat host.err; fail "no final save"; }
n_ev=$(grep -vc '^frame,' live.csv.events)
note "live: $(($(wc -l <live.csv) - 1)) frames, $n_ev events"
[ "$n_ev" -ge 30 ] || { cat host.err; fail "expected >= 30 applied events, got $n_ev"; }
grep -Eq ',[0-9]+;[0-9]+;[0-9]+;[0-9]+,' live.csv || fail "no frame of live.csv kept four markers"
grep -q ',reset,' live.csv.events || fail "no reset in the events"

note "offline replay with --events"
"$CBRNN" run --model "$MODEL" --events live.csv.events --out-dir off \
  --save-model off.safetensors rec.wav >run.out 2>&1 || { cat run.out; fail "cbrnn run --events"; }
cmp live.csv off/frames.csv || {
  "$PY" "$J/compare_frames.py" live.csv off/frames.csv 0
  diff live.csv off/frames.csv | head -5
  fail "live and offline frames differ"; }
grep -v ',snapshot,' live.csv.events | cmp - off/events.csv \
  || { diff <(grep -v ',snapshot,' live.csv.events) off/events.csv | head; fail "applied events differ"; }
same_weights live.safetensors off.safetensors \
  || { "$PY" "$J/safetensors_diff.py" live.safetensors off.safetensors; fail "adapted weights differ"; }
# Without the events the replay differs (the control changes mattered).
"$CBRNN" run --model "$MODEL" --learn --out-dir plain rec.wav >/dev/null 2>&1 || fail "cbrnn run"
cmp -s live.csv plain/frames.csv && fail "a replay without --events matched: the test proves nothing"

# The engine options no event carries, and the model, are in the events
# file's header lines: a live --rule sgd run (the default model's rule is
# rls) replays without --rule; its model file, overwritten by --save with
# the adapted weights, is refused; the original bytes replay it.
note "live --rule sgd with --save over its model, replayed without --rule"
cp "$MODEL" own.safetensors
"$JACKHOST" --name cbs --model own.safetensors --save own.safetensors --learn --rule sgd \
  --record sgd.wav --log sgd.csv >sgd.out 2>sgd.err &
HOST=$!
STARTED="$STARTED $HOST"
wait_port cbs:input
"$JACKPLAY" --name player2 --connect cbs:input --duration 3 "$SAMPLES/voiceB_gb_female_2.wav" \
  || fail "cbrnn-jackplay failed (sgd)"
sleep 0.3
kill -TERM "$HOST"; wait "$HOST" || { cat sgd.err; fail "cbrnn-jack --rule sgd"; }
grep -qx '# rule=sgd' sgd.csv.events || fail "sgd.csv.events does not say rule=sgd"
"$CBRNN" run --model own.safetensors --events sgd.csv.events --out-dir sgdown sgd.wav \
  >sgdown.out 2>&1 && fail "the model overwritten by --save was not refused"
grep -q "own.safetensors is not the model sgd.csv.events was recorded with" sgdown.out \
  || { cat sgdown.out; fail "the refusal does not say which model"; }
"$CBRNN" run --model "$MODEL" --events sgd.csv.events --out-dir sgdoff sgd.wav >sgdoff.out 2>&1 \
  || { cat sgdoff.out; fail "cbrnn run --events (sgd)"; }
cmp sgd.csv sgdoff/frames.csv || {
  diff sgd.csv sgdoff/frames.csv | head -5; fail "a live --rule sgd run did not replay without --rule"; }
echo "control_replay: passed"
