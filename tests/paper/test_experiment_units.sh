#!/bin/sh
# test_experiment_units.sh: `cbrnn experiment` as units, without a
# cluster: --plan lists every (variant, seed) with its state; running each
# --unit K in its own process (in another order, one of them interrupted
# and resumed) and then --collect gives curves, summary.json and
# summary.md identical byte for byte to a local run in one process, and a
# unit killed by SIGTERM mid-run resumes to the same bytes;
# --collect names missing, unfinished and failed units and exits 1;
# --partial summarises the finished ones and says which were left out;
# the speech comparison works unit by unit too; misuse exits 2.
# usage: test_experiment_units.sh CBRNN_BINARY PYTHON SAMPLES_DIR
set -u
CBRNN=$1
PY=$2
S=$3
T=$(mktemp -d /tmp/cbrnn_experiment_units_XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
Q="--task dms --variants rnn,frozen --seeds 2 --epochs 4 --checkpoint-every 2
   --train-steps 6 --test-batches 3 --no-figure"

expect_usage() {
  want=$1; shift
  "$CBRNN" experiment "$@" >"$T/out" 2>"$T/err"; rc=$?
  [ $rc -eq 2 ] || fail "cbrnn experiment $*: exit $rc, expected 2"
  grep -q -- "$want" "$T/err" || fail "cbrnn experiment $*: stderr lacks '$want': $(cat "$T/err")"
}
# shellcheck disable=SC2086
{
expect_usage "only one of" $Q --out-dir "$T/x" --plan --collect
expect_usage "only one of" $Q --out-dir "$T/x" --unit 0 --slurm
expect_usage "--partial goes with --collect" $Q --out-dir "$T/x" --partial
expect_usage "go with --slurm" $Q --out-dir "$T/x" --no-wait
expect_usage "go with --slurm" $Q --out-dir "$T/x" --unit 1 --array-limit 3
expect_usage "--unit '-1'" $Q --out-dir "$T/x" --unit -1
expect_usage "4 units (0..3" $Q --out-dir "$T/x" --unit 4
}
"$CBRNN" experiment --help >"$T/help" || fail "--help: exit $?"
for w in --plan --unit --collect --partial --slurm --sbatch-args --array-limit --no-wait; do
  grep -q -- "$w" "$T/help" || fail "--help does not document $w"
done

# shellcheck disable=SC2086
"$CBRNN" experiment $Q --out-dir "$T/local" >/dev/null 2>"$T/local.err" || fail "local: exit $? ($(cat "$T/local.err"))"

# ---- the plan ----
# shellcheck disable=SC2086
"$CBRNN" experiment $Q --out-dir "$T/u" --plan >"$T/plan" || fail "--plan: exit $?"
[ ! -e "$T/u" ] || fail "--plan created the out-dir"
grep -v '^#' "$T/plan" | cut -f1-4 >"$T/plan.got"
printf '0\trnn-seed0\tmissing\t0/4\n1\tfrozen-seed0\tmissing\t0/4\n2\trnn-seed1\tmissing\t0/4\n3\tfrozen-seed1\tmissing\t0/4\n' >"$T/plan.want"
cmp -s "$T/plan.got" "$T/plan.want" || fail "--plan: $(cat "$T/plan")"

# ---- units one by one, out of order; collect refuses until all are done ----
# shellcheck disable=SC2086
{
"$CBRNN" experiment $Q --out-dir "$T/u" --unit 3 >/dev/null 2>&1 || fail "--unit 3: exit $?"
"$CBRNN" experiment $Q --out-dir "$T/u" --unit 0 >/dev/null 2>&1 || fail "--unit 0: exit $?"
"$CBRNN" experiment $Q --epochs 2 --out-dir "$T/u" --unit 2 >/dev/null 2>&1 || fail "--unit 2 (2 epochs): exit $?"
"$CBRNN" experiment $Q --out-dir "$T/u" --collect >"$T/c.out" 2>"$T/c.err"; rc=$?
}
[ $rc -eq 1 ] || fail "--collect with units missing: exit $rc, expected 1"
grep -q "unit 1 (frozen-seed0): missing" "$T/c.err" || fail "--collect does not name the missing unit: $(cat "$T/c.err")"
grep -q "unit 2 (rnn-seed1): not finished (2 of 4)" "$T/c.err" || fail "--collect does not name the unfinished unit: $(cat "$T/c.err")"
[ -f "$T/u/summary.json" ] && fail "--collect wrote a summary of a partial run"
# shellcheck disable=SC2086
"$CBRNN" experiment $Q --out-dir "$T/u" --collect --partial >"$T/p.out" 2>"$T/p.err" ||
  fail "--collect --partial: exit $? ($(cat "$T/p.err"))"
grep -q "Partial summary.*frozen-seed0, rnn-seed1" "$T/u/summary.md" || fail "summary.md is not marked partial: $(cat "$T/u/summary.md")"
"$PY" - "$T/u/summary.json" <<'EOF2' || fail "summary.json is not marked partial (see above)"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["partial"] is True and s["left_out"] == ["frozen-seed0", "rnn-seed1"], s
assert s["variants"]["rnn"]["seeds"] == [0] and s["variants"]["frozen"]["seeds"] == [1], s
EOF2
# a failed unit is named with its reason, also by --plan
echo "garbage" >"$T/u/curves/frozen-seed0.csv"
# shellcheck disable=SC2086
"$CBRNN" experiment $Q --out-dir "$T/u" --unit 1 >/dev/null 2>"$T/f.err"; rc=$?
[ $rc -eq 1 ] || fail "--unit on a broken curve: exit $rc, expected 1"
# shellcheck disable=SC2086
"$CBRNN" experiment $Q --out-dir "$T/u" --plan | grep -q "^1	frozen-seed0	failed	0/4	.*not a curve file" ||
  fail "--plan does not show the failed unit: $("$CBRNN" experiment $Q --out-dir "$T/u" --plan)"
# shellcheck disable=SC2086
"$CBRNN" experiment $Q --out-dir "$T/u" --collect >/dev/null 2>"$T/c2.err"
grep -q "unit 1 (frozen-seed0): failed: .*not a curve file" "$T/c2.err" || fail "--collect does not name the failed unit: $(cat "$T/c2.err")"
# repaired and resumed: the same bytes as the local run
rm "$T/u/curves/frozen-seed0.csv"
# shellcheck disable=SC2086
{
"$CBRNN" experiment $Q --out-dir "$T/u" --unit 1 >/dev/null 2>&1 || fail "--unit 1: exit $?"
"$CBRNN" experiment $Q --out-dir "$T/u" --unit 2 >/dev/null 2>&1 || fail "--unit 2 (resumed): exit $?"
"$CBRNN" experiment $Q --out-dir "$T/u" --unit 2 >/dev/null 2>&1 || fail "--unit 2 (again, done): exit $?"
"$CBRNN" experiment $Q --out-dir "$T/u" --collect >"$T/c3.out" 2>"$T/c3.err" || fail "--collect: exit $? ($(cat "$T/c3.err"))"
}
[ -e "$T/u/failed/frozen-seed0.txt" ] && fail "failed/ still marks a unit that has since run"
for f in summary.json summary.md curves/rnn-seed0.csv curves/frozen-seed0.csv curves/rnn-seed1.csv curves/frozen-seed1.csv; do
  cmp -s "$T/local/$f" "$T/u/$f" || fail "$f: units + --collect differ from the local run"
done
grep -q "| frozen | 41922 |" "$T/c3.out" || fail "--collect does not print the table"

# ---- a unit killed mid-run (as by a Slurm time limit) resumes to the same bytes ----
E="--task parity --variants rnn --seeds 1 --epochs 60 --checkpoint-every 4 --train-steps 6
   --test-batches 3 --no-figure"
# shellcheck disable=SC2086
"$CBRNN" experiment $E --out-dir "$T/kl" >/dev/null 2>&1 || fail "run kl: exit $?"
# shellcheck disable=SC2086
"$CBRNN" experiment $E --out-dir "$T/ku" --unit 0 >/dev/null 2>&1 &
pid=$!
i=0  # until a few epochs are written (a condition, not a delay; at most 60 s)
while [ "$(wc -l <"$T/ku/curves/rnn-seed0.csv" 2>/dev/null || echo 0)" -lt 7 ] && [ $i -lt 600 ]; do
  sleep 0.1; i=$((i + 1))
done
kill -TERM $pid 2>/dev/null
wait $pid; rc=$?
[ $rc -eq 0 ] && echo "note: the unit finished before SIGTERM; the resume path was not exercised"
# shellcheck disable=SC2086
"$CBRNN" experiment $E --out-dir "$T/ku" --unit 0 >/dev/null 2>"$T/ku.err" || fail "resumed unit: exit $? ($(cat "$T/ku.err"))"
cmp -s "$T/kl/curves/rnn-seed0.csv" "$T/ku/curves/rnn-seed0.csv" ||
  fail "a unit killed and resumed differs from an uninterrupted run"

# ---- speech, unit by unit ----
SP="--task speech --corpus $S/voiceA_us_male_1.wav --corpus $S/voiceB_gb_female_1.wav
  --val-files $S/voiceA_us_male_2.wav --steps 6 --warmup-steps 2 --eval-every 3 --hidden 12 --cb 16
  --batch 2 --seq-len 20 --seeds 1 --variants rnn,cbrnn --no-figure"
# shellcheck disable=SC2086
{
"$CBRNN" experiment $SP --out-dir "$T/sl" >/dev/null 2>&1 || fail "speech local: exit $?"
"$CBRNN" experiment $SP --out-dir "$T/su" --unit 1 >/dev/null 2>&1 || fail "speech --unit 1: exit $?"
"$CBRNN" experiment $SP --out-dir "$T/su" --collect >/dev/null 2>"$T/s.err"; rc=$?
}
[ $rc -eq 1 ] || fail "speech --collect with a unit missing: exit $rc"
grep -q "unit 0 (rnn-seed0): missing" "$T/s.err" || fail "speech --collect: $(cat "$T/s.err")"
# shellcheck disable=SC2086
{
"$CBRNN" experiment $SP --out-dir "$T/su" --unit 0 >/dev/null 2>&1 || fail "speech --unit 0: exit $?"
"$CBRNN" experiment $SP --out-dir "$T/su" --collect >/dev/null 2>&1 || fail "speech --collect: exit $?"
}
for v in rnn cbrnn; do
  cut -d, -f1-6 "$T/sl/curves/$v-seed0.csv" >"$T/a.$v"
  cut -d, -f1-6 "$T/su/curves/$v-seed0.csv" >"$T/b.$v"
  cmp -s "$T/a.$v" "$T/b.$v" || fail "speech $v: unit by unit differs from local"
done


"$PY" - "$T/sl/summary.json" "$T/su/summary.json" <<'EOF3' || fail "speech summary.json differs beyond wall-clock (see above)"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for s in (a, b):
    for v in s["variants"].values():
        v.pop("wall_s")
assert a == b, (a, b)
EOF3

if [ $fails -ne 0 ]; then
  echo "test_experiment_units: $fails failures"
  exit 1
fi
echo "test_experiment_units: all checks passed"
