#!/bin/bash
# cli_events_replay: an events file carries what its replay needs besides
# the events, so `cbrnn run --events` gives the recorded numbers or says
# why it cannot (docs/FORMATS.md "Events file"):
#  - the engine options no event carries (--rule, --rls-prior,
#    --rls-forget, --bptt) are taken from the file: a replay without them
#    gives frames.csv and events.csv byte for byte; given here with
#    another value, a warning;
#  - the model is named by its SHA-256: another model file is refused
#    (exit 2, both files named) unless --events-any-model (a warning);
#  - an events file from before these lines replays as before, with a
#    note that nothing can be checked; a bad header value is refused with
#    FILE:LINE.
# usage: cli_events_replay.sh CBRNN SAMPLES WORKDIR
set -u
CBRNN=$1 SAMPLES=$2 WORK=$3
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"

# replay NAME MODEL [OPTIONS...]: `cbrnn run --events NAME/events.csv`
# into NAME.r with no other option, and its frames.csv and events.csv
# byte for byte those of NAME, with neither a warning nor a note.
replay() {
  local d=$1 m=$2
  shift 2
  "$CBRNN" run --model "$m" --out-dir "$d" --learn "$@" "$IN" >"$d.txt" 2>&1 ||
    fail "run $*: $(cat "$d.txt")"
  "$CBRNN" run --model "$m" --out-dir "$d.r" --events "$d/events.csv" "$IN" >"$d.r.txt" 2>&1 ||
    fail "replay of run $*: $(cat "$d.r.txt")"
  cmp -s "$d/frames.csv" "$d.r/frames.csv" ||
    fail "run $* replayed without $*: frames.csv differs ($(cmp "$d/frames.csv" "$d.r/frames.csv"))"
  cmp -s "$d/events.csv" "$d.r/events.csv" || fail "run $*: the replay's events.csv differs"
  if grep -q "warning\|note" "$d.r.txt"; then fail "replay of run $*: $(cat "$d.r.txt")"; fi
  echo "ok   run --learn $* replays bit for bit without repeating the options"
}

# 1. the rule and its settings, and the BPTT window of a loop model
replay sgd "$MODEL" --rule sgd
replay rls "$MODEL" --rls-prior 5 --rls-forget 0.999
"$CBRNN" train -q -o loop.safetensors --wiring loop "${TINY[@]}" --val-fraction 0 "$IN" \
  >/dev/null || fail "training a loop model"
replay bptt loop.safetensors --bptt 2

# 2. the file names the model by the SHA-256 of its bytes
sum=$(sha256sum "$MODEL" | cut -c1-64)
grep -qx "# model_sha256=$sum" sgd/events.csv || fail "events.csv lacks model_sha256=$sum"
grep -qx "# model=$MODEL" sgd/events.csv || fail "events.csv lacks model=$MODEL"
grep -qx "# rule=sgd" sgd/events.csv || fail "events.csv lacks rule=sgd"

# 3. an option given here wins, with a warning
expect 0 "rule rls here, sgd recorded" "$CBRNN" run --model "$MODEL" --out-dir given \
  --events sgd/events.csv --rule rls "$IN"
grep -q "warning: .*sgd/events.csv" err.txt || fail "no warning naming the events file"
cmp -s sgd/frames.csv given/frames.csv && fail "--rule rls replayed the sgd run: nothing was given"
expect 0 "rls forget 0.949999988 here, 0.999000013 recorded" "$CBRNN" run --model "$MODEL" \
  --out-dir given --events rls/events.csv --rls-forget 0.95 "$IN"

# 4. another model file: refused, and nothing written; or with
#    --events-any-model run, with a warning
set_meta "$MODEL" other.safetensors note "the same weights, other bytes"
expect 2 "other.safetensors is not the model sgd/events.csv was recorded with" \
  "$CBRNN" run --model other.safetensors --out-dir refused --events sgd/events.csv "$IN"
grep -qF "(${MODEL})" err.txt || fail "the refusal does not name the recorded model: $(cat err.txt)"
[ ! -e refused ] || fail "a refused replay wrote refused/"
expect 0 "warning: other.safetensors is not the model" "$CBRNN" run --model other.safetensors \
  --out-dir anyway --events sgd/events.csv --events-any-model "$IN"
[ -s anyway/frames.csv ] || fail "--events-any-model wrote no frames.csv"
expect 2 "--events-any-model applies to --events only" "$CBRNN" run --model "$MODEL" \
  --out-dir x --events-any-model "$IN"

# 5. an events file from before the header lines: replayed as before (the
#    rule given by hand), with a note
grep -v '^#' sgd/events.csv >old.csv
expect 0 "old.csv names no model" "$CBRNN" run --model "$MODEL" --out-dir old \
  --events old.csv --rule sgd "$IN"
grep -q "cannot be checked" err.txt || fail "no note that nothing can be checked: $(cat err.txt)"
cmp -s sgd/frames.csv old/frames.csv || fail "an old events file did not replay"

# 6. a bad header value: FILE:LINE and the key
sed 's/^# rule=sgd$/# rule=fast/' sgd/events.csv >bad.csv
expect 2 "bad.csv:5: rule: 'fast' is not sgd or rls" "$CBRNN" run --model "$MODEL" \
  --out-dir x --events bad.csv "$IN"
sed 's/^# bptt=4$/# bptt=4\n# bptt=4/' sgd/events.csv >twice.csv
expect 2 "bptt given twice" "$CBRNN" run --model "$MODEL" --out-dir x --events twice.csv "$IN"
no_tmp
echo "cli_events_replay: passed"
