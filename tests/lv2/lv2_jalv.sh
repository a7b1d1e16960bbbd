#!/bin/bash
# lv2_jalv.sh: the plugin in a real JACK host: jalv on a jackd dummy server
# (48 kHz, period 256) loads it with learning on, runs it with its input
# connected, and JACK's playback latency of every audio output (connected
# to nothing downstream, so it is the plugin's alone) reads as cbrnn's
# latency: win - 1 - win / 2 samples,
# with win taken from a `cbrnn run` of a 48 kHz file (its first frame
# ends at sample win - 1).
# Arguments: CBRNN LV2_DIR SAMPLES WORKDIR (jacklib.sh conventions).
LV2DIR=$2
set -- none none "$1" "$3" "$4"
. "$(dirname "$0")/../jack/jacklib.sh"
export LV2_PATH=$LV2DIR
MODEL=$LV2DIR/cbrnn.lv2/default.safetensors
sox "$SAMPLES/noise_tones_48k.wav" -e floating-point -b 32 n48.wav trim 0 0.5 || fail "sox"
"$CBRNN" run --quiet --model "$MODEL" --out-dir ref n48.wav || fail "cbrnn run"
WANT=$("$PY" -c '
import csv
t = float(next(csv.DictReader(open("ref/frames.csv")))["time"])
win = round(t * 48000) + 1
print(win - 1 - win // 2)')
note "expected latency at 48 kHz: $WANT samples"
start_jackd 256
# jalv's console reads commands from stdin: a FIFO held open keeps it up.
mkfifo cmd.fifo && exec 3<>cmd.fifo
jalv -x -n cbrnn-lv2 -c learn=1 urn:cbrnn:lv2 <cmd.fifo >jalv.log 2>&1 &
JALV=$!
STARTED="$JALV $STARTED"
wait_port cbrnn-lv2:surprise
jack_connect system:capture_1 cbrnn-lv2:in || fail "jack_connect"
sleep 1 # one second of audio through run() (nothing below depends on it)
kill -0 $JALV 2>/dev/null || { cat jalv.log; fail "jalv died while running the plugin"; }
jack_lsp -l cbrnn-lv2 >lat.txt || fail "jack_lsp -l"
cat lat.txt
for p in thru surprise out_1 out_2 out_3 out_4; do
  grep -A1 -x "cbrnn-lv2:$p" lat.txt | grep -q "port playback latency = \[ $WANT $WANT \]" \
    || fail "cbrnn-lv2:$p: JACK playback latency is not [ $WANT $WANT ]"
done
exec 3>&-
echo "lv2_jalv: ok (latency $WANT samples at 48 kHz)"
