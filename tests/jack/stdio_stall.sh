#!/bin/bash
# stdio_stall.sh: a stalled stderr or stdout (`cbrnn-jack ... 2>&1 | tee
# log` with tee stopped, a frozen ssh terminal) must not cost the adapted
# model. Messages and --report lines go through writer threads of their
# own (host_output.h): the control thread only queues them, so it still
# takes SIGTERM, saves, and gives up on the stalled stream after its time
# limit (exit 1: that output is incomplete).
# (1) stderr is a FIFO whose reader is stopped and whose pipe is full
#     before cbrnn-jack starts (its first message would block): --learn
#     --save, audio for 3 s, SIGTERM: exits within the limit, status 1,
#     the adapted model saved.
# (2) stdout the same with --report 0.1 and a 4 KiB message queue: report
#     lines are lost while the reader is stopped; once it reads again the
#     loss is said on stderr with its count; stopped and full again,
#     SIGTERM: exits within the limit, status 1, saved, stdout's stall said.
# Before the fix the control thread blocked in its first write (the
# start-up message in 1, the first report in 2) and never took SIGTERM.
. "$(dirname "$0")/jacklib.sh"
pick_model

# play SECONDS: voice B into cbt:input (in the background).
play() {
  "$JACKPLAY" --name player --connect cbt:input --duration "$1" \
    "$SAMPLES/voiceB_gb_female_3.wav" >/dev/null 2>&1 &
  STARTED="$STARTED $!"
}

# saved_adapted FILE: FILE loads and holds weights other than the loaded ones.
saved_adapted() {
  "$CBRNN" info "$1" >/dev/null || fail "$1 does not load"
  same_weights "$MODEL" "$1" && fail "$1 holds the loaded weights"
  return 0
}

# drained OUT: waits for the reader (READER) to end, then drops the filler.
drained() {
  for _ in $(seq 50); do kill -0 "$READER" 2>/dev/null || break; sleep 0.1; done
  grep -v '^pipe-filler-xyz$' "$1"
}

note "1: stderr stalled from the start"
start_jackd 256
stall_fifo err.fifo err.raw
"$JACKHOST" --name cbt --model "$MODEL" --learn --save e.safetensors >host.out 2>err.fifo &
HOST=$!
STARTED="$STARTED $HOST"
wait_port cbt:input
play 4
sleep 3
term_stalled "$HOST" "$READER" "its stderr stalled" /dev/null
drained err.raw
[ "$RC" -eq 1 ] || fail "expected exit 1 (stderr not finished), got $RC"
saved_adapted e.safetensors
kill -TERM "$JACKD"; wait "$JACKD" 2>/dev/null

note "2: stdout stalled with --report"
start_jackd 256
stall_fifo out.fifo out.raw
CBRNN_JACK_MSG_BUFFER=4096 "$JACKHOST" --name cbt --model "$MODEL" --learn --save o.safetensors \
  --report 0.1 >out.fifo 2>host.err &
HOST=$!
STARTED="$STARTED $HOST"
wait_port cbt:input
play 12
# ~100 bytes a line, 10 lines a second: the 4 KiB queue is full in ~4 s
sleep 7
grep -q "report lines\? lost" host.err && fail "a loss said before stdout was read again"
kill -CONT "$READER"
for _ in $(seq 50); do grep -q "report lines\? lost" host.err && break; sleep 0.1; done
grep -E "[0-9]+ report lines? lost" host.err || { cat host.err; fail "no count of lost report lines"; }
kill -STOP "$READER"
stopped "$READER" || fail "the reader of out.fifo did not stop again"
refill_fifo out.fifo
sleep 1
term_stalled "$HOST" "$READER" "its stdout stalled"
reports=$(drained out.raw | grep -c '^t=')
note "$reports report lines read"
[ "$reports" -ge 5 ] || fail "expected report lines on stdout, got $reports"
[ "$RC" -eq 1 ] || fail "expected exit 1 (stdout not finished), got $RC"
grep -q "saved o.safetensors (SIGTERM" host.err || fail "SIGTERM did not save"
grep -q "stdout: not finished" host.err || fail "the stalled stdout was not said at exit"
saved_adapted o.safetensors
echo "stdio_stall: passed"
