#!/bin/sh
# The perturbed-feedback experiment of docs/ADAPTATION.md ("Perturbed
# feedback"), rerunnable in about a minute: the default model listens to
# its own perturbed feedback (--feedback-to-model), a real voice it never
# heard (samples/real_it_carlo.wav, brought to 48 kHz as a JACK server
# runs), through `cbrnn run` (the engine and perturbation code cbrnn-jack
# runs). Four runs over the same samples:
#   adapt    learning on, the schedule: baseline 20 s at -1 semitone, the
#            perturbation 30 s at +1 (a 2-semitone step up, 50 ms ramp),
#            washout at -1 again;
#   control  learning on, -1 semitone throughout (no step);
#   frozen   learning off, the schedule;
#   fcontrol learning off, -1 semitone throughout.
# Baseline and washout sit at -1, not 0, so that the shifter processes the
# signal alike in every phase (at exactly 0 semitones Rubber Band leaves
# the signal nearly untouched, and its processing alone changes the loss
# more than the pitch step does; see docs/ADAPTATION.md).
# Writes docs/figures/perturb.png and docs/figures/perturb.json, and prints
# the numbers; with REPLICATES=N also docs/figures/perturb_spread.json.
# Usage: [REPLICATES=N] scripts/perturb_adaptation.sh [OUT_DIR]
set -eu
usage() { echo "usage: [REPLICATES=N] scripts/perturb_adaptation.sh [OUT_DIR] (see --help)" >&2; exit 2; }
case ${1:-} in
  -h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
  -*) echo "perturb_adaptation.sh: unknown option '$1'" >&2; usage ;;
esac
[ $# -le 1 ] || { echo "perturb_adaptation.sh: one OUT_DIR at most" >&2; usage; }
if [ $# -eq 1 ] && [ -e "$1" ] && [ ! -d "$1" ]; then
  echo "perturb_adaptation.sh: OUT_DIR '$1' is not a folder" >&2; usage
fi
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/build.sh" "$top/build" >/dev/null
cbrnn="$top/build/cli/cbrnn"
model="$top/samples/default.safetensors"
out=${1:-$(mktemp -d)}
mkdir -p "$out"
# Without dither (-D): the same bytes every run. Sox dithers by default,
# and that noise (at -96 dBFS) moves the 10 s costs below by up to a few
# thousandths: REPLICATES=N reruns the experiment on N dithered copies and
# prints each number's mean and spread over them.
sox "$top/samples/real_it_carlo.wav" -D -r 48000 "$out/voice48.wav"
cat > "$out/schedule.txt" <<'S'
# baseline at -1 semitone, a 2-semitone step up, washout back at -1
0      phase baseline
0      pitch -1
20s    phase perturbation
20s    pitch 1 ramp 50ms
50s    phase washout
50s    pitch -1 ramp 50ms
S
run() { # DIR WAV NAME LEARN ARGS...
  dir=$1 wav=$2 name=$3 learn=$4
  shift 4
  "$cbrnn" run --quiet --model "$model" "$learn" --feedback-to-model --out-dir "$dir/$name" \
    "$@" "$wav"
}
experiment() { # DIR WAV: the four runs
  run "$1" "$2" adapt --learn --schedule "$out/schedule.txt"
  run "$1" "$2" control --learn --perturb-pitch -1
  run "$1" "$2" frozen --no-learn --schedule "$out/schedule.txt"
  run "$1" "$2" fcontrol --no-learn --perturb-pitch -1
}
experiment "$out" "$out/voice48.wav"
echo "perturb_adaptation: runs in $out" >&2
/usr/bin/python3 "$top/scripts/plot_perturb.py" "$out" \
  --png "$top/docs/figures/perturb.png" --json "$top/docs/figures/perturb.json"
k=1
while [ "$k" -le "${REPLICATES:-0}" ]; do
  mkdir -p "$out/rep$k"
  sox "$top/samples/real_it_carlo.wav" -r 48000 "$out/rep$k/voice48.wav" # dithered: new noise
  experiment "$out/rep$k" "$out/rep$k/voice48.wav"
  /usr/bin/python3 "$top/scripts/plot_perturb.py" "$out/rep$k" --json "$out/rep$k/perturb.json" \
    >/dev/null
  k=$((k + 1))
done
if [ "${REPLICATES:-0}" -gt 0 ]; then
  /usr/bin/python3 "$top/scripts/plot_perturb.py" --spread "$out"/rep*/perturb.json \
    --json "$top/docs/figures/perturb_spread.json"
fi
