#!/bin/bash
# cli_output_guard.sh CBRNN SAMPLES WORKDIR: every command's outputs go
# through one guard (host/host_files.c): an output may not be a file the
# command reads (by device and inode: ./a, hard links and symbolic links
# to it are caught), nor the same file as another output of the command,
# nor an existing cbrnn model or audio file unless it is an output of that
# kind (train -o and run --save-model may replace a model), at any path
# length. Each refusal exits 2 naming the file, and the file is unchanged.
set -u
CBRNN=$1 SAMPLES=$2 WORK=$3
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

cp "$IN" v3.wav && cp v3.wav v3.orig
cp "$SAMPLES/voiceB_gb_female_1.wav" ev.wav && cp ev.wav ev.orig
cp "$MODEL" M.safetensors && cp M.safetensors M.orig
ln v3.wav hard.wav
ln -s ev.wav soft.wav
"$CBRNN" train -q "${TINY[@]}" --log log.csv -o m.safetensors v3.wav >/dev/null 2>err.txt ||
  fail "the tiny training: $(cat err.txt)"
cp log.csv log.orig

# train: --log and -o
expect 2 "--log v3.wav: is the same file as the input v3.wav" \
  "$CBRNN" train -q "${TINY[@]}" --log v3.wav -o x.safetensors v3.wav
expect 2 "--log hard.wav: is the same file as the input v3.wav" \
  "$CBRNN" train -q "${TINY[@]}" --log hard.wav -o x.safetensors v3.wav
expect 2 "--log M.safetensors: exists and is a cbrnn model" \
  "$CBRNN" train -q "${TINY[@]}" --log M.safetensors -o x.safetensors v3.wav
expect 2 "--log ./X: is the same file as the output X" \
  "$CBRNN" train -q "${TINY[@]}" --log ./X -o X v3.wav
expect 2 "-o M.safetensors: is the same file as the input M.safetensors" \
  "$CBRNN" train -q --warmup-steps 0 --steps 5 --init M.safetensors -o M.safetensors v3.wav
expect 2 "--log ev.wav: exists and is an audio file" \
  "$CBRNN" train -q "${TINY[@]}" --log ev.wav -o x.safetensors v3.wav
printf 'v3.wav\nev.wav\n' >in.lst && cp in.lst in.orig
expect 2 "--log in.lst: is the same file as the input in.lst" \
  "$CBRNN" train -q "${TINY[@]}" --log in.lst -o x.safetensors @in.lst
expect 2 "--outputs in.lst: is the same file as the input in.lst" \
  "$CBRNN" eval M.safetensors @in.lst --outputs in.lst
cmp -s in.lst in.orig || fail "an @LIST input was overwritten"
if [ -e X ] || [ -e x.safetensors ]; then fail "a refused training wrote its model"; fi

# eval --outputs
expect 2 "--outputs M.safetensors: is the same file as the input M.safetensors" \
  "$CBRNN" eval M.safetensors ev.wav --outputs M.safetensors
expect 2 "--outputs ev.wav: is the same file as the input ev.wav" \
  "$CBRNN" eval M.safetensors ev.wav --outputs ev.wav
expect 2 "--outputs soft.wav: is the same file as the input" \
  "$CBRNN" eval M.safetensors ev.wav --outputs soft.wav
expect 2 "--outputs ./v3.wav: is the same file as the input" \
  "$CBRNN" eval M.safetensors . --outputs ./v3.wav
expect 2 "--outputs m.safetensors: exists and is a cbrnn model" \
  "$CBRNN" eval M.safetensors ev.wav --outputs m.safetensors

# summary --curve
expect 2 "--curve log.csv: is the same file as the input log.csv" \
  "$CBRNN" summary log.csv --curve log.csv
expect 2 "--curve ev.wav: exists and is an audio file" "$CBRNN" summary log.csv --curve ev.wav
expect 2 "--curve M.safetensors: exists and is a cbrnn model" \
  "$CBRNN" summary log.csv --curve M.safetensors

# features -o
expect 2 "-o M.safetensors: exists and is a cbrnn model" "$CBRNN" features ev.wav -o M.safetensors
expect 2 "-o v3.wav: exists and is an audio file" "$CBRNN" features ev.wav -o v3.wav
expect 2 "-o ./ev.wav: is the same file as the input ev.wav" "$CBRNN" features ev.wav -o ./ev.wav

# run: its out-dir files and --save-model
expect 2 "--save-model M.safetensors: is the same file as the input M.safetensors" \
  "$CBRNN" run --quiet --model M.safetensors --out-dir r --save-model M.safetensors ev.wav
mkdir -p r2 && cp "$MODEL" r2/outputs.npy
expect 2 "r2/outputs.npy: exists and is a cbrnn model" \
  "$CBRNN" run --quiet --model M.safetensors --out-dir r2 ev.wav
same r2/outputs.npy "$MODEL"

for f in v3 ev M log; do
  ext=wav; [ $f = M ] && ext=safetensors; [ $f = log ] && ext=csv
  same "$f.$ext" "$f.orig"
done
no_tmp

# What the guard lets through: a model replaced by train -o, a log and a
# curve replaced by a new one, an earlier run's results replaced.
"$CBRNN" train -q "${TINY[@]}" --log log.csv -o m.safetensors ev.wav >/dev/null 2>err.txt ||
  fail "train -o over its earlier model: $(cat err.txt)"
for i in 1 2; do
  "$CBRNN" run --quiet --model M.safetensors --out-dir r --save-model a.safetensors ev.wav \
    2>err.txt || fail "run $i into r: $(cat err.txt)"
  "$CBRNN" summary r/frames.csv --curve curve.csv >/dev/null 2>err.txt ||
    fail "--curve $i: $(cat err.txt)"
done
expect 2 "--curve r/files.csv: is the same file as the input r/files.csv" \
  "$CBRNN" summary r/frames.csv --curve r/files.csv
# A safetensors file this build cannot load (a newer format, a damaged
# model) is no less precious: only a model output may replace a model, and
# none replaces one it cannot read.
set_meta M.safetensors N.safetensors format cbrnn-9 || fail "writing N.safetensors"
cp N.safetensors N.orig
expect 2 "--outputs N.safetensors: exists and is a safetensors file that this build cannot load" \
  "$CBRNN" eval M.safetensors ev.wav --outputs N.safetensors
expect 2 "-o N.safetensors: exists and is a safetensors file that this build cannot load" \
  "$CBRNN" features ev.wav -o N.safetensors
cmp -s N.safetensors N.orig || fail "N.safetensors changed"
# A path of 1024 bytes and more, which libsndfile refuses by name: a
# recording there is read like any other, and still never replaced.
long=.
for _ in 1 2 3 4 5 6 7 8 9 10 11; do long=$long/$(printf '%0100d' 0); done
mkdir -p "$long" && cp ev.wav "$long/ev.wav"
"$CBRNN" eval M.safetensors "$long/ev.wav" >long.txt 2>err.txt ||
  fail "eval of a file at a ${#long}-byte path: $(cat err.txt)"
"$CBRNN" eval M.safetensors ev.wav >short.txt 2>&1
[ "$(tail -n1 long.txt)" = "$(tail -n1 short.txt)" ] ||
  fail "a ${#long}-byte path scored otherwise: $(tail -n1 long.txt) / $(tail -n1 short.txt)"
expect 2 "ev.wav: exists and is an audio file" \
  "$CBRNN" eval M.safetensors v3.wav --outputs "$long/ev.wav"
cmp -s "$long/ev.wav" ev.orig || fail "the recording at a long path was replaced"
no_tmp
echo "cli_output_guard: ok"
