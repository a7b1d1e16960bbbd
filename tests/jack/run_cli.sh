#!/bin/bash
# run_cli.sh: `cbrnn run` (no JACK needed): --block 1, 64 and 4096 give
# byte-identical outputs.npy, frames.csv and surprise.wav; on voice B (not
# seen in warm-up) the mean loss over the second half with --learn is
# clearly below --no-learn; bad input is refused with exit 2.
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
sys.exit(0 if b < 0.9 * a else 1)
PY
"$CBRNN" run --model "$MODEL" --out-dir bad "$SAMPLES/README.md" 2>err.txt; rc=$?
[ "$rc" -eq 2 ] && grep -q README.md err.txt || fail "a non-audio input: expected exit 2 naming the file, got $rc"
"$CBRNN" run --model "$SAMPLES/README.md" --out-dir bad "$CLIP" 2>err.txt; rc=$?
[ "$rc" -eq 2 ] && grep -q README.md err.txt || fail "a non-model --model: expected exit 2 naming the file, got $rc"
echo "run_cli: passed"
