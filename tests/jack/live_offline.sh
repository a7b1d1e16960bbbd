#!/bin/bash
# live_offline.sh: live equals offline. A voice-B clip is played into
# `cbrnn-jack --learn --record rec.wav --log live.csv` on a dummy-backend
# JACK server (with OSC markers and a status query while it runs); after
# SIGTERM, `cbrnn run --learn rec.wav` on the same model must give the same
# per-frame loss, persistence loss and surprise on every frame to 1e-5,
# and the same adapted weights as the model cbrnn-jack saved. Also: the
# latency reported to JACK, OSC marker and status.
. "$(dirname "$0")/jacklib.sh"
pick_model
start_jackd 256
OSC=$(free_udp_port)
"$JACKHOST" --name cbt --model "$MODEL" --learn --record rec.wav --log live.csv \
  --save live.safetensors --osc "$OSC" >host.out 2>host.err &
HOST=$!
STARTED="$STARTED $HOST"
wait_port cbt:input
"$JACKPLAY" --name player --connect cbt:input --duration 6 "$SAMPLES/voiceB_gb_female_2.wav" \
  || fail "cbrnn-jackplay failed"
"$PY" "$(dirname "$0")/osc.py" "$OSC" /cbrnn/mark s after-play || fail "OSC mark"
STATUS=$("$PY" "$(dirname "$0")/osc.py" "$OSC" /cbrnn/status) || fail "OSC status: $STATUS"
note "status (frames loss xruns dropped): $STATUS"
set -- $STATUS
[ "$1" -gt 550 ] || fail "/cbrnn/status: expected > 550 frames after 6 s of audio, got $1"
[ "$4" -eq 0 ] || fail "/cbrnn/status: expected 0 dropped records, got $4"
# Latency reported to JACK: our outputs lag our input by the engine's
# latency (win - 1 - win/2 = 599 samples at 48 kHz for 25 ms windows).
LAT=$(sed -n 's/.*latency \([0-9]*\) samples.*/\1/p' host.err)
[ "$LAT" = 599 ] || fail "startup line: expected latency 599 samples, got '$LAT'"
jack_lsp -l >ports.txt 2>&1
awk '/^cbt:surprise$/{f=1; next} /^[^\t]/{f=0} f' ports.txt | grep -q "capture latency = \[ 599 599 \]" \
  || { cat ports.txt; fail "cbt:surprise: capture latency 599 not reported to JACK"; }
awk '/^cbt:input$/{f=1; next} /^[^\t]/{f=0} f' ports.txt | grep -q "playback latency = \[ 599 599 \]" \
  || { cat ports.txt; fail "cbt:input: playback latency 599 not reported to JACK"; }
sleep 0.3
kill -TERM "$HOST"
wait "$HOST"; rc=$?
cat host.err
[ "$rc" -eq 0 ] || fail "cbrnn-jack after SIGTERM: expected exit 0, got $rc"
grep -q "saved live.safetensors (SIGTERM" host.err || fail "no save reported after SIGTERM"
"$CBRNN" info live.safetensors >/dev/null || fail "the saved model does not load"
same_weights "$MODEL" live.safetensors && fail "the saved model holds the loaded weights, not adapted ones"
grep -q '^0,"after-play",' live.csv.markers || fail "marker name not in live.csv.markers"
"$PY" - <<'PY' || fail "marker 0 not on exactly one frame of live.csv"
import csv, sys
rows = [r for r in csv.DictReader(open("live.csv")) if r["marker"] == "0"]
sys.exit(0 if len(rows) == 1 else 1)
PY

w=$( { sox --i rec.wav >/dev/null; sox rec.wav -n stat; } 2>&1 | grep -i warn)
[ -z "$w" ] || fail "sox warns about rec.wav: $w"
note "offline replay of rec.wav"
"$CBRNN" run --model "$MODEL" --learn --out-dir off --save-model off.safetensors rec.wav \
  || fail "cbrnn run on the recording"
"$PY" "$(dirname "$0")/compare_frames.py" live.csv off/frames.csv 1e-5 \
  || fail "live and offline per-frame numbers differ"
same_weights live.safetensors off.safetensors \
  || { "$PY" "$(dirname "$0")/safetensors_diff.py" live.safetensors off.safetensors; fail "live and offline adapted weights differ"; }
echo "live_offline: passed"
