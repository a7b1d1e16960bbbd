#!/bin/sh
# corpus.sh: fetches a multi-speaker, multi-language corpus of real human
# speech shipped in Debian 12 packages into a cache folder (never into the
# repository), then writes its manifest and its speaker/language-disjoint
# train/valid/test lists. See docs/CORPUS.md for what the packages hold,
# their licences and the measured table.
#
#   scripts/corpus.sh [--packages LIST] [--dir CACHE] [--no-split]
#
#   --packages LIST  comma-separated Debian packages (default: all of
#                    tuxpaint-stamps-default, klettres-data, ktuberling-data,
#                    asterisk-core-sounds-{en,es,fr,it,ru}-g722)
#   --dir CACHE      cache folder (default: $XDG_CACHE_HOME/cbrnn-corpus,
#                    else ~/.cache/cbrnn-corpus)
#   --no-split       write the manifest only
#
# Steps, each skipped when its result is already in CACHE:
#   1. apt-get download PACKAGE          -> CACHE/debs/
#   2. dpkg -x                           -> CACHE/pkg/PACKAGE/
#   3. G.722 (asterisk) -> 16 kHz WAV    -> CACHE/decoded/PACKAGE/  (corpus_g722.py, ffmpeg)
#   4. scripts/corpus_manifest.py        -> CACHE/manifest.tsv, CACHE/skipped.tsv
#   5. scripts/corpus_split.py           -> CACHE/{train,valid,test}.txt, CACHE/splits.tsv,
#                                           per group CACHE/SPLIT-GROUP.txt, CACHE/speakers/
# The lists are @list files for `cbrnn train` / `cbrnn eval` (paths relative
# to CACHE, so the folder can be moved).
set -eu

ALL="tuxpaint-stamps-default,klettres-data,ktuberling-data,asterisk-core-sounds-en-g722,\
asterisk-core-sounds-es-g722,asterisk-core-sounds-fr-g722,asterisk-core-sounds-it-g722,\
asterisk-core-sounds-ru-g722"
PACKAGES="$ALL"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/cbrnn-corpus"
SPLIT=1
HERE="$(cd "$(dirname "$0")" && pwd)"
PY=/usr/bin/python3

usage() {
  sed -n '2,/^set -eu/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
  case "$1" in
    --packages) [ $# -ge 2 ] || { echo "corpus: --packages needs a list" >&2; exit 2; }
                PACKAGES="$2"; shift 2 ;;
    --dir)      [ $# -ge 2 ] || { echo "corpus: --dir needs a folder" >&2; exit 2; }
                CACHE="$2"; shift 2 ;;
    --no-split) SPLIT=0; shift ;;
    -h|--help)  usage; exit 0 ;;
    *) echo "corpus: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

mkdir -p "$CACHE/debs" "$CACHE/pkg" "$CACHE/decoded"
CACHE="$(cd "$CACHE" && pwd)"
PKGS="$(echo "$PACKAGES" | tr ',' ' ')"
[ -n "$(echo "$PKGS" | tr -d ' ')" ] || { echo "corpus: --packages is empty" >&2; exit 2; }

for p in $PKGS; do
  case "$p" in
    qabcs-data) echo "corpus: $p is synthetic speech (TTS), not used" >&2; exit 2 ;;
  esac
  "$PY" "$HERE/corpus_manifest.py" --check-package "$p" || exit 2
done

need() {
  command -v "$1" >/dev/null 2>&1 || {
    echo "corpus: '$1' is missing (Debian package $2; scripts/deps.sh installs it)" >&2
    exit 1
  }
}
need apt-get apt
need dpkg dpkg

# 1 + 2: download and unpack.
for p in $PKGS; do
  deb="$(ls "$CACHE/debs/${p}_"*.deb 2>/dev/null | head -n 1 || true)"
  if [ -z "$deb" ]; then
    echo "corpus: downloading $p" >&2
    # apt's _apt user cannot write into most folders; that only costs a warning.
    (cd "$CACHE/debs" && apt-get download -q "$p" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2) || true
    deb="$(ls "$CACHE/debs/${p}_"*.deb 2>/dev/null | head -n 1 || true)"
    [ -n "$deb" ] || { echo "corpus: apt-get download $p failed (see above)" >&2; exit 1; }
  fi
  if [ ! -f "$CACHE/pkg/$p/.unpacked" ]; then
    echo "corpus: unpacking $(basename "$deb")" >&2
    rm -rf "$CACHE/pkg/$p"
    mkdir -p "$CACHE/pkg/$p"
    dpkg -x "$deb" "$CACHE/pkg/$p"
    touch "$CACHE/pkg/$p/.unpacked"
  fi
done

# 3: G.722 -> 16 kHz 16-bit WAV (scripts/corpus_g722.py, through ffmpeg:
# neither libsndfile nor sox reads G.722; libspandsp has a codec but no tool).
for p in $PKGS; do
  case "$p" in *-g722) ;; *) continue ;; esac
  [ -f "$CACHE/decoded/$p/.decoded" ] && continue
  need ffmpeg ffmpeg
  echo "corpus: decoding G.722 of $p" >&2
  rm -rf "$CACHE/decoded/$p"
  "$PY" "$HERE/corpus_g722.py" "$CACHE/pkg/$p" "$CACHE/decoded/$p"
  touch "$CACHE/decoded/$p/.decoded"
done

# 4 + 5: manifest and splits.
"$PY" "$HERE/corpus_manifest.py" --dir "$CACHE" --packages "$PACKAGES"
if [ "$SPLIT" = 1 ]; then
  "$PY" "$HERE/corpus_split.py" --dir "$CACHE"
fi
