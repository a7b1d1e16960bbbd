#!/bin/bash
# log_stall.sh: the --log destination and the recordings cannot hold up
# the control thread, and what goes wrong with them is said while running.
# (1) --log to a FIFO whose reader is stopped (SIGSTOP) with --report 1
#     and --osc: reports keep coming and /cbrnn/status answers during the
#     stall; rows lost are said while running (once here: at most every
#     10 s) and counted at the end; SIGTERM saves at once, gives up on the
#     stalled log after its time limit, says so and exits 1. Before the
#     fix the log thread held the lock the reports and status take while
#     it wrote, so nothing answered and SIGTERM was not even seen.
# (2) --log and --record to /dev/full: each write failure said once while
#     running, exit 1 (before: the log's never, the recording's only at
#     exit, exit 0).
. "$(dirname "$0")/jacklib.sh"
pick_model

note "1: a stalled log reader"
start_jackd 256
mkfifo fifo.csv
cat fifo.csv >got.csv &
CAT=$!
STARTED="$STARTED $CAT"
OSC=$(free_udp_port)
# An 8 KiB queue (the default 1 MiB holds 150 s of rows) so rows are lost
# within a second or two of the stall.
CBRNN_JACK_LOG_BUFFER=8192 "$JACKHOST" --name cbt --model "$MODEL" --learn --save st.safetensors \
  --log fifo.csv --report 1 --osc "$OSC" >host.out 2>host.err &
HOST=$!
STARTED="$STARTED $HOST"
wait_port cbt:input
sleep 1
kill -STOP "$CAT"
# Fill the pipe (64 KiB) so that the host's next write blocks.
timeout 1 cat /dev/zero >fifo.csv 2>/dev/null
reports0=$(grep -c '^t=' host.out)
sleep 4
reports1=$(grep -c '^t=' host.out)
STATUS=$("$PY" "$(dirname "$0")/osc.py" "$OSC" /cbrnn/status) ||
  { kill -CONT "$CAT"; cat host.err; fail "no /cbrnn/status reply while the log is stalled"; }
note "status during the stall: $STATUS; reports $reports0 -> $reports1"
[ $((reports1 - reports0)) -ge 3 ] || { kill -CONT "$CAT"; fail "reports stopped while the log is stalled"; }
grep -qE "fifo.csv: [0-9]+ rows? lost so far" host.err ||
  { kill -CONT "$CAT"; cat host.err; fail "no note of lost rows while running"; }
term_stalled "$HOST" "$CAT" "its log stalled"
[ "$RC" -eq 1 ] || fail "expected exit 1 (the log is incomplete), got $RC"
grep -q "saved st.safetensors (SIGTERM" host.err || fail "SIGTERM did not save"
grep -q "fifo.csv: not finished" host.err || fail "the stalled log was not said at exit"
[ "$(grep -cE 'rows? lost so far' host.err)" -eq 1 ] || fail "lost rows said more than once in 6 s"
grep -qE "[0-9]+ log rows lost" host.err || fail "no count of lost rows at the end"
kill -TERM "$JACKD"; wait "$JACKD" 2>/dev/null

note "2: log and recording to /dev/full"
start_jackd 256
ln -s /dev/full full.csv
ln -s /dev/full full.wav
"$JACKHOST" --name cbt --model "$MODEL" --log full.csv --record full.wav >h2.out 2>h2.err &
HOST=$!
STARTED="$STARTED $HOST"
wait_port cbt:input
sleep 2.5
cp h2.err h2.running
kill -TERM "$HOST"
wait "$HOST"; rc=$?
cat h2.err
[ "$(grep -c 'full.csv: write failed' h2.running)" -eq 1 ] ||
  fail "the log's write failure was not said once while running"
[ "$(grep -c 'full.wav: write failed' h2.running)" -eq 1 ] ||
  fail "the recording's write failure was not said once while running"
[ "$rc" -eq 1 ] || fail "expected exit 1 after failed writes, got $rc"
echo "log_stall: passed"
