#!/bin/bash
# cli_run_unreplayed.sh CBRNN SAMPLES WORKDIR: `cbrnn run` says when a run
# is not the whole replay, and exits 1 (its files written):
#  - --events whose events lie past the end of the input (a live run
#    logged past the end of its recording): the events file, how many and
#    from which frame are named; events within the input, or only
#    snapshots past its end (they change no number): exit 0, no message;
#  - a schedule of 1200 marks at one frame: every one in events.csv (the
#    engine's event ring is sized for the schedule; it held 1024 before);
#  - more control changes in one block than that ring may hold (70000 at
#    frame 0): events.csv lacks some, said, exit 1.
set -u
CBRNN=$1 SAMPLES=$2 WORK=$3
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

# 5 s at 16 kHz: 498 frames of the default model (10 ms hops, 25 ms window)
sox "$IN" short.wav trim 0 5 2>/dev/null || fail "sox"

printf 'frame,event,value\n0,learn,1\n0,lr,0.001\n100,lr,0.002\n1200,lr,0.004\n1300,learn,0\n1400,reset,\n' >past.events
expect 1 "past.events: 3 events were from frame 1200 on never reached: the input has 498 frames" \
  "$CBRNN" run --quiet --model "$MODEL" --out-dir past --events past.events short.wav
[ "$(($(wc -l <past/frames.csv) - 1))" -eq 498 ] || fail "past: frames.csv not written whole"
grep -q '^100,lr,0.002' past/events.csv || fail "past: the event within the input was not applied"

# (these two name their model, as files the hosts write do: one that does
# not gets a note that nothing can be checked)
sum="# model_sha256=$(sha256sum "$MODEL" | cut -c1-64)"
printf '%s\nframe,event,value\n0,learn,1\n100,lr,0.002\n497,learn,0\n' "$sum" >within.events
"$CBRNN" run --quiet --model "$MODEL" --out-dir within --events within.events short.wav 2>err.txt ||
  fail "events within the input: exit $? ($(cat err.txt))"
[ ! -s err.txt ] || fail "events within the input: unexpected message: $(cat err.txt)"
echo "ok   events within the input: exit 0, no message"

printf '%s\nframe,event,value\n0,learn,1\n2000,snapshot,1\n' "$sum" >snap.events
"$CBRNN" run --quiet --model "$MODEL" --out-dir snap --events snap.events short.wav 2>err.txt ||
  fail "a snapshot past the end: exit $? ($(cat err.txt))"
[ ! -s err.txt ] || fail "a snapshot past the end: unexpected message: $(cat err.txt)"
echo "ok   only a snapshot past the end: exit 0, no message"

for i in $(seq 1200); do echo "0 mark m$i"; done >marks.sched
"$CBRNN" run --quiet --model "$MODEL" --out-dir marks --schedule marks.sched short.wav 2>err.txt ||
  fail "1200 marks at frame 0: exit $? ($(cat err.txt))"
n=$(grep -c '^0,mark,' marks/events.csv)
[ "$n" -eq 1200 ] || fail "1200 marks at frame 0: $n in events.csv"
echo "ok   1200 marks at frame 0: all 1200 in events.csv"

for _ in $(seq 70000); do echo "0 learn 1"; done >many.sched
expect 1 "marks2/events.csv lacks 4464 of the control changes applied" \
  "$CBRNN" run --quiet --model "$MODEL" --out-dir marks2 --schedule many.sched short.wav
no_tmp
echo PASS
