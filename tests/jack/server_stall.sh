#!/bin/bash
# server_stall.sh: a stalled JACK server must not cost the adapted model.
# cbrnn-jack learns with --save; the server is stopped (SIGSTOP: every
# call into libjack, jack_deactivate too, waits for it forever); SIGTERM
# must still save at once, once, with the adapted weights, then give up on
# closing the client after a time limit, say so and exit 0 (the save
# worked). Before the fix the client hung in jack_deactivate, ahead of the
# save, until the server resumed (SIGKILL then lost everything).
. "$(dirname "$0")/jacklib.sh"
pick_model

start_jackd 256
"$JACKHOST" --name cbt --model "$MODEL" --learn --save stalled.safetensors --log stalled.csv \
  --record stalled.wav >host.out 2>host.err &
HOST=$!
STARTED="$STARTED $HOST"
wait_port cbt:input
"$JACKPLAY" --name player --connect cbt:input --duration 4 "$SAMPLES/voiceB_gb_female_3.wav" \
  >/dev/null 2>&1 &
STARTED="$STARTED $!"
sleep 2.5
kill -STOP "$JACKD"
sleep 0.5
term_stalled "$HOST" "$JACKD" "the server stopped"
[ "$RC" -eq 0 ] || fail "expected exit 0 (saved), got $RC"
[ "$(grep -c 'saved stalled.safetensors' host.err)" -eq 1 ] || fail "expected exactly one save"
grep -q "saved stalled.safetensors (SIGTERM" host.err || fail "SIGTERM did not save"
grep -q "did not answer" host.err || fail "the stalled server was not said"
"$CBRNN" info stalled.safetensors >/dev/null || fail "the saved model does not load"
same_weights "$MODEL" stalled.safetensors && fail "the saved model holds the loaded weights"
# The log ends where the saved weights were taken (pause, then save).
"$PY" - <<'PY' || fail "the log does not end at the saved frame"
import csv, json, struct, sys
rows = list(csv.DictReader(open("stalled.csv")))
frames = [int(r["frame"]) for r in rows]
with open("stalled.safetensors", "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    meta = json.loads(f.read(n)).get("__metadata__", {})
saved = int(meta.get("adapted_frames", -1))
print("log: %d frames; saved after %d frames" % (len(frames), saved))
sys.exit(0 if frames == list(range(len(frames))) and len(frames) == saved > 100 else 1)
PY
echo "server_stall: passed"
