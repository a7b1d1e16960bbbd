#!/bin/sh
# Trains samples/default.safetensors, the model cbrnn ships: the recorded
# command, so anyone can rebuild it (same seed, same parameters; only the
# date in its metadata changes unless SOURCE_DATE_EPOCH is set).
#
#   voice A only (samples/voiceA_us_male_*.wav): files 1-3 train, file 4 is
#   held out for validation. Voice B (voiceB_gb_female_*) is never used: it
#   is the unheard voice of the adaptation demos.
#   readout wiring (the seed's CBRNN), predict target, 1 frame (10 ms) ahead;
#   cortex 128, cerebellum 256 (65064 parameters, 260 kB): one frame costs
#   about 65k multiply-adds forward, far below one core's budget at 100
#   frames/s, leaving room for online learning.
#   600 warm-up steps (everything trains), then 400 with the cortex frozen;
#   Adam, lr 3e-3, batches of 16 windows of 100 frames; seed 1.
#   On the shared 2-core build machine this took 62-82 s of wall time.
#
# usage: samples/train_default.sh [CBRNN]   (default: build/cli/cbrnn, or $CBRNN)
# Prints the training progress; writes samples/default.safetensors
# atomically and the training log to samples/default_train.csv.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cbrnn=${1:-${CBRNN:-$here/../build/cli/cbrnn}}
[ -x "$cbrnn" ] || { echo "train_default.sh: $cbrnn not found: build first (scripts/build.sh)" >&2; exit 2; }
case $cbrnn in /*) ;; *) cbrnn=$(pwd)/$cbrnn ;; esac
cd "$here"
"$cbrnn" train -o default.safetensors --log default_train.csv \
  --target predict --horizon 1 --wiring readout --arch cbrnn \
  --hidden 128 --cb 256 --activation tanh --alpha 1 \
  --optimizer adam --lr 3e-3 --clip 1 --batch 16 --seq-len 100 \
  --warmup-steps 600 --steps 400 --eval-every 100 --seed 1 \
  --val-files voiceA_us_male_4.wav \
  voiceA_us_male_1.wav voiceA_us_male_2.wav voiceA_us_male_3.wav
"$cbrnn" info default.safetensors
