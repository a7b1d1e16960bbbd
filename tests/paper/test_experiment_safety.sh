#!/bin/sh
# test_experiment_safety.sh: `cbrnn experiment` keeps a results folder and
# the Slurm job scripts safe from what a user can type, with fake sbatch
# and scontrol on PATH that only log their arguments: a newline in --out-dir
# is refused and never reaches a job script; a '%' in it is doubled for
# sbatch's --output, a '\' refused; --sbatch-args with quotes, too long or
# too many words is refused; a merge job that cannot be submitted names the
# array and how to collect or cancel it. Locally: a second run on a folder
# in use is refused at once (a unit beside another unit is not); workers
# die with a killed parent; --plan refuses a folder of other settings; a
# manifest naming one file twice is refused; a failed unit does not stop
# the others; curve rows past the last checkpoint do not count as done.
# (A run that should be refused at once but is not is stopped after 20 s.)
# usage: test_experiment_safety.sh CBRNN_BINARY SAMPLES_DIR
set -u
CBRNN=$1
S=$2
T=$(mktemp -d /tmp/cbrnn_experiment_safety_XXXXXX)
pids=""
cleanup() {
  for p in $pids; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
Q="--task dms --variants rnn,frozen --seeds 1 --epochs 4 --checkpoint-every 2
   --train-steps 6 --test-batches 3 --no-figure"
# A run that lasts until it is stopped (many epochs).
LONG="--task dms --variants rnn,frozen --seeds 1 --epochs 100000 --checkpoint-every 2
   --train-steps 20 --test-batches 2 --no-figure"

# ---- fake Slurm: sbatch logs its arguments, one a line, and answers an id ----
mkdir -p "$T/bin"
cat >"$T/bin/sbatch" <<'EOS'
#!/bin/sh
n=$(($(cat "$FAKE/n" 2>/dev/null || echo 0) + 1)); echo $n >"$FAKE/n"
for a in "$@"; do printf '%s\n' "$a"; done >"$FAKE/sbatch.$n"
if [ "$n" = "${FAKE_FAIL:-0}" ]; then echo "sbatch: error: Batch job submission failed" >&2; exit 1; fi
echo $((100 + n))
EOS
cat >"$T/bin/scontrol" <<'EOS'
#!/bin/sh
echo "JobId=$5 JobState=COMPLETED Reason=None"
EOS
chmod +x "$T/bin/sbatch" "$T/bin/scontrol"
slurm() { # slurm WANT_RC OUT_DIR [more arguments]: runs a --no-wait submission
  want=$1; d=$2; shift 2
  rm -rf "$T/fake"; mkdir -p "$T/fake"
  # shellcheck disable=SC2086
  FAKE="$T/fake" PATH="$T/bin:$PATH" "$CBRNN" experiment $Q --out-dir "$d" --slurm --no-wait "$@" \
    >"$T/out" 2>"$T/err"; rc=$?
  [ $rc -eq "$want" ] || fail "--slurm --out-dir '$d' $*: exit $rc, expected $want ($(cat "$T/err"))"
}

# 1. a newline in the folder's name must not become a line of a job script
NL=$(printf '\nx'); NL=${NL%x}
slurm 2 "$T/inj${NL}touch $T/PWNED #"
grep -q "control character" "$T/err" || fail "newline in --out-dir: $(cat "$T/err")"
grep -rqs "^touch" "$T" && fail "a job script holds the injected line: $(grep -rl '^touch' "$T")"
[ -e "$T/PWNED" ] && fail "the injected command ran"
# other bytes reach the scripts' comment escaped, and the scripts parse
slurm 0 "$T/caf$(printf '\303\251') dir"
for f in units.sh collect.sh; do
  g="$T/caf$(printf '\303\251') dir/slurm/$f"
  sed -n 2p "$g" | grep -q 'caf\\303\\251 dir\.$' || fail "$f: comment not escaped: $(sed -n 2p "$g")"
  sh -n "$g" || fail "$f does not parse"
done

# 2. '%' doubled in --output; '\' refused
slurm 0 "$T/p%x%a"
grep -qx -- "--output=$T/p%%x%%a/slurm/unit-%a.log" "$T/fake/sbatch.1" ||
  fail "--output of the array: $(grep -- --output "$T/fake/sbatch.1")"
grep -qx -- "--output=$T/p%%x%%a/slurm/collect.log" "$T/fake/sbatch.2" ||
  fail "--output of the merge: $(grep -- --output "$T/fake/sbatch.2")"
slurm 2 "$T/back\\slash"
grep -q "has a '\\\\'" "$T/err" || fail "backslash in --out-dir: $(cat "$T/err")"
[ -e "$T/fake/sbatch.1" ] && fail "sbatch ran for a folder with a backslash"

# 7. --sbatch-args: no quotes, nothing cut
slurm 2 "$T/q" --sbatch-args "--comment='a b'"
grep -q "sbatch-args: ' is not understood" "$T/err" || fail "quotes in --sbatch-args: $(cat "$T/err")"
long=$(printf '%05000d' 0)
slurm 2 "$T/q" --sbatch-args "--comment=$long"
grep -q "5010 characters, at most 4095" "$T/err" || fail "long --sbatch-args: $(cat "$T/err")"
many=$(i=0; while [ $i -lt 300 ]; do printf -- '-H '; i=$((i + 1)); done)
slurm 2 "$T/q" --sbatch-args "$many"
grep -q "300 words, at most 240" "$T/err" || fail "many --sbatch-args: $(cat "$T/err")"
slurm 0 "$T/q" --sbatch-args "--time=1:00 --comment=a_b"
grep -qx -- "--comment=a_b" "$T/fake/sbatch.2" || fail "--sbatch-args lost: $(cat "$T/fake/sbatch.2")"

# 8. the merge job cannot be submitted: the array's id and what to do
FAKE_FAIL=2 slurm 1 "$T/m8"
if ! grep -q "job array 101" "$T/err" || ! grep -q "scancel 101" "$T/err" ||
   ! grep -q -- "--collect" "$T/err"; then
  fail "failed merge submission: $(cat "$T/err")"
fi

# 5. --plan refuses a folder of other settings, as --collect does
# shellcheck disable=SC2086
"$CBRNN" experiment $Q --out-dir "$T/m8" --train-steps 7 --plan >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 2 ] || fail "--plan of other settings: exit $rc, expected 2"
if ! grep -q "other settings" "$T/err" || ! grep -q "train_steps: stored 6, asked 7" "$T/err"; then
  fail "--plan of other settings: $(cat "$T/err") $(cat "$T/out")"
fi

# 4. one run at a time on a folder; units of one folder side by side
wait_curve() { # wait_curve FILE: until it exists (10 s at most)
  i=0; while [ ! -s "$1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  [ -s "$1" ] || fail "$1 never appeared"
}
# shellcheck disable=SC2086
"$CBRNN" experiment $LONG --jobs 2 --out-dir "$T/l" >/dev/null 2>&1 &
lp=$!; pids="$pids $lp"
wait_curve "$T/l/curves/rnn-seed0.csv"
for mode in "" "--unit 1" "--collect"; do
  # shellcheck disable=SC2086
  timeout 20 "$CBRNN" experiment $LONG --out-dir "$T/l" $mode >"$T/out" 2>"$T/err"; rc=$?
  [ $rc -eq 2 ] || fail "second run ($mode) on a folder in use: exit $rc, expected 2"
  grep -q "folder in use by another cbrnn experiment (pid $lp)" "$T/err" ||
    fail "second run ($mode): $(cat "$T/err")"
done

# 3. killing the parent kills its workers
workers=$(pgrep -P "$lp")
[ -n "$workers" ] || fail "no workers under $lp"
pids="$pids $workers"
kill -KILL "$lp"
# alive PID: running (a zombie left to an init that does not reap is dead)
alive() { [ -e "/proc/$1/stat" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat"; }
sleep 1
for w in $workers; do
  alive "$w" && fail "worker $w outlived its killed parent"
done
# shellcheck disable=SC2086
"$CBRNN" experiment $LONG --out-dir "$T/l" --unit 0 >/dev/null 2>&1 &
up=$!; pids="$pids $up"
sleep 0.5
# shellcheck disable=SC2086
timeout 20 "$CBRNN" experiment $LONG --out-dir "$T/l" --unit 0 >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -ne 2 ] || ! grep -q "in use by another cbrnn experiment (pid $up)" "$T/err"; then
  fail "the same unit twice: exit $rc ($(cat "$T/err"))"
fi
# shellcheck disable=SC2086
"$CBRNN" experiment $Q --epochs 100000 --out-dir "$T/l2" --unit 0 >/dev/null 2>&1 &
up2=$!; pids="$pids $up2"
sleep 0.5
# shellcheck disable=SC2086
"$CBRNN" experiment $Q --epochs 100000 --out-dir "$T/l2" --unit 1 >"$T/out" 2>"$T/err" &
up3=$!; pids="$pids $up3"
sleep 1.5
kill -0 $up3 2>/dev/null || fail "unit 1 beside unit 0 did not run: $(cat "$T/err")"
kill -TERM "$up" "$up2" "$up3" 2>/dev/null
wait "$up" "$up2" "$up3" 2>/dev/null

# 6. a manifest naming one file twice (another name for it) is refused
mkdir -p "$T/man/clips"
cp "$S/voiceA_us_male_1.wav" "$S/voiceA_us_male_2.wav" "$S/voiceA_us_male_3.wav" "$T/man/clips/"
ln -s voiceA_us_male_1.wav "$T/man/clips/again.wav"
{
  printf 'path\tgroup\tsplit\n'
  printf 'clips/voiceA_us_male_1.wav\tg\ttrain\n'
  printf 'clips/voiceA_us_male_2.wav\tg\ttrain\n\n'
  printf 'clips/voiceA_us_male_3.wav\tg\tvalid\n'
  printf 'clips/again.wav\tg\ttest\n'
} >"$T/man/m.tsv"
"$CBRNN" experiment --task speech --manifest "$T/man/m.tsv" --variants persistence --steps 2 \
  --seeds 1 --no-figure --out-dir "$T/man/out" >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 2 ] || fail "manifest with a file twice: exit $rc, expected 2"
grep -q "m.tsv:2 and line 6 name the same file" "$T/err" || fail "manifest with a file twice: $(cat "$T/err")"

# 9. a failed unit does not keep the others from running; they are named
# (the folder made by a first run of frozen alone, whose curve is then
# damaged: a folder without settings.txt would be refused)
# shellcheck disable=SC2086
"$CBRNN" experiment $Q --variants frozen --epochs 1 --out-dir "$T/f" >/dev/null 2>&1 ||
  fail "first run of f: exit $?"
echo garbage >"$T/f/curves/frozen-seed0.csv"
# shellcheck disable=SC2086
"$CBRNN" experiment $Q --seeds 2 --jobs 1 --out-dir "$T/f" >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 1 ] || fail "a run with a failing unit: exit $rc, expected 1"
grep -q "unit 1 (frozen-seed0): failed: .*not a curve file" "$T/err" || fail "failed unit not named: $(cat "$T/err")"
# shellcheck disable=SC2086
"$CBRNN" experiment $Q --seeds 2 --out-dir "$T/f" --plan >"$T/plan" 2>&1
[ "$(grep -c '	done	4/4' "$T/plan")" -eq 3 ] || fail "the other units did not all run: $(cat "$T/plan")"

# 9. curve rows past the last checkpoint are not taken for done
# shellcheck disable=SC2086
"$CBRNN" experiment $Q --epochs 2 --out-dir "$T/g" --unit 0 >/dev/null 2>&1 || fail "--unit 0 (2 epochs): exit $?"
c="$T/g/curves/rnn-seed0.csv"
last=$(tail -1 "$c")
{ echo "$last" | sed 's/^2,/3,/'; echo "$last" | sed 's/^2,/4,/'; } >>"$c"
# shellcheck disable=SC2086
"$CBRNN" experiment $Q --out-dir "$T/g" --plan >"$T/plan" 2>&1
grep -q "^0	rnn-seed0	partial	2/4	.*past its last checkpoint" "$T/plan" || fail "forged rows counted: $(cat "$T/plan")"
# shellcheck disable=SC2086
"$CBRNN" experiment $Q --out-dir "$T/g" --unit 0 >/dev/null 2>"$T/err" || fail "--unit 0 after forged rows: exit $? ($(cat "$T/err"))"
cmp -s "$c" "$T/f/curves/rnn-seed0.csv" || fail "forged rows not redone: $(cat "$c")"

if [ $fails -ne 0 ]; then
  echo "$fails failure(s)"
  exit 1
fi
echo "all experiment safety checks passed"
