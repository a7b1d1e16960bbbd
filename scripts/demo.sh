#!/bin/sh
# The README's main job. Installs what is missing, builds, and runs cbrnn on
# the shipped samples: at this stage, the feature front end on a sample of
# each voice, with a summary of what came out.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"
"$top/scripts/build.sh" "$top/build"
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
for f in "$top"/samples/voiceA_us_male_1.wav "$top"/samples/voiceB_gb_female_1.wav; do
  "$top/build/cli/cbrnn" features "$f" -o "$out/f.npy"
  /usr/bin/python3 - "$f" "$out/f.npy" <<'PY'
import sys, numpy as np
x = np.load(sys.argv[2])
print("%s: %d frames x %d log-mel bands; mean %.2f, min %.2f, max %.2f"
      % (sys.argv[1].rsplit("/", 1)[-1], x.shape[0], x.shape[1], x.mean(), x.min(), x.max()))
PY
done
