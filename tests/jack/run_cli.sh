#!/bin/bash
# run_cli.sh: `cbrnn run` (no JACK needed): --block 1, 64 and 4096 give
# byte-identical outputs.npy, frames.csv and surprise.wav; on voice B (not
# seen in warm-up) the mean loss over the second half with --learn is
# clearly below --no-learn; several inputs with --reset-each are the same
# as separate runs; a map model runs against its --teacher and learns; bad
# input is refused with exit 2.
. "$(dirname "$0")/jacklib.sh"
pick_model
CLIP="$SAMPLES/voiceB_gb_female_1.wav"
# 6 s are plenty for the block comparison (--block 1 is slow under ASan).
sox "$CLIP" short.wav trim 0 6 || fail "sox trim"
for b in 1 64 4096; do
  "$CBRNN" run --quiet --model "$MODEL" --learn --block $b --out-dir b$b short.wav \
    || fail "cbrnn run --block $b"
done
for f in outputs.npy frames.csv surprise.wav; do
  for b in 64 4096; do
    cmp -s b1/$f b$b/$f || fail "$f differs between --block 1 and --block $b"
  done
done
# sox reads the float WAV without "wave header missing extended part of
# fmt chunk" (the 18-byte fmt chunk; surprise values above 1 do clip in
# sox's stat, which is not a header problem)
w=$( { sox --i b1/surprise.wav >/dev/null; sox b1/surprise.wav -n stat; } 2>&1 | grep -i warn | grep -v clipped)
[ -z "$w" ] || fail "sox warns about surprise.wav: $w"
"$CBRNN" run --model "$MODEL" --no-learn --out-dir fixed "$CLIP" >fixed.txt || fail "run --no-learn"
"$CBRNN" run --model "$MODEL" --learn --out-dir learn "$CLIP" >learn.txt || fail "run --learn"
cat fixed.txt learn.txt
"$PY" - <<'PY' || fail "learning did not lower the second-half loss clearly"
import csv, sys
def second_half(p):
    l = [float(r["loss"]) for r in csv.DictReader(open(p)) if r["loss"] != ""]
    h = l[len(l) // 2:]
    return sum(h) / len(h)
a, b = second_half("fixed/frames.csv"), second_half("learn/frames.csv")
print("second-half mean loss: --no-learn %.5f, --learn %.5f (ratio %.3f)" % (a, b, b / a))
# The default model already predicts this unheard voice (skill 0.16
# frozen); learning took 9% off the second half when this was written.
sys.exit(0 if b < 0.95 * a else 1)
PY
# --reset-each: the second input's rows equal a run of that input alone.
sox "$SAMPLES/voiceB_gb_female_2.wav" short2.wav trim 0 4 || fail "sox trim"
"$CBRNN" run --quiet --model "$MODEL" --learn --reset-each --out-dir each short.wav short2.wav \
  || fail "run --reset-each"
"$CBRNN" run --quiet --model "$MODEL" --learn --out-dir alone short2.wav || fail "run short2"
"$PY" - <<'PY' || fail "--reset-each: the second input does not run as on its own"
import numpy as np, sys
a, b = np.load("each/outputs.npy"), np.load("alone/outputs.npy")
first = np.load("b1/outputs.npy").shape[0]
ok = a.shape[0] == first + b.shape[0] and np.array_equal(a[first:], b)
lines = open("each/frames.csv").read().split("\n")
ok &= lines[1 + first].startswith("0,")  # frame numbering starts again
print("reset-each: %d + %d rows, second part identical: %s" % (first, b.shape[0], ok))
sys.exit(0 if ok else 1)
PY

# A map model (voice A -> voice B, the same text) against its teacher.
printf '%s\t%s\n' "$SAMPLES/voiceA_us_male_1.wav" "$SAMPLES/voiceB_gb_female_1.wav" >pairs.txt
"$CBRNN" train -q -o map.safetensors --target map --pairs pairs.txt --hidden 32 --cb 32 \
  --warmup-steps 20 --steps 20 --val-fraction 0 >map_train.log 2>&1 \
  || { cat map_train.log; fail "cbrnn train --target map"; }
A3="$SAMPLES/voiceA_us_male_3.wav" B3="$SAMPLES/voiceB_gb_female_3.wav"
"$CBRNN" run --model map.safetensors --no-learn --teacher "$B3" --out-dir map_fixed "$A3" \
  >map_fixed.txt || fail "map run --no-learn"
"$CBRNN" run --model map.safetensors --learn --lr 3e-3 --teacher "$B3" --out-dir map_learn "$A3" \
  >map_learn.txt || fail "map run --learn"
cat map_fixed.txt map_learn.txt
"$PY" - <<'PY' || fail "map: learning did not lower the second-half loss"
import csv, sys
def second_half(p):
    l = [float(r["loss"]) for r in csv.DictReader(open(p)) if r["loss"] != ""]
    return sum(l[len(l) // 2:]) / len(l[len(l) // 2:]), len(l)
(a, n), (b, m) = second_half("map_fixed/frames.csv"), second_half("map_learn/frames.csv")
print("map second-half loss: --no-learn %.4f, --learn %.4f (%d scored frames)" % (a, b, n))
sys.exit(0 if n > 1000 and n == m and b < 0.9 * a else 1)
PY
"$CBRNN" run --model map.safetensors --out-dir bad "$A3" 2>err.txt; rc=$?
[ "$rc" -eq 2 ] && grep -q -- "--teacher" err.txt || fail "a map model without --teacher: expected exit 2, got $rc"

"$CBRNN" run --model "$MODEL" --out-dir bad "$SAMPLES/README.md" 2>err.txt; rc=$?
[ "$rc" -eq 2 ] && grep -q README.md err.txt || fail "a non-audio input: expected exit 2 naming the file, got $rc"
"$CBRNN" run --model "$SAMPLES/README.md" --out-dir bad "$CLIP" 2>err.txt; rc=$?
[ "$rc" -eq 2 ] && grep -q README.md err.txt || fail "a non-model --model: expected exit 2 naming the file, got $rc"
# 300 control changes in one frame (more than the engine's default 256
# command slots): all replayed (before: "too many events in one frame",
# exit 2; cbrnn_host_size_event_ring sizes the command ring too)
awk 'BEGIN { for (i = 0; i < 300; i++) printf "3,lr,%s\n", i % 2 ? "0.002" : "0.001" }' >many.csv
"$CBRNN" run --quiet --model "$MODEL" --events many.csv --out-dir many "$CLIP" 2>err.txt; rc=$?
[ "$rc" -eq 0 ] || { cat err.txt; fail "300 events in one frame: exit $rc"; }
[ "$(grep -c '^3,lr,' many/events.csv)" -eq 300 ] || fail "300 events in one frame: not all applied"
echo "run_cli: passed"
