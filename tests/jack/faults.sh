#!/bin/bash
# faults.sh: each fault leaves a model file that loads and holds adapted
# weights: (1) buffer size changes mid-run (jack_bufsize 1024, then 64)
# with SIGUSR1, autosave and the OSC commands (reset, lr, save, learn off)
# along the way, then SIGTERM (exit 0);
# (2) the JACK server killed mid-run (exit 1, saved, the reason said).
. "$(dirname "$0")/jacklib.sh"
pick_model

note "1: buffer size changes, SIGUSR1, autosave, OSC commands, SIGTERM"
start_jackd 256
OSC=$(free_udp_port)
osc() { "$PY" "$(dirname "$0")/osc.py" "$OSC" "$@" || fail "OSC $*"; }
"$JACKHOST" --name cbt --model "$MODEL" --learn --log bs.csv --save bs.safetensors \
  --autosave 1 --osc "$OSC" >host.out 2>host.err &
HOST=$!
STARTED="$STARTED $HOST"
wait_port cbt:input
"$JACKPLAY" --name player --connect cbt:input --duration 7 "$SAMPLES/voiceB_gb_female_3.wav" &
PLAY=$!
STARTED="$STARTED $PLAY"
sleep 1
osc /cbrnn/reset
# 300 malformed packets: at most one line a second on stderr, the rest
# counted in a later line; the host keeps answering.
"$PY" - "$OSC" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(300):
    s.sendto(b"/cbrnn/lr\0\0\0,f\0\0" + bytes([i % 256]), ("127.0.0.1", int(sys.argv[1])))
PY
sleep 1
jack_bufsize 1024 >/dev/null || fail "jack_bufsize 1024"
osc /cbrnn/lr f 0.002
sleep 1.5
[ -f bs.safetensors ] || fail "no autosave after 3.5 s with --autosave 1"
"$CBRNN" info bs.safetensors >/dev/null || fail "the autosaved model does not load"
jack_bufsize 64 >/dev/null || fail "jack_bufsize 64"
sleep 1.5
kill -USR1 "$HOST"
osc /cbrnn/save s "$PWD/osc.safetensors"
wait "$PLAY" || fail "player"
osc /cbrnn/learn i 0
sleep 0.5
kill -TERM "$HOST"
wait "$HOST"; rc=$?
cat host.err
[ "$rc" -eq 0 ] || fail "after SIGTERM: expected exit 0, got $rc"
grep -q "buffer size now 1024" host.err || fail "the change to 1024 was not noticed"
oscerr=$(grep -c "OSC error" host.err)
[ "$oscerr" -ge 1 ] && [ "$oscerr" -le 3 ] || fail "300 malformed OSC packets printed $oscerr error lines (want 1..3)"
grep -qE "[0-9]+ more OSC errors in the last [0-9]+ s \(not shown\)" host.err ||
  fail "the held-back OSC errors were not counted"
grep -q "buffer size now 64" host.err || fail "the change to 64 was not noticed"
grep -q "saved bs.safetensors (SIGUSR1" host.err || fail "SIGUSR1 did not save"
grep -q "saved bs.safetensors (autosave" host.err || fail "no autosave reported"
grep -q "saved bs.safetensors (SIGTERM" host.err || fail "SIGTERM did not save"
grep -q "saved $PWD/osc.safetensors (/cbrnn/save" host.err || fail "/cbrnn/save did not save"
"$CBRNN" info osc.safetensors >/dev/null || fail "the model saved by /cbrnn/save does not load"
"$CBRNN" info bs.safetensors >/dev/null || fail "the model saved at SIGTERM does not load"
same_weights "$MODEL" bs.safetensors && fail "the model saved at SIGTERM holds the loaded weights"
"$PY" - <<'PY' || fail "the log has gaps or stops before the end"
import csv, sys
rows = list(csv.DictReader(open("bs.csv")))
frames = [int(r["frame"]) for r in rows]
# about 8 s ran; a loaded machine may lose some periods to xruns
ok = frames == list(range(len(frames))) and len(frames) > 500
upd = sum(1 for r in rows if int(r["flags"]) & 1)
resets = [i for i, r in enumerate(rows) if int(r["flags"]) & 8]
lr2 = [i for i, r in enumerate(rows) if abs(float(r["lr"]) - 0.002) < 1e-9]
off = [i for i, r in enumerate(rows) if r["learning"] == "0"]
print("bs.csv: %d frames, %d updates, reset at %s, lr 0.002 from %s, learning off from %s"
      % (len(frames), upd, resets, lr2[:1], off[:1]))
# one reset; lr 0.002 from some frame to the end; learning off only at the end
ok &= len(resets) == 1 and lr2 and lr2 == list(range(lr2[0], len(rows)))
ok &= bool(off) and off == list(range(off[0], len(rows))) and resets[0] < lr2[0] < off[0]
sys.exit(0 if ok and upd > 400 else 1)
PY
kill -TERM "$JACKD"; wait "$JACKD" 2>/dev/null

note "2: the server killed mid-run"
start_jackd 256
"$JACKHOST" --name cbt --model "$MODEL" --learn --save killed.safetensors >host2.out 2>host2.err &
HOST=$!
STARTED="$STARTED $HOST"
wait_port cbt:input
"$JACKPLAY" --name player --connect cbt:input --duration 10 "$SAMPLES/voiceB_gb_female_4.wav" \
  >/dev/null 2>&1 &
PLAY=$!
STARTED="$STARTED $PLAY"
sleep 3
kill -KILL "$JACKD"
for _ in $(seq 100); do kill -0 "$HOST" 2>/dev/null || break; sleep 0.1; done
kill -0 "$HOST" 2>/dev/null && fail "cbrnn-jack still running 10 s after the server died"
wait "$HOST"; rc=$?
cat host2.err
[ "$rc" -eq 1 ] || fail "after the server died: expected exit 1, got $rc"
grep -q "the JACK server shut down" host2.err || fail "no reason given for stopping"
grep -q "saved killed.safetensors (server shutdown" host2.err || fail "not saved at shutdown"
"$CBRNN" info killed.safetensors >/dev/null || fail "the model saved at shutdown does not load"
same_weights "$MODEL" killed.safetensors && fail "the model saved at shutdown holds the loaded weights"
# The killed server left its entry in JACK's registry (8 at most); a
# server of the same name reclaims it, and a clean stop frees it.
start_jackd 256
kill -TERM "$JACKD"; wait "$JACKD" 2>/dev/null
echo "faults: passed"
