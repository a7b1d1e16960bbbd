#!/bin/bash
# osc_net.sh: cbrnn-jack's OSC sockets on the network.
# (1) --osc PORT never listens beyond loopback unless --osc-bind asks, not
#     even for a moment: liblo 0.31 binds its server to 0.0.0.0 whatever
#     it is asked, before osc_open swaps in the socket bound to 127.0.0.1.
#     With strace (when installed), no bind() of the run names 0.0.0.0 or
#     ::. Before: bind(0.0.0.0:<ephemeral>) at every start.
# (2) --osc-out sends from a socket of its own, not the OSC control
#     socket: a listener sees frames come from a port other than --osc's.
#     Before: from the control socket, bound to 127.0.0.1, so that
#     --osc-out to another machine sent nothing (sendto EINVAL, ignored).
# (3) With --osc, --osc-out to another machine (192.0.2.99, TEST-NET-1)
#     sends without error, when this machine has a route there.
# (4) Sends that fail (to 255.255.255.255: EACCES, no SO_BROADCAST) are
#     said once while running, and counted in the summary at exit.
. "$(dirname "$0")/jacklib.sh"
pick_model
start_jackd 256
J=$(cd "$(dirname "$0")" && pwd)
export PYTHONPATH="$J"

# host NAME ARGS...: cbrnn-jack in the background (HOST), stderr NAME.err.
host() {
  local name=$1
  shift
  "$@" >"$name.out" 2>"$name.err" &
  HOST=$!
  STARTED="$STARTED $HOST"
}

note "1: nothing listens beyond loopback"
if command -v strace >/dev/null; then
  OSC=$(free_udp_port)
  host st strace -f -qq -e trace=bind -o binds.txt "$JACKHOST" --name cbt --model "$MODEL" \
    --osc "$OSC"
  wait_port cbt:input
  # the host is strace's child: stopped itself, strace then ends
  kill -TERM "$(pgrep -P "$HOST")"; wait "$HOST"
  grep -v AF_UNIX binds.txt
  grep -q "sin_port=htons($OSC), sin_addr=inet_addr(\"127.0.0.1\")" binds.txt ||
    fail "no bind to 127.0.0.1:$OSC seen (strace output changed?)"
  grep -E 'inet_addr\("0\.0\.0\.0"\)|inet_pton\(AF_INET6, "::"' binds.txt &&
    fail "a socket was bound to every interface"
else
  note "strace not installed: part 1 skipped (scripts/deps.sh installs it)"
fi

note "2: --osc-out from its own socket"
OSC=$(free_udp_port)
OUT=$(free_udp_port)
"$PY" - "$OUT" >src.txt <<'PY' &
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.settimeout(10)
data, src = s.recvfrom(65536)
print(src[1])
PY
LISTEN=$!
sleep 0.3
host a "$JACKHOST" --name cbt --model "$MODEL" --osc "$OSC" --osc-out "127.0.0.1:$OUT"
wait "$LISTEN"
kill -TERM "$HOST"; wait "$HOST"; rc=$?
cat a.err
[ "$rc" -eq 0 ] || fail "exit $rc"
[ -s src.txt ] || fail "no frame came to 127.0.0.1:$OUT"
[ "$(cat src.txt)" != "$OSC" ] || fail "--osc-out sent from the OSC control socket (port $OSC)"

note "3: --osc with --osc-out to another machine"
if "$PY" -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("192.0.2.99", 9))' 2>/dev/null; then
  host b "$JACKHOST" --name cbt --model "$MODEL" --osc "$(free_udp_port)" --osc-out 192.0.2.99:9
  wait_port cbt:input
  sleep 1
  kill -TERM "$HOST"; wait "$HOST"; rc=$?
  cat b.err
  [ "$rc" -eq 0 ] || fail "exit $rc"
  grep -q "osc-out.*\(fail\|not sent\)" b.err && fail "sends to 192.0.2.99 failed"
else
  note "no route to 192.0.2.99 here: part 3 skipped"
fi

note "4: failed sends said once and counted"
host c "$JACKHOST" --name cbt --model "$MODEL" --osc "$(free_udp_port)" \
  --osc-out 255.255.255.255:9
wait_said "$HOST" c.err "osc-out 255.255.255.255:9: sending failed: Permission denied" 10 ||
  { cat c.err; fail "failing sends not said while running"; }
sleep 0.5
kill -TERM "$HOST"; wait "$HOST"; rc=$?
cat c.err
[ "$(grep -c 'sending failed' c.err)" -eq 1 ] || fail "the failure was said more than once"
grep -qE "osc-out 255.255.255.255:9: [1-9][0-9]* frames? not sent \(Permission denied\)" c.err ||
  fail "no count of frames not sent at exit"
echo "osc_net: passed"
