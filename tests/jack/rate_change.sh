#!/bin/bash
# rate_change.sh: a sample-rate change of the server (made by the shim
# rate_change.so, see its header) while cbrnn-jack learns under OSC
# control. The engine rebuilt at the new rate keeps the settings in force
# (learning on and lr 0.004, set by OSC; the command line left learning
# off at lr 1e-3): before, every row after the change showed learning 0
# and lr 0.001. The events file ends at the
# change (its frames would restart from 0, indistinguishable from the
# first engine's): before, rows after the change were sorted into the
# part before it, and `cbrnn run --events` replayed other settings there.
# The model saved at exit counts the frames of both engines in
# adapted_frames (before, only those since the change).
# Arguments: those of every JACK test, then the shim.
. "$(dirname "$0")/jacklib.sh"
SHIM=$6
pick_model
start_jackd 256
OSC=$(free_udp_port)
CBRNN_TEST_RATE_FILE=$PWD/rate LD_PRELOAD=$SHIM \
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
  "$JACKHOST" --name cbt --model "$MODEL" --log live.csv --osc "$OSC" \
  --save adapted.safetensors >host.out 2>host.err &
HOST=$!
STARTED="$STARTED $HOST"
wait_port cbt:input
"$JACKPLAY" --name player --connect cbt:input --duration 5 "$SAMPLES/voiceB_gb_female_3.wav" \
  >/dev/null 2>&1 &
STARTED="$STARTED $!"
sleep 1
"$PY" "$(dirname "$0")/osc.py" "$OSC" /cbrnn/learn i 1
"$PY" "$(dirname "$0")/osc.py" "$OSC" /cbrnn/lr f 0.004
sleep 1
echo 44100 >rate
for _ in $(seq 100); do grep -q "sample rate is now 44100" host.err && break; sleep 0.1; done
grep -q "sample rate is now 44100" host.err || { cat host.err; fail "the rate change was not taken"; }
sleep 1.5
kill -TERM "$HOST"; wait "$HOST" || fail "exit status $?: $(cat host.err)"
"$PY" - <<'PY' || { cat host.err; fail "the log or the events file"; }
import csv, json, struct, sys
rows = list(csv.DictReader(open("live.csv")))
frames = [int(r["frame"]) for r in rows]
cut = next(i for i in range(1, len(frames)) if frames[i] < frames[i - 1])
after = rows[cut:]
print("rows before the change %d, after %d" % (cut, len(after)))
bad = [r for r in after if r["learning"] != "1" or abs(float(r["lr"]) - 0.004) > 1e-6]
if bad or len(after) < 50:
    sys.exit("after the change: %d rows of %d not learning at lr 0.004 (first %s)"
             % (len(bad), len(after), bad[:1]))
last = cut - 1
events = [l for l in open("live.csv.events") if l[:1].isdigit()]
late = [l for l in events if int(l.split(",")[0]) > frames[last]]
if late:
    sys.exit("events after the change's frame: %s" % late[:3])
kinds = [l.split(",")[1] for l in events]
if "learn" not in kinds or "lr" not in kinds:
    sys.exit("the OSC changes are missing from the events file: %s" % kinds)
with open("adapted.safetensors", "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    meta = json.loads(f.read(n)).get("__metadata__", {})
saved = int(meta.get("adapted_frames", -1))
print("log: %d rows; saved after %d frames" % (len(rows), saved))
if saved != len(rows):
    sys.exit("adapted_frames %d, not the %d frames of both engines" % (saved, len(rows)))
PY
grep -q "the events file ends here" host.err || fail "the end of the events file was not said"
grep -q "changes_lost" live.csv.events && fail "a complete events file marked incomplete"

# More changes in one frame than the engine's ring holds (a schedule of
# 100000 at 1 s), then a rate change: the changes the first engine never
# reported are what the file lacks, said at its end (before, the engine
# that reported them was gone at exit and the file read as complete).
kill -TERM "$JACKD"; wait "$JACKD" 2>/dev/null
start_jackd 256
rm -f rate
awk 'BEGIN { for (i = 0; i < 100000; i++) printf "1s lr %s\n", i % 2 ? "0.002" : "0.001" }' >burst.txt
CBRNN_TEST_RATE_FILE=$PWD/rate LD_PRELOAD=$SHIM \
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
  "$JACKHOST" --name cbt --model "$MODEL" --log burst.csv --schedule burst.txt \
  >burst.out 2>burst.err &
HOST=$!
STARTED="$STARTED $HOST"
wait_port cbt:input
for _ in $(seq 300); do grep -q '^150,' burst.csv && break; sleep 0.1; done
grep -q '^150,' burst.csv || { cat burst.err; fail "no frame 150 in burst.csv within 30 s"; }
echo 44100 >rate
for _ in $(seq 100); do grep -q "sample rate is now 44100" burst.err && break; sleep 0.1; done
grep -q "sample rate is now 44100" burst.err || { cat burst.err; fail "the rate change was not taken"; }
kill -TERM "$HOST"; wait "$HOST"
rc=$?
[ "$rc" -eq 1 ] || { cat burst.err; fail "burst then rate change: exit $rc, expected 1"; }
# every change of the burst is in the file or counted as lost
rows=$(grep -c '^100,lr,' burst.csv.events)
lost=$(sed -n 's/^# changes_lost=//p' burst.csv.events)
[ $((rows + ${lost:-0})) -eq 100000 ] ||
  { cat burst.err; tail -3 burst.csv.events
    fail "$rows rows and changes_lost=${lost:-none}: not the 100000 applied"; }
echo "rate_change: passed"
