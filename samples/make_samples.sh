#!/bin/sh
# Regenerates the sample clips in samples/ from text with espeak-ng and sox
# (Debian packages espeak-ng and sox). Output is deterministic for a given
# espeak-ng version (the committed clips were made with 1.51).
#   voice A: espeak-ng en-us (American English, male), 16 kHz, 4 clips
#   voice B: espeak-ng en-gb-x-rp+f4 (British English, female variant
#            "f4"), 22.05 kHz, 4 clips
#   noise:   sox-made pink noise and two tones, 48 kHz
# All 16-bit PCM WAV, mono. The sentences below were written for this
# project and are released with it (GPL-3.0-or-later).
set -eu
cd "$(dirname "$0")"
command -v espeak-ng >/dev/null && command -v sox >/dev/null ||
  { echo "make_samples.sh: needs espeak-ng and sox (apt-get install espeak-ng sox)" >&2; exit 2; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# Four paragraphs, each about 16 s of speech; both voices read all four.
p1="The river was low that summer, and the stones along its bed had turned white in the sun. Children walked across where boats used to pass. An old man counted the days until the rain, marking each one with a notch on his door. When the clouds finally came, the whole town stood outside to watch."
p2="Please check the numbers before you send the report. The third column should add up to four hundred and twelve, not four hundred and twenty. If the totals still disagree, call the office on Monday morning and ask for the archive copy from last year."
p3="A quiet kitchen at dawn has its own music: the kettle begins to hiss, a spoon taps against a cup, and the refrigerator hums a single low note. Somewhere outside a bicycle bell rings twice, and a dog answers from across the street."
p4="Learning to play an instrument takes patience more than talent. You repeat a short phrase slowly, then a little faster, until your fingers remember it without you. Some weeks nothing seems to improve, and then one evening the whole piece suddenly flows."

speak() { # voice rate out text
  espeak-ng -v "$1" -s 150 -w "$tmp/raw.wav" "$4"
  sox -q "$tmp/raw.wav" -r "$2" -b 16 -c 1 "$3" norm -3
}
i=1
for p in "$p1" "$p2" "$p3" "$p4"; do
  speak en-us 16000 "voiceA_us_male_$i.wav" "$p"
  speak en-gb-x-rp+f4 22050 "voiceB_gb_female_$i.wav" "$p"
  i=$((i + 1))
done
# Non-speech: 4 s pink noise, then 3 s of a 440 Hz tone, then 3 s of a
# 1000->3000 Hz sweep, at 48 kHz.
sox -q -n -r 48000 -b 16 -c 1 "$tmp/n.wav" synth 4 pinknoise vol 0.3
sox -q -n -r 48000 -b 16 -c 1 "$tmp/t.wav" synth 3 sine 440 vol 0.5
sox -q -n -r 48000 -b 16 -c 1 "$tmp/s.wav" synth 3 sine 1000-3000 vol 0.5
sox -q "$tmp/n.wav" "$tmp/t.wav" "$tmp/s.wav" noise_tones_48k.wav
ls -l ./*.wav
