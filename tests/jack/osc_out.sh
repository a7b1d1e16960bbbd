#!/bin/bash
# osc_out.sh: `cbrnn-jack --osc-out PORT` streams frames (issue 13, item 6).
# A UDP listener on loopback collects /cbrnn/frame messages while a clip
# plays; at --osc-out-rate 50 (100 frames a second) every 2nd frame comes,
# and each message's frame, loss, surprise and learning equal that row of
# the --log file (as float32), with the model's 40 outputs attached
# (--osc-out-outputs). Bad --osc-out values are refused.
. "$(dirname "$0")/jacklib.sh"
pick_model
start_jackd 256
J=$(dirname "$0")
export PYTHONPATH="$J"
"$JACKHOST" --name bad --model "$MODEL" --osc-out example.org:9000 >o 2>e
[ $? -eq 2 ] && grep -q "numeric" e || { cat e; fail "--osc-out with a host name accepted"; }
PORT=$(free_udp_port)
"$PY" - "$PORT" >frames.txt <<'PY' &
import socket, sys, osc
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.settimeout(4)
try:
    while True:
        data, _ = s.recvfrom(65536)
        addr, types, vals = osc.decode(data)
        print(addr, types, " ".join(repr(v) for v in vals), flush=True)
except socket.timeout:
    pass
PY
LISTEN=$!
sleep 0.3
"$JACKHOST" --name cbt --model "$MODEL" --learn --log live.csv --osc-out "$PORT" \
  --osc-out-rate 50 --osc-out-outputs >host.out 2>host.err &
HOST=$!
STARTED="$STARTED $HOST"
wait_port cbt:input
grep -q "OSC out to 127.0.0.1:$PORT: /cbrnn/frame every 2 frames" host.err \
  || { cat host.err; fail "--osc-out not said at start"; }
"$JACKPLAY" --name player --connect cbt:input --duration 3 "$SAMPLES/voiceB_gb_female_2.wav" \
  || fail "cbrnn-jackplay"
sleep 0.5
kill -TERM "$HOST"; wait "$HOST" || fail "cbrnn-jack exit status"
wait "$LISTEN"
"$PY" - <<'PY' || fail "streamed frames differ from the log"
import csv, math, struct, sys
f32 = lambda x: struct.unpack("<f", struct.pack("<f", float(x)))[0]
rows = {int(r["frame"]): r for r in csv.DictReader(open("live.csv"))}
msgs = [l.split() for l in open("frames.txt")]
bad = 0
for m in msgs:
    addr, types, vals = m[0], m[1], [eval(v, {"nan": math.nan}) for v in m[2:]]
    if addr != "/cbrnn/frame" or types != "hffi" + "f" * 40:
        print("unexpected message", addr, types); bad += 1; continue
    fr, loss, sur, learning = vals[:4]
    r = rows.get(fr)
    same = lambda a, b: (math.isnan(a) and b == "") or (b != "" and a == f32(b))
    if fr % 2 or r is None or not same(loss, r["loss"]) or not same(sur, r["surprise"]) \
            or learning != int(r["learning"]):
        if bad < 5:
            print("frame", fr, vals[:4], r and (r["loss"], r["surprise"], r["learning"]))
        bad += 1
print("%d messages, %d frames logged, %d mismatches" % (len(msgs), len(rows), bad))
sys.exit(1 if bad or len(msgs) < 0.4 * len(rows) else 0)
PY
echo "osc_out: passed"
