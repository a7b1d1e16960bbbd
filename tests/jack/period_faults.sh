#!/bin/bash
# period_faults.sh: what the period does to the process thread and to the
# terminal.
# (1) No page fault in the process thread when the period grows (256 ->
#     4096): the period copies of the inputs are static and were never
#     touched before their first long period (4 faults before the fix).
#     Counted from /proc (minflt of the busiest thread: JACK's process
#     thread), across the change.
# (2) Steady xruns (the client stopped for 40 ms every 0.25 s, 20 s long):
#     "N xruns so far" comes at growing intervals (0, 5, 15 s: 3 lines at
#     most), not every 5 s (5 lines before).
# (3) A 16-sample period with learning on: one warning at start that the
#     period is too short for learning; none at 1024, none without
#     learning.
. "$(dirname "$0")/jacklib.sh"
pick_model

# minflt_of PID TID: minor page faults of thread TID so far.
minflt_of() { awk '{print $10}' "/proc/$1/task/$2/stat"; }
# busiest_thread PID: the thread (not the main one) with the most CPU time.
busiest_thread() {
  for t in /proc/"$1"/task/*; do
    tid=${t##*/}
    [ "$tid" = "$1" ] && continue
    echo "$(awk '{print $14 + $15}' "$t/stat") $tid"
  done | sort -n | tail -1 | cut -d' ' -f2
}

if [ "${CBRNN_SANITIZED:-0}" = 1 ]; then
  note "1: skipped in a sanitizer build (ASan maps its shadow memory lazily: faults mean nothing)"
else
  note "1: page faults in the process thread when the period grows"
  start_jackd 256
  "$JACKHOST" --name cbt --model "$MODEL" --learn >h1.out 2>h1.err &
  HOST=$!
  STARTED="$STARTED $HOST"
  wait_port cbt:input
  sleep 2
  TID=$(busiest_thread "$HOST")
  f0=$(minflt_of "$HOST" "$TID")
  jack_bufsize 4096 >/dev/null || fail "jack_bufsize 4096"
  sleep 2
  f1=$(minflt_of "$HOST" "$TID")
  grep -q "buffer size now 4096" h1.err || { cat h1.err; fail "the change to 4096 was not noticed"; }
  note "process thread $TID: $f0 -> $f1 minor faults across the change to 4096"
  [ "$f1" -eq "$f0" ] || fail "the process thread took $((f1 - f0)) page faults when the period grew"
  kill -TERM "$HOST"; wait "$HOST" || fail "exit status"
  kill -TERM "$JACKD"; wait "$JACKD" 2>/dev/null
fi

note "2: steady xruns"
start_jackd 256
"$JACKHOST" --name cbt --model "$MODEL" >h2.out 2>h2.err &
HOST=$!
STARTED="$STARTED $HOST"
wait_port cbt:input
for _ in $(seq 80); do
  kill -STOP "$HOST"; sleep 0.04; kill -CONT "$HOST"; sleep 0.21
done
kill -TERM "$HOST"; wait "$HOST" || fail "exit status"
cat h2.err
n=$(grep -c "xruns\? so far" h2.err)
total=$(sed -n 's/.* \([0-9]*\) xruns, .*/\1/p' h2.err)
note "$n notes for $total xruns"
[ "${total:-0}" -ge 20 ] || fail "expected steady xruns, got ${total:-none}"
[ "$n" -ge 1 ] && [ "$n" -le 3 ] || fail "expected 1..3 xrun notes in 20 s, got $n"
kill -TERM "$JACKD"; wait "$JACKD" 2>/dev/null

note "3: a period too short for learning"
# warned PERIOD ARGS...: how many period warnings cbrnn-jack prints at start.
warned() {
  local p=$1
  shift
  start_jackd "$p"
  "$JACKHOST" --name cbt --model "$MODEL" "$@" >h3.out 2>h3.err &
  local pid=$!
  STARTED="$STARTED $pid"
  wait_port cbt:input
  sleep 0.3
  kill -TERM "$pid"; wait "$pid"
  kill -TERM "$JACKD"; wait "$JACKD" 2>/dev/null
  grep "too short for learning" h3.err >&2
  grep -c "too short for learning" h3.err
}
[ "$(warned 16 --learn)" -eq 1 ] || fail "no warning (once) at a 16-sample period with learning"
[ "$(warned 16 --no-learn)" -eq 0 ] || fail "a warning at 16 samples without learning"
# (a sanitizer build's frame can take a quarter of 1024 samples: not checked there)
[ "${CBRNN_SANITIZED:-0}" = 1 ] || [ "$(warned 1024 --learn)" -eq 0 ] ||
  fail "a warning at a 1024-sample period"
echo "period_faults: passed"
