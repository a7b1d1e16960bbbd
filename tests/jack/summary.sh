#!/bin/bash
# summary.sh: `cbrnn summary` on a known log (issue 13, item 4). A
# hand-made per-frame log of 8 frames with two phases, a gated frame and
# several markers in one frame; the expected numbers are worked out by
# hand below. Also --by marker, --curve, --by file on a two-input `cbrnn
# run`, and bad input (not a log; --by file without files.csv).
. "$(dirname "$0")/jacklib.sh"
cat >live.csv <<'L'
frame,time,loss,persistence_loss,surprise,learning,lr,marker,label,flags
0,0.025,,,,0,0.001,0;1,,0
1,0.035,0.4,0.2,1,0,0.001,,,0
2,0.045,0.2,0.2,1,0,0.001,,,0
3,0.055,0.9,0.3,2,0,0.001,,,16
4,0.065,0.3,0.1,1,1,0.001,2,,1
5,0.075,0.1,0.1,0.5,1,0.001,,,1
6,0.085,0.2,0.1,1,1,0.001,3,,1
7,0.095,0.2,0.3,1,1,0.001,,,1
L
cat >live.csv.markers <<'M'
marker,name,seconds
0,"trial:1",0.000
1,"phase:baseline",0.000
2,"phase:perturb",0.040
3,"a ""quoted"" mark",0.060
M
"$CBRNN" summary --by phase --bin 0.05 --curve curve.csv live.csv >phase.csv || fail "cbrnn summary --by phase"
cat phase.csv
# baseline: frames 0-3, learned 0, gated 1 (frame 3); scored frames 1, 2:
# loss (0.4 + 0.2) / 2 = 0.3, persistence 0.2, skill 1 - 0.3 / 0.2 = -0.5,
# halves 0.4 and 0.2. perturb: frames 4-7, all learned; loss 0.2,
# persistence 0.15, skill 1 - 0.2 / 0.15 = -0.333333, halves 0.2 and 0.2.
cat >want.csv <<'W'
group,frames,learned,gated,mean_loss,mean_persistence,skill,first_half_loss,second_half_loss,t_start,t_end
"baseline",4,0,1,0.3,0.2,-0.5,0.4,0.2,0.025,0.055
"perturb",4,4,0,0.2,0.15,-0.333333,0.2,0.2,0.065,0.095
W
cmp phase.csv want.csv || { diff want.csv phase.csv; fail "--by phase numbers"; }
# curve, bins of 0.05 s: [0, 0.05) frames 0-2 (loss 0.4, 0.2; surprise 1, 1),
# [0.05, 0.1) frames 4-7 (frame 3 gated): loss 0.2, surprise 0.875
cat >want_curve.csv <<'W'
time,mean_loss,mean_surprise,frames
0.000,0.3,1,2
0.050,0.2,0.875,4
W
cmp curve.csv want_curve.csv || { diff want_curve.csv curve.csv; fail "--curve"; }
"$CBRNN" summary --by marker live.csv >marker.csv || fail "--by marker"
grep -q '^"3:a ""quoted"" mark",2,2,0,0.2,0.2,0,0.2,0.2,0.085,0.095$' marker.csv \
  || { cat marker.csv; fail "--by marker: the last marker's group"; }
"$CBRNN" summary live.csv | grep -q '^"all",8,4,1,' || fail "one group by default"

"$PY" "$SAMPLES/../scripts/plot_log.py" live.csv plot.png || fail "plot_log.py"
[ "$(head -c 4 plot.png | tail -c 3)" = PNG ] || fail "plot_log.py did not write a PNG"

note "--by file on a two-input cbrnn run"
"$CBRNN" run --quiet --model "$SAMPLES/default.safetensors" --out-dir two \
  "$SAMPLES/voiceB_gb_female_1.wav" "$SAMPLES/voiceB_gb_female_2.wav" || fail "cbrnn run"
"$CBRNN" summary --by file two/frames.csv >files.out || fail "--by file"
[ "$(grep -c voiceB_gb_female files.out)" = 2 ] || { cat files.out; fail "--by file: two groups"; }
"$PY" - <<'PY' || fail "--by file: frames per file do not add up"
import csv
rows = list(csv.DictReader(open("files.out")))
total = sum(1 for _ in csv.DictReader(open("two/frames.csv")))
assert sum(int(r["frames"]) for r in rows) == total, rows
PY

note "bad input"
"$CBRNN" summary two/files.csv 2>e && fail "a files.csv taken for a log"
grep -q "not a per-frame log" e || { cat e; fail "no message for a file that is not a log"; }
"$CBRNN" summary --by file live.csv 2>e && fail "--by file without files.csv"
grep -q "files.csv" e || { cat e; fail "--by file: no message naming files.csv"; }
"$CBRNN" summary --by colour live.csv 2>e; [ $? -eq 2 ] || fail "--by colour accepted"
echo "summary: passed"
