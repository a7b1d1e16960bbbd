# shellcheck shell=sh
# scripts/lib/corpus_dir.sh: where the corpus scripts find the corpus and
# put their results. Sourced (POSIX sh) by samples/train_default.sh,
# scripts/speech_ablation.sh, scripts/online_rules.sh and
# scripts/adaptation.sh. Never fetches into a folder the user did not mean:
# a mistyped CORPUS_DIR must stop with a message, not start a download of
# 300 MB (950 MB unpacked, docs/CORPUS.md) into the typo.

# abs_path PATH: PATH made absolute against the current folder (links and
# .. are left as they are). The @lists the scripts write hold CORPUS/...
# paths, and cbrnn reads a list's relative entries against the list's own
# folder, so a relative CORPUS_DIR would point elsewhere from there.
abs_path() {
  case $1 in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s/%s\n' "$(pwd)" "$1" ;;
  esac
}

# corpus_default: the folder scripts/corpus.sh fetches into by default.
corpus_default() {
  printf '%s/cbrnn-corpus\n' "${XDG_CACHE_HOME:-$HOME/.cache}"
}

# corpus_ready SCRIPT TOP CORPUS FETCH: returns when CORPUS holds a fetched
# corpus (its splits.tsv, which scripts/corpus.sh writes last). Otherwise
# runs TOP/scripts/corpus.sh into CORPUS when CORPUS is the default folder
# or FETCH is 1, and stops the caller (exit 2) with a message naming the
# folder and what it lacks when it is any other folder.
corpus_ready() {
  [ -f "$3/splits.tsv" ] && return 0
  if [ "$4" = 1 ] || [ "$3" = "$(corpus_default)" ]; then
    "$2/scripts/corpus.sh" --dir "$3"
    [ -f "$3/splits.tsv" ] && return 0
    echo "$1: scripts/corpus.sh wrote no $3/splits.tsv" >&2
    exit 1
  fi
  if [ ! -e "$3" ]; then
    echo "$1: corpus folder '$3' does not exist" >&2
  elif [ ! -d "$3" ]; then
    echo "$1: corpus folder '$3' is not a folder" >&2
  else
    echo "$1: corpus folder '$3' holds no splits.tsv (scripts/corpus.sh writes it last):" \
      "not a fetched corpus, or an unfinished fetch" >&2
  fi
  echo "$1: give the folder scripts/corpus.sh fetched into (default $(corpus_default))," \
    "or add --fetch to fetch the corpus (about 300 MB to download) into '$3'" >&2
  exit 2
}

# corpus_options SCRIPT FILE FROM MAX "$@": the options every corpus script
# takes before its arguments. Sets fetch (1 with --fetch, else 0) and
# opts_used (how many arguments the options took: the caller shifts them).
# --help prints FILE's header from the line at sed address FROM to
# `set -eu` and exits 0; an unknown option, or more than MAX arguments
# after the options, exits 2.
# shellcheck disable=SC2034 # fetch and opts_used are read by the caller
corpus_options() {
  _name=$1 _file=$2 _from=$3 _max=$4
  shift 4
  fetch=0 opts_used=0
  while [ $# -gt 0 ]; do
    case $1 in
      --fetch) fetch=1 ;;
      -h|--help) sed -n "$_from,/^set -eu/p" "$_file" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
      --) opts_used=$((opts_used + 1)); shift; break ;;
      -*) echo "$_name: unknown option '$1' (see --help)" >&2; exit 2 ;;
      *) break ;;
    esac
    opts_used=$((opts_used + 1))
    shift
  done
  [ $# -le "$_max" ] || { echo "$_name: too many arguments (see --help)" >&2; exit 2; }
}

# out_dir_check SCRIPT OUT ORDER: stops the caller (exit 2) when OUT, its
# output folder, is the corpus (arguments given in the wrong ORDER, which
# the message spells out) or is not a folder.
out_dir_check() {
  if [ -f "$2/splits.tsv" ]; then
    echo "$1: OUT_DIR '$2' holds a corpus (splits.tsv): the order is $3 (see --help)" >&2
    exit 2
  fi
  if [ -e "$2" ] && [ ! -d "$2" ]; then
    echo "$1: OUT_DIR '$2' is not a folder" >&2
    exit 2
  fi
}
