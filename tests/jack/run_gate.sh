#!/bin/bash
# run_gate.sh: the level gate (issue 13, item 5) on silence-padded speech:
# voice B with 2 s of digital silence before and 5 s after (sox pad).
# `cbrnn run --learn --gate-db -50`: every frame of the padding is flagged
# 16 (gated) with learning 0 and no update; updates happen only on frames
# not gated; the summary's mean loss is the mean over the frames not
# gated, and its halves are halves of those (so trailing silence cannot
# pass for adaptation). Without the gate the padding is learned from. The
# gate is in the events file and `cbrnn run --events` replays it (its
# summary says so, not the option's default of 0 dBFS). A gated
# frame is predicted by the head as loaded (the adapted one never learned
# from such frames): its outputs equal a frozen run's bit for bit, while
# the speech after a few seconds of learning is predicted differently.
. "$(dirname "$0")/jacklib.sh"
MODEL="$SAMPLES/default.safetensors"
sox "$SAMPLES/voiceB_gb_female_2.wav" pad.wav pad 2 5 || fail sox
"$CBRNN" run --model "$MODEL" --learn --gate-db -50 --out-dir gate pad.wav >gate.out \
  || fail "cbrnn run --gate-db"
"$CBRNN" run --model "$MODEL" --learn --out-dir nogate pad.wav >nogate.out || fail "cbrnn run"
"$CBRNN" run --model "$MODEL" --no-learn --gate-db -50 --out-dir frozen pad.wav >/dev/null \
  || fail "cbrnn run --no-learn --gate-db"
cat gate.out
"$CBRNN" run --model "$MODEL" --events gate/events.csv --out-dir replay pad.wav >replay.out \
  || fail "cbrnn run --events"
cmp gate/frames.csv replay/frames.csv || fail "the gate did not replay from the events file"
# the summary names the gate applied: the option's, or the events file's
grep -q "below the level gate (-50 dBFS)" gate.out || fail "the gate run's summary: $(cat gate.out)"
grep -q "below the level gate (as the events file set it)" replay.out ||
  fail "the replay's summary names another gate: $(cat replay.out)"
grep -q '^0,gate,-50$' gate/events.csv || fail "the gate is not in the events file"
"$CBRNN" run --model "$MODEL" --gate-db 3 --out-dir x pad.wav 2>e && fail "--gate-db 3 accepted"
grep -q "expected dBFS" e || fail "--gate-db 3: no message"
"$PY" - <<'PY' || exit 1
import csv, re, sys
def rows(d):
    return list(csv.DictReader(open(d + "/frames.csv")))
g, n = rows("gate"), rows("nogate")
rate = 22050.0
bad = []
total = len(g)
lead = [r for r in g if float(r["time"]) < 2.0]
tail = g[-450:]  # the last 4.5 s: inside the 5 s of trailing silence
for r in lead[1:] + tail:
    f = int(r["flags"])
    if not f & 16 or r["learning"] != "0" or f & 1:
        bad.append("frame %s in the padding: flags %s learning %s" % (r["frame"], r["flags"], r["learning"]))
for r in g:
    if int(r["flags"]) & 16 and int(r["flags"]) & 1:
        bad.append("frame %s gated and updated" % r["frame"])
if not any(int(r["flags"]) & 1 for r in n[-450:]):
    bad.append("without the gate the trailing silence was not learned from: the test proves nothing")
kept = [float(r["loss"]) for r in g if r["loss"] and not int(r["flags"]) & 16]
mean = sum(kept) / len(kept)
h = len([r for r in g if not int(r["flags"]) & 16]) // 2
out = open("gate.out").read()
m = re.search(r"mean loss ([0-9.]+) \(first half ([0-9.]+), second half ([0-9.]+)\)", out)
if not m or abs(float(m.group(1)) - mean) > 1e-5:
    bad.append("summary mean %s, mean over frames not gated %.5f" % (m and m.group(1), mean))
print("gated frames: %d of %d; mean loss not gated %.5f" %
      (sum(1 for r in g if int(r["flags"]) & 16), total, mean))
import numpy as np
go, fo = np.load("gate/outputs.npy"), np.load("frozen/outputs.npy")
gated = np.array([int(r["flags"]) & 16 != 0 for r in g])
if go.shape != fo.shape or len(gated) != len(go):
    bad.append("outputs %s and %s for %d frames" % (go.shape, fo.shape, len(gated)))
else:
    if not np.array_equal(go[gated], fo[gated]):
        bad.append("gated frames not predicted by the loaded head: max difference %g"
                   % np.abs(go[gated] - fo[gated]).max())
    late = ~gated & (np.arange(len(g)) > len(g) // 2)
    if np.array_equal(go[late], fo[late]):
        bad.append("speech in the second half predicted as frozen: learning did nothing")
for b in bad[:10]:
    print("FAIL", b)
sys.exit(1 if bad else 0)
PY
echo "run_gate: passed"
