#!/bin/bash
# lv2_tools.sh: the LV2 bundle under the stock LV2 tools.
#   - lv2_validate (lv2-dev, with sord_validate from sordi) finds no error
#     in the bundle's Turtle;
#   - lv2info sees the plugin and its latency port (lv2:reportsLatency);
#   - the .so exports lv2_descriptor only and needs no BLAS/LAPACK;
#   - lv2apply (no host features, one sample per run()) on float WAVs, with
#     learning on and off, at 16 and 48 kHz: surprise bit-identical to
#     `cbrnn run`'s surprise.wav, out_k equal to outputs.npy at each
#     frame's sample, thru the input delayed by the latency
#     (lv2_compare.py);
#   - lv2file at block sizes 1, 256, 1000 and 4096 writes the same samples
#     (bit for bit; not the same file bytes: the PEAK chunk libsndfile adds
#     holds the time of writing), and those agree with `cbrnn run` too.
# Arguments: CBRNN LV2_DIR (the folder holding cbrnn.lv2) SAMPLES WORKDIR.
set -u
CBRNN=$1 LV2DIR=$2 SAMPLES=$3 WORK=$4
PY=${CBRNN_PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
URI=urn:cbrnn:lv2
BUNDLE=$LV2DIR/cbrnn.lv2
export LV2_PATH=$LV2DIR
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "-- $*"; }

note "lv2_validate"
lv2_validate "$BUNDLE"/manifest.ttl "$BUNDLE"/cbrnn.ttl >validate.log 2>&1 \
  || { cat validate.log; fail "lv2_validate exited non-zero"; }
grep -q "Found 0 errors" validate.log || { cat validate.log; fail "lv2_validate found errors"; }

note "lv2info"
lv2info "$URI" >info.txt 2>info.err || { cat info.err; fail "lv2info does not find $URI"; }
grep -q "Has latency: *yes, reported by port 18" info.txt \
  || { cat info.txt; fail "lv2info: no latency port"; }
for sym in in teacher thru surprise out_1 out_2 out_3 out_4 control notify enable learn lr \
           momentum decay reset label_base teacher_on latency surprise_now loss_mean; do
  grep -q "Symbol: *$sym\$" info.txt || fail "lv2info: no port $sym"
done

note "exports and libraries of cbrnn.so"
syms=$(nm -D --defined-only "$BUNDLE/cbrnn.so" | awk '{print $3}')
[ "$syms" = lv2_descriptor ] || fail "cbrnn.so exports more than lv2_descriptor: $syms"
ldd "$BUNDLE/cbrnn.so" >ldd.txt || fail "ldd cbrnn.so"
if grep -Eiq "blas|lapack|gfortran" ldd.txt; then cat ldd.txt; fail "cbrnn.so pulls in BLAS"; fi

MODEL=$BUNDLE/default.safetensors
sox "$SAMPLES/voiceB_gb_female_1.wav" -e floating-point -b 32 v16.wav trim 0 4 || fail "sox"
sox "$SAMPLES/noise_tones_48k.wav" -e floating-point -b 32 n48.wav trim 0 3 || fail "sox"
for c in "v16 1" "v16 0" "n48 1"; do
  set -- $c
  in=$1 learn=$2
  flag=--learn; [ "$learn" = 1 ] || flag=--no-learn
  note "lv2apply $in.wav learn=$learn against cbrnn run $flag"
  "$CBRNN" run --quiet --model "$MODEL" $flag --out-dir run_${in}_$learn $in.wav \
    || fail "cbrnn run $in.wav"
  lv2apply -i $in.wav -o apply_${in}_$learn.wav -c learn $learn "$URI" \
    || fail "lv2apply $in.wav learn=$learn"
  "$PY" "$HERE/lv2_compare.py" $in.wav apply_${in}_$learn.wav run_${in}_$learn \
    || fail "lv2apply $in.wav learn=$learn differs from cbrnn run"
done

note "lv2file block sizes"
for b in 1 256 1000 4096; do
  lv2file --ignore-clipping -b $b -c 1:in -p learn:1 -i v16.wav -o file$b.wav "$URI" \
    >lv2file$b.log 2>&1 || { cat lv2file$b.log; fail "lv2file -b $b"; }
done
for b in 1 256 1000; do
  "$PY" "$HERE/lv2_compare.py" --same file$b.wav file4096.wav \
    || fail "lv2file: -b $b and -b 4096 give different samples"
done
"$PY" "$HERE/lv2_compare.py" v16.wav file256.wav run_v16_1 || fail "lv2file differs from cbrnn run"
echo "lv2_tools: ok"
