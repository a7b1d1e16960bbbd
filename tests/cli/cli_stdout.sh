#!/bin/bash
# cli_stdout.sh CBRNN SAMPLES WORKDIR: a failed write to standard output is
# an error of every command (main's cli_finish_stdout): with stdout on
# /dev/full (a redirect: it writes nothing to the device) each command
# exits 1 and says "writing output: No space left on device". And `cbrnn
# bench` parses its numbers as strictly as the other commands.
set -u
CBRNN=$1 SAMPLES=$2 WORK=$3
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

# full CMD...: CMD with stdout on /dev/full exits 1 with the message.
full() {
  local rc
  "$@" >/dev/full 2>err.txt; rc=$?
  [ "$rc" -eq 1 ] || fail "$* >/dev/full: exit $rc, expected 1 ($(cat err.txt))"
  grep -q "writing output: No space left on device" err.txt ||
    fail "$* >/dev/full: no message: $(cat err.txt)"
  echo "ok   $* >/dev/full: $(tail -n1 err.txt)"
}

"$CBRNN" run --quiet --model "$MODEL" --out-dir r "$IN" 2>err.txt || fail "run: $(cat err.txt)"
full "$CBRNN" summary r/frames.csv
full "$CBRNN" features "$IN" -o f.npy
full "$CBRNN" run --model "$MODEL" --out-dir r2 "$IN"
full "$CBRNN" eval "$MODEL" "$IN"
full "$CBRNN" eval --json "$MODEL" "$IN"
full "$CBRNN" info "$MODEL"
full "$CBRNN" train "${TINY[@]}" -o m.safetensors "$IN"
full "$CBRNN" bench --items gemm --seconds 0.01 --repeats 1
full "$CBRNN" --help
full "$CBRNN" features --help

for bad in "--seconds inf" "--seconds nan" "--seconds 1x" "--repeats 1x" "--rate 48000abc" \
           "--batch 0" "--seq 12q"; do
  # shellcheck disable=SC2086 # bad is an option and its value
  expect 2 "'${bad#* }'" "$CBRNN" bench --items gemm $bad
done
echo "cli_stdout: ok"
