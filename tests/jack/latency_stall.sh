#!/bin/bash
# latency_stall.sh: a JACK server that stalls while a latency recompute
# is in flight must not cost the adapted model. A delay change (OSC
# /cbrnn/perturb/delay) moves the ports' latencies, so cbrnn-jack asks the
# server to recompute them (jack_recompute_total_latencies), a call that
# waits for a stopped server forever. The shim stall_recompute.so stops
# the server (SIGSTOP) at the start of that call, every run (see its
# header). SIGTERM must still save the adapted weights at once, give up
# on the server after the time limit, say so and exit 0 (the save
# worked). Before the fix the control thread made the call itself, hung
# in it, and never took SIGTERM (SIGKILL then lost the session).
# Arguments: those of every JACK test, then the shim.
. "$(dirname "$0")/jacklib.sh"
SHIM=$6
pick_model

start_jackd 256
OSC=$(free_udp_port)
# ASan insists on being first among preloaded libraries; the shim is
# preloaded on its own (ASan, when built in, is linked to the program).
CBRNN_TEST_STALL_SERVER=$PWD/stall.pid LD_PRELOAD=$SHIM \
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
  "$JACKHOST" --name cbt --model "$MODEL" --learn --save lat.safetensors --perturb-delay 0 \
  --osc "$OSC" >host.out 2>host.err &
HOST=$!
STARTED="$STARTED $HOST"
wait_port cbt:input
"$JACKPLAY" --name player --connect cbt:input --duration 4 "$SAMPLES/voiceB_gb_female_3.wav" \
  >/dev/null 2>&1 &
STARTED="$STARTED $!"
sleep 2.5
echo "$JACKD" >stall.pid
"$PY" "$(dirname "$0")/osc.py" "$OSC" /cbrnn/perturb/delay f 40
for _ in $(seq 100); do [ -e stall.pid ] || break; sleep 0.1; done
[ -e stall.pid ] && { cat host.err; fail "no latency recompute within 10 s of the delay change"; }
stopped "$JACKD" || fail "the server did not stop"
sleep 0.5
term_stalled "$HOST" "$JACKD" "the server stopped during a latency recompute"
[ "$RC" -eq 0 ] || fail "expected exit 0 (saved), got $RC"
grep -q "perturb/delay now 40" host.err || fail "the delay change was not acted on"
grep -q "saved lat.safetensors (SIGTERM" host.err || fail "SIGTERM did not save"
grep -q "did not answer" host.err || fail "the stalled server was not said"
"$CBRNN" info lat.safetensors >/dev/null || fail "the saved model does not load"
same_weights "$MODEL" lat.safetensors && fail "the saved model holds the loaded weights"
echo "latency_stall: passed"
