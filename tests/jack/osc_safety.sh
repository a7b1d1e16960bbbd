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
#  - unknown addresses, wrong types and out-of-range values are reported;
#  - an address pattern (/cbrnn/*) fires nothing (liblo would hand it to
#    every method it matches: save, reset and learn at once);
#  - control characters in save or marker names, and 0/1 values out of
#    range, are refused; a marker refused is not in the markers file;
#  - a burst of saves is written while running, each one, none dropped;
#  - a bundle timed days ahead acts on arrival, not queued;
#  - the --save file turned into a text file while running is not
#    overwritten at exit; a control message never overwrites the loaded
#    model;
#  - with --osc-bind ::1, /cbrnn/status answers over IPv6.
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
say '/cbrnn/*' s pattern.safetensors
say /cbrnn/learn i 5
say /cbrnn/mark s "$(printf 'two\nlines')"
say /cbrnn/save s "$(printf 'a\nb.safetensors')"
say /cbrnn/save s "$(head -c 230 /dev/zero | tr '\0' a).safetensors"
"$PY" -c 'import socket, sys, osc
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(osc.encode("/cbrnn/status", "i", [0]), ("127.0.0.1", int(sys.argv[1])))' "$OSC"
sleep 1.1
osc /cbrnn/save s inside.safetensors
osc /cbrnn/lr f 0.002
osc /cbrnn/reset
# six saves back to back (the engine holds two snapshots at once), and a
# bundle timed eleven days ahead
"$PY" - "$OSC" <<'PY' || fail "sending the burst"
import socket, struct, sys, osc
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(6):
    s.sendto(osc.encode("/cbrnn/save", "s", ["burst%d.safetensors" % i]), ("127.0.0.1", port))
late = (int(__import__("time").time()) + 2208988800 + 11 * 86400) << 32
m = osc.encode("/cbrnn/mark", "s", ["from the future"])
s.sendto(osc.pad(b"#bundle") + struct.pack(">Q", late) + struct.pack(">i", len(m)) + m,
         ("127.0.0.1", port))
PY
saved() { find saves -maxdepth 1 -name "$1" | wc -l; }
for _ in $(seq 50); do [ "$(saved 'burst*')" -eq 6 ] && break; sleep 0.1; done
[ "$(saved 'burst*')" -eq 6 ] || fail "the burst: $(saved 'burst*') of 6 saved while running"
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
expect "OSC /cbrnn/* refused: address patterns are not accepted"
expect "OSC /cbrnn/learn 5 refused: expected 0 (off) or 1 (on)"
expect "OSC /cbrnn/mark refused: a marker name is 1 to 200 bytes without control characters"
expect "a save path with control characters (newline, tab, ...) is not accepted"
expect "the file name is too long"
expect "marker 0 = 'from the future'"
grep -q "= 'pattern" host.err && fail "the pattern message set a marker"
[ "$(saved 'pattern*')" -eq 0 ] || fail "a pattern message saved a file"
grep -qx "cbrnn-jack: learning on" host.err && fail "learn 5 turned learning on"
[ "$(saved 'a*')" -eq 0 ] || fail "a save name with a newline (or a too long one) was written"
[ "$(grep -c "burst.*(/cbrnn/save" host.err)" -eq 6 ] || fail "not all six burst saves reported"
grep -q "saved $PWD/saves/inside.safetensors (/cbrnn/save" host.err || fail "a save inside the folder failed"
[ -n "$LAN" ] && expect "/cbrnn/save from $LAN refused: only this machine"
[ -z "$(ls -A outside)" ] || fail "a file was written outside the save folder: $(ls -A outside)"
[ "$(cat saves/notes.txt)" = "keep me" ] || fail "saves/notes.txt was overwritten"
[ "$(saved 'remote*')" -eq 0 ] || fail "a save from a non-loopback address was written"
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
note "--save replaced by a text file while running; the loaded model; IPv6"
mkdir -p s2
cp "$MODEL" s2/loaded.safetensors
OSC=$(free_udp_port)
# --learn: a run that learned nothing leaves an existing --save file alone
# anyway (save_guard.sh); here the exit save must refuse the text file.
"$JACKHOST" --name cbt3 --model s2/loaded.safetensors --learn --save s2/final.safetensors \
  --osc "$OSC" --osc-bind ::1 >host3.out 2>host3.err &
HOST=$!
STARTED="$STARTED $HOST"
wait_port cbt3:input
for _ in $(seq 50); do grep -q "OSC on UDP" host3.err && break; sleep 0.1; done
before=$(md5sum <s2/loaded.safetensors)
"$PY" - "$OSC" <<'PY' || fail "no status reply over IPv6"
import socket, sys, osc
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("::1", 0))
s.sendto(osc.encode("/cbrnn/save", "s", ["loaded.safetensors"]), ("::1", port))
s.sendto(osc.encode("/cbrnn/status", "", []), ("::1", port))
s.settimeout(5)
data, src = s.recvfrom(1024)
assert osc.decode(data)[0] == "/cbrnn/status", data
PY
echo "my thesis" >s2/final.safetensors
sleep 0.5
kill -TERM "$HOST"; wait "$HOST"; rc=$?
cat host3.err
[ "$rc" -ne 0 ] || fail "the exit save over a text file: exit 0"
[ "$(cat s2/final.safetensors)" = "my thesis" ] || fail "the --save target, now a text file, was overwritten"
grep -qF "s2/final.safetensors exists and is not a cbrnn model: not overwritten" host3.err \
  || fail "no message for the --save target turned text file"
[ "$(md5sum <s2/loaded.safetensors)" = "$before" ] || fail "the loaded model was overwritten"
grep -qF "is the model cbrnn-jack loaded" host3.err || fail "no message for a save over the loaded model"
# the exit save's rescue copy lands in the test's own state folder
# (jacklib.sh), not in the home of whoever runs the tests
ls "$WORK"/state/cbrnn/rescue/*-final.safetensors >/dev/null 2>&1 ||
  fail "no rescue copy under $WORK/state (XDG_STATE_HOME not the test's own?)"
echo "osc_safety: passed"
