# shellcheck shell=bash
# tests/scripts/lib.sh: what the tests of scripts/ and samples/train_default.sh
# share. Each test copies the scripts it checks into a tree of its own
# (WORK/tree: scripts/, samples/) with stubs for what must not run here
# (scripts/corpus.sh, scripts/build.sh, scripts/deps.sh) and a fake cbrnn
# (build/cli/cbrnn) that logs its arguments, checks that every input and
# every @list entry exists the way cbrnn resolves it (relative entries
# against the list's folder), and writes what each command writes. Never
# touches the repository's samples/ or the real corpus.

fail() { echo "FAIL: $*" >&2; exit 1; }

# expect_status WHAT WANT GOT
expect_status() { [ "$3" = "$2" ] || fail "$1: exit status: expected $2, got $3"; }

# expect_grep WHAT PATTERN FILE
expect_grep() {
  grep -q -- "$2" "$3" || { cat "$3" >&2; fail "$1: expected '$2' in $(basename "$3")"; }
}

# expect_same WHAT FILE CONTENT
expect_same() {
  [ "$(cat "$2")" = "$3" ] || fail "$1: $2: expected '$3', got '$(cat "$2")'"
}

# start_test SRC WORK: a fresh WORK holding the tree (t=WORK/tree) and a
# corpus "WORK/my corpus"; FAKE_LOG and XDG_CACHE_HOME point into WORK;
# the test goes on in WORK.
start_test() {
  work=$2 t=$2/tree
  rm -rf "$work"
  mkdir -p "$work" || fail "cannot make $work"
  make_tree "$1" "$t"
  make_corpus "$work/my corpus"
  export FAKE_LOG=$work/cbrnn.log XDG_CACHE_HOME=$work/cache
  cd "$work" || fail "cd $work"
}

# make_tree SRC TREE: copies the scripts under test and writes the stubs
# and the fake cbrnn. corpus.sh stub: logs its call to TREE/corpus.calls and
# writes a small corpus (make_corpus) into its --dir.
make_tree() {
  local src=$1 t=$2
  mkdir -p "$t/scripts/lib" "$t/samples" "$t/build/cli" "$t/build/plugin"
  cp "$src"/scripts/*.sh "$t/scripts/"
  cp "$src"/scripts/lib/*.sh "$t/scripts/lib/"
  cp "$src/samples/train_default.sh" "$t/samples/"
  cp "$src/tests/scripts/lib.sh" "$t/lib.sh"
  printf 'shipped model\n' > "$t/samples/default.safetensors"
  printf 'shipped log\n' > "$t/samples/default_train.csv"
  cat > "$t/scripts/corpus.sh" <<STUB
#!/bin/bash
# stub of scripts/corpus.sh: logs the call, writes a small corpus
echo "corpus.sh \$*" >> "$t/corpus.calls"
[ "\$1" = --dir ] || exit 3
. "$t/lib.sh"
make_corpus "\$2"
STUB
  printf '#!/bin/sh\necho "build.sh $*" >> "%s/build.calls"\n' "$t" > "$t/scripts/build.sh"
  printf '#!/bin/sh\necho "deps.sh $*" >> "%s/deps.calls"\n' "$t" > "$t/scripts/deps.sh"
  printf 'import sys\nprint("report", *sys.argv[1:])\n' > "$t/scripts/speech_report.py"
  printf 'import sys\nprint("report", *sys.argv[1:])\n' > "$t/scripts/online_report.py"
  write_fake_cbrnn "$t/build/cli/cbrnn"
  chmod +x "$t"/scripts/*.sh "$t/build/cli/cbrnn"
}

# make_corpus DIR: splits.tsv (the columns of scripts/corpus.sh) and its
# files: two training files, one validation file, one 8 kHz training file
# (left out by split_files), and a test speaker with three 40 s files
# (online_rules.sh: its minute is the first two).
make_corpus() {
  local d=$1 f
  mkdir -p "$d/a b" "$d/t"
  printf 'path\tpackage\tlanguage\tgroup\tspeaker\tseconds\trate\tchannels\tsha1\tsplit\n' \
    > "$d/splits.tsv"
  for f in "a b/t1.wav:s1:train:16000" "a b/t2.wav:s1:train:22050" "a b/v1.wav:s2:valid:16000" \
           "a b/tel.wav:s3:train:8000" "t/x1.wav:it:test:16000" "t/x2.wav:it:test:16000" \
           "t/x3.wav:it:test:16000"; do
    IFS=: read -r path spk split rate <<< "$f"
    printf 'RIFF fake audio\n' > "$d/$path"
    printf '%s\tpkg\tll\tg\t%s\t40\t%s\t1\t0\t%s\n' "$path" "$spk" "$rate" "$split" >> "$d/splits.tsv"
  done
}

# write_fake_cbrnn PATH: FAKE_LOG (file) gets one line per call and one
# "input PATH" line per input; FAKE_MODE=interrupt makes train save its -o
# and exit 130 (as cbrnn does on Ctrl-C), FAKE_MODE=fail exit 1 without one,
# FAKE_MODE=wait train until SIGINT (touching FAKE_LOG.training when it
# starts), then save and exit 130.
write_fake_cbrnn() {
  cat > "$1" <<'FAKE'
#!/bin/bash
log=${FAKE_LOG:-/dev/null}
cmd=$1; shift
{ printf '%s' "$cmd"; printf ' [%s]' "$@"; echo; } >> "$log"
input() {
  if [ "${1#@}" != "$1" ]; then
    local l=${1#@} e f
    [ -f "$l" ] || { echo "fake cbrnn: list $l not found" >&2; exit 2; }
    while IFS= read -r e; do
      [ -n "$e" ] || continue
      case $e in /*) f=$e ;; *) f=$(dirname "$l")/$e ;; esac
      [ -f "$f" ] || { echo "fake cbrnn: $l: $f not found" >&2; exit 2; }
      echo "input $f" >> "$log"
    done < "$l"
  else
    [ -f "$1" ] || { echo "fake cbrnn: $1 not found" >&2; exit 2; }
    echo "input $1" >> "$log"
  fi
}
o="" trainlog="" outdir="" save="" pos=()
while [ $# -gt 0 ]; do
  case $1 in
    -q|--quiet|--learn|--no-learn|--json|--deltas) shift ;;
    -o) o=$2; shift 2 ;;
    --log) trainlog=$2; shift 2 ;;
    --out-dir) outdir=$2; shift 2 ;;
    --save-model) save=$2; shift 2 ;;
    --val-files|--linear-fit) input "$2"; shift 2 ;;
    -*) shift 2 ;;
    *) pos+=("$1"); shift ;;
  esac
done
case $cmd in
  train)
    for p in "${pos[@]}"; do input "$p"; done
    [ "${FAKE_MODE:-ok}" = fail ] && { echo "fake cbrnn: training failed" >&2; exit 1; }
    if [ "${FAKE_MODE:-ok}" = wait ]; then # until SIGINT, then what cbrnn does
      trap 'echo half > "$o"; echo half > "$trainlog"; exit 130' INT
      touch "$log.training"
      while :; do sleep 0.1; done
    fi
    printf 'model %s\n' "${FAKE_MODE:-ok}" > "$o"
    [ -z "$trainlog" ] || printf 'log %s\n' "${FAKE_MODE:-ok}" > "$trainlog"
    [ "${FAKE_MODE:-ok}" = interrupt ] && { echo "cbrnn train: interrupted: saved $o" >&2; exit 130; }
    exit 0 ;;
  info) [ -f "${pos[0]}" ] || exit 2; cat "${pos[0]}" ;;
  eval) input "${pos[0]}"; for p in "${pos[@]:1}"; do input "$p"; done; echo '{}' ;;
  run)
    for p in "${pos[@]}"; do input "$p"; done
    mkdir -p "$outdir" && echo "time,loss" > "$outdir/frames.csv"
    [ -z "$save" ] || echo model > "$save" ;;
  features)
    [ "$(head -c 4 "${pos[0]}" 2>/dev/null)" = RIFF ] ||
      { echo "cbrnn features: ${pos[0]}: not an audio file" >&2; exit 2; }
    echo npy > "$o" ;;
  *) echo "fake cbrnn: $cmd?" >&2; exit 2 ;;
esac
FAKE
}
