#!/bin/bash
# period_faults.sh: what the period does to the process thread and to the
# terminal.
# (1) No page fault in the process thread when the period grows (256 ->
#     4096): the period copies of the inputs are static and were never
#     touched before their first long period (4 faults before the fix).
#     Counted from /proc (minflt of the busiest thread: JACK's process
#     thread), across the change.
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

echo "period_faults: passed"
