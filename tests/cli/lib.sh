# lib.sh: what the tests/cli scripts share (sourced, after CBRNN SAMPLES
# WORKDIR are read): the work folder made afresh and entered, fail, and
# the checks every case makes.
# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source it
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
IN=$SAMPLES/voiceA_us_male_1.wav
MODEL=$SAMPLES/default.safetensors
TINY=(--hidden 16 --cb 16 --warmup-steps 20 --steps 20 --seq-len 20 --batch 4)

fail() { echo "FAIL: $*" >&2; exit 1; }

# expect STATUS TEXT CMD...: CMD exits STATUS and says TEXT on stderr
# (its stdout in out.txt, its stderr in err.txt).
expect() {
  local want=$1 text=$2 rc
  shift 2
  "$@" >out.txt 2>err.txt; rc=$?
  [ "$rc" -eq "$want" ] || fail "$*: exit $rc, expected $want ($(cat err.txt))"
  grep -qF -- "$text" err.txt || fail "$*: stderr lacks '$text': $(cat err.txt)"
  if grep -q "Sanitizer\|runtime error" err.txt; then fail "$*: sanitizer report"; fi
  echo "ok   $*: $(tail -n1 err.txt)"
}

# No temporary (NAME.tmp.HOST.PID) anywhere below the work folder.
no_tmp() {
  local left
  left=$(find . -name '*.tmp.*')
  [ -z "$left" ] || fail "temporaries left behind: $left"
}

# same FILE COPY: FILE still holds what COPY holds.
same() { cmp -s "$1" "$2" || fail "$1 changed"; }

# set_meta IN OUT KEY VALUE [KEY VALUE ...]: a copy of the model IN with
# these metadata keys set (a foreign, newer or hostile file for a test).
set_meta() {
  /usr/bin/python3 - "$@" <<'PY'
import json, struct, sys
src, dst, kv = sys.argv[1], sys.argv[2], sys.argv[3:]
d = open(src, "rb").read()
n = struct.unpack("<Q", d[:8])[0]
h = json.loads(d[8:8 + n])
for k, v in zip(kv[::2], kv[1::2]):
    h["__metadata__"][k] = v
b = json.dumps(h).encode()
b += b" " * (-len(b) % 8)
open(dst, "wb").write(struct.pack("<Q", len(b)) + b + d[8 + n:])
PY
}
