#!/bin/bash
# bigfile.sh [HOURS]: long inputs in bounded memory. Makes a HOURS-long
# (default 2) 16 kHz 16-bit WAV from the sample voices (all eight, looped
# with sox), and a 10-minute one, then measures peak resident memory
# (GNU time's "Maximum resident set size") of:
#   cbrnn features   (streams the file and the .npy)
#   cbrnn run --learn (the engine over the file: outputs.npy, frames.csv,
#                      surprise.wav)
#   cbrnn train      (features in a disk cache read through a mapping)
# on both lengths. Bounded means the long file's peak is within 16 MiB of
# the 10-minute file's; all three must be bounded (exit 1 if not). Then
# `cbrnn train` on the long file inside a memory cgroup limited to
# $TRAIN_LIMIT_MIB (default 64) MiB, less than its features alone would
# take in memory (55 MiB per hour at 40 mels): it must finish (exit 1 if
# not; skipped, and said so, where no memory cgroup can be made).
# Prints the figures and a JSON line. Uses build/ (or $CBRNN_BUILD);
# needs sox and GNU time.
set -uo pipefail
usage() { echo "usage: scripts/bigfile.sh [HOURS] (HOURS > 0, default 2; see --help)" >&2; exit 2; }
case ${1:-} in
  -h|--help) sed -n '2,/^set -uo pipefail/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
  -*) echo "bigfile.sh: unknown option '$1'" >&2; usage ;;
esac
[ $# -le 1 ] || { echo "bigfile.sh: one argument at most" >&2; usage; }
hours=${1:-2}
if ! [[ $hours =~ ^[0-9]+([.][0-9]+)?$ ]] || ! awk -v h="$hours" 'BEGIN { exit !(h > 0) }'; then
  echo "bigfile.sh: HOURS '$hours' is not a positive number" >&2; usage
fi
top=$(cd "$(dirname "$0")/.." && pwd)
build=${CBRNN_BUILD:-$top/build}
CBRNN=$build/cli/cbrnn
MODEL=$top/samples/default.safetensors
[ -x "$CBRNN" ] || { echo "bigfile.sh: $CBRNN missing: build first" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bigfile.sh: GNU time missing (scripts/deps.sh)" >&2; exit 2; }
work=$build/bigfile/run-$$
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
FAILED=0
fail() { echo "bigfile.sh: FAIL: $*" >&2; FAILED=1; }

k=0
for f in "$top"/samples/voice*.wav; do
  k=$((k + 1)); sox "$f" -r 16000 -c 1 -b 16 "part$k.wav" || exit 1
done
sox part*.wav loop.wav && rm -f part*.wav
loop_s=$(soxi -D loop.wav)
secs=$(awk -v h="$hours" 'BEGIN { printf "%d", h * 3600 }')
reps=$(awk -v s="$secs" -v l="$loop_s" 'BEGIN { printf "%d", s / l + 1 }')
sox loop.wav long.wav repeat "$reps" trim 0 "$secs" || exit 1
sox long.wav short.wav trim 0 600 || exit 1

# peak KEY CMD...: runs CMD under GNU time; sets PEAK_KB, WALL_S, RC
peak() {
  /usr/bin/time -v -o "time.$1" "${@:2}" >"out.$1" 2>"err.$1"
  RC=$?
  PEAK_KB=$(awk -F': ' '/Maximum resident set size/ {print $2}' "time.$1")
  WALL_S=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "time.$1")
}

declare -A P W
for len in short long; do
  peak "feat_$len" "$CBRNN" features "$len.wav" -o "$len.npy"
  [ "$RC" -eq 0 ] || fail "cbrnn features $len.wav: exit $RC: $(tail -2 "err.feat_$len")"
  P[feat_$len]=$PEAK_KB W[feat_$len]=$WALL_S
  rm -f "$len.npy"
  peak "run_$len" "$CBRNN" run --quiet --model "$MODEL" --learn --out-dir "run_$len" "$len.wav"
  [ "$RC" -eq 0 ] || fail "cbrnn run $len.wav: exit $RC: $(tail -2 "err.run_$len")"
  P[run_$len]=$PEAK_KB W[run_$len]=$WALL_S
  frames=$(($(wc -l <"run_$len/frames.csv") - 1))
  rm -rf "run_$len"
  eval "frames_$len=$frames"
  peak "train_$len" "$CBRNN" train -q -o "t_$len.safetensors" --hidden 32 --cb 32 \
    --warmup-steps 5 --steps 5 --val-fraction 0 "$len.wav"
  [ "$RC" -eq 0 ] || fail "cbrnn train $len.wav: exit $RC: $(tail -2 "err.train_$len")"
  P[train_$len]=$PEAK_KB W[train_$len]=$WALL_S
done

for what in feat run train; do
  d=$(( ${P[${what}_long]} - ${P[${what}_short]} ))
  [ "$d" -le 16384 ] || fail "$what: peak RSS ${P[${what}_long]} kB on $hours h vs ${P[${what}_short]} kB on 10 min"
done
feat_mib=$(awk -v f="$frames_long" 'BEGIN { printf "%.1f", f * 40 * 4 / 1048576 }')

# The long file's training inside a memory limit below its features' size.
limit_mib=${TRAIN_LIMIT_MIB:-64}
cg=/sys/fs/cgroup/memory/cbrnn-bigfile-$$
limited="skipped (no memory cgroup here)"
limited_rc=null
if mkdir "$cg" 2>/dev/null && echo $((limit_mib << 20)) >"$cg/memory.limit_in_bytes"; then
  /usr/bin/time -v -o time.limited sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$cg" \
    "$CBRNN" train -q -o t_limited.safetensors --hidden 32 --cb 32 --warmup-steps 5 --steps 5 \
    --val-fraction 0 long.wav >out.limited 2>err.limited
  limited_rc=$?
  ooms=$(awk '/^oom_kill / {print $2}' "$cg/memory.oom_control")
  rmdir "$cg"
  limited="exit $limited_rc in $limit_mib MiB (features alone: $feat_mib MiB; OOM kills: ${ooms:-0}; wall $(awk -F': ' '/Elapsed/ {print $2}' time.limited))"
  [ "$limited_rc" -eq 0 ] || fail "cbrnn train $hours h in a $limit_mib MiB cgroup: exit $limited_rc: $(tail -2 err.limited)"
fi

cat <<EOF
bigfile: $hours h ($frames_long frames) vs 10 min ($frames_short frames), 16 kHz mono 16-bit
  cbrnn features: peak RSS ${P[feat_short]} kB (10 min), ${P[feat_long]} kB ($hours h); wall ${W[feat_long]}
  cbrnn run --learn: peak RSS ${P[run_short]} kB (10 min), ${P[run_long]} kB ($hours h); wall ${W[run_long]}
  cbrnn train: peak RSS ${P[train_short]} kB (10 min), ${P[train_long]} kB ($hours h); wall ${W[train_long]}
  cbrnn train on $hours h in a memory cgroup: $limited
EOF
printf '{"hours":%s,"frames":%s,"features_peak_kb_10min":%s,"features_peak_kb":%s,"run_peak_kb_10min":%s,"run_peak_kb":%s,"train_peak_kb_10min":%s,"train_peak_kb":%s,"train_feature_mib":%s,"train_limit_mib":%s,"train_limited_exit":%s}\n' \
  "$hours" "$frames_long" "${P[feat_short]}" "${P[feat_long]}" "${P[run_short]}" "${P[run_long]}" \
  "${P[train_short]}" "${P[train_long]}" "$feat_mib" "$limit_mib" "$limited_rc"
[ "$FAILED" -eq 0 ] && { cd /; rm -rf "$work"; }
exit "$FAILED"
