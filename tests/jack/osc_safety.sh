#!/bin/bash
# osc_safety.sh: the OSC control surface cannot be used to write files or
# reach the host from elsewhere (issue 11, item 4). On a dummy-backend
# JACK server:
#  - --save into a missing folder, or onto a file that is not a model,
#    exits 2 at start with a message;
#  - OSC listens on 127.0.0.1 by default and says so;
#  - /cbrnn/save outside the save folder (absolute, ../, through a
#    symlinked folder), onto a non-model file, or from a non-loopback
#    address is refused with a message and writes nothing; a save inside
#    the folder works (so the refusals are not a broken save);
#  - with --osc-bind 0.0.0.0, /cbrnn/status i PORT from a non-loopback
#    address answers that address only, not the same port on loopback;
#  - unknown addresses, wrong types and out-of-range values are reported.
. "$(dirname "$0")/jacklib.sh"
pick_model
start_jackd 256
J=$(dirname "$0")
export PYTHONPATH="$J"
# A non-loopback address of this machine (none in some sandboxes: those
# checks are then skipped, and said so).
LAN=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9.]+$' | grep -v '^127\.' | head -1)

note "--save checked at start"
"$JACKHOST" --name bad --model "$MODEL" --save nodir/x.safetensors >o 2>e </dev/null
rc=$?; [ "$rc" -eq 2 ] || fail "--save nodir/x.safetensors: expected exit 2, got $rc"
grep -q "nodir.*does not exist" e || { cat e; fail "--save into a missing folder: no message"; }
echo "some notes" >notes.txt
"$JACKHOST" --name bad --model "$MODEL" --save notes.txt >o 2>e </dev/null
rc=$?; [ "$rc" -eq 2 ] || fail "--save notes.txt: expected exit 2, got $rc"
grep -q "not a cbrnn model" e || { cat e; fail "--save onto a text file: no message"; }
[ "$(cat notes.txt)" = "some notes" ] || fail "notes.txt changed"
"$JACKHOST" --name bad --model "$MODEL" --osc 70000 >o 2>e </dev/null
[ $? -eq 2 ] || fail "--osc 70000 accepted"

note "default bind, save folder, refusals"
mkdir -p saves outside
echo "keep me" >saves/notes.txt
ln -s ../outside saves/link
OSC=$(free_udp_port)
"$JACKHOST" --name cbt --model "$MODEL" --learn --save saves/final.safetensors --osc "$OSC" \
  >host.out 2>host.err &
HOST=$!
STARTED="$STARTED $HOST"
wait_port cbt:input
# the startup lines come after activation, a moment after the ports exist
for _ in $(seq 50); do grep -q "OSC on UDP" host.err && break; sleep 0.1; done
grep -q "OSC on UDP 127.0.0.1:$OSC (this machine only)" host.err \
  || { cat host.err; fail "the startup line does not say OSC listens on 127.0.0.1"; }
ss -uln 2>/dev/null | grep -q "127.0.0.1:$OSC " || { ss -uln; fail "OSC port not bound to 127.0.0.1"; }
ss -uln 2>/dev/null | grep -qE "(0\.0\.0\.0|\*|\[::\]):$OSC " && fail "OSC port bound to every interface"
osc() { "$PY" "$J/osc.py" "$OSC" "$@" || fail "OSC $*"; }
# one message a second: refusals are rate-limited to a line a second
say() { osc "$@"; sleep 1.1; }
say /cbrnn/save s "$PWD/outside/abs.safetensors"
say /cbrnn/save s ../outside/rel.safetensors
say /cbrnn/save s link/sym.safetensors
say /cbrnn/save s notes.txt
say /cbrnn/save s "$PWD/saves/notes.txt"
if [ -n "$LAN" ]; then
  "$PY" - "$LAN" "$OSC" <<'PY' || fail "sending from $LAN"
import socket, sys, osc
lan, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((lan, 0))
s.sendto(osc.encode("/cbrnn/save", "s", ["remote.safetensors"]), ("127.0.0.1", port))
s.sendto(osc.encode("/cbrnn/save", "s", ["remote2.safetensors"]), (lan, port))
PY
  sleep 1.1
else
  note "no non-loopback IPv4 address here: the remote-sender checks are skipped"
fi
say /cbrnn/lr f 1e9
say /cbrnn/Learn i 0
say /cbrnn/lr s 0.003
say /cbrnn/mark i 3
say /cbrnn/mark
"$PY" -c 'import socket, sys, osc
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(osc.encode("/cbrnn/status", "i", [0]), ("127.0.0.1", int(sys.argv[1])))' "$OSC"
sleep 1.1
osc /cbrnn/save s inside.safetensors
osc /cbrnn/lr f 0.002
osc /cbrnn/reset
sleep 0.5
kill -TERM "$HOST"; wait "$HOST"; rc=$?
cat host.err
[ "$rc" -eq 0 ] || fail "cbrnn-jack after SIGTERM: expected exit 0, got $rc"
expect() { grep -qF -- "$1" host.err || fail "no message: $1"; }
expect "outside/abs.safetensors is outside the save folder"
expect "../outside/rel.safetensors is outside the save folder"
expect "link/sym.safetensors is outside the save folder"
expect "notes.txt exists and is not a cbrnn model: not overwritten"
expect "/cbrnn/lr 1e+09 refused: expected a number in [0, 10]"
expect "/cbrnn/Learn (arguments 'i') ignored: unknown address"
expect "/cbrnn/lr with arguments 's' ignored: expected /cbrnn/lr f"
expect "/cbrnn/mark with arguments 'i' ignored: expected /cbrnn/mark s"
expect "/cbrnn/mark with arguments '' ignored: expected /cbrnn/mark s"
expect "/cbrnn/status 0 refused"
expect "lr now 0.002"
expect "cerebellum reset to the loaded model"
grep -q "saved $PWD/saves/inside.safetensors (/cbrnn/save" host.err || fail "a save inside the folder failed"
[ -n "$LAN" ] && expect "/cbrnn/save from $LAN refused: only this machine"
ls outside | grep -q . && fail "a file was written outside the save folder: $(ls outside)"
[ "$(cat saves/notes.txt)" = "keep me" ] || fail "saves/notes.txt was overwritten"
ls saves | grep -q remote && fail "a save from a non-loopback address was written"
"$CBRNN" info saves/final.safetensors >/dev/null || fail "the final save does not load"

if [ -n "$LAN" ]; then
  note "--osc-bind 0.0.0.0: status replies go to the sender's address only"
  OSC=$(free_udp_port)
  "$JACKHOST" --name cbt2 --model "$MODEL" --osc "$OSC" --osc-bind 0.0.0.0 >host2.out 2>host2.err &
  HOST=$!
  STARTED="$STARTED $HOST"
  wait_port cbt2:input
  for _ in $(seq 50); do grep -q "OSC on UDP" host2.err && break; sleep 0.1; done
  grep -q "OSC on UDP 0.0.0.0:$OSC (open to the network" host2.err \
    || { cat host2.err; fail "--osc-bind 0.0.0.0 not said at start"; }
  "$PY" - "$LAN" "$OSC" <<'PY' || fail "the status reply did not go to the sender's address only"
import socket, sys, osc
lan, port = sys.argv[1], int(sys.argv[2])
lanr = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
lanr.bind((lan, 0))
rport = lanr.getsockname()[1]
lo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
lo.bind(("127.0.0.1", rport))       # the same port on loopback: must stay silent
lanr.sendto(osc.encode("/cbrnn/status", "i", [rport]), ("127.0.0.1", port))
lanr.settimeout(5)
data, src = lanr.recvfrom(1024)
assert osc.decode(data)[0] == "/cbrnn/status", data
lo.settimeout(1)
try:
    lo.recvfrom(1024)
    sys.exit("a reply reached 127.0.0.1:%d" % rport)
except socket.timeout:
    pass
PY
  kill -TERM "$HOST"; wait "$HOST"
fi
echo "osc_safety: passed"
