#!/bin/bash
# faults.sh [TRIALS]: what happens around cbrnn must never lose the model.
#  1. SIGKILL during saves, TRIALS times (default 200): tests/hardening/
#     save_loop saves two versions of the default model in turn to one path
#     through cbrnn_model_save as fast as it can and is killed at a random
#     moment; after each kill the path must load (`cbrnn info`) and hold
#     exactly one of the two versions (never a torn or mixed file).
#  2. SIGKILL of cbrnn-jack with --autosave 0.1 at a random moment, TRIALS/4
#     times (at least 10): the --save path loads after each kill.
#  3. The JACK server killed (SIGKILL, or SIGTERM) and restarted at once,
#     6 times: cbrnn-jack saves the adapted model, says why, exits 1, and
#     the saved file loads.
#  4. A full disk (a 1 MiB tmpfs mounted for the test; where mount is not
#     permitted, a file-size limit, RLIMIT_FSIZE, and the report says
#     which): a save fails with a message, the previous file is kept byte
#     for byte, no temporary file is left, cbrnn-jack keeps running and
#     saves again once there is room; `cbrnn train -o` onto the full disk
#     fails with a message (exit 1).
# Temporary files left by the killed savers are counted (a SIGKILL gives a
# process no chance to remove them). Prints the figures and a JSON line;
# exit 1 on any failure. Uses build/ (or $CBRNN_BUILD).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
trials=${1:-200}
build=${CBRNN_BUILD:-$top/build}
JACKHOST=$build/plugin/cbrnn-jack CBRNN=$build/cli/cbrnn
SAVELOOP=$build/tests/hardening/save_loop
MODEL=$top/samples/default.safetensors
for f in "$JACKHOST" "$CBRNN" "$SAVELOOP"; do
  [ -x "$f" ] || { echo "faults.sh: $f missing: build first (scripts/build.sh)" >&2; exit 2; }
done
work=$build/faults/run-$$
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
export JACK_DEFAULT_SERVER="cbrnn-faults-$$" JACK_NO_AUDIO_RESERVATION=1
STARTED="" MOUNTED=""
cleanup() {
  for p in $STARTED; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  [ -n "$MOUNTED" ] && umount "$MOUNTED" 2>/dev/null
  # semaphores of the servers killed with SIGKILL
  rm -f /dev/shm/jack_sem.*"$JACK_DEFAULT_SERVER"* 2>/dev/null
}
trap cleanup EXIT
FAILED=0
fail() { echo "faults.sh: FAIL: $*" >&2; FAILED=1; }
rand_ms() { printf '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 )); } # ms -> seconds

start_jackd() {
  jackd -n "$JACK_DEFAULT_SERVER" -r -d dummy -r 48000 -p 256 >>jackd.log 2>&1 &
  JACKD=$!
  STARTED="$STARTED $JACKD"
  for _ in $(seq 100); do
    jack_lsp >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "faults.sh: jackd did not start" >&2
  exit 1
}
wait_port() {
  for _ in $(seq 100); do
    jack_lsp 2>/dev/null | grep -qx "$1" && return 0
    sleep 0.1
  done
  return 1
}

# ---- 1: SIGKILL during cbrnn_model_save
"$SAVELOOP" --once "$MODEL" kill.safetensors || exit 1
ok1=0
for i in $(seq "$trials"); do
  "$SAVELOOP" "$MODEL" kill.safetensors >sl.out 2>sl.err &
  pid=$!
  for _ in $(seq 200); do [ -s sl.out ] && break; sleep 0.01; done
  sleep "$(rand_ms $((RANDOM % 300)))"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  rm -f sl.out
  if ! "$CBRNN" info kill.safetensors >/dev/null 2>info.err; then
    fail "trial $i: kill.safetensors does not load after SIGKILL: $(cat info.err)"
    cp kill.safetensors "unloadable-$i.safetensors"
  elif ! "$SAVELOOP" --check "$MODEL" kill.safetensors 2>check.err; then
    fail "trial $i: $(cat check.err)"
  else
    ok1=$((ok1 + 1))
  fi
done
tmp1=$(find . -maxdepth 1 -name '.kill.safetensors.*.tmp' | wc -l)
find . -maxdepth 1 -name '.kill.safetensors.*.tmp' -delete

# ---- 2: SIGKILL of cbrnn-jack while it autosaves every 0.1 s
start_jackd
jtrials=$(( trials / 4 < 10 ? 10 : trials / 4 ))
ok2=0 nosave2=0
for i in $(seq "$jtrials"); do
  "$JACKHOST" --name cbf --model "$MODEL" --learn --save live.safetensors --autosave 0.1 \
    >host.out 2>host.err &
  pid=$!
  wait_port cbf:input || { fail "trial $i: cbrnn-jack did not start: $(cat host.err)"; kill -KILL "$pid"; continue; }
  sleep "$(rand_ms $((200 + RANDOM % 1000)))"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  if [ ! -e live.safetensors ]; then
    nosave2=$((nosave2 + 1))
  elif "$CBRNN" info live.safetensors >/dev/null 2>info.err; then
    ok2=$((ok2 + 1))
  else
    fail "cbrnn-jack trial $i: live.safetensors does not load after SIGKILL: $(cat info.err)"
  fi
done
tmp2=$(find . -maxdepth 1 -name '.live.safetensors.*.tmp' | wc -l)
find . -maxdepth 1 -name '.live.safetensors.*.tmp' -delete

# ---- 3: the server killed and restarted under a learning client
ok3=0
for i in 1 2 3 4 5 6; do
  sig=$([ $((i % 2)) -eq 1 ] && echo KILL || echo TERM)
  rm -f srv.safetensors
  "$JACKHOST" --name cbs --model "$MODEL" --learn --save srv.safetensors --autosave 0.5 \
    >host.out 2>host3.err &
  pid=$!
  wait_port cbs:input || { fail "server trial $i: cbrnn-jack did not start"; continue; }
  sndfile-jackplay -l 0 -a cbs:input "$top/samples/noise_tones_48k.wav" >/dev/null 2>&1 &
  play=$!
  sleep "$(rand_ms $((1000 + RANDOM % 1500)))"
  kill "-$sig" "$JACKD"
  wait "$JACKD" 2>/dev/null
  start_jackd # at once, under the same name
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    fail "server trial $i ($sig): cbrnn-jack still running 10 s after the server went away"
    kill -KILL "$pid"
  fi
  wait "$pid"; rc=$?
  kill -KILL "$play" 2>/dev/null; wait "$play" 2>/dev/null
  if [ "$rc" -ne 1 ]; then
    fail "server trial $i ($sig): exit status $rc, expected 1"
  elif ! grep -q "the JACK server shut down" host3.err; then
    fail "server trial $i ($sig): no word about the server: $(tail -3 host3.err)"
  elif ! grep -q "saved srv.safetensors (server shutdown" host3.err; then
    fail "server trial $i ($sig): not saved at shutdown: $(tail -3 host3.err)"
  elif ! "$CBRNN" info srv.safetensors >/dev/null 2>&1; then
    fail "server trial $i ($sig): srv.safetensors does not load"
  else
    ok3=$((ok3 + 1))
  fi
done

# ---- 4: a full disk
mkdir -p full
if mount -t tmpfs -o size=1m tmpfs full 2>/dev/null; then
  MOUNTED=$work/full
  how="1 MiB tmpfs filled to the last block"
  cp "$MODEL" full/m.safetensors
  dd if=/dev/zero of=full/filler bs=4k 2>/dev/null # until ENOSPC
  limit=() # no per-process limit
else
  how="RLIMIT_FSIZE 128 kB (mount not permitted)"
  cp "$MODEL" full/m.safetensors
  limit=(bash -c 'trap "" XFSZ; ulimit -f 128; exec "$@"' limit)
fi
ok4=0 n4=3
[ -n "$MOUNTED" ] && n4=4
cp full/m.safetensors before.safetensors
if "${limit[@]}" "$SAVELOOP" --once "$MODEL" full/m.safetensors 2>once.err; then
  fail "full disk: the save succeeded"
elif ! grep -qE "No space left on device|File too large" once.err; then
  fail "full disk: no reason given: $(cat once.err)"
elif ! cmp -s before.safetensors full/m.safetensors; then
  fail "full disk: the previous file changed"
elif [ -n "$(find full -name '.*.tmp')" ]; then
  fail "full disk: a temporary file was left behind"
else
  ok4=$((ok4 + 1))
fi
"${limit[@]}" "$CBRNN" train -q -o full/t.safetensors --hidden 8 --cb 8 --warmup-steps 2 \
  --steps 2 --val-fraction 0 "$top/samples/voiceA_us_male_1.wav" 2>train.err; rc=$?
if [ "$rc" -ne 1 ] || ! grep -qE "No space left on device|File too large" train.err; then
  fail "full disk: cbrnn train exit $rc, expected 1 with the reason: $(tail -2 train.err)"
else
  ok4=$((ok4 + 1))
fi
"${limit[@]}" "$JACKHOST" --name cbd --model "$MODEL" --learn --save full/m.safetensors \
  >host.out 2>host4.err &
pid=$!
if wait_port cbd:input; then
  sleep 1
  kill -USR1 "$pid"; sleep 1.5
  if ! kill -0 "$pid" 2>/dev/null; then
    fail "full disk: cbrnn-jack died on a failed save"
  elif ! grep -qE "No space left on device|File too large" host4.err; then
    fail "full disk: cbrnn-jack gave no reason: $(tail -2 host4.err)"
  elif ! cmp -s before.safetensors full/m.safetensors; then
    fail "full disk: cbrnn-jack changed the previous file"
  else
    ok4=$((ok4 + 1))
  fi
  if [ -n "$MOUNTED" ]; then # room again: the next save works
    rm -f full/filler
    kill -USR1 "$pid"; sleep 1.5
    if grep -q "saved full/m.safetensors (SIGUSR1" host4.err && "$CBRNN" info full/m.safetensors >/dev/null; then
      ok4=$((ok4 + 1))
    else
      fail "full disk: no save after space was freed: $(tail -2 host4.err)"
    fi
  fi
  kill -TERM "$pid"; wait "$pid" 2>/dev/null
else
  fail "full disk: cbrnn-jack did not start: $(cat host4.err)"
fi
kill -TERM "$JACKD" 2>/dev/null; wait "$JACKD" 2>/dev/null
[ -n "$MOUNTED" ] && umount "$MOUNTED" && MOUNTED=""

cat <<EOF
faults: SIGKILL during cbrnn_model_save: $ok1/$trials trials left a loadable, untorn model ($tmp1 temporary files left behind)
faults: SIGKILL of cbrnn-jack --autosave 0.1: $ok2/$jtrials loadable ($nosave2 killed before the first save; $tmp2 temporary files left)
faults: JACK server killed/terminated and restarted: $ok3/6 saved, said so, exited 1
faults: full disk ($how): $ok4/$n4 checks passed (save refused with a reason, previous file kept, no temporary file; cbrnn train exit 1; cbrnn-jack kept running$([ "$n4" = 4 ] && echo " and saved once there was room"))
EOF
printf '{"kill_save_trials":%s,"kill_save_ok":%s,"kill_save_tmp_left":%s,"kill_jack_trials":%s,"kill_jack_ok":%s,"kill_jack_before_first_save":%s,"server_restart_trials":6,"server_restart_ok":%s,"full_disk":"%s","full_disk_checks":%s,"full_disk_checks_ok":%s}\n' \
  "$trials" "$ok1" "$tmp1" "$jtrials" "$ok2" "$nosave2" "$ok3" "$how" "$n4" "$ok4"
[ "$FAILED" -eq 0 ] && { cd /; rm -rf "$work"; }
exit "$FAILED"
