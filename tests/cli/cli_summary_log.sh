#!/bin/bash
# cli_summary_log: `cbrnn summary` reads a per-frame log strictly and
# groups a replay like the run it replays.
#  - `run --events D1/events.csv` writes D2/markers.csv from D1/markers.csv,
#    so `summary --by phase` of the replay gives the original's phases;
#  - a log with markers but no names file is refused under --by
#    phase/marker (naming the ids and the files looked for);
#  - malformed numbers (trailing text, nan, inf, 1e300 s, a bad flag or
#    marker id) are refused with FILE:LINE and the column, exit 2; a
#    directory is named as one;
#  - summary's learned count equals run's updates (frame 0 has none), and
#    run says learning was driven by the schedule.
# usage: cli_summary_log.sh CBRNN SAMPLES WORKDIR
set -u
CBRNN=$1 SAMPLES=$2 WORK=$3
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"

# A schedule with two phases, learning on in the second.
printf '0 phase baseline\n0 learn 0\n1s phase adapt\n1s learn 1\n' >s1.txt
"$CBRNN" run --model "$MODEL" --schedule s1.txt --out-dir o1 "$IN" >run1.txt 2>&1 ||
  fail "scheduled run: $(cat run1.txt)"
grep -q "learning by the schedule" run1.txt || fail "run's summary hides the schedule: $(cat run1.txt)"
updates=$(sed -n 's/.*; \([0-9]*\) updates.*/\1/p' run1.txt)
[ "${updates:-0}" -gt 0 ] || fail "the schedule turned learning on but no updates: $(cat run1.txt)"

# 1. the replay keeps the marker names
"$CBRNN" run --model "$MODEL" --events o1/events.csv --out-dir o2 "$IN" >run2.txt 2>&1 ||
  fail "replay: $(cat run2.txt)"
cmp -s o1/frames.csv o2/frames.csv || fail "the replay's frames.csv differs"
[ -f o2/markers.csv ] || fail "the replay wrote no markers.csv"
"$CBRNN" summary --by phase o1/frames.csv >p1.csv || fail "summary of the run"
"$CBRNN" summary --by phase o2/frames.csv >p2.csv || fail "summary of the replay"
cmp -s p1.csv p2.csv || fail "phases differ: $(cat p1.csv) vs $(cat p2.csv)"
grep -q '^"adapt",' p2.csv || fail "no adapt phase in the replay's summary: $(cat p2.csv)"
echo "ok   replay's summary --by phase equals the run's"

# summary's learned equals run's updates
learned=$("$CBRNN" summary o1/frames.csv | awk -F, 'NR == 2 { print $3 }')
[ "$learned" = "$updates" ] || fail "summary learned $learned, run updates $updates"
"$CBRNN" run --model "$MODEL" --learn --out-dir o5 "$IN" >run5.txt 2>&1 || fail "run --learn"
updates=$(sed -n 's/.*; \([0-9]*\) updates.*/\1/p' run5.txt)
learned=$("$CBRNN" summary o5/frames.csv | awk -F, 'NR == 2 { print $3 }')
[ "$learned" = "$updates" ] || fail "--learn: summary learned $learned, run updates $updates"
echo "ok   summary's learned = run's updates ($updates)"

# an events file without its names file: a note, and summary says what is missing
mkdir -p lone && cp o1/events.csv lone/ev.csv
expect 0 "names file" "$CBRNN" run --model "$MODEL" --events lone/ev.csv --out-dir o3 "$IN"
[ -f o3/markers.csv ] && fail "markers.csv written without names"
expect 2 "ids 0, 1" "$CBRNN" summary --by phase o3/frames.csv
expect 2 "o3/markers.csv" "$CBRNN" summary --by marker o3/frames.csv
"$CBRNN" summary o3/frames.csv >/dev/null || fail "summary (one group) of a log without names"

# 2. strict numbers
head -n 1 o1/frames.csv >head.csv
bad() { # bad TEXT ROW: a log with this one data row is refused saying TEXT
  { cat head.csv; echo "$2"; } >bad.csv
  expect 2 "$1" "$CBRNN" summary bad.csv
}
bad "bad.csv:2: loss '0.1x'" '1,0.02,0.1x,,,0,0.001,,,0'
bad "bad.csv:2: loss 'nan'" '1,0.02,nan,,,0,0.001,,,0'
bad "bad.csv:2: persistence_loss 'inf'" '1,0.02,0.1,inf,,0,0.001,,,0'
bad "bad.csv:2: time '1e300'" '1,1e300,0.1,,,0,0.001,,,0'
bad "bad.csv:2: surprise '-inf'" '1,0.02,0.1,,-inf,0,0.001,,,0'
bad "bad.csv:2: learning '2'" '1,0.02,0.1,,,2,0.001,,,0'
bad "bad.csv:2: flags '1z'" '1,0.02,0.1,,,0,0.001,,,1z'
bad "bad.csv:2: marker 'x'" '1,0.02,0.1,,,0,0.001,x,,0'
bad "bad.csv:2: 9 columns" '1,0.02,0.1,,,0,0.001,,'
{ cat head.csv; printf '1,0.02,0.1,0.2,1.5,1,0.001,,,1\n'; } >good.csv
"$CBRNN" summary good.csv >good.out || fail "a good row refused"
grep -q '^"all",1,1,0,0.1,0.2,0.5,' good.out || fail "good row: $(cat good.out)"
echo "ok   a good row is read"
mkdir -p dir.wav
expect 2 "dir.wav: is a directory" "$CBRNN" summary dir.wav
printf 'marker,name,seconds\nzero,"phase:a",0\n' >o1/frames.csv.markers
expect 2 "frames.csv.markers:2: marker 'zero'" "$CBRNN" summary --by phase o1/frames.csv
echo "PASS cli_summary_log"
