#!/bin/bash
# soak.sh [--control] [SECONDS]: a long live run of cbrnn-jack (default 600 s; CI runs
# 60) on a private jackd (dummy backend, 48 kHz, realtime scheduling when
# the system allows it, else not, and the report says which), learning
# online from speech looped in by sndfile-jackplay, while:
#   - the buffer size changes at random every 2-6 s (jack_bufsize, 32..4096),
#   - OSC commands arrive (oscsend: learning rate, markers, learn off/on,
#     snapshots to files, status requests) and SIGUSR1 snapshots too,
#   - --autosave 5 writes the model every 5 s,
#   - a load generator (sox running heavy effects in a loop) keeps the
#     other core busy.
# Measured: xruns (all; those reported while our callback ran past its
# period; those right after a buffer-size change; in jackd's log, the
# driver's late cycles and the lines naming us unfinished), the process
# callback's time against its period (timed from outside by the
# LD_PRELOAD library tests/hardening/cbtime.c): callbacks that took longer
# than their period are the xruns the client can have caused, resident
# memory at the start and end (VmRSS), records dropped, restores, and
# whether every saved model loads (cbrnn info). Prints the figures and one
# JSON line. Fails (exit 1) if cbrnn-jack dies or exits non-zero, a saved
# model does not load, records were dropped, the log has gaps, or resident
# memory grew by more than 8 MiB. Timing is reported, never judged: on a
# shared or virtual machine a callback's wall time includes preemption.
# --control: the same server, player, load and buffer-size changes with no
# cbrnn-jack (the player feeds system:playback): the xruns the setting
# causes by itself, to compare with.
# Uses the build in build/ (or $CBRNN_BUILD); run scripts/build.sh first.
# The run's folder ($CBRNN_SOAK_DIR/run-PID, default build/soak: jackd.log,
# host.err, cbtime.json, soak.csv, where the models are saved) is kept on
# failure, or always with CBRNN_SOAK_KEEP=1.
set -uo pipefail
usage() { echo "usage: scripts/soak.sh [--control] [SECONDS] (see --help)" >&2; exit 2; }
control=0
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) sed -n '2,/^set -uo pipefail/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    --control) control=1; shift ;;
    -*) echo "soak.sh: unknown option '$1'" >&2; usage ;;
    *) break ;;
  esac
done
[ $# -le 1 ] || { echo "soak.sh: one SECONDS at most" >&2; usage; }
secs=${1:-600}
if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -eq 0 ]; then
  echo "soak.sh: SECONDS '$secs' is not a positive whole number" >&2; usage
fi
top=$(cd "$(dirname "$0")/.." && pwd)
build=${CBRNN_BUILD:-$top/build}
JACKHOST=$build/plugin/cbrnn-jack CBRNN=$build/cli/cbrnn
CBTIME=$build/tests/hardening/libcbrnn_cbtime.so
MODEL=$top/samples/default.safetensors
for f in "$JACKHOST" "$CBRNN" "$CBTIME"; do
  [ -e "$f" ] || { echo "soak.sh: $f missing: build first (scripts/build.sh)" >&2; exit 2; }
done
for p in jackd jack_bufsize jack_lsp sndfile-jackplay oscsend sox; do
  command -v "$p" >/dev/null || { echo "soak.sh: $p not installed (scripts/deps.sh)" >&2; exit 2; }
done

work=${CBRNN_SOAK_DIR:-$build/soak}/run-$$
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
export JACK_DEFAULT_SERVER="cbrnn-soak-$$" JACK_NO_AUDIO_RESERVATION=1
STARTED=""
cleanup() {
  for p in $STARTED; do kill -TERM "$p" 2>/dev/null; done
  sleep 0.5
  for p in $STARTED; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
}
trap cleanup EXIT
fail() { echo "soak.sh: FAIL: $*" >&2; FAILED=1; }
FAILED=0

# ---- the server: realtime if permitted, else not
start_jackd() { # MODEFLAGS...
  jackd -n "$JACK_DEFAULT_SERVER" "$@" -d dummy -r 48000 -p 256 >jackd.log 2>&1 &
  JACKD=$!
  for _ in $(seq 50); do
    jack_lsp >/dev/null 2>&1 && return 0
    kill -0 "$JACKD" 2>/dev/null || return 1
    sleep 0.1
  done
  kill "$JACKD" 2>/dev/null
  return 1
}
if start_jackd -R -P 70 && grep -q "realtime mode" jackd.log; then
  sched="realtime (SCHED_FIFO 70)"
else
  wait "$JACKD" 2>/dev/null
  start_jackd -r || { cat jackd.log >&2; echo "soak.sh: jackd did not start" >&2; exit 1; }
  sched="not realtime (no permission for SCHED_FIFO)"
fi
STARTED="$STARTED $JACKD"

# ---- speech to loop: every sample voice, 48 kHz mono (about 140 s)
k=0
for f in "$top"/samples/voice*.wav; do
  k=$((k + 1)); sox "$f" -r 48000 -c 1 -b 16 "part$k.wav" || { echo "soak.sh: sox $f" >&2; exit 1; }
done
sox part*.wav loop.wav && rm -f part*.wav || { echo "soak.sh: sox" >&2; exit 1; }
# a load generator's input: pink noise, 30 s
sox -n -r 48000 -c 2 noise.wav synth 30 pinknoise 2>/dev/null

if [ "$control" = 1 ]; then
  sndfile-jackplay --loop=0 --autoconnect=system:playback_1 loop.wav >player.log 2>&1 &
  STARTED="$STARTED $!"
  HOST=$$
else
  port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  LD_PRELOAD=$CBTIME CBRNN_CBTIME_OUT=$work/cbtime.json \
    "$JACKHOST" --name cbsoak --model "$MODEL" --learn --osc "$port" --autosave 5 \
    --save soak.safetensors --log soak.csv --report 30 >host.out 2>host.err &
  HOST=$!
  STARTED="$STARTED $HOST"
  for _ in $(seq 100); do jack_lsp 2>/dev/null | grep -qx cbsoak:input && break; sleep 0.1; done
  jack_lsp 2>/dev/null | grep -qx cbsoak:input || { cat host.err >&2; echo "soak.sh: cbrnn-jack did not start" >&2; exit 1; }
  sndfile-jackplay --loop=0 --autoconnect=cbsoak:input loop.wav >player.log 2>&1 &
  STARTED="$STARTED $!"
fi
# the load: heavy effects on the noise, over and over, on the other core
( while :; do sox noise.wav -n reverb 90 50 100 chorus 0.6 0.9 50 0.4 0.25 2 -t \
    phaser 0.6 0.66 3 0.6 2 -t 2>/dev/null; done ) &
LOAD=$!
STARTED="$STARTED $LOAD"
rss() { awk '/^VmRSS/ {print $2}' "/proc/$HOST/status" 2>/dev/null; }
sleep 5
rss0=$(rss)
t0=$(date +%s)
end=$((t0 + secs))
sizes=(32 64 128 256 512 1024 2048 4096)
n_bs=0 n_osc=0 n_snap=0 n_usr1=0 i=0
while [ "$(date +%s)" -lt "$end" ]; do
  [ "$control" = 1 ] || kill -0 "$HOST" 2>/dev/null || { fail "cbrnn-jack died"; break; }
  bs=${sizes[$((RANDOM % ${#sizes[@]}))]}
  jack_bufsize "$bs" >/dev/null 2>&1 && n_bs=$((n_bs + 1))
  i=$((i + 1))
  if [ "$control" = 1 ]; then sleep "$((RANDOM % 5 + 2))"; continue; fi
  oscsend 127.0.0.1 "$port" /cbrnn/lr f "0.00$((RANDOM % 2 + 1))" && n_osc=$((n_osc + 1))
  oscsend 127.0.0.1 "$port" /cbrnn/mark s "soak $i bufsize $bs" && n_osc=$((n_osc + 1))
  oscsend 127.0.0.1 "$port" /cbrnn/status && n_osc=$((n_osc + 1))
  oscsend 127.0.0.1 "$port" /cbrnn/save s "$work/snap$((i % 3)).safetensors" &&
    n_snap=$((n_snap + 1)) && n_osc=$((n_osc + 1))
  if [ $((i % 5)) -eq 0 ]; then
    oscsend 127.0.0.1 "$port" /cbrnn/learn i 0; sleep 0.5
    oscsend 127.0.0.1 "$port" /cbrnn/learn i 1
    n_osc=$((n_osc + 2))
  fi
  if [ $((i % 7)) -eq 0 ]; then kill -USR1 "$HOST" && n_usr1=$((n_usr1 + 1)); fi
  echo "$(( $(date +%s) - t0 )) $(rss)" >>rss.txt
  sleep "$((RANDOM % 5 + 2))"
done
rss1=$(rss)
elapsed=$(( $(date +%s) - t0 ))
kill -TERM "$LOAD" 2>/dev/null
# jackd's log: "JackTimedDriver::Process XRun = N usec" when the (dummy)
# driver's own cycle started late; "JackEngine::XRun: client = X was not
# finished" for each client still running when a cycle began.
slips=$(grep -c "Driver::Process XRun" jackd.log)
if [ "$control" = 1 ]; then
  server_xruns=$(grep -ciE "xrun" jackd.log)
  echo "soak control: $elapsed s, no cbrnn-jack, $sched, $n_bs buffer size changes: $server_xruns xrun lines in the jackd log, $slips late driver cycles"
  printf '{"soak_control_seconds":%s,"scheduling":"%s","bufsize_changes":%s,"jackd_xrun_lines":%s,"driver_late_cycles":%s}\n' \
    "$elapsed" "$sched" "$n_bs" "$server_xruns" "$slips"
  [ "${CBRNN_SOAK_KEEP:-0}" = 1 ] || rm -rf "$work"
  exit 0
fi
kill -TERM "$HOST" 2>/dev/null
wait "$HOST"; rc=$?
[ "$rc" -eq 0 ] || fail "cbrnn-jack exited with $rc after SIGTERM (expected 0)"

# ---- figures
summary=$(grep -E "frames, .* updates" host.err | tail -1)
num() { echo "$summary" | grep -oE "[0-9]+ $1" | grep -oE "^[0-9]+"; }
frames=$(num frames) updates=$(num updates) restores=$(num restores)
xruns=$(num xruns) dropped=$(num "dropped records")
blamed=$(grep -c "client = cbsoak" jackd.log)
server_xruns=$(grep -ciE "xrun" jackd.log)
cb=$(cat cbtime.json 2>/dev/null || echo '{}')
jget() { echo "$cb" | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin).get('$1', 'NA'))"; }
cb_n=$(jget callbacks) cb_max=$(jget max_us) cb_per=$(jget period_at_max_us)
cb_over=$(jget over_period) cb_mean=$(jget mean_us) cb_hist=$(jget hist_tenths_of_period)
cb_frac=$(jget max_fraction_of_period) xr_all=$(jget xruns) xr_late=$(jget xruns_client_late) xr_bs=$(jget xruns_after_bufsize)
gaps=$(/usr/bin/python3 - <<'PY'
import csv
rows = list(csv.DictReader(open("soak.csv")))
f = [int(r["frame"]) for r in rows]
print(sum(1 for a, b in zip(f, f[1:]) if b != a + 1))
PY
)
bad_models=0 n_models=0
for m in soak.safetensors snap*.safetensors; do
  [ -e "$m" ] || continue
  n_models=$((n_models + 1))
  "$CBRNN" info "$m" >/dev/null 2>&1 || { bad_models=$((bad_models + 1)); fail "$m does not load"; }
done
[ "$n_models" -ge 2 ] || fail "only $n_models model files were saved"
[ "${dropped:-1}" -eq 0 ] || fail "$dropped records dropped"
[ "$gaps" -eq 0 ] || fail "the per-frame log has $gaps gaps"
growth=$(( ${rss1:-0} - ${rss0:-0} ))
# the second half alone: growth that continues, not a one-time warm-up
rss_mid=$(awk -v h=$((elapsed / 2)) '$1 >= h {print $2; exit}' rss.txt)
growth2=$(( ${rss1:-0} - ${rss_mid:-0} ))
[ "$growth" -le 8192 ] || fail "resident memory grew by $growth kB"
autosaves=$(grep -c "(autosave" host.err)
osc_saves=$(grep -c "(/cbrnn/save" host.err)

cat <<EOF
soak: $elapsed s of cbrnn-jack learning at 48 kHz on jackd dummy, $sched
  buffer size changes: $n_bs; OSC messages: $n_osc ($n_snap /cbrnn/save); SIGUSR1: $n_usr1
  saves: $autosaves autosaves, $osc_saves OSC snapshots; $n_models model files, $bad_models unloadable
  frames $frames, updates $updates, restores $restores, records dropped $dropped, log gaps $gaps
  xruns: $xruns reported to the client: $xr_late while our callback ran past its period,
    $xr_bs within 1 s after a buffer-size change; jackd log: $server_xruns xrun lines:
    $slips late driver cycles, $blamed naming cbrnn-jack unfinished when a cycle began
  process callback: $cb_n calls, mean $cb_mean us, worst $cb_max us (in a $cb_per us period);
    worst fraction of its period $cb_frac; $cb_over over their period (the most xruns
    the client can have caused)
  callback time / period histogram (tenths, last bin >= 1.1): $cb_hist
  resident memory: $rss0 kB after 5 s, $rss_mid kB half-way, $rss1 kB at the end
    (growth $growth kB in all, $growth2 kB in the second half)
EOF
printf '{"soak_seconds":%s,"scheduling":"%s","bufsize_changes":%s,"osc_messages":%s,"autosaves":%s,"osc_snapshots":%s,"models_unloadable":%s,"frames":%s,"updates":%s,"restores":%s,"records_dropped":%s,"log_gaps":%s,"xruns":%s,"xruns_client_late":%s,"xruns_after_bufsize":%s,"driver_late_cycles":%s,"xruns_named_by_jackd":%s,"callbacks":%s,"callback_mean_us":%s,"callback_max_us":%s,"period_at_max_us":%s,"callback_max_fraction_of_period":%s,"callbacks_over_period":%s,"rss_start_kb":%s,"rss_mid_kb":%s,"rss_end_kb":%s}\n' \
  "$elapsed" "$sched" "$n_bs" "$n_osc" "$autosaves" "$osc_saves" "$bad_models" "${frames:-0}" \
  "${updates:-0}" "${restores:-0}" "${dropped:-0}" "$gaps" "${xruns:-0}" "$xr_late" "$xr_bs" \
  "$slips" "$blamed" "$cb_n" \
  "$cb_mean" "$cb_max" "$cb_per" "$cb_frac" "$cb_over" "${rss0:-0}" "${rss_mid:-0}" "${rss1:-0}"
[ "$FAILED" -eq 0 ] && [ "${CBRNN_SOAK_KEEP:-0}" != 1 ] && rm -rf "$work"
exit "$FAILED"
