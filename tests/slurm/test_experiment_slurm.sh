#!/bin/sh
# test_experiment_slurm.sh: `cbrnn experiment --slurm` on a real, throwaway
# single-node Slurm cluster (slurmlib.sh): a small comparison submitted as a
# job array plus a merge job gives curves, summary.json and summary.md
# identical byte for byte to the same comparison run locally; a unit made
# to fail (its curve file is not a curve) makes the command exit 1 naming
# that unit, and its merge job is cancelled, not left pending; --no-wait
# returns at once with the job ids and the results appear when the merge
# job ends; the speech comparison runs there too (same curves as a local
# run, wall-clock aside). Stops only the daemons it started.
# usage: test_experiment_slurm.sh CBRNN_BINARY SAMPLES_DIR
set -u
# slurmctld and slurmd listen on every interface (Slurm 22.05 has no bind
# address): the whole test runs in a network namespace of its own, so the
# throwaway cluster is never reachable from the network. Slurm resolves
# its listening address with AI_ADDRCONFIG, which wants a configured
# non-loopback address: a veth pair with both ends inside the namespace
# gives one that leads nowhere. Where namespaces are not permitted the
# test runs as before, and says so.
netns_up='ip link set lo up && ip link add cbrnn0 type veth peer name cbrnn1 &&
  ip addr add 10.254.254.1/32 dev cbrnn0 && ip link set cbrnn0 up && ip link set cbrnn1 up'
if [ -z "${CBRNN_SLURM_NETNS:-}" ]; then
  if unshare --net -- sh -c "$netns_up" 2>/dev/null; then
    # shellcheck disable=SC2016 # $0 and $@ are the inner sh's
    CBRNN_SLURM_NETNS=1 exec unshare --net -- sh -c "$netns_up"' && exec sh "$0" "$@"' "$0" "$@"
  fi
  echo "note: no private network namespace here (unshare --net): the test cluster listens on every interface while it runs"
fi
CBRNN=$1
S=$2
here=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/cbrnn_slurm_XXXXXX)
. "$here/slurmlib.sh"
trap 'slurm_stop; rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

slurm_start "$T/cluster" || { echo "FAIL: could not start the test cluster"; exit 1; }

Q="--task parity --variants cbrnn,rnn --seeds 2 --epochs 3 --train-steps 6 --test-batches 3 --no-figure"
# shellcheck disable=SC2086
"$CBRNN" experiment $Q --out-dir "$T/local" >"$T/local.out" 2>"$T/local.err" ||
  fail "local run: exit $? ($(cat "$T/local.err"))"

# ---- the same comparison on the cluster: the same bytes ----
# shellcheck disable=SC2086
"$CBRNN" experiment $Q --out-dir "$T/sl" --slurm --array-limit 2 --sbatch-args "--time=5 --mem=0" \
  >"$T/sl.out" 2>"$T/sl.err" || fail "--slurm: exit $? ($(cat "$T/sl.err"))"
grep -q "job array [0-9]" "$T/sl.out" || fail "--slurm does not print the array's job id: $(cat "$T/sl.out")"
grep -q "merge as job [0-9]" "$T/sl.out" || fail "--slurm does not print the merge job id"
grep -q "| rnn | 41816 |" "$T/sl.out" || fail "--slurm does not report the summary: $(cat "$T/sl.out")"
for f in summary.json summary.md curves/cbrnn-seed0.csv curves/rnn-seed0.csv \
         curves/cbrnn-seed1.csv curves/rnn-seed1.csv; do
  cmp -s "$T/local/$f" "$T/sl/$f" || fail "$f: the Slurm run differs from the local run"
done
for k in 0 1 2 3; do
  [ -f "$T/sl/slurm/unit-$k.log" ] || fail "no log of array task $k in the out-dir"
done
[ -f "$T/sl/slurm/collect.log" ] || fail "no log of the merge job in the out-dir"
grep -q "array=0-3%2" "$T/cluster/slurmctld.log" 2>/dev/null ||
  scontrol show job "$(sed -n 's/.*job array \([0-9]*\).*/\1/p' "$T/sl.out")" 2>/dev/null |
  grep -q "ArrayTaskThrottle=2" || fail "--array-limit 2 did not reach sbatch (%2)"

# ---- a unit that fails: named, exit 1, the merge job cancelled ----
# (a results folder of these settings: one without settings.txt is refused)
mkdir -p "$T/bad/curves"
cp "$T/local/settings.txt" "$T/bad/settings.txt"
echo "not a curve" >"$T/bad/curves/rnn-seed0.csv"
# shellcheck disable=SC2086
"$CBRNN" experiment $Q --out-dir "$T/bad" --slurm >"$T/bad.out" 2>"$T/bad.err"; rc=$?
[ $rc -eq 1 ] || fail "--slurm with a failing unit: exit $rc, expected 1"
grep -q "unit 1 (rnn-seed0): failed: .*not a curve file" "$T/bad.err" ||
  fail "the failed unit is not named with its reason: $(cat "$T/bad.err")"
grep -q "unit-1.log" "$T/bad.err" || fail "the failed unit's log is not pointed to"
grep -q "CANCELLED" "$T/bad.err" || fail "the merge job is not reported cancelled: $(cat "$T/bad.err")"
merge=$(sed -n 's/.*merge as job \([0-9]*\).*/\1/p' "$T/bad.out")
scontrol show job "$merge" 2>/dev/null | grep -q "JobState=CANCELLED" ||
  fail "merge job $merge is not CANCELLED: $(scontrol show job "$merge" 2>&1 | grep -o 'JobState=[A-Z_]*')"
[ -f "$T/bad/summary.json" ] && fail "a summary was written although a unit failed"
# the other units finished; --collect names the failed one and refuses
# shellcheck disable=SC2086
"$CBRNN" experiment $Q --out-dir "$T/bad" --collect >/dev/null 2>"$T/coll.err"; rc=$?
[ $rc -eq 1 ] || fail "--collect with a failed unit: exit $rc, expected 1"
grep -q "rnn-seed0" "$T/coll.err" || fail "--collect does not name the failed unit"

# ---- --no-wait: returns with the ids; the merge job writes the results ----
SP="--task speech --corpus $S/voiceA_us_male_1.wav --corpus $S/voiceB_gb_female_1.wav
  --val-files $S/voiceA_us_male_2.wav --steps 6 --warmup-steps 2 --eval-every 3 --hidden 12 --cb 16
  --batch 2 --seq-len 20 --seeds 1 --variants cbrnn,rnn --no-figure"
# shellcheck disable=SC2086
"$CBRNN" experiment $SP --out-dir "$T/sp" --slurm --no-wait >"$T/sp.out" 2>"$T/sp.err" ||
  fail "speech --slurm --no-wait: exit $? ($(cat "$T/sp.err"))"
merge=$(sed -n 's/.*merge as job \([0-9]*\).*/\1/p' "$T/sp.out")
[ -n "$merge" ] || fail "speech --no-wait: no merge job id: $(cat "$T/sp.out")"
# shellcheck disable=SC2086
"$CBRNN" experiment $SP --out-dir "$T/spl" >/dev/null 2>"$T/spl.err" || fail "speech local: exit $?"
i=0  # a condition, not a delay: the merge job's state, up to 40 s
while [ $i -lt 400 ]; do
  st=$(scontrol show job "$merge" 2>/dev/null | grep -o 'JobState=[A-Z_]*')
  case $st in *COMPLETED|*FAILED|*CANCELLED|*TIMEOUT) break ;; esac
  sleep 0.1; i=$((i + 1))
done
[ "$st" = JobState=COMPLETED ] || fail "speech merge job: $st ($(cat "$T/sp/slurm/"*.log 2>/dev/null))"
for v in cbrnn rnn; do
  cut -d, -f1-6 "$T/sp/curves/$v-seed0.csv" >"$T/a.$v"
  cut -d, -f1-6 "$T/spl/curves/$v-seed0.csv" >"$T/b.$v"
  cmp -s "$T/a.$v" "$T/b.$v" || fail "speech $v: Slurm and local curves differ"
done
[ -f "$T/sp/summary.json" ] || fail "speech: the merge job wrote no summary.json"

if [ $fails -ne 0 ]; then
  echo "test_experiment_slurm: $fails failures"
  exit 1
fi
echo "test_experiment_slurm: all checks passed"
