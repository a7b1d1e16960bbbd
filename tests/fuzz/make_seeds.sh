#!/bin/bash
# make_seeds.sh CBRNN OUTDIR: regenerates the seed corpora of the fuzz
# targets (committed in tests/fuzz/seeds/, so the fuzzers start from the
# same inputs everywhere) from real material of this repository:
#   model/  small models trained by `cbrnn train` on samples/ (readout,
#           loop, rnn, reservoir, MFCC+deltas, map, classify) and the
#           shipped samples/default.safetensors (libFuzzer cuts it to -max_len);
#   audio/  excerpts of samples/ written by sox in the formats libsndfile
#           reads (WAV 16/24/32-bit, float, 8-bit stereo, FLAC, AIFF, AU,
#           CAF, W64, Ogg), each behind fuzz_audio.c's one mode byte;
#   labels/ Audacity label files as tests/train writes them (CRLF, frequency
#           lines) and a pairs list, behind fuzz_labels.c's selector byte;
#   control/ events files as a live run logs them (header lines, every
#           event kind, ramps, comments, rows out of order) and the schedules of
#           docs/FORMATS.md, behind fuzz_control.c's selector byte;
#   osc/    every command cbrnn-jack's --help lists, encoded to OSC 1.0, and
#           a bundle of two of them.
# Needs sox and /usr/bin/python3 (standard library only).
set -euo pipefail
CBRNN=$1 OUT=$2
top=$(cd "$(dirname "$0")/../.." && pwd)
S=$top/samples
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$OUT"/{model,audio,labels,control,osc}

# ---- models: tiny (8 mel bands, 4 cortex units) so the seeds stay ~1 kB
A1=$S/voiceA_us_male_1.wav A2=$S/voiceA_us_male_2.wav
sox "$A1" -r 16000 "$tmp/a.wav" trim 0 2
sox "$A2" -r 16000 "$tmp/b.wav" trim 0 2
sox "$A2" -r 16000 "$tmp/a_clean.wav" trim 0 2
small=(--mels 8 --hidden 4 --cb 6 --warmup-steps 2 --steps 2 --batch 2 --seq-len 8
       --val-fraction 0 -q)
tr() { "$CBRNN" train -o "$OUT/model/$1.safetensors" "${small[@]}" "${@:2}"; }
tr readout "$tmp/a.wav"
tr loop --wiring loop "$tmp/a.wav"
tr rnn --arch rnn --no-match "$tmp/a.wav"
tr reservoir --arch reservoir --cb 0 --warmup-steps 0 "$tmp/a.wav"
tr cb2 --cb 5,3 --activation relu --alpha 0.5 "$tmp/a.wav"
tr mfcc --mfcc 6 --deltas "$tmp/a.wav"
tr map --target map --teacher-suffix _clean "$tmp/a.wav" "$tmp/a_clean.wav"
mkdir -p "$tmp/lab"
printf '0.000000\t0.500000\tloud\r\n0.500000\t1.200000\tquiet\r\n\\\t120.0\t3400.0\r\n1.2\t2\tloud\r\n' \
  >"$tmp/lab/a.txt"
tr classify --target classify --labels-dir "$tmp/lab" "$tmp/a.wav"
cp "$S/default.safetensors" "$OUT/model/default.safetensors"

# ---- audio: mode byte (see fuzz_audio.c) + a short excerpt of voice A
mk() { # NAME MODEBYTE EXT SECONDS [sox output options...]
  local name=$1 mode=$2 ext=$3 sec=$4; shift 4
  sox "$A1" "$@" "$tmp/x.$ext" trim 0.5 "$sec"
  { printf "\\x$mode"; cat "$tmp/x.$ext"; } >"$OUT/audio/$name"
}
mk wav16 00 wav 0.08 -r 16000 -b 16
mk wav16_resample44k 02 wav 0.08 -r 16000 -b 16
mk wav24_mfcc 04 wav 0.05 -r 16000 -b 24
mk float_block1 0b wav 0.04 -r 8000 -e floating-point -b 32
mk wav8_stereo_96k 0b wav 0.08 -r 11025 -b 8 -c 2
mk flac 00 flac 0.2 -r 16000 -b 16
mk flac_stereo_16k 11 flac 0.1 -r 22050 -b 16 -c 2
mk aiff 00 aiff 0.05 -r 16000 -b 16
mk au 18 au 0.05 -r 16000 -b 16
mk caf 00 caf 0.05 -r 16000 -b 16
mk w64 01 w64 0.05 -r 16000 -b 16
mk ogg 00 ogg 0.3 -r 16000
mk ulaw_wav 00 wav 0.08 -r 8000 -e u-law

# ---- labels: selector byte 0 = label file, 1 = pairs list
printf '\x00' >"$OUT/labels/audacity"
printf '0.000000\t0.100000\tloud speech\r\n0.100000\t0.200000\tquiet\r\n0.200000\t0.300000\tquiet\r\n0.300000\t0.400000\tloud speech\r\n\\\t120.000000\t3400.000000\r\n' \
  >>"$OUT/labels/audacity"
printf '\x00# not a comment in Audacity files\n' >"$OUT/labels/bad_line"
printf '\x001.5\t2.25\ta\n\n0\t0.5\tb\n2\t1e1\tc\n' >"$OUT/labels/lf_mixed"
printf '\x01# pairs\nnoisy/a.wav\tclean/a.wav\n\nb.wav\t/abs/b_clean.wav\n' >"$OUT/labels/pairs"

# ---- control: selector byte 0 = events file, 1 = schedule
printf '\x00frame,event,value\n0,learn,1\n0,lr,0.00100000005\n0,momentum,0.899999976\n0,decay,0\n0,gate,0\n12,mark,0\n12,mark,1\n30,reset,\n31,snapshot,1\n40,learn,0\n45,lr,0.00400000019\n' \
  >"$OUT/control/events_live"
printf '\x00frame,event,value\n0,learn,1\n0,delay,0\n0,gain,0\n0,listen,0\n0,pitch,0\n# a perturbation block\n20,pitch,1:100\n25,delay,120\n25,gain,-6:50\n10,listen,1\n\n50,gate,-50\n' \
  >"$OUT/control/events_perturb"
printf '\x00# the run these events were recorded from (docs/FORMATS.md, Events file)\n# model=samples/default.safetensors\n# model_sha256=66b152070d91583f85c5c82ae9ee4f79a1dcefab734721fa1e45681a36823405\n# sample_rate=16000\n# rule=rls\n# rls_prior=saved\n# rls_forget=0.999899983\n# bptt=4\n# surprise_frames=100\n# surprise_floor=0.00999999978\n# surprise_max=1000\n# diverge_ratio=1000000\n# checkpoint_frames=100\nframe,event,value\n0,learn,1\n0,lr,0.00100000005\n0,momentum,0.899999976\n0,decay,0\n0,gate,0\n20,learn,0\n' \
  >"$OUT/control/events_header"
printf '\x01# three 2-second trials\nrepeat 3 every 2s\n0      phase baseline\n0      learn 0\n0.5s   phase perturb\n0.5s   learn 1\n0.5s   lr 0.004\n1.2    lr 0.001\n150f   phase washout\n150f   reset\n1.9s   mark end of trial\n' \
  >"$OUT/control/schedule_trials"
printf '\x010      phase baseline\n0      pitch -1\n0.2s   phase perturbation\n0.2s   pitch 1 ramp 50ms\n0.3s   delay 40 ramp 0.1\n0.4s   gain -3\n0.4s   listen 1\n0.5s   phase washout\n0.5s   pitch -1 ramp 50ms\n' \
  >"$OUT/control/schedule_adaptation"

# ---- OSC packets (OSC 1.0: padded strings, big-endian numbers)
/usr/bin/python3 - "$OUT/osc" <<'PY'
import struct, sys
out = sys.argv[1]
def pad(b):
    b += b"\0"
    return b + b"\0" * (-len(b) % 4)
def msg(addr, types="", *args):
    b = pad(addr.encode()) + pad(("," + types).encode())
    for t, a in zip(types, args):
        b += {"i": lambda v: struct.pack(">i", v), "f": lambda v: struct.pack(">f", v),
              "s": lambda v: pad(v.encode())}[t](a)
    return b
seeds = {
    "learn_on": msg("/cbrnn/learn", "i", 1), "learn_off": msg("/cbrnn/learn", "i", 0),
    "lr": msg("/cbrnn/lr", "f", 0.002), "reset": msg("/cbrnn/reset"),
    "save": msg("/cbrnn/save", "s", "adapted.safetensors"),
    "mark": msg("/cbrnn/mark", "s", 'trial "1", start'),
    "status": msg("/cbrnn/status"), "status_port": msg("/cbrnn/status", "i", 9),
}
inner = [msg("/cbrnn/lr", "f", 0.0005), msg("/cbrnn/mark", "s", "b")]
seeds["bundle"] = pad(b"#bundle")[:8] + struct.pack(">Q", 1) + b"".join(
    struct.pack(">i", len(m)) + m for m in inner)
for k, v in seeds.items():
    open(f"{out}/{k}", "wb").write(v)
PY
echo "make_seeds: $(find "$OUT" -type f | wc -l) seeds in $OUT"
