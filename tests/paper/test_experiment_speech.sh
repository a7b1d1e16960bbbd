#!/bin/sh
# test_experiment_speech.sh: `cbrnn experiment --task speech` end to end on
# real clips of samples/: every variant writes a curve, a model that cbrnn
# eval reads back with the same validation loss, and the summary; runs are
# deterministic apart from wall-clock; finished runs are skipped; bad input
# exits 2 with a message naming the problem. The baselines (persistence,
# linear) and the test split of a manifest, per language group, are checked
# against cbrnn eval's independent computation (its persistence loss and
# its --linear-fit) on the same files. Tiny models keep it quick.
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
expect_usage "no --corpus" --manifest "$T/m.tsv" --corpus "$S" --out-dir "$T/x"
printf 'path\tsplit\n' >"$T/bad.tsv"
expect_usage "path, group and split" --manifest "$T/bad.tsv" --out-dir "$T/x"
expect_usage "validation and a test" --corpus "$S/voiceA_us_male_1.wav" \
  --val-files "$S/voiceA_us_male_2.wav" --test-files "$S/voiceA_us_male_2.wav" --out-dir "$T/x"
# one file however it is named: held out, never also trained on (before,
# a path spelt otherwise was trained on and scored too)
S2="$S/../$(basename "$S")"
expect_usage "validation and a test" --corpus "$S/voiceA_us_male_1.wav" \
  --val-files "$S/voiceA_us_male_2.wav" --test-files "$S2/voiceA_us_male_2.wav" --out-dir "$T/x"
expect_usage "at least one training and one validation" --corpus "$S/voiceA_us_male_1.wav" \
  --val-files "$S2/voiceA_us_male_1.wav" --out-dir "$T/x"
# a corpus of digital silence: refused as cbrnn train refuses it (before:
# trained, validation loss 1e8)
sox -n -r 16000 -c 1 "$T/sil.wav" trim 0 2 && cp "$T/sil.wav" "$T/sil2.wav"
expect_usage "nothing to learn from" --corpus "$T/sil.wav" --corpus "$T/sil2.wav" \
  --val-files "$S/voiceA_us_male_2.wav" --out-dir "$T/sil"
[ -e "$T/sil" ] && fail "a refused silent corpus wrote $T/sil"
# a silent validation file: skill undefined (persistence loss 0), null in
# summary.json, one entry per seed (jansson dropped NaN: the arrays came
# out short and misaligned with the seeds)
"$CBRNN" experiment --task speech --corpus "$S/voiceA_us_male_1.wav" --corpus "$S/voiceB_gb_female_1.wav" \
  --val-files "$T/sil.wav" --variants cbrnn --steps 2 --warmup-steps 1 --eval-every 1 --hidden 8 \
  --cb 8 --batch 2 --seq-len 20 --seeds 1 --no-figure --out-dir "$T/nul" >/dev/null 2>"$T/nul.err" ||
  fail "silent validation file: exit $? ($(cat "$T/nul.err"))"
"$PY" - "$T/nul/summary.json" <<'EOF2' || fail "silent validation file: summary.json (above)"
import json, sys
v = json.load(open(sys.argv[1]))["variants"]["cbrnn"]
bad = {k: x for k, x in v.items() if isinstance(x, list) and len(x) != 1}
assert not bad, "arrays not one per seed: %s" % bad
assert v["final_skill"] == [None], v
EOF2
# --val-files or --test-files that name no audio: refused, not the default split
: >"$T/empty.lst"
expect_usage "val-files: no audio files" --corpus "$S/voiceA_us_male_1.wav" \
  --corpus "$S/voiceB_gb_female_1.wav" --val-files "@$T/empty.lst" --out-dir "$T/x"
expect_usage "test-files: no audio files" --corpus "$S/voiceA_us_male_1.wav" \
  --val-files "$S/voiceB_gb_female_1.wav" --test-files "@$T/empty.lst" --out-dir "$T/x"

# shellcheck disable=SC2086
"$CBRNN" experiment --task speech $SMALL --jobs 2 --out-dir "$T/a" >"$T/a.out" 2>"$T/a.err" ||
  fail "run a: exit $? ($(cat "$T/a.err"))"
for v in cbrnn cbrnn-full rnn reservoir cbrnn-res persistence linear; do
  f="$T/a/curves/$v-seed0.csv"
  # rows at steps 0, 3, 6; cbrnn(-res) also at the end of its warm-up (step 2)
  want=4; case $v in cbrnn|cbrnn-res) want=5;; esac
  [ "$(wc -l <"$f" 2>/dev/null)" = $want ] || fail "$f: $(wc -l <"$f") lines, expected $want"
  case $v in
    persistence|linear) [ ! -e "$T/a/models/$v-seed0.safetensors" ] || fail "a model file for $v";;
    *) [ -s "$T/a/models/$v-seed0.safetensors" ] || fail "no model for $v";;
  esac
done
grep -q "^2,warmup," "$T/a/curves/cbrnn-seed0.csv" || fail "cbrnn: no row at the end of the warm-up"
grep -q "^6,frozen," "$T/a/curves/cbrnn-seed0.csv" || fail "cbrnn: the last row is not in the frozen phase"
"$PY" - "$T/a" <<'EOF' || fail "summary.json (see above)"
import json, os, sys
s = json.load(open(os.path.join(sys.argv[1], "summary.json")))
assert s["task"] == "speech" and s["steps"] == 6 and s["train_files"] == 2 and s["val_files"] == 1, s
v = s["variants"]
assert list(v) == ["cbrnn", "cbrnn-full", "rnn", "reservoir", "cbrnn-res", "persistence",
                   "linear"], list(v)
assert v["cbrnn"]["params"] == v["cbrnn-full"]["params"] == v["reservoir"]["params"]
assert v["cbrnn-res"]["params"] == v["cbrnn"]["params"]
# baselines: persistence has nothing fitted, linear 8 frames of 40 bands and a bias per output
assert v["persistence"]["params"] == 0 and v["persistence"]["kind"] == "baseline", v
assert v["linear"]["params"] == (8 * 40 + 1) * 40 and v["linear"]["kind"] == "baseline", v
assert v["persistence"]["final_skill"] == [0.0], v["persistence"]
assert s["test_files"] == 0 and "test" not in v["rnn"], s
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
# The same for the residual model with its running normaliser (computed
# once by the experiment, per frame by cbrnn eval), and flat baseline curves.
"$CBRNN" eval --json "$T/a/models/cbrnn-res-seed0.safetensors" "$S/voiceA_us_male_2.wav" \
  >"$T/evalr.json" 2>"$T/eval.err" || fail "cbrnn eval of cbrnn-res: $(cat "$T/eval.err")"
"$PY" - "$T/evalr.json" "$T/a/curves/cbrnn-res-seed0.csv" "$T/a/curves/persistence-seed0.csv" \
  "$T/a/curves/linear-seed0.csv" <<'EOF' || fail "cbrnn-res or the baselines' curves (see above)"
import csv, json, sys
e = json.load(open(sys.argv[1]))["overall"]
last = list(csv.DictReader(open(sys.argv[2])))[-1]
assert abs(e["loss"] - float(last["val_loss"])) <= 1e-6 * e["loss"], (e, last)
for path in sys.argv[3:]:
    rows = list(csv.DictReader(open(path)))
    assert len({r["val_loss"] for r in rows}) == 1, (path, rows)
    assert [r["step"] for r in rows] == ["0", "3", "6"], (path, rows)
p = list(csv.DictReader(open(sys.argv[3])))[-1]
assert p["val_loss"] == p["val_persistence_loss"] and float(p["val_skill"]) == 0, p
# persistence on the validation file is cbrnn eval's persistence loss there
assert abs(float(p["val_loss"]) - e["persistence_loss"]) <= 1e-6 * e["persistence_loss"], (p, e)
EOF

# A manifest (columns as scripts/corpus.sh's splits.tsv, paths relative to
# its folder): train on two files, validate on one, test on two in two
# language groups. Numbers checked against cbrnn eval on the same files.
mkdir -p "$T/m/clips"
for f in voiceA_us_male_1 voiceA_us_male_2 voiceA_us_male_3 voiceB_gb_female_1 voiceB_gb_female_2; do
  cp "$S/$f.wav" "$T/m/clips/"
done
{
  printf 'path\tpackage\tlanguage\tgroup\tspeaker\tseconds\trate\tchannels\tsha1\tsplit\n'
  printf 'clips/voiceA_us_male_1.wav\ts\ten\tgermanic\tA\t2\t16000\t1\t0\ttrain\n'
  printf 'clips/voiceA_us_male_2.wav\ts\ten\tgermanic\tA\t2\t16000\t1\t0\ttrain\n'
  printf 'clips/voiceA_us_male_3.wav\ts\ten\tgermanic\tA\t2\t16000\t1\t0\tvalid\n'
  printf 'clips/voiceB_gb_female_1.wav\ts\ten\tgermanic\tB\t2\t16000\t1\t0\ttest\n'
  printf 'clips/voiceB_gb_female_2.wav\ts\tfr\tromance\tB\t2\t16000\t1\t0\ttest\n'
} >"$T/m/splits.tsv"
MOPTS="--variants rnn,persistence,linear --steps 4 --eval-every 2 --hidden 12 --cb 16 --batch 2
  --seq-len 20 --seeds 1 --no-figure --out-dir $T/m/out"
# shellcheck disable=SC2086
"$CBRNN" experiment --task speech --manifest "$T/m/splits.tsv" $MOPTS >/dev/null 2>"$T/m.err" ||
  fail "manifest run: exit $? ($(cat "$T/m.err"))"
M="$T/m/clips"
# rnn's model carries the experiment's normaliser (training files only), so
# cbrnn eval scores in the same space; --linear-fit fits on the training files.
for g in germanic:voiceB_gb_female_1 romance:voiceB_gb_female_2 pooled:; do
  name=${g%%:*}; file=${g#*:}
  if [ -n "$file" ]; then files="$M/$file.wav"; else files="$M/voiceB_gb_female_1.wav $M/voiceB_gb_female_2.wav"; fi
  # shellcheck disable=SC2086
  "$CBRNN" eval --json "$T/m/out/models/rnn-seed0.safetensors" $files \
    --linear-fit "$M/voiceA_us_male_1.wav" --linear-fit "$M/voiceA_us_male_2.wav" \
    >"$T/m/eval-$name.json" 2>"$T/eval.err" || fail "cbrnn eval $name: $(cat "$T/eval.err")"
done
"$PY" - "$T/m" <<'EOF' || fail "manifest run: the test split disagrees with cbrnn eval (see above)"
import json, os, sys
d = sys.argv[1]
s = json.load(open(os.path.join(d, "out", "summary.json")))
assert s["train_files"] == 2 and s["val_files"] == 1 and s["test_files"] == 2, s
v = s["variants"]
assert list(v) == ["rnn", "persistence", "linear"], list(v)
assert list(v["rnn"]["test"]) == ["germanic", "romance", "pooled"], v["rnn"]["test"]
close = lambda a, b: abs(a - b) <= 1e-5 * max(abs(a), abs(b), 1e-3)
for g in ("germanic", "romance", "pooled"):
    e = json.load(open(os.path.join(d, "eval-%s.json" % g)))["overall"]
    rnn, per, lin = (v[n]["test"][g] for n in ("rnn", "persistence", "linear"))
    assert close(rnn["loss"][0], e["loss"]) and close(rnn["skill"][0], e["skill"]), (g, rnn, e)
    assert close(per["loss"][0], e["persistence_loss"]) and per["skill"] == [0.0], (g, per, e)
    assert close(lin["persistence_loss"][0], e["persistence_loss"]), (g, lin, e)
    assert close(lin["loss"][0], e["linear_loss"]), (g, lin, e)
    assert close(lin["skill"][0], e["linear_skill"]), (g, lin, e)
    assert (rnn["files"], per["files"]) == ((2, 2) if g == "pooled" else (1, 1)), (g, rnn)
md = open(os.path.join(d, "out", "summary.md")).read()
assert "## Test split" in md and "| linear | romance | 1 |" in md, md
EOF
# the settings name the test split: another split is refused
sed 's/female_2.wav\(.*\)test$/female_2.wav\1train/' "$T/m/splits.tsv" >"$T/m/other.tsv"
# shellcheck disable=SC2086
expect_usage "other settings" --manifest "$T/m/other.tsv" $MOPTS
# a unit whose test result is missing is not done: it runs again
rm "$T/m/out/test/linear-seed0.csv"
# shellcheck disable=SC2086
"$CBRNN" experiment --task speech --manifest "$T/m/splits.tsv" $MOPTS --plan >"$T/m/plan" 2>&1 ||
  fail "--plan: exit $?"
grep -q "linear-seed0	partial" "$T/m/plan" || fail "no test result, yet not partial: $(cat "$T/m/plan")"
# shellcheck disable=SC2086
"$CBRNN" experiment --task speech --manifest "$T/m/splits.tsv" $MOPTS >/dev/null 2>&1 ||
  fail "rerun: exit $?"
[ -s "$T/m/out/test/linear-seed0.csv" ] || fail "the rerun did not score the test split"

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
