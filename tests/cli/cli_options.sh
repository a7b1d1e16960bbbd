#!/bin/bash
# cli_options: options that clash or would be silently ignored are
# refused, and messages say what happened:
#  - train --init with architecture/feature options, --spectral-radius
#    without reservoir, --no-match without rnn, --momentum without sgd;
#    eval --linear-order without --linear-fit (exit 2, naming the option);
#  - `cbrnn help CMD` prints CMD's help;
#  - experiment into a folder of other settings names the differing keys
#    with both values, whole;
#  - run on a first input at an unsupported rate says the remedy (run has
#    no --rate);
#  - paths too long for the system: the message names the path (shortened)
#    and the reason, for features, eval, run, summary and train; a long
#    path that exists keeps the reason of its real problem in view.
#  - a WAV whose header was never finished (a recording cut by SIGKILL):
#    features, eval and train read it, as run does, and each says so once
#    with the warning run gives, naming the file; so do train, eval and
#    run of a map model for such a teacher (--teacher-suffix, --pairs,
#    --teacher), once even when two inputs share it.
#  - empty names (run --out-dir/--model/--save-model, train -o/--log/
#    --cache-dir/--init) and run --out-dir FILE: said by the option.
# usage: cli_options.sh CBRNN SAMPLES WORKDIR
set -u
CBRNN=$1 SAMPLES=$2 WORK=$3
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"

# 3. clashing or ignored options
"$CBRNN" train -q -o m.safetensors "${TINY[@]}" --val-fraction 0 "$IN" >/dev/null ||
  fail "tiny training"
expect 2 "--hidden, --mels would be ignored" \
  "$CBRNN" train -q -o m2.safetensors --init m.safetensors --hidden 64 --mels 20 "$IN"
[ -e m2.safetensors ] && fail "--init with ignored options wrote a model"
expect 2 "--spectral-radius is for --arch reservoir" \
  "$CBRNN" train -q -o m3.safetensors "${TINY[@]}" --spectral-radius 5 "$IN"
expect 2 "--no-match is for --arch rnn" \
  "$CBRNN" train -q -o m3.safetensors "${TINY[@]}" --no-match "$IN"
expect 2 "--momentum is for --optimizer sgd" \
  "$CBRNN" train -q -o m3.safetensors "${TINY[@]}" --momentum 0.9 "$IN"
expect 2 "--val-files and --val-fraction: give one" \
  "$CBRNN" train -q -o m3.safetensors "${TINY[@]}" --val-fraction 0.3 --val-files "$IN" "$IN"
expect 2 "--linear-order is for --linear-fit" "$CBRNN" eval --linear-order 4 "$MODEL" "$IN"
# what stays allowed: the option with what it is for
"$CBRNN" train -q -o m4.safetensors "${TINY[@]}" --val-fraction 0 --arch rnn --no-match "$IN" \
  >/dev/null 2>err.txt || fail "--arch rnn --no-match refused: $(cat err.txt)"
"$CBRNN" eval --linear-fit "$IN" --linear-order 4 "$MODEL" "$IN" >/dev/null 2>err.txt ||
  fail "--linear-fit --linear-order refused: $(cat err.txt)"
echo "ok   allowed combinations still run"

# 4. help CMD
"$CBRNN" help train >help.txt || fail "help train: exit $?"
grep -q "^usage: cbrnn train" help.txt || fail "help train printed: $(head -n 2 help.txt)"
expect 2 "unknown command 'nope'" "$CBRNN" help nope

# experiment: a folder of other settings (no training: refused first)
mkdir -p ex
printf 'task dms\nmax_n 0\ntrain_steps 200\ntest_batches 1\nprotocol issue-5 v1\n' >ex/settings.txt
expect 2 "train_steps: stored 200, asked 2" "$CBRNN" experiment --task dms --out-dir ex \
  --variants cbrnn --seeds 1 --epochs 1 --train-steps 2 --test-batches 1 --no-figure --jobs 1
grep -q "protocol issue-5 v(" err.txt && fail "cut settings: $(cat err.txt)"
expect 2 "task: stored dms, asked parity" "$CBRNN" experiment --task parity --out-dir ex \
  --variants cbrnn --seeds 1 --epochs 1 --train-steps 200 --test-batches 1 --no-figure --jobs 1

# run at an unsupported rate: the remedy, not another command's option
/usr/bin/python3 - <<'EOF' || fail "writing r4k.wav"
import math, struct, wave
w = wave.open("r4k.wav", "wb")
w.setnchannels(1); w.setsampwidth(2); w.setframerate(4000)
w.writeframes(b"".join(struct.pack("<h", int(3000 * math.sin(i * 0.3))) for i in range(8000)))
w.close()
EOF
expect 2 "resample the file first" "$CBRNN" run --model "$MODEL" --out-dir o1 r4k.wav
grep -q "cbrnn's --rate" err.txt && fail "run points to an option it lacks: $(cat err.txt)"

# 5. long paths: the reason stays in view
long=/tmp/$(printf 'a%.0s' $(seq 1 1100)).wav
for cmd in "features $long -o f.npy" "eval $MODEL $long" "run --model $MODEL --out-dir o2 $long" \
           "summary $long" "train -q -o m5.safetensors $long"; do
  # shellcheck disable=SC2086 # the words of cmd
  expect 2 "File name too long" "$CBRNN" $cmd
  grep -q "(1109 characters)" err.txt || fail "$cmd: the path is not shortened: $(cat err.txt)"
  [ "$(wc -c <err.txt)" -lt 600 ] || fail "$cmd: a message of $(wc -c <err.txt) bytes"
done
deep=deep
for _ in 1 2 3 4 5 6 7 8 9; do deep=$deep/$(printf 'b%.0s' $(seq 1 200)); done
mkdir -p "$deep" && echo "not audio" >"$deep/bad.wav"
expect 2 "missing.wav: no such file" "$CBRNN" features "$deep/missing.wav" -o f.npy
# a path past libsndfile's 1024-byte name limit is read all the same: the
# reason is the file's content
expect 2 "bad.wav: not an audio file (libsndfile does not recognise the format)" \
  "$CBRNN" features "$deep/bad.wav" -o f.npy
expect 2 "bad.wav: not an audio file (libsndfile does not recognise the format)" \
  "$CBRNN" run --model "$MODEL" --out-dir o3 "$deep/bad.wav"

# A model whose `frozen` list names the cerebellum (what online learning
# changes) is run without learning; --learn says why. Training from it
# decides its own phases: the frozen phase still trains the cerebellum,
# and the result says `frozen` cortex.
set_meta m.safetensors fz.safetensors frozen cortex,cerebellum || fail "writing fz.safetensors"
expect 2 "fz.safetensors: its cerebellum, what online learning changes, is frozen" \
  "$CBRNN" run --learn --model fz.safetensors --out-dir fz "$IN"
"$CBRNN" run --quiet --no-learn --model fz.safetensors --out-dir fz2 "$IN" 2>err.txt ||
  fail "a frozen model without learning: $(cat err.txt)"
"$CBRNN" train -q -o fz3.safetensors --init fz.safetensors --warmup-steps 0 --steps 5 \
  --seq-len 20 --batch 4 --val-fraction 0 "$IN" >/dev/null 2>err.txt ||
  fail "train --init from a frozen model: $(cat err.txt)"
"$CBRNN" info --json fz3.safetensors | grep -q '"frozen": *\["cortex"\]' ||
  fail "train --init: frozen is not cortex: $("$CBRNN" info --json fz3.safetensors | grep -A2 frozen)"

# numbers checked as the float they become: a prior of 1e-50 would be 0
expect 2 "--rls-prior '1e-50': expected a number in [1e-9, 1e9]" \
  "$CBRNN" run --rls-prior 1e-50 --model "$MODEL" --out-dir rp "$IN"
expect 2 "--horizon '5000': expected an integer in 1..1000" \
  "$CBRNN" train -q -o h.safetensors --horizon 5000 "$IN"

# info shows metadata from the file, which may be hostile: control bytes
# come out escaped, never raw to the terminal.
set_meta m.safetensors esc.safetensors note "$(printf '\033]0;PWNED\007 and \033[2J')" \
  "$(printf 'k\033[2J')" v || fail "writing esc.safetensors"
"$CBRNN" info esc.safetensors >info.txt 2>err.txt || fail "info esc.safetensors: $(cat err.txt)"
LC_ALL=C grep -q "$(printf '\033')" info.txt && fail "info printed an escape byte raw"
grep -qF 'note                       \x1b]0;PWNED\x07 and \x1b[2J' info.txt ||
  fail "info: the note is not shown escaped: $(grep note info.txt)"
grep -qF 'k\x1b[2J' info.txt || fail "info: the key is not shown escaped"

# A model that diverges on its input (a ReLU cortex with recurrent weights
# 100x too large): eval says so and scores nothing, instead of a loss of
# nan and NaN rows with exit 0.
"$CBRNN" train -q -o relu.safetensors "${TINY[@]}" --activation relu --val-fraction 0 "$IN" \
  >/dev/null 2>err.txt || fail "tiny relu training: $(cat err.txt)"
/usr/bin/python3 - relu.safetensors big.safetensors <<'PY' || fail "writing big.safetensors"
import json, struct, sys
import numpy as np
d = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack("<Q", d[:8])[0]
a, b = json.loads(d[8:8 + n])["cortex.rnn.weight_hh_l0"]["data_offsets"]
w = np.frombuffer(bytes(d[8 + n + a:8 + n + b]), "<f4") * 100
d[8 + n + a:8 + n + b] = w.astype("<f4").tobytes()
open(sys.argv[2], "wb").write(bytes(d))
PY
expect 1 "it diverges on this input; nothing scored" "$CBRNN" eval big.safetensors "$IN"
expect 1 "it diverges on this input; nothing scored" "$CBRNN" eval big.safetensors "$IN" \
  --outputs big.npy
[ -e big.npy ] && fail "eval of a diverging model left big.npy"

# A recording cut before its header was first finished: the sizes still 0.
/usr/bin/python3 - "$IN" cut.wav <<'PY' || fail "cannot make cut.wav"
import struct, sys
d = bytearray(open(sys.argv[1], "rb").read())
at = d.index(b"data")
d[4:8] = struct.pack("<I", at + 8 - 8)
d[at + 4:at + 8] = struct.pack("<I", 0)
open(sys.argv[2], "wb").write(d)
PY
cut="warning: cut.wav: header not finished (a recording cut short?): reading the"
for cmd in "features cut.wav -o cut.npy" "eval $MODEL cut.wav" \
           "train -q -o cut.safetensors ${TINY[*]} --val-fraction 0 cut.wav"; do
  # shellcheck disable=SC2086 # cmd is words
  expect 0 "cbrnn ${cmd%% *}: $cut" "$CBRNN" $cmd
  [ "$(grep -c "header not finished" err.txt)" -eq 1 ] || fail "$cmd: the warning not said once"
done
# The same for a map model's teacher: a_t.wav (--teacher-suffix _t), and
# cut.wav as the teacher of both a.wav and b.wav (--pairs, --teacher).
for f in "$IN:a.wav" "$IN:b.wav" "cut.wav:a_t.wav"; do
  cp "${f%%:*}" "${f#*:}" || fail "cannot copy ${f%%:*} to ${f#*:}"
done
printf 'a.wav\tcut.wav\nb.wav\tcut.wav\n' >pairs.txt
map="${TINY[*]} --val-fraction 0 --target map"
for cmd in "train -q -o map.safetensors $map --teacher-suffix _t a.wav" \
           "train -q -o pairs.safetensors $map --pairs pairs.txt" \
           "eval map.safetensors a.wav --teacher-suffix _t" "eval map.safetensors --pairs pairs.txt" \
           "run --model map.safetensors --out-dir map.out --teacher a_t.wav a.wav" \
           "run --model map.safetensors --out-dir map.out --teacher cut.wav --teacher cut.wav a.wav b.wav"; do
  teacher=a_t.wav
  case $cmd in *pairs*|*"teacher cut"*) teacher=cut.wav ;; esac
  # shellcheck disable=SC2086 # cmd is words
  expect 0 "cbrnn ${cmd%% *}: ${cut/cut.wav/$teacher}" "$CBRNN" $cmd
  [ "$(grep -c "header not finished" err.txt)" -eq 1 ] || fail "$cmd: the warning not said once"
done

# Empty names and an out-dir that is a file: the message names the option
# (it began with the empty name, or named FILE/frames.csv; train --log ''
# trained to the end before failing).
expect 2 "--out-dir '': an empty name" "$CBRNN" run --model "$MODEL" --out-dir '' "$IN"
expect 2 "--model '': an empty name" "$CBRNN" run --model '' --out-dir e.out "$IN"
expect 2 "--save-model '': an empty name" \
  "$CBRNN" run --model "$MODEL" --out-dir e.out --save-model '' "$IN"
cp "$IN" notdir.wav
expect 2 "--out-dir notdir.wav: not a folder" "$CBRNN" run --model "$MODEL" --out-dir notdir.wav "$IN"
cmp -s "$IN" notdir.wav || fail "--out-dir FILE changed FILE"
for opt in -o --log --cache-dir --init; do
  expect 2 "$opt '': an empty name" "$CBRNN" train -q -o e.safetensors "${TINY[@]}" "$opt" '' "$IN"
done
[ -e e.safetensors ] && fail "an empty name still trained"
echo "PASS cli_options"
