#!/bin/sh
# make_real_samples.sh: the two real-voice clips in samples/, cut from the
# TEST split of the speech corpus (scripts/corpus.sh; docs/CORPUS.md), so
# no training run of the default model has heard these speakers or
# languages:
#   real_it_carlo.wav  asterisk-core-sounds-it-g722, voice "Carlo" (Italian,
#                      male, continuous telephone prompts), CC-BY-3.0
#   real_el_tuxpaint.wav tuxpaint-stamps-default, the Greek voice (sentences
#                      describing the stamps), GPL-2+
# Each is the speaker's files in list order, concatenated until 65 s,
# mixed to mono and resampled to 16 kHz, 16-bit PCM (sox).
#   samples/make_real_samples.sh [CORPUS_DIR]   (default: fetch with corpus.sh)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
corpus=${1:-"${XDG_CACHE_HOME:-$HOME/.cache}/cbrnn-corpus"}
[ -f "$corpus/speakers/test-asterisk_Carlo.txt" ] || "$here/../scripts/corpus.sh" --dir "$corpus"
cut_clip() { # LIST OUT
  files=""; total=0
  while IFS= read -r f; do
    case $f in '#'*|'') continue ;; esac
    p="$corpus/speakers/$f"
    d=$(soxi -D "$p")
    files="$files $p"
    total=$(awk "BEGIN { print $total + $d }")
    awk "BEGIN { exit !($total >= 65) }" && break
  done < "$1"
  # shellcheck disable=SC2086
  sox $files -r 16000 -c 1 -b 16 "$2"
  echo "make_real_samples: $2: $(soxi -D "$2") s from$(echo $files | wc -w | sed 's/^/ /') files"
}
cut_clip "$corpus/speakers/test-asterisk_Carlo.txt" "$here/real_it_carlo.wav"
cut_clip "$corpus/speakers/test-tuxpaint_el.txt" "$here/real_el_tuxpaint.wav"
