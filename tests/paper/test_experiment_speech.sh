#!/bin/sh
# test_experiment_speech.sh: `cbrnn experiment --task speech` end to end on
# real clips of samples/: every variant writes a curve, a model that cbrnn
# eval reads back with the same validation loss, and the summary; runs are
# deterministic apart from wall-clock; finished runs are skipped; bad input
# exits 2 with a message naming the problem. Tiny models keep it quick.
# usage: test_experiment_speech.sh CBRNN_BINARY PYTHON SAMPLES_DIR
set -u
CBRNN=$1
PY=$2
S=$3
T=$(mktemp -d /tmp/cbrnn_experiment_speech_XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
SMALL="--corpus $S/voiceA_us_male_1.wav --corpus $S/voiceB_gb_female_1.wav --val-files $S/voiceA_us_male_2.wav
  --steps 6 --warmup-steps 2 --eval-every 3 --hidden 12 --cb 16 --batch 2 --seq-len 20 --seeds 1 --no-figure"

expect_usage() {
  want=$1; shift
  "$CBRNN" experiment --task speech "$@" >"$T/out" 2>"$T/err"; rc=$?
  [ $rc -eq 2 ] || fail "experiment --task speech $*: exit $rc, expected 2"
  grep -q -- "$want" "$T/err" || fail "experiment --task speech $*: stderr lacks '$want': $(cat "$T/err")"
}
expect_usage "required" --corpus "$S/voiceA_us_male_1.wav"
expect_usage "unknown variant 'lstm'" --variants cbrnn,lstm --out-dir "$T/x"
expect_usage "no-such.wav" --corpus "$T/no-such.wav" --out-dir "$T/x"
expect_usage "at least one training and one validation" --corpus "$S/voiceA_us_male_1.wav" --out-dir "$T/x"
printf 'not audio' >"$T/bad.wav"
expect_usage "bad.wav" --corpus "$S/voiceA_us_male_1.wav" --val-files "$T/bad.wav" --out-dir "$T/x"
expect_usage "--cb 'a'" --cb a --out-dir "$T/x"
expect_usage "--lr '-1'" --lr -1 --out-dir "$T/x"

# shellcheck disable=SC2086
"$CBRNN" experiment --task speech $SMALL --jobs 2 --out-dir "$T/a" >"$T/a.out" 2>"$T/a.err" ||
  fail "run a: exit $? ($(cat "$T/a.err"))"
for v in cbrnn cbrnn-full rnn reservoir; do
  f="$T/a/curves/$v-seed0.csv"
  # rows at steps 0, 3, 6; cbrnn also at the end of its warm-up (step 2)
  want=4; [ $v = cbrnn ] && want=5
  [ "$(wc -l <"$f" 2>/dev/null)" = $want ] || fail "$f: $(wc -l <"$f") lines, expected $want"
  [ -s "$T/a/models/$v-seed0.safetensors" ] || fail "no model for $v"
done
grep -q "^2,warmup," "$T/a/curves/cbrnn-seed0.csv" || fail "cbrnn: no row at the end of the warm-up"
grep -q "^6,frozen," "$T/a/curves/cbrnn-seed0.csv" || fail "cbrnn: the last row is not in the frozen phase"
"$PY" - "$T/a" <<'EOF' || fail "summary.json (see above)"
import json, os, sys
s = json.load(open(os.path.join(sys.argv[1], "summary.json")))
assert s["task"] == "speech" and s["steps"] == 6 and s["train_files"] == 2 and s["val_files"] == 1, s
v = s["variants"]
assert list(v) == ["cbrnn", "cbrnn-full", "rnn", "reservoir"], list(v)
assert v["cbrnn"]["params"] == v["cbrnn-full"]["params"] == v["reservoir"]["params"]
# the rnn is matched to the cbrnn's parameter count (closest cortex size)
assert abs(v["rnn"]["params"] - v["cbrnn"]["params"]) < 0.05 * v["cbrnn"]["params"], v
for k, e in v.items():
    assert len(e["final_skill"]) == 1 and len(e["final_val_loss"]) == 1, (k, e)
EOF
# The saved model's validation loss, recomputed by cbrnn eval, is the curve's last one.
"$CBRNN" eval --json "$T/a/models/cbrnn-full-seed0.safetensors" "$S/voiceA_us_male_2.wav" \
  >"$T/eval.json" 2>"$T/eval.err" || fail "cbrnn eval of the saved model: $(cat "$T/eval.err")"
"$PY" - "$T/eval.json" "$T/a/curves/cbrnn-full-seed0.csv" <<'EOF' || fail "cbrnn eval disagrees with the curve (see above)"
import csv, json, sys
e = json.load(open(sys.argv[1]))
loss = e["overall"]["loss"]
last = list(csv.DictReader(open(sys.argv[2])))[-1]
want = float(last["val_loss"])
assert abs(float(loss) - want) <= 1e-6 * want, ("eval loss", loss, "curve", want)
EOF

# deterministic (wall-clock aside), and --jobs does not matter
# shellcheck disable=SC2086
"$CBRNN" experiment --task speech $SMALL --jobs 1 --variants rnn,cbrnn --out-dir "$T/b" >/dev/null 2>"$T/b.err" ||
  fail "run b: exit $? ($(cat "$T/b.err"))"
for v in rnn cbrnn; do
  cut -d, -f1-6 "$T/a/curves/$v-seed0.csv" >"$T/a.$v"
  cut -d, -f1-6 "$T/b/curves/$v-seed0.csv" >"$T/b.$v"
  cmp -s "$T/a.$v" "$T/b.$v" || fail "$v: two runs differ: $(diff "$T/a.$v" "$T/b.$v")"
done
# finished runs are skipped
touch -d 2000-01-01 "$T/b/curves/rnn-seed0.csv"
# shellcheck disable=SC2086
"$CBRNN" experiment --task speech $SMALL --variants rnn,cbrnn --out-dir "$T/b" >/dev/null 2>&1 || fail "rerun b: exit $?"
[ "$(date -r "$T/b/curves/rnn-seed0.csv" +%Y)" = 2000 ] || fail "a finished speech run was run again"
# other settings in the same folder are refused
# shellcheck disable=SC2086
expect_usage "other settings" $SMALL --variants rnn --hidden 13 --out-dir "$T/b"

if [ $fails -ne 0 ]; then
  echo "test_experiment_speech: $fails failures"
  exit 1
fi
echo "test_experiment_speech: all checks passed"
