#!/bin/sh
# make_real_samples.sh: the two real-voice clips in samples/, cut from the
# TEST split of the speech corpus (scripts/corpus.sh; docs/CORPUS.md), so
# no training run of the default model has heard these speakers or
# languages:
#   real_it_carlo.wav    asterisk-core-sounds-it-g722, voice "Carlo"
#                        (Italian, male, telephone prompts), CC-BY-3.0
#   real_el_tuxpaint.wav tuxpaint-stamps-default, the Greek voice
#                        (sentences describing the stamps), GPL-2+
# Each is the speaker's files in list order, concatenated until 65 s,
# mixed to mono and resampled to 16 kHz, 16-bit PCM (sox).
#   samples/make_real_samples.sh [CORPUS_DIR]         make both clips
#   samples/make_real_samples.sh --used NAME CORPUS   list the files a clip
#                                                     is made of (NAME: it_carlo, el_tuxpaint)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
used=""
if [ "${1:-}" = --used ]; then used=$2; shift 2; fi
corpus=${1:-"${XDG_CACHE_HOME:-$HOME/.cache}/cbrnn-corpus"}
[ -f "$corpus/speakers/test-asterisk_Carlo.txt" ] || "$here/../scripts/corpus.sh" --dir "$corpus"

# pick LIST: the files of the speaker's list, in order, until 65 s
pick() {
  total=0
  while IFS= read -r f; do
    case $f in '#'*|'') continue ;; esac
    p="$corpus/speakers/$f"
    echo "$p"
    total=$(awk "BEGIN { print $total + $(soxi -D "$p") }")
    awk "BEGIN { exit !($total >= 65) }" && break
  done < "$1"
}
list_of() {
  case $1 in
    it_carlo) echo "$corpus/speakers/test-asterisk_Carlo.txt" ;;
    el_tuxpaint) echo "$corpus/speakers/test-tuxpaint_el.txt" ;;
    *) echo "make_real_samples: unknown clip '$1'" >&2; exit 2 ;;
  esac
}
if [ -n "$used" ]; then
  pick "$(list_of "$used")"
  exit 0
fi
for name in it_carlo el_tuxpaint; do
  files=$(pick "$(list_of $name)")
  # shellcheck disable=SC2086
  sox -D $files -r 16000 -c 1 -b 16 "$here/real_$name.wav"  # -D: no dither, same bytes every time
  echo "make_real_samples: real_$name.wav: $(soxi -D "$here/real_$name.wav") s from" \
       "$(echo "$files" | wc -l) files"
done
