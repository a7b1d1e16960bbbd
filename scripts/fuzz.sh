#!/bin/bash
# fuzz.sh [SECONDS] [TARGET...]: builds the libFuzzer targets of tests/fuzz
# (clang, AddressSanitizer + UndefinedBehaviorSanitizer + LeakSanitizer, in
# build-fuzz/ or $CBRNN_FUZZ_BUILD) and runs each for SECONDS (default 60)
# from its committed seeds and regression inputs plus the corpus it grew
# in earlier runs (build-fuzz/fuzz-corpus/TARGET). Targets: model labels
# audio control osc (default: all that were built).
# Fails (exit 1) on any crash, leak, timeout, sanitizer report or broken
# invariant; the input that caused it is left in
# build-fuzz/fuzz-artifacts/TARGET/ with the command that replays it.
# Keep a crasher, once fixed, in tests/fuzz/regressions/TARGET/: the
# ordinary test suite replays that folder (tests/hardening).
# Prints one line per target and a JSON line per target (executions,
# executions per second, corpus size, crashes) for docs/RELIABILITY.md.
set -euo pipefail
usage() { echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...] (targets: model labels audio control osc; see --help)" >&2; exit 2; }
case ${1:-} in
  -h|--help) sed -n '2,/^set -euo pipefail/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
secs=${1:-60}
if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -eq 0 ]; then
  echo "fuzz.sh: SECONDS '$secs' is not a positive whole number" >&2; usage
fi
[ $# -gt 0 ] && shift
for t in "$@"; do
  case $t in
    model|labels|audio|control|osc) ;;
    *) echo "fuzz.sh: unknown target '$t'" >&2; usage ;;
  esac
done
top=$(cd "$(dirname "$0")/.." && pwd)
build=${CBRNN_FUZZ_BUILD:-$top/build-fuzz}
fz=$top/tests/fuzz

# Warnings are not errors here: the gcc and ASan builds hold the tree to
# -Werror; this build only exists to run the fuzzers.
CC=clang cmake -S "$top" -B "$build" -DCBRNN_FUZZ=ON -DCBRNN_SANITIZE=ON \
  -DCBRNN_WERROR=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target fuzz_all -j2 -- --no-print-directory >"$build/fuzz-build.log" 2>&1 ||
  { tail -40 "$build/fuzz-build.log"; echo "fuzz.sh: build failed" >&2; exit 1; }

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for t in model labels audio control osc; do
    [ -x "$build/tests/fuzz/fuzz_$t" ] && targets+=("$t")
  done
fi

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1
export LSAN_OPTIONS=suppressions=$fz/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for t in "${targets[@]}"; do
  bin=$build/tests/fuzz/fuzz_$t
  [ -x "$bin" ] || { echo "fuzz.sh: no target $t ($bin)" >&2; exit 2; }
  corpus=$build/fuzz-corpus/$t art=$build/fuzz-artifacts/$t log=$build/fuzz-logs/$t.log
  mkdir -p "$corpus" "$art" "$(dirname "$log")"
  opts=(-max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$art/"
        -timeout=25 -rss_limit_mb=2048)
  [ -f "$fz/$t.dict" ] && opts+=(-dict="$fz/$t.dict")
  # the shipped model is a 260 kB seed: mutate prefixes of it, not all of it
  [ "$t" = model ] && opts+=(-max_len=16384)
  before=$(find "$art" -type f | wc -l)
  touch "$log.start"
  rc=0
  # New inputs go to the first folder only; seeds and regressions stay as committed.
  "$bin" "${opts[@]}" "$corpus" "$fz/seeds/$t" "$fz/regressions/$t" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  found=$(( $(find "$art" -type f | wc -l) - before ))
  ncorp=$(find "$corpus" -type f | wc -l)
  if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ] || grep -q "ERROR: \(AddressSanitizer\|LeakSanitizer\|UndefinedBehaviorSanitizer\|libFuzzer\)\|runtime error:\|CHECK(.*) failed" "$log"; then
    status=1
    echo "fuzz.sh: $t FAILED (exit $rc); log $log" >&2
    grep -m5 "ERROR:\|runtime error:\|CHECK(\|SUMMARY" "$log" >&2 || true
    for a in $(find "$art" -type f -newer "$log.start"); do
      echo "  input: $a   replay: $bin $a" >&2
    done
  fi
  printf 'fuzz %-7s %4ss  %9s executions  %6s/s  corpus %5s  crashes %s\n' \
    "$t" "$secs" "${execs:-0}" "${rate:-0}" "$ncorp" "$found"
  printf '{"fuzz_target":"%s","seconds":%s,"executions":%s,"exec_per_sec":%s,"corpus":%s,"crashes":%s,"exit":%s}\n' \
    "$t" "$secs" "${execs:-0}" "${rate:-0}" "$ncorp" "$found" "$rc"
done
exit $status
