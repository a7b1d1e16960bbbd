#!/bin/sh
# paper.sh: reruns the paper's N-parity and N-DMS comparisons (issue 5;
# Voce, Giannakakis & Clopath 2026) with `cbrnn experiment`, then draws the
# figures (docs/figures/paper_<task>.png) and writes the tables that
# docs/PAPER.md shows: our numbers beside the authors', and the epochs each
# variant needed to reach each level N. Resumable: rerunning continues
# unfinished runs and skips finished ones (results in $OUT).
#
# Budget (environment; the authors ran 8 seeds x 1000 epochs, no cap):
#   SEEDS=4 EPOCHS_PARITY=300 EPOCHS_DMS=300 JOBS=<cores> TASKS="parity dms"
#   MAXN_PARITY= MAXN_DMS=        (caps; empty: none)
#   CBRNN=build/cli/cbrnn  OUT=build/paper  DOCS=1 (copy figures into docs/)
# Never edits docs/PAPER.md itself (its prose is written from these tables).
# Usage: [VAR=VALUE...] scripts/paper.sh   (no arguments; -h, --help: this)
set -eu
case ${1:-} in
  -h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
if [ $# -gt 0 ]; then
  echo "paper.sh: takes no arguments, got '$1' (the budget is set by environment" \
    "variables: SEEDS=4 EPOCHS_PARITY=300 ... scripts/paper.sh; see --help)" >&2
  exit 2
fi
top=$(cd "$(dirname "$0")/.." && pwd)
SEEDS=${SEEDS:-4}
EPOCHS_PARITY=${EPOCHS_PARITY:-300}
EPOCHS_DMS=${EPOCHS_DMS:-300}
MAXN_PARITY=${MAXN_PARITY:-}
MAXN_DMS=${MAXN_DMS:-}
JOBS=${JOBS:-$(nproc)}
TASKS=${TASKS:-"parity dms"}
OUT=${OUT:-"$top/build/paper"}
DOCS=${DOCS:-1}
PY=/usr/bin/python3
CBRNN=${CBRNN:-"$top/build/cli/cbrnn"}
if [ ! -x "$CBRNN" ]; then
  "$top/scripts/build.sh" "$top/build"
  CBRNN="$top/build/cli/cbrnn"
fi
mkdir -p "$OUT"
export CBRNN_PLOT_SCRIPT="$top/scripts/plot_experiment.py"

for task in $TASKS; do
  case $task in
    parity) epochs=$EPOCHS_PARITY; cap=$MAXN_PARITY ;;
    dms) epochs=$EPOCHS_DMS; cap=$MAXN_DMS ;;
    *) echo "paper.sh: TASKS: unknown task '$task' (parity, dms)" >&2; exit 2 ;;
  esac
  capopt=""
  [ -n "$cap" ] && capopt="--max-n $cap"
  echo "paper.sh: $task: $SEEDS seeds x $epochs epochs${cap:+, cap N = $cap}, $JOBS jobs" >&2
  start=$(date +%s)
  # shellcheck disable=SC2086
  "$CBRNN" experiment --task "$task" --variants cbrnn,rnn,frozen,interleaved --seeds "$SEEDS" \
    --epochs "$epochs" --jobs "$JOBS" $capopt --no-figure --out-dir "$OUT/$task" >/dev/null
  echo "paper.sh: $task: done in $(( $(date +%s) - start )) s (0 if it was already finished)" >&2
  "$PY" "$top/scripts/plot_experiment.py" "$OUT/$task" --levels "$OUT/$task/levels.md"
  if [ "$DOCS" = 1 ]; then
    mkdir -p "$top/docs/figures"
    cp "$OUT/$task/figure.png" "$top/docs/figures/paper_$task.png"
  fi
done

# Our numbers beside the authors' (issue 5: 8 seeds, 1000 epochs, mean (sd)).
"$PY" - "$OUT" $TASKS >"$OUT/comparison.md" <<'EOF'
import json, math, os, sys
out, tasks = sys.argv[1], sys.argv[2:]
AUTHORS = {  # task -> variant -> (max N mean, sd, epochs to half max mean, sd); None: not given
    "dms": {"cbrnn": (34.75, 0.89, 215.4, 11.3), "rnn": (31.4, 0.52, 455.6, 29.0),
            "frozen": (30.0, None, 275.0, None), "interleaved": (35.6, None, 264.4, None)},
    "parity": {"cbrnn": (18.75, 0.46, 153.1, 15.0), "rnn": (16.75, 0.71, 312.1, 24.0),
               "frozen": (15.1, None, 176.1, None), "interleaved": (16.75, None, 166.3, None)},
}
def ms(v):
    v = [x for x in v if x is not None]
    if not v:
        return "-"
    m = sum(v) / len(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return "%.2f (%.2f)" % (m, sd)
def a(m, sd):
    return "%.2f" % m + (" (%.2f)" % sd if sd is not None else "")
for task in tasks:
    s = json.load(open(os.path.join(out, task, "summary.json")))
    n_seeds = len(next(iter(s["variants"].values()))["max_N"])
    print("### N-%s: %d seeds x %d epochs (authors: 8 seeds x 1000 epochs)\n" % (task, n_seeds, s["epochs"]))
    print("Half max here is N >= %.1f (half of our highest N); the authors' is half of theirs.\n" % s["half_max_N"])
    print("| variant | max N, authors | max N, ours | epochs to half max, authors | epochs to half max, ours | final N, ours |")
    print("|---|---:|---:|---:|---:|---:|")
    for v, e in s["variants"].items():
        am, asd, ah, ahsd = AUTHORS[task][v]
        reached = [x for x in e["epochs_to_half_max"] if x is not None]
        hm = ms(e["epochs_to_half_max"])
        if len(reached) < len(e["epochs_to_half_max"]):
            hm += " (%d/%d seeds)" % (len(reached), len(e["epochs_to_half_max"]))
        print("| %s | %s | %s | %s | %s | %s |" % (v, a(am, asd), ms(e["max_N"]), a(ah, ahsd), hm, ms(e["final_N"])))
    print()
EOF
cat "$OUT/comparison.md"
for task in $TASKS; do
  echo "### N-$task: epochs to reach each level"
  echo
  cat "$OUT/$task/levels.md"
  echo
done
