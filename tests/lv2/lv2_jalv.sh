#!/bin/bash
# lv2_jalv.sh: the plugin in a real JACK host: jalv on a jackd dummy server
# (48 kHz, period 256) loads it with learning on, runs it with its input
# connected, and JACK's playback latency of every audio output (connected
# to nothing downstream, so it is the plugin's alone) reads as cbrnn's
# latency: win - 1 - win / 2 samples,
# with win taken from a `cbrnn run` of a 48 kHz file (its first frame
# ends at sample win - 1).
# Then the errors a console host must show (the plugin's log:log; jalv
# shows no notify port): `jalv -l` of a state whose model file is
# truncated, replaced by text or deleted prints that the state was not
# restored, naming the file and the loader's reason, and that the plugin
# keeps the weights it had; a bundle without default.safetensors prints
# why it does not instantiate, naming the file.
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
kill "$JALV" && wait "$JALV"
exec 3>&-

# jalv_log OUT ARGS...: jalv ARGS with no console input; its stderr in OUT.
jalv_log() {
  out=$1
  shift
  timeout 60 jalv -n cbrnn-err "$@" </dev/null >/dev/null 2>"$out"
}
# why FILE: what the model loader says of a file it refuses ("FILE: reason").
why() { "$CBRNN" info "$1" 2>&1 >/dev/null | sed 's/^cbrnn info: //'; }
# expect_line OUT TEXT...: one line of OUT holds every TEXT.
expect_line() {
  out=$1
  shift
  line=$(grep -F -- "$1" "$out" | head -1)
  for t in "$@"; do
    case $line in *"$t"*) ;; *) cat "$out"; fail "$out: no line with '$t'" ;; esac
  done
  note "$out: $line"
}

# A saved state as lilv_state_save writes it (jalv -l reads state.ttl).
ST=$PWD/st SF=$PWD/st/cbrnn-model.safetensors
mkdir "$ST" || fail "mkdir $ST"
cp "$MODEL" "$SF" || fail "making the state"
cat >"$ST/manifest.ttl" <<'EOF'
@prefix lv2: <http://lv2plug.in/ns/lv2core#> .
@prefix pset: <http://lv2plug.in/ns/ext/presets#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .

<state.ttl>
	a pset:Preset ;
	lv2:appliesTo <urn:cbrnn:lv2> ;
	rdfs:seeAlso <state.ttl> .
EOF
cat >"$ST/state.ttl" <<'EOF'
@prefix lv2: <http://lv2plug.in/ns/lv2core#> .
@prefix pset: <http://lv2plug.in/ns/ext/presets#> .
@prefix state: <http://lv2plug.in/ns/ext/state#> .

<>
	a pset:Preset ;
	lv2:appliesTo <urn:cbrnn:lv2> ;
	state:state [
		<urn:cbrnn:lv2#model> <cbrnn-model.safetensors>
	] .
EOF
jalv_log good.err -l "$ST" urn:cbrnn:lv2 || { cat good.err; fail "jalv -l of a good state"; }
if grep -q "cbrnn.lv2:" good.err; then cat good.err; fail "a good state logged an error"; fi
KEEPS="the plugin keeps the weights it had (from $MODEL)"
head -c 100000 "$MODEL" >"$SF"
jalv_log truncated.err -l "$ST" urn:cbrnn:lv2
expect_line truncated.err "cbrnn.lv2: state not restored: $(why "$SF"); $KEEPS"
echo "not a model, just some text" >"$SF"
jalv_log text.err -l "$ST" urn:cbrnn:lv2
expect_line text.err "cbrnn.lv2: state not restored: $(why "$SF"); $KEEPS"
rm "$SF"
jalv_log deleted.err -l "$ST" urn:cbrnn:lv2
expect_line deleted.err "cbrnn.lv2: state not restored: $SF: No such file or directory; $KEEPS"

# A copy of the bundle without its default model.
mkdir nodefault || fail "mkdir nodefault"
cp -r "$LV2DIR/cbrnn.lv2" nodefault/ || fail "copying the bundle"
rm nodefault/cbrnn.lv2/default.safetensors || fail "rm default.safetensors"
LV2_PATH=$PWD/nodefault jalv_log nodefault.err urn:cbrnn:lv2 \
  && fail "jalv ran a plugin without its default model"
expect_line nodefault.err "cbrnn.lv2: not instantiated: the bundle's default model:" \
  "$PWD/nodefault/cbrnn.lv2/default.safetensors: No such file or directory"
echo "lv2_jalv: ok (latency $WANT samples at 48 kHz; damaged states and a bundle without its" \
  "model reported)"
