# jacklib.sh: shared helpers of the JACK integration tests (sourced).
# Every test starts its own jackd on the dummy backend under a server name
# of its own (JACK_DEFAULT_SERVER), so tests run in parallel and never
# touch a user's server, and stops everything it started on exit.
# The name is fixed per work folder, not per run: JACK keeps at most 8
# servers in its registry (/dev/shm) and frees the entry of a killed server
# only when a server of the same name starts again (see faults.sh).
# Arguments of every test: CBRNN_JACK JACKPLAY CBRNN SAMPLES WORKDIR.

set -u
JACKHOST=$1 JACKPLAY=$2 CBRNN=$3 SAMPLES=$4 WORK=$5
PY=${CBRNN_PYTHON:-/usr/bin/python3}
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
# Rescue copies (a save that failed) go to $XDG_STATE_HOME, else TMPDIR:
# both inside the work folder, never the user's home nor /tmp.
export XDG_STATE_HOME="$WORK/state" TMPDIR="$WORK/tmp"
mkdir -p "$XDG_STATE_HOME" "$TMPDIR"
export JACK_DEFAULT_SERVER="cbrnn-test-$(basename "$WORK")-$(printf '%s' "$WORK" | cksum | cut -d' ' -f1)"
export JACK_NO_AUDIO_RESERVATION=1
STARTED=""

cleanup() {
  for p in $STARTED; do kill -TERM "$p" 2>/dev/null; done
  # Up to 5 s for a clean exit: a jackd killed with SIGKILL keeps its slot
  # in JACK's registry (scripts/jack_clean.sh).
  for _ in $(seq 50); do
    alive=0
    for p in $STARTED; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in $STARTED; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "-- $*"; }

# start_jackd PERIOD [RATE]: jackd on the dummy backend at RATE Hz (48000
# unless given), no realtime scheduling (works unprivileged, in containers
# and in CI).
start_jackd() {
  jackd -n "$JACK_DEFAULT_SERVER" -r -d dummy -r "${2:-48000}" -p "$1" >jackd.log 2>&1 &
  JACKD=$!
  STARTED="$STARTED $JACKD"
  for _ in $(seq 100); do
    jack_lsp >/dev/null 2>&1 && return 0
    kill -0 "$JACKD" 2>/dev/null || break
    sleep 0.1
  done
  cat jackd.log >&2
  fail "jackd -n $JACK_DEFAULT_SERVER did not start"
}

# wait_port NAME: until the JACK port exists (10 s at most).
wait_port() {
  for _ in $(seq 100); do
    jack_lsp 2>/dev/null | grep -qx "$1" && return 0
    sleep 0.1
  done
  fail "port $1 never appeared"
}

# term_stalled PID STALLED WHY [ERR]: SIGTERM to the host PID while STALLED
# (a stopped process: jackd, a log's reader) holds it up; it must exit
# within 15 s (else STALLED is resumed and the test fails naming WHY). Sets
# RC to its exit status, resumes STALLED and prints the host's stderr (the
# file ERR, host.err unless given; /dev/null when stderr itself is the
# stalled FIFO: the caller prints it once read).
term_stalled() {
  local start=$SECONDS err=${4:-host.err}
  kill -TERM "$1"
  for _ in $(seq 150); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$1" 2>/dev/null; then
    kill -CONT "$2"
    cat "$err"
    fail "cbrnn-jack still running 15 s after SIGTERM with $3"
  fi
  wait "$1"; RC=$?
  kill -CONT "$2"
  cat "$err"
  note "exit $RC after $((SECONDS - start)) s"
}

# wait_said PID FILE REGEX SECONDS: until FILE (a host's stderr) has a line
# matching REGEX (grep -E), PID ends or SECONDS pass; 0 when it has one.
wait_said() {
  for _ in $(seq $(($4 * 10))); do
    grep -qE "$3" "$2" && return 0
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  grep -qE "$3" "$2"
}

# stopped PID: 0 once the process is stopped (state T), within 5 s.
stopped() {
  for _ in $(seq 50); do
    [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = T ] && return 0
    sleep 0.1
  done
  return 1
}

# stall_fifo FIFO OUT: makes FIFO with a reader (a cat into OUT, its pid in
# READER) that holds it open but is stopped, and fills the pipe (64 KiB)
# with lines 'pipe-filler-xyz' (16 bytes: a whole number of lines), so the
# first write of whoever opens FIFO next blocks. `kill -CONT "$READER"`
# lets it read again: OUT gets the filler, then what was written after.
stall_fifo() {
  mkfifo "$1" || fail "mkfifo $1"
  cat "$1" >"$2" &
  READER=$!
  STARTED="$STARTED $READER"
  exec 9>"$1" # returns once cat has its end open
  kill -STOP "$READER"
  stopped "$READER" || fail "the reader of $1 did not stop"
  timeout 1 yes pipe-filler-xyz >&9
  exec 9>&-
}

# refill_fifo FIFO: the pipe full again (its reader stopped beforehand).
refill_fifo() {
  timeout 1 yes pipe-filler-xyz >"$1"
}

# The model under test: the shipped default model, or (while it is not in
# the tree yet) a small one trained here on voice A.
pick_model() {
  if [ -f "$SAMPLES/default.safetensors" ]; then
    MODEL="$SAMPLES/default.safetensors"
  else
    note "samples/default.safetensors missing: training a small voice-A model"
    "$CBRNN" train -q -o small.safetensors --hidden 64 --cb 128 --warmup-steps 100 --steps 100 \
      "$SAMPLES"/voiceA_us_male_*.wav >train.log 2>&1 || { cat train.log; fail "cbrnn train"; }
    MODEL=$PWD/small.safetensors
  fi
}

# free_udp_port: a UDP port nobody listens on now.
free_udp_port() {
  "$PY" -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# same_weights A B: 0 if the two safetensors files hold the same tensors
# (names, shapes and bytes), whatever their metadata.
same_weights() {
  "$PY" "$(dirname "$0")/safetensors_diff.py" "$1" "$2" >/dev/null
}
