#!/bin/bash
# cli_run_outdir.sh CBRNN SAMPLES WORKDIR: `cbrnn run --out-dir D` keeps
# what is already saved in D:
#  - D inside an input folder: the folder scan leaves D's files (earlier
#    results) out, so the same command run twice gives the same bytes; an
#    input folder that is D itself is refused;
#  - a bad input (any of them, also the last) is found before anything is
#    written: exit 2, D unchanged;
#  - Ctrl-C stops the run: exit 130 with a message, D unchanged, no
#    temporary (NAME.tmp.HOST.PID) left;
#  - files of an earlier run of another kind (feedback.wav, markers.csv)
#    are removed, with a note, so D holds one run's results.
set -u
CBRNN=$1 SAMPLES=$2 WORK=$3
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

sums() { (cd "$1" && md5sum ./*); }
mkdir in
cp "$IN" "$SAMPLES/voiceB_gb_female_1.wav" in/
run() { "$CBRNN" run --quiet --model "$MODEL" "$@"; }

# D inside the input folder, twice: the same inputs, the same results.
run --out-dir in/res in 2>err.txt || fail "run 1: $(cat err.txt)"
sums in/res >first.md5
run --out-dir in/res in 2>err.txt || fail "run 2: $(cat err.txt)"
grep -q "left out 1 file found inside the output folder in/res" err.txt ||
  fail "run 2 did not say it left in/res/surprise.wav out: $(cat err.txt)"
sums in/res | diff first.md5 - || fail "the same run twice gave different results"
[ "$(grep -c wav in/res/files.csv)" -eq 2 ] || fail "run 2 read other inputs: $(cat in/res/files.csv)"
expect 2 "the input folder in is the output folder in or inside it" run --out-dir in in
echo "ok   out-dir inside the inputs: left out, same bytes twice"

# A bad input, last in line: refused before anything is written.
echo "not audio" >in/zz_bad.wav
expect 2 "in/zz_bad.wav: not an audio file" run --out-dir in/res in
sums in/res | diff first.md5 - || fail "a refused run changed in/res"
rm in/zz_bad.wav
no_tmp

# Ctrl-C during a long run (10 min of audio, learning): exit 130, D kept.
sox -n -r 16000 -b 16 in/long.wav synth 600 sine 300 2>/dev/null || fail "sox"
"$CBRNN" run --learn --model "$MODEL" --out-dir in/res in >/dev/null 2>err.txt &
pid=$!
# once its SIGINT handler is in place (SigCgt bit 1), not after a fixed
# sleep: on a loaded machine the run may not have got that far in 1 s
for _ in $(seq 600); do
  cgt=$(sed -n 's/^SigCgt:\t*//p' "/proc/$pid/status" 2>/dev/null)
  [ -n "$cgt" ] && [ $((0x$cgt & 2)) -ne 0 ] && break
  sleep 0.05
done
kill -INT "$pid"
wait "$pid"; rc=$?
[ "$rc" -eq 130 ] || fail "run after Ctrl-C: exit $rc, expected 130 ($(cat err.txt))"
grep -q "interrupted: stopped at" err.txt || fail "no message after Ctrl-C: $(cat err.txt)"
sums in/res | diff first.md5 - || fail "an interrupted run changed in/res"
no_tmp
rm in/long.wav
echo "ok   Ctrl-C: exit 130, in/res as it was, no temporary"

# A run that fails while writing (a 256 KiB tmpfs: room for the results
# of 0.3 s, not of 20 s): exit 1, the earlier results intact.
mkdir small
if mount -t tmpfs -o size=256k tmpfs small 2>/dev/null; then
  trap 'umount "$WORK/small"' EXIT
  sox -n -r 16000 -b 16 short.wav synth 0.3 sine 300 2>/dev/null || fail "sox"
  run --out-dir small/res short.wav 2>err.txt || fail "the short run: $(cat err.txt)"
  sums small/res >short.md5
  expect 1 "No space left on device" run --out-dir small/res "$IN"
  sums small/res | diff short.md5 - || fail "a run that failed on a full disk changed small/res"
  no_tmp
else
  echo "skip the disk-full case: cannot mount a tmpfs here"
fi

# A run with feedback and a schedule, then a plain one: the stale
# feedback.wav and markers.csv go.
printf '0 phase baseline\n0.5s mark half\n' >sched.txt
run --out-dir in/res --schedule sched.txt --perturb-delay 10 in 2>err.txt ||
  fail "schedule run: $(cat err.txt)"
for f in feedback.wav markers.csv; do [ -f "in/res/$f" ] || fail "the schedule run wrote no $f"; done
run --out-dir in/res in 2>err.txt || fail "plain run: $(cat err.txt)"
for f in feedback.wav markers.csv; do
  [ ! -e "in/res/$f" ] || fail "stale in/res/$f left beside new results"
  grep -q "removed in/res/$f" err.txt || fail "no note on removing $f: $(cat err.txt)"
done
sums in/res | diff first.md5 - || fail "the plain run after the schedule run differs"
no_tmp
echo "cli_run_outdir: ok"
