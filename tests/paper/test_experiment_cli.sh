#!/bin/sh
# test_experiment_cli.sh: `cbrnn experiment` end to end on the paper tasks:
# bad usage exits 2 with a message; a run writes the curves, summary.json
# (shaped as issue 5 asks), summary.md and figure.png; results do not depend
# on --jobs; an interrupted or extended run resumes to exactly the curves of
# an uninterrupted one (partial line, checkpoint older than the curve,
# missing checkpoint); multitask and switch run end to end (parameter
# counts of their models, curves, summary, figure) and resume to the same
# curves; a folder of other settings is refused.
# Epochs are shortened with --train-steps/--test-batches to keep it quick.
# usage: test_experiment_cli.sh CBRNN_BINARY PYTHON
set -u
CBRNN=$1
PY=$2
T=$(mktemp -d /tmp/cbrnn_experiment_cli_XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
QUICK="--train-steps 6 --test-batches 3"

# ---- bad usage: exit 2 and a message naming the problem ----
expect_usage() { # words... -- args
  want=$1; shift
  "$CBRNN" experiment "$@" >"$T/out" 2>"$T/err"; rc=$?
  [ $rc -eq 2 ] || fail "cbrnn experiment $*: exit $rc, expected 2"
  grep -q -- "$want" "$T/err" || fail "cbrnn experiment $*: stderr lacks '$want': $(cat "$T/err")"
}
expect_usage "required" --task parity
expect_usage "unknown task 'nback'" --task nback --out-dir "$T/x"
expect_usage "unknown variant 'lstm'" --task parity --variants cbrnn,lstm --out-dir "$T/x"
expect_usage "given twice" --task parity --variants rnn,rnn --out-dir "$T/x"
expect_usage "--seeds '0'" --task parity --seeds 0 --out-dir "$T/x"
expect_usage "--epochs 'ten'" --task parity --epochs ten --out-dir "$T/x"
expect_usage "--max-n '1'" --task parity --max-n 1 --out-dir "$T/x"
expect_usage "--jobs '0'" --task parity --jobs 0 --out-dir "$T/x"
touch "$T/afile"
expect_usage "cannot create" --task parity --out-dir "$T/afile"
expect_usage "unexpected argument" --task parity --out-dir "$T/x" extra
"$CBRNN" experiment --help >"$T/out" 2>&1 || fail "--help: exit $?"
grep -q "interleaved" "$T/out" || fail "--help does not describe the variants"

# ---- a full small comparison ----
"$CBRNN" experiment --task parity --seeds 2 --epochs 3 --jobs 2 $QUICK \
  --out-dir "$T/a" >"$T/a.out" 2>"$T/a.err" || fail "run a: exit $? ($(cat "$T/a.err"))"
for v in cbrnn rnn frozen interleaved; do
  for s in 0 1; do
    f="$T/a/curves/$v-seed$s.csv"
    [ -f "$f" ] || { fail "missing $f"; continue; }
    [ "$(head -1 "$f")" = "epoch,N,train_loss,test_accuracy,phase" ] || fail "$f: header $(head -1 "$f")"
    [ "$(wc -l <"$f")" -eq 4 ] || fail "$f: $(wc -l <"$f") lines, expected header + 3 epochs"
  done
done
[ -s "$T/a/figure.png" ] || fail "no figure.png ($(cat "$T/a.err"))"
grep -q "| interleaved | 41922 |" "$T/a/summary.md" || fail "summary.md lacks the interleaved row"
grep -q "| rnn | 41816 |" "$T/a/summary.md" || fail "summary.md lacks the rnn row"
grep -q "| rnn | 41816 |" "$T/a.out" || fail "the summary table is not printed"
"$PY" - "$T/a" <<'EOF' || fail "summary.json does not match the curves (see above)"
import csv, json, os, sys
d = sys.argv[1]
s = json.load(open(os.path.join(d, "summary.json")))
assert s["task"] == "parity" and s["epochs"] == 3, s
assert list(s["variants"]) == ["cbrnn", "rnn", "frozen", "interleaved"], list(s["variants"])
params = {"cbrnn": 41922, "rnn": 41816, "frozen": 41922, "interleaved": 41922}
curves = {}
for v in params:
    for k in (0, 1):
        curves[(v, k)] = [int(r["N"]) for r in csv.DictReader(open(os.path.join(d, "curves", "%s-seed%d.csv" % (v, k))))]
best = max(max(c) for c in curves.values())
assert abs(s["half_max_N"] - best / 2) < 1e-9, (s["half_max_N"], best)
for v, want in params.items():
    e = s["variants"][v]
    assert e["params"] == want, (v, e["params"])
    for key in ("max_N", "epochs_to_half_max", "auc", "final_N"):
        assert len(e[key]) == 2, (v, key, e[key])
    for k in (0, 1):
        c = curves[(v, k)]
        assert e["max_N"][k] == max(c), (v, k, e["max_N"][k], c)
        assert e["final_N"][k] == c[-1], (v, k)
        assert e["auc"][k] == sum(c), (v, k)
        first = next((i + 1 for i, n in enumerate(c) if n >= best / 2), None)
        assert e["epochs_to_half_max"][k] == first, (v, k, e["epochs_to_half_max"][k], first)
EOF

# ---- --jobs does not change results ----
"$CBRNN" experiment --task parity --variants frozen,cbrnn --seeds 2 --epochs 3 --jobs 1 $QUICK \
  --no-figure --out-dir "$T/b" >/dev/null 2>"$T/b.err" || fail "run b: exit $? ($(cat "$T/b.err"))"
for f in frozen-seed0 frozen-seed1 cbrnn-seed0 cbrnn-seed1; do
  cmp -s "$T/a/curves/$f.csv" "$T/b/curves/$f.csv" || fail "$f: --jobs 2 and --jobs 1 differ"
done
[ -f "$T/b/figure.png" ] && fail "--no-figure still drew figure.png"

# ---- resume ----
# c: 6 epochs straight.  d: 4 epochs (checkpoints every 2), then damage and extend to 6.
"$CBRNN" experiment --task dms --variants rnn,interleaved --seeds 1 --epochs 6 $QUICK --no-figure \
  --out-dir "$T/c" >/dev/null 2>"$T/c.err" || fail "run c: exit $? ($(cat "$T/c.err"))"
"$CBRNN" experiment --task dms --variants rnn,interleaved --seeds 1 --epochs 4 $QUICK --no-figure \
  --checkpoint-every 2 --out-dir "$T/d" >/dev/null 2>"$T/d.err" || fail "run d: exit $? ($(cat "$T/d.err"))"
# a finished run is skipped: its curve file is not rewritten
touch -d "2000-01-01" "$T/d/curves/rnn-seed0.csv"
"$CBRNN" experiment --task dms --variants rnn,interleaved --seeds 1 --epochs 4 $QUICK --no-figure \
  --checkpoint-every 2 --out-dir "$T/d" >/dev/null 2>&1 || fail "rerun d: exit $?"
[ "$(date -r "$T/d/curves/rnn-seed0.csv" +%Y)" = 2000 ] || fail "a finished run was run again"
# rnn: a row the checkpoint (epoch 4) does not cover, then a partial line
sed -n 5p "$T/c/curves/rnn-seed0.csv" >>"$T/d/curves/rnn-seed0.csv"
printf '6,3,0.69' >>"$T/d/curves/rnn-seed0.csv"
# interleaved: no checkpoint at all -> restarts from epoch 1
rm -f "$T/d/checkpoints/interleaved-seed0.ckpt"
"$CBRNN" experiment --task dms --variants rnn,interleaved --seeds 1 --epochs 6 $QUICK --no-figure \
  --checkpoint-every 2 --out-dir "$T/d" >/dev/null 2>"$T/d2.err" || fail "resume d: exit $? ($(cat "$T/d2.err"))"
for f in rnn-seed0 interleaved-seed0; do
  cmp -s "$T/c/curves/$f.csv" "$T/d/curves/$f.csv" ||
    fail "$f: resumed curve differs from the uninterrupted one: $(diff "$T/c/curves/$f.csv" "$T/d/curves/$f.csv")"
done
# a checkpoint of another run is not used
cp "$T/d/checkpoints/rnn-seed0.ckpt" "$T/d/checkpoints/interleaved-seed0.ckpt"
head -3 "$T/c/curves/interleaved-seed0.csv" >"$T/d/curves/interleaved-seed0.csv"
"$CBRNN" experiment --task dms --variants rnn,interleaved --seeds 1 --epochs 6 $QUICK --no-figure \
  --out-dir "$T/d" >/dev/null 2>"$T/d3.err" || fail "resume d with a wrong checkpoint: exit $?"
grep -q "another run" "$T/d3.err" || fail "a foreign checkpoint was not reported: $(cat "$T/d3.err")"
cmp -s "$T/c/curves/interleaved-seed0.csv" "$T/d/curves/interleaved-seed0.csv" ||
  fail "interleaved-seed0 after a foreign checkpoint differs from the uninterrupted run"

# ---- SIGTERM to the command stops its workers; rerunning finishes the same curves ----
E="--task parity --variants rnn,cbrnn --seeds 1 --epochs 40 $QUICK --no-figure --checkpoint-every 3"
# shellcheck disable=SC2086
"$CBRNN" experiment $E --out-dir "$T/e" >/dev/null 2>&1 || fail "run e: exit $?"
# shellcheck disable=SC2086
"$CBRNN" experiment $E --out-dir "$T/f" >/dev/null 2>"$T/f.err" &
pid=$!
i=0  # wait (up to 60 s) until a run has done a few epochs: a condition, not a delay
while [ "$(wc -l <"$T/f/curves/rnn-seed0.csv" 2>/dev/null || echo 0)" -lt 6 ] && [ $i -lt 600 ]; do
  sleep 0.1; i=$((i + 1))
done
kill -TERM $pid
wait $pid; rc=$?
if [ $rc -eq 0 ]; then
  # it finished before the signal arrived (a very fast machine): nothing to resume
  echo "note: run f finished before SIGTERM; the interrupt path was not exercised"
else
  grep -q "interrupted" "$T/f.err" || fail "interrupted run: no message: $(cat "$T/f.err")"
  [ $rc -eq 143 ] || fail "interrupted run: exit $rc, expected 143 (128 + SIGTERM)"
fi
sleep 0.5
pgrep -f "out-dir $T/f" >/dev/null && fail "workers still running after SIGTERM to the command"
# shellcheck disable=SC2086
"$CBRNN" experiment $E --out-dir "$T/f" >/dev/null 2>"$T/f2.err" || fail "resume f: exit $? ($(cat "$T/f2.err"))"
for f in rnn-seed0 cbrnn-seed0; do
  cmp -s "$T/e/curves/$f.csv" "$T/f/curves/$f.csv" || fail "$f: resumed after SIGTERM differs"
done

# ---- multitask and switch: the whole command, deterministic, resumable ----
# g: 5 epochs straight on 2 jobs. h: 3 epochs on 1 job, then extended to 5
# (resumed from the epoch-2 checkpoint): the same curves.
for task in multitask switch; do
  case $task in
    multitask) pc=42052; pr=42222 ;;  # two 2-class heads: 4 outputs
    switch) pc=42242; pr=42018 ;;     # two inputs: bits and cue
  esac
  "$CBRNN" experiment --task $task --seeds 2 --epochs 5 --jobs 2 --checkpoint-every 2 $QUICK \
    --out-dir "$T/g-$task" >"$T/g.out" 2>"$T/g.err" || fail "$task run g: exit $? ($(cat "$T/g.err"))"
  [ -s "$T/g-$task/figure.png" ] || fail "$task: no figure.png ($(cat "$T/g.err"))"
  grep -q "| cbrnn | $pc |" "$T/g.out" || fail "$task: summary lacks '| cbrnn | $pc |': $(cat "$T/g.out")"
  grep -q "| rnn | $pr |" "$T/g-$task/summary.md" || fail "$task: summary.md lacks '| rnn | $pr |'"
  "$PY" - "$T/g-$task" $task $pc $pr <<'EOF2' || fail "$task: curves or summary.json wrong (see above)"
import csv, json, os, sys
d, task, pc, pr = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = json.load(open(os.path.join(d, "summary.json")))
assert s["task"] == task and s["epochs"] == 5, s
params = {"cbrnn": pc, "rnn": pr, "frozen": pc, "interleaved": pc}
assert list(s["variants"]) == list(params), list(s["variants"])
for v, want in params.items():
    assert s["variants"][v]["params"] == want, (v, s["variants"][v]["params"], want)
    for k in (0, 1):
        path = os.path.join(d, "curves", "%s-seed%d.csv" % (v, k))
        rows = list(csv.DictReader(open(path)))
        assert list(rows[0]) == ["epoch", "N", "train_loss", "test_accuracy", "phase"], path
        assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5], path
        assert all(int(r["N"]) >= 2 and 0 <= float(r["test_accuracy"]) <= 1 for r in rows), path
        assert s["variants"][v]["max_N"][k] == max(int(r["N"]) for r in rows), (path, s)
EOF2
  "$CBRNN" experiment --task $task --seeds 2 --epochs 3 --jobs 1 --checkpoint-every 2 $QUICK \
    --no-figure --out-dir "$T/h-$task" >/dev/null 2>"$T/h.err" || fail "$task run h: exit $? ($(cat "$T/h.err"))"
  "$CBRNN" experiment --task $task --seeds 2 --epochs 5 --jobs 1 --checkpoint-every 2 $QUICK \
    --no-figure --out-dir "$T/h-$task" >/dev/null 2>"$T/h.err" || fail "$task resume h: exit $? ($(cat "$T/h.err"))"
  for v in cbrnn rnn frozen interleaved; do
    for s in 0 1; do
      cmp -s "$T/g-$task/curves/$v-seed$s.csv" "$T/h-$task/curves/$v-seed$s.csv" ||
        fail "$task $v-seed$s: resumed on 1 job differs from straight on 2 jobs"
    done
  done
done

# ---- a folder of other settings is refused ----
expect_usage "other settings" --task dms --variants rnn --seeds 1 --epochs 6 --max-n 5 $QUICK \
  --out-dir "$T/d"
expect_usage "other settings" --task parity --variants rnn --seeds 1 --epochs 6 $QUICK --out-dir "$T/d"

if [ $fails -ne 0 ]; then
  echo "test_experiment_cli: $fails failures"
  exit 1
fi
echo "test_experiment_cli: all checks passed"
