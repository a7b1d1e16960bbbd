#!/bin/sh
# The README's main job: the live demo. Installs what is missing, builds,
# then runs the cerebellum learning online inside JACK:
#   - joins the running JACK server, or starts one on the dummy backend
#     (no sound card needed) under its own name and stops it at the end;
#   - starts two cbrnn-jack clients on the shipped default model (trained
#     on the training split of a real multi-speaker corpus): one learning
#     online, one frozen for comparison;
#   - plays a real voice the model never heard (Italian, male: the test
#     split's speaker Carlo, samples/real_it_carlo.wav) into both;
#   - prints, second by second, the prediction loss of each, so you see the
#     learning one fall below the frozen one as its cerebellum adapts;
#   - stops everything it started.
# Fails (non-zero exit, with a message) when the clip is missing or not
# audio, or when the player fails; stops what it started either way.
# Installs only what the build and the demo need (scripts/deps.sh --demo).
# Usage: scripts/demo.sh [AUDIO_FILE]   (default samples/real_it_carlo.wav)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
case ${1:-} in -h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;; esac
[ $# -le 1 ] || { echo "demo: one audio file at most (usage: scripts/demo.sh [AUDIO_FILE])" >&2; exit 2; }
clip=${1:-"$top/samples/real_it_carlo.wav"}
# Before installing or building anything: a mistyped name costs nothing.
if [ ! -f "$clip" ] || [ ! -r "$clip" ]; then
  echo "demo: audio file '$clip' not found or not readable" >&2
  exit 2
fi
"$top/scripts/deps.sh" --demo
"$top/scripts/build.sh" "$top/build"
bin="$top/build"
model="$top/samples/default.safetensors"
work=$(mktemp -d)
started=""
jackd_pid=""

cleanup() {
  for p in $started; do kill -TERM "$p" 2>/dev/null || true; done
  for p in $started; do wait "$p" 2>/dev/null || true; done
  if [ -n "$jackd_pid" ]; then
    kill -TERM "$jackd_pid" 2>/dev/null || true
    wait "$jackd_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The clip must be audio libsndfile reads (the player's front end): its
# features, computed the way cbrnn-jack will, say so before JACK starts.
if ! "$bin/cli/cbrnn" features "$clip" -o "$work/clip.npy" >"$work/clip.log" 2>&1; then
  cat "$work/clip.log" >&2
  echo "demo: '$clip' is not audio cbrnn can read" >&2
  exit 2
fi

export JACK_NO_AUDIO_RESERVATION=1
if jack_lsp >/dev/null 2>&1; then
  echo "demo: a JACK server is running: joining it"
else
  export JACK_DEFAULT_SERVER="cbrnn-demo-$$"
  echo "demo: no JACK server running: starting jackd on the dummy backend (48 kHz, 256-frame periods)"
  "$top/scripts/jack_clean.sh"
  jackd -n "$JACK_DEFAULT_SERVER" -r -d dummy -r 48000 -p 256 >"$work/jackd.log" 2>&1 &
  jackd_pid=$!
  i=0
  until jack_lsp >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$jackd_pid" 2>/dev/null; then
      cat "$work/jackd.log" >&2
      echo "demo: jackd did not start" >&2
      exit 1
    fi
    sleep 0.1
  done
fi

for mode in learn frozen; do
  flag=--no-learn; [ $mode = learn ] && flag=--learn
  "$bin/plugin/cbrnn-jack" --name "cbrnn-$mode" --model "$model" $flag --outputs 0 \
    --log "$work/$mode.csv" --quiet &
  started="$started $!"
done
for mode in learn frozen; do
  i=0
  until jack_lsp 2>/dev/null | grep -qx "cbrnn-$mode:input"; do
    i=$((i + 1)); [ $i -gt 100 ] && { echo "demo: cbrnn-$mode did not start" >&2; exit 1; }
    sleep 0.1
  done
done

echo "demo: model $(basename "$model") (real voices, 22 languages); playing $(basename "$clip") (a voice and"
echo "      language it never heard) into"
echo "      cbrnn-learn (cerebellum learning online, by the model's rule: RLS) and cbrnn-frozen (no learning)"
"$bin/plugin/cbrnn-jackplay" --name cbrnn-demo-player --connect cbrnn-learn:input \
  --connect cbrnn-frozen:input "$clip" &
player=$!
started="$started $player"

# Follow both per-frame logs and print one line per second of speech.
/usr/bin/python3 - "$work/learn.csv" "$work/frozen.csv" "$player" <<'PY'
import csv, os, sys, time

def rows(path):
    try:
        with open(path) as f:
            return [r for r in csv.DictReader(f) if r.get("flags") not in (None, "")]
    except OSError:
        return []

def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False

learn_path, frozen_path, player = sys.argv[1], sys.argv[2], int(sys.argv[3])
start = {}      # per log: the time speech began (first frame unlike the last)
printed = 0
half = {"learn": [], "frozen": [], "pers": []}
print("%6s  %13s  %11s  %16s  %11s" % ("second", "loss learning", "loss frozen", "learning/frozen", "persistence"))
def seconds(path, key):
    out = {}
    for r in rows(path):
        if r["loss"] == "":
            continue
        if key not in start:
            if float(r["persistence_loss"] or 0) <= 1e-6:
                continue
            start[key] = float(r["time"])
        s = int(float(r["time"]) - start[key])
        out.setdefault(s, []).append((float(r["loss"]), float(r["persistence_loss"])))
    return out
done = False
while True:
    finished = not alive(player)
    a, b = seconds(learn_path, "learn"), seconds(frozen_path, "frozen")
    # a second is complete once both logs have moved past it
    last = min(max(a, default=-1), max(b, default=-1)) - (0 if finished else 1)
    while printed <= last:
        if printed in a and printed in b:
            la = sum(x for x, _ in a[printed]) / len(a[printed])
            lb = sum(x for x, _ in b[printed]) / len(b[printed])
            lp = sum(p for _, p in b[printed]) / len(b[printed])
            if lp > 1e-3:  # skip the silence after the clip
                half["learn"].append(la)
                half["frozen"].append(lb)
                half["pers"].append(lp)
                print("%6d  %13.4f  %11.4f  %16.2f  %11.4f" % (printed + 1, la, lb, la / lb, lp),
                      flush=True)
        printed += 1
    if finished:
        break
    time.sleep(0.5)
n = len(half["learn"])
if n >= 2:
    la = sum(half["learn"][n // 2:]) / len(half["learn"][n // 2:])
    lb = sum(half["frozen"][n // 2:]) / len(half["frozen"][n // 2:])
    lp = sum(half["pers"][n // 2:]) / len(half["pers"][n // 2:])
    print("second half of the clip: mean loss %.4f learning vs %.4f frozen (%.0f%% lower);"
          % (la, lb, 100 * (1 - la / lb)))
    print("skill against persistence (%.4f): %.3f learning, %.3f frozen"
          % (lp, 1 - la / lp, 1 - lb / lp))
    print("(loss: mean squared error of the next-frame prediction of the normalised log-mel")
    print(" features; persistence: the loss of predicting that nothing changes)")
PY
status=0
wait "$player" || status=$?
if [ "$status" -ne 0 ]; then
  echo "demo: the player (cbrnn-jackplay) failed with exit status $status; stopping what it started" >&2
  exit 1
fi
echo "demo: done; stopping what it started"
