#!/bin/bash
# events_lost.sh: an events file (--log FILE.csv: FILE.csv.events) that
# lacks control changes is a failed run: `cbrnn run --events` would not
# replay it exactly. A change can be missing two ways, and each must be
# said at exit with its count, naming the file, and make the status 1
# (events_incomplete in plugin/cbrnn_jack.c):
# (1) lost: the file's queue (256 KiB) was full. stall_write.c
#     (LD_PRELOAD) holds the writer thread's writes to log.csv.events while
#     the file `stall` exists, and a schedule applies 20000 lr changes at
#     1 s (about 440 KiB of rows). The test waits for cbrnn-jack's own note
#     of rows lost, lets the writes through and stops it: the rows in the
#     file and those said lost add up to the 20000.
# (2) never reported: the engine's ring of applied changes was full. The
#     ring is sized to a schedule's events up to 65536
#     (cbrnn_host_size_event_ring); 100000 changes in one frame overflow
#     it whatever the log thread does. Rows in the file, rows lost and
#     changes never reported add up to the 100000.
# In both cases the file ends with '# changes_lost=N' (N: all that is
# missing), and `cbrnn run --events` refuses it (exit 2), naming it.
# Extra argument: the stall_write shim.
. "$(dirname "$0")/jacklib.sh"
SHIM=$6
pick_model

# schedule N FILE: N lr changes at 1 s (alternating values: each one a
# change).
schedule() {
  awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++) printf "1s lr %s\n", i % 2 ? "0.002" : "0.001" }' >"$2"
}

# run_host NAME SCHEDULE [ENV...]: cbrnn-jack with --log NAME.csv and the
# schedule, in the background (HOST), stderr in NAME.err.
run_host() {
  local name=$1 sched=$2
  shift 2
  env "$@" "$JACKHOST" --name cbt --model "$MODEL" --log "$name.csv" --schedule "$sched" \
    >"$name.out" 2>"$name.err" &
  HOST=$!
  STARTED="$STARTED $HOST"
  wait_port cbt:input
}

# stop_host NAME: SIGTERM; RC its status; its stderr printed; the counts
# said at exit in LOST and NEVER, the lr rows at 1 s in ROWS.
stop_host() {
  kill -TERM "$HOST"
  wait "$HOST"; RC=$?
  cat "$1.err"
  LOST=$(said "$1" "lost \(its queue was full\)")
  NEVER=$(said "$1" "never reported")
  ROWS=$(rows_at_1s "$1")
  note "events: $ROWS rows in the file, $LOST lost, $NEVER never reported"
}

# said NAME WHY: the count of "control changes WHY" said at exit, 0 if not said.
said() {
  local n
  n=$(sed -nE "s/.*$1\.csv\.events: ([0-9]+) control changes? $2.*/\1/p" "$1.err")
  echo "${n:-0}"
}

# rows_at_1s NAME: the events file's lr rows at frame 100 (1 s at hop 480).
rows_at_1s() {
  grep -c '^100,lr,' "$1.csv.events"
}

note "1: the events file's writes stalled"
start_jackd 256
schedule 20000 s1.txt
touch stall
run_host q s1.txt CBRNN_TEST_STALL_FILE="$PWD/stall" CBRNN_TEST_STALL_SUFFIX=/q.csv.events \
  LD_PRELOAD="$SHIM"
wait_said "$HOST" q.err "q.csv.events: [0-9]+ rows? lost so far" 30 ||
  { cat q.err; fail "no note of lost events rows while the file was stalled"; }
rm stall
stop_host q
[ "$RC" -eq 1 ] || fail "expected exit 1 (events lost), got $RC"
[ "$LOST" -gt 0 ] || fail "no count of lost control changes at exit"
[ "$NEVER" -eq 0 ] || fail "changes said never reported: the ring holds all 20000"
grep -q "not finished" q.err && fail "the events file was not finished: the stall had ended"
[ $((ROWS + LOST)) -eq 20000 ] ||
  fail "$ROWS rows in q.csv.events and $LOST said lost: not the 20000 applied"
head -1 q.csv.events | grep -q '^# ' || fail "q.csv.events lost its header lines"
# the file says so (changes_lost= at its end), and a replay is refused,
# naming the file and the count (before: exit 0, 443 of 604 frames differ)
grep -qx "# changes_lost=$LOST" q.csv.events ||
  { tail -3 q.csv.events; fail "q.csv.events does not say changes_lost=$LOST"; }
"$CBRNN" run --quiet --model "$MODEL" --events q.csv.events --out-dir rep \
  "$SAMPLES/voiceB_gb_female_3.wav" 2>rep.err
rc=$?; cat rep.err
[ "$rc" -eq 2 ] || fail "cbrnn run --events of an incomplete file: exit $rc, not 2"
grep -q "q.csv.events: incomplete: $LOST control changes" rep.err ||
  fail "the refusal does not name q.csv.events and the $LOST changes lost"
kill -TERM "$JACKD"; wait "$JACKD" 2>/dev/null

note "2: more changes in one frame than the engine's ring holds"
start_jackd 256
schedule 100000 s2.txt
run_host r s2.txt
# until the log has a row of frame 150 (the schedule acted at frame 100;
# the log thread's last drain at exit takes what is left)
for _ in $(seq 300); do
  grep -q '^150,' r.csv && break
  sleep 0.1
done
grep -q '^150,' r.csv || { cat r.err; fail "no frame 150 in r.csv within 30 s"; }
stop_host r
[ "$RC" -eq 1 ] || fail "expected exit 1 (events never reported), got $RC"
[ "$NEVER" -gt 0 ] || fail "no count of changes never reported at exit"
[ $((ROWS + LOST + NEVER)) -eq 100000 ] ||
  fail "$ROWS rows, $LOST lost and $NEVER never reported: not the 100000 applied"
grep -qx "# changes_lost=$((LOST + NEVER))" r.csv.events ||
  { tail -3 r.csv.events; fail "r.csv.events does not say changes_lost=$((LOST + NEVER))"; }
echo "events_lost: passed"
