#!/bin/bash
# perturb_live.sh: perturbed feedback (issue 13, item 3) replays offline bit
# for bit. On a dummy-backend JACK server, `cbrnn-jack --perturb-pitch 0
# --feedback-to-model --learn` (the model hears its own perturbed
# feedback) runs with a schedule that switches pitch, delay and gain (with
# ramps) while random OSC changes arrive: learning, lr, gate, markers and
# /cbrnn/perturb/pitch, delay, gain (some ramped) and listen. Then
#  - `cbrnn run --events live.csv.events rec.wav` gives the same frames.csv
#    byte for byte and the same applied events;
#  - the live `feedback` port, recorded by a second client, equals the
#    replay's feedback.wav sample for sample (once aligned: the second
#    client starts at another period, and an xrun can cost it whole
#    periods);
#  - the start-up message gives the pitch shifter's latency, and the
#    feedback port's latency follows a delay changed by OSC (shifter +
#    delay);
#  - rec.wav reads in sox without a warning (the 18-byte fmt chunk).
# Bad perturbation options and OSC values are refused; --connect-feedback
# connects the feedback port (and says so when there is none).
. "$(dirname "$0")/jacklib.sh"
pick_model
start_jackd 256
J=$(dirname "$0")
export PYTHONPATH="$J"
cat >sched.txt <<'S'
0     phase baseline
0     learn 1
1s    phase perturb
1s    pitch 2 ramp 100ms
1.5s  delay 30
2s    gain -6 ramp 0.2s
3.5s  phase washout
3.5s  pitch 0
3.5s  delay 0 ramp 50ms
3.5s  gain 0
S

note "bad options and schedules"
"$JACKHOST" --name bad --model "$MODEL" --perturb-pitch 13 >o 2>e
[ $? -eq 2 ] && grep -q "perturb-pitch '13'" e || { cat e; fail "--perturb-pitch 13 accepted"; }
printf '0 pitch 2 ramp 3 parsecs\n' >bad1.txt
"$CBRNN" run --model "$MODEL" --schedule bad1.txt --out-dir x "$SAMPLES/voiceB_gb_female_2.wav" \
  >o 2>e && fail "bad1.txt accepted"
grep -q "bad1.txt:1: pitch takes" e || { cat e; fail "bad1.txt: no file:line message"; }

note "--connect-feedback"
"$JACKHOST" --name cfb --model "$MODEL" --perturb-delay 10 --connect-feedback system:playback_1 \
  >cfb.out 2>cfb.err &
CFB=$!
STARTED="$STARTED $CFB"
wait_port cfb:feedback
for _ in $(seq 50); do
  jack_lsp -c cfb:feedback 2>/dev/null | grep -q "system:playback_1" && break
  sleep 0.1
done
jack_lsp -c cfb:feedback 2>/dev/null | grep -q "system:playback_1" ||
  { cat cfb.err; fail "--connect-feedback did not connect cfb:feedback"; }
kill -TERM "$CFB"; wait "$CFB" || { cat cfb.err; fail "cfb exit status"; }
"$JACKHOST" --name cfb2 --model "$MODEL" --connect-feedback system:playback_1 >cfb2.out 2>cfb2.err &
CFB=$!
STARTED="$STARTED $CFB"
wait_port cfb2:input
for _ in $(seq 50); do grep -q "no feedback port" cfb2.err && break; sleep 0.1; done
kill -TERM "$CFB"; wait "$CFB"
grep -q "connect-feedback: no feedback port" cfb2.err ||
  { cat cfb2.err; fail "--connect-feedback without a perturbation: no message"; }

OSC=$(free_udp_port)
"$JACKHOST" --name cbt --model "$MODEL" --learn --perturb-pitch 0 --feedback-to-model \
  --perturb-max-delay 200 --schedule sched.txt --record rec.wav --log live.csv --osc "$OSC" \
  >host.out 2>host.err &
HOST=$!
STARTED="$STARTED $HOST"
wait_port cbt:feedback
# a second client records the feedback port (its input is the feedback)
"$JACKHOST" --name fbrec --model "$MODEL" --record fbrec.wav --connect-input cbt:feedback \
  >fbrec.out 2>fbrec.err &
FBREC=$!
STARTED="$STARTED $FBREC"
wait_port fbrec:input
"$JACKPLAY" --name player --connect cbt:input --duration 5 "$SAMPLES/voiceB_gb_female_3.wav" &
PLAY=$!
STARTED="$STARTED $PLAY"
"$PY" - "$OSC" <<'PY' || fail "sending OSC"
import random, socket, sys, time, osc
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
send = lambda m: s.sendto(m, ("127.0.0.1", int(sys.argv[1])))
rng = random.Random(11)
time.sleep(0.3)
for i in range(40):
    k = rng.choice(["learn", "lr", "gate", "mark", "pitch", "pitch", "delay", "gain", "listen"])
    if k == "learn":
        send(osc.encode("/cbrnn/learn", "i", [rng.randint(0, 1)]))
    elif k == "lr":
        send(osc.encode("/cbrnn/lr", "f", [10 ** rng.uniform(-4, -2)]))
    elif k == "gate":
        send(osc.encode("/cbrnn/gate", "f", [rng.choice([0, -50])]))
    elif k == "mark":
        send(osc.encode("/cbrnn/mark", "s", ["osc%d" % i]))
    elif k == "listen":
        send(osc.encode("/cbrnn/perturb/listen", "i", [rng.randint(0, 1)]))
    else:
        v = {"pitch": rng.uniform(-3, 3), "delay": rng.uniform(0, 150),
             "gain": rng.uniform(-12, 6)}[k]
        ramp = rng.choice([None, 0, 40, 150])
        send(osc.encode("/cbrnn/perturb/" + k, "f" if ramp is None else "fi",
                        [v] if ramp is None else [v, ramp]))
    time.sleep(rng.uniform(0.03, 0.15))
# out of range: refused, not applied
time.sleep(1.1)  # complaints are shown at most once a second
send(osc.encode("/cbrnn/perturb/pitch", "f", [20.0]))
time.sleep(1.1)
send(osc.encode("/cbrnn/perturb/delay", "f", [300.0]))
# a known delay last: the feedback port's latency must follow it
send(osc.encode("/cbrnn/perturb/delay", "f", [40.0]))
PY
wait "$PLAY" || fail "cbrnn-jackplay failed"
sleep 0.3
LAT=$(jack_lsp -l cbt:feedback 2>/dev/null | grep -i "capture latency" | head -1)
kill -TERM "$HOST"; wait "$HOST" || { cat host.err; fail "cbrnn-jack exit status"; }
kill -TERM "$FBREC"; wait "$FBREC" || { cat fbrec.err; fail "feedback recorder exit status"; }
grep -q "perturbed feedback on cbt:feedback" host.err || { cat host.err; fail "no start-up message"; }
grep -o "latency [0-9]* samples ([0-9.]* ms) plus the delay" host.err | head -1
grep -q "perturb/pitch 20 refused" host.err || { cat host.err; fail "pitch 20 not refused"; }
grep -q "perturb/delay 300 refused" host.err || { cat host.err; fail "delay 300 not refused"; }
note "feedback port latency: $LAT"
# the shifter's latency plus the 40 ms delay sent last (1920 samples at 48 kHz)
SHIFT=$(grep -o "latency [0-9]* samples ([0-9.]* ms) plus the delay" host.err | head -1 | awk '{print $2}')
WANT=$((SHIFT + 1920))
echo "$LAT" | grep -q "\[ $WANT $WANT \]" ||
  fail "feedback port latency '$LAT' after /cbrnn/perturb/delay 40: expected $WANT ($SHIFT + 1920)"
for ev in pitch delay gain listen; do
  n=$(grep -c ",$ev," live.csv.events)
  [ "$n" -ge 2 ] || fail "fewer than 2 $ev events (got $n)"
done
grep -q ',pitch,2:100' live.csv.events || fail "the schedule's ramped pitch is not in the events"
note "live: $(($(wc -l <live.csv) - 1)) frames, $(grep -vc '^frame,' live.csv.events) events"

note "offline replay with --events"
"$CBRNN" run --model "$MODEL" --events live.csv.events --out-dir off rec.wav >run.out 2>&1 \
  || { cat run.out; fail "cbrnn run --events"; }
cmp live.csv off/frames.csv || {
  "$PY" "$J/compare_frames.py" live.csv off/frames.csv 0
  diff live.csv off/frames.csv | head -5
  fail "live and offline frames differ"; }
cmp live.csv.events off/events.csv || { diff live.csv.events off/events.csv | head; fail "applied events differ"; }
"$PY" - <<'PY' || fail "the live feedback port differs from the replay's feedback.wav"
import sys
import numpy as np
def read(p):  # 32-bit float mono WAV: the data chunk
    b = open(p, "rb").read()
    i = b.index(b"data")
    n = int.from_bytes(b[i + 4:i + 8], "little")
    return np.frombuffer(b[i + 8:i + 8 + n], dtype="<f4")
live, off = read("fbrec.wav"), read("off/feedback.wav")
nz = np.flatnonzero(np.abs(live) > 1e-3)
if len(nz) < 16000:
    sys.exit("the feedback recording holds %d non-silent samples" % len(nz))
# Period by period (256 samples): each non-silent period of the recording
# must be in feedback.wav at the offset of the one before, or a whole
# number of periods away (an xrun can cost the recorder, a separate
# client, whole periods of the feedback, or repeat one: never change a
# sample).
P, shift, found, missing = 256, None, 0, []
for a in range(0, len(live) - P + 1, P):
    blk = live[a:a + P]
    if not np.any(np.abs(blk) > 1e-3):
        continue
    cands = ([shift + k * P for k in [0] + list(range(-4, 0)) + list(range(1, 200))] if shift is not None else
             [k - a for k in range(len(off) - P + 1) if off[k] == blk[0]])
    hit = next((c for c in cands if 0 <= a + c <= len(off) - P and
                np.array_equal(off[a + c:a + c + P], blk)), None)
    if hit is None:
        missing.append(a)
    else:
        shift, found = hit, found + 1
import re
xruns = sum(int(m.group(1)) for f in ("host.err", "fbrec.err")
            for m in re.finditer(r"(\d+) xruns, ", open(f).read()))
print("feedback: %d non-silent periods of the live port found sample for sample in "
      "feedback.wav, %d not (final offset %s; %d xruns)" % (found, len(missing), shift, xruns))
# A period the recorder took from a cycle in which cbt ran late (an xrun,
# common under the sanitizers: over a thousand under ASan here) may hold
# what JACK had in the buffer then: at most one missing period per xrun,
# and never more than a tenth of them (without xruns, none). A fixed 2%
# failed once with 17 of 813 missing among 1709 xruns.
sys.exit(0 if found > 100 and len(missing) <= min(xruns, 0.1 * found) else 1)
PY
for f in rec.wav off/feedback.wav; do
  w=$( { sox --i "$f" >/dev/null; sox "$f" -n stat; } 2>&1 | grep -i warn)
  [ -z "$w" ] || fail "sox warns about $f: $w"
done
# Without the events the replay differs (the perturbation mattered).
"$CBRNN" run --model "$MODEL" --learn --out-dir plain rec.wav >/dev/null 2>&1 || fail "cbrnn run"
cmp -s live.csv plain/frames.csv && fail "a replay without --events matched: the test proves nothing"
echo "perturb_live: passed"
