#!/bin/bash
# wav_crash.sh CBRNN WAV_WRITER WAV_WRITER_LIMIT SAMPLES WORKDIR: a float
# WAV recording (host/host_wav.c) survives its writer, and `cbrnn run`
# reads what it left (host/host_audio.c):
#  - killed: a writer killed with SIGKILL mid-recording (as a crashed or
#    abandoned cbrnn-jack is) leaves a WAV whose header is at most a
#    second behind; `cbrnn run` reads every sample that reached the file,
#    bit for bit, with a warning naming it;
#  - a header never written (sizes 0, what libsndfile reads as empty) and
#    one that declares less than follows: read to the end with the warning;
#    a WAV with a chunk after its data: no warning; one that declares more
#    than the file holds: still refused as truncated;
#  - disk full (a 300 KiB tmpfs, when this user may mount one): the writer
#    fails with ENOSPC and the file's header declares what reached the
#    file, closed or killed before closing, so `cbrnn run` reads it all
#    (before, the header counted buffered samples that never did: refused
#    as truncated);
#  - the 4 GiB limit of a RIFF header (lowered to 40000 bytes in
#    WAV_WRITER_LIMIT): the writer keeps what fits and fails with EFBIG,
#    and the file is a complete WAV of exactly that much.
set -u
CBRNN=$1 WRITER=$2 WRITER_LIMIT=$3 SAMPLES=$4 WORK=$5
PY=/usr/bin/python3
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
MODEL=$SAMPLES/default.safetensors
fail() { echo "FAIL: $*" >&2; exit 1; }

# check_samples FILE N: FILE is a float WAV whose data chunk holds exactly
# the first N samples wav_writer writes (tests/host/wav_writer.c), and
# nothing follows it. Prints the header's data size.
check_samples() {
  "$PY" - "$@" <<'PY'
import math, struct, sys
path, n = sys.argv[1], int(sys.argv[2])
d = open(path, "rb").read()
rate = struct.unpack("<I", d[24:28])[0]
size = struct.unpack("<I", d[54:58])[0]
riff = struct.unpack("<I", d[4:8])[0]
fact = struct.unpack("<I", d[46:50])[0]
x = struct.unpack("<%df" % (size // 4), d[58:58 + size])
want = [struct.unpack("<f", struct.pack("<f", (0.25 + 0.05 * math.fmod(i / rate, 4.0)) *
                                         math.sin(2 * math.pi * 440 * (i / rate))))[0]
        for i in range(n)]
ok = size == 4 * n and len(d) == 58 + size and riff == size + 50 and fact == n and list(x) == want
print("data %d bytes, file %d, riff %d, fact %d: %s" % (size, len(d), riff, fact, "ok" if ok else "WRONG"))
sys.exit(0 if ok else 1)
PY
}

# run_reads FILE N [warn|quiet]: `cbrnn run` reads FILE (exit 0), N
# samples by its warning (warn) or with no warning at all (quiet).
run_reads() {
  local f=$1 n=$2 how=${3:-quiet} rc
  rm -rf out
  "$CBRNN" run --quiet --model "$MODEL" --out-dir out "$f" 2>err.txt; rc=$?
  [ "$rc" -eq 0 ] || fail "cbrnn run $f: exit $rc, expected 0 ($(cat err.txt))"
  if grep -q "Sanitizer\|runtime error" err.txt; then fail "cbrnn run $f: sanitizer report"; fi
  if [ "$how" = warn ]; then
    grep -qF "warning: $f: header not finished (a recording cut short?): reading the $n samples present" err.txt ||
      fail "cbrnn run $f: expected the warning with $n samples, got: $(cat err.txt)"
  else
    [ ! -s err.txt ] || fail "cbrnn run $f: expected no message, got: $(cat err.txt)"
  fi
  echo "ok   cbrnn run $f ($how): $(head -c 200 err.txt)"
}

# --- killed mid-recording: 1.5 s at 48 kHz; the header is rewritten
# after each second, the buffer (16384 samples) written whenever it fills,
# so the file holds 64512 samples when the writer stops and waits, its
# header 48128 (the whole blocks of 1024 that passed a second).
"$WRITER" killed.wav 48000 72000 wait >w.txt 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q waiting w.txt && break; sleep 0.1; done
grep -q "written 72000 failed 0" w.txt || fail "writer: $(cat w.txt)"
kill -KILL "$pid"
wait "$pid" 2>/dev/null
"$PY" - <<'PY' || fail "killed.wav: header and file after SIGKILL"
import os, struct
d = open("killed.wav", "rb").read()
size = struct.unpack("<I", d[54:58])[0]
held = (len(d) - 58) // 4
print("killed.wav: header %d samples, file %d samples of 72000 written" % (size // 4, held))
# at most a second (48000 samples) lost, and the header at most a second behind
assert held >= 72000 - 48000 and 0 < size // 4 <= held and held - size // 4 <= 48000
PY
held=$(( ($(stat -c %s killed.wav) - 58) / 4 ))
run_reads killed.wav "$held" warn
rows=$(($(wc -l <out/frames.csv) - 1))
want=$(( (held - 480) / 480 + 1 )) # frames of 10 ms hops (25 ms window, 1200 samples)
[ "$rows" -ge $(( held / 480 - 3 )) ] || fail "killed.wav: $rows frames for $held samples (~$want)"
# bit for bit what was written: the file's data, as the header now says
"$PY" - <<'PY' || fail "completing the header"
import struct
d = bytearray(open("killed.wav", "rb").read())
n = len(d) - 58
d[4:8] = struct.pack("<I", n + 50); d[46:50] = struct.pack("<I", n // 4); d[54:58] = struct.pack("<I", n)
open("killed_fixed.wav", "wb").write(d)
PY
check_samples killed_fixed.wav "$held" || fail "killed.wav: the samples are not those written"

# --- headers never finished, written by hand; and the cases that stay as they were
"$PY" - <<'PY' || fail "writing the hand-made WAVs"
import struct
rate = 16000
x = struct.pack("<16000f", *[0.1 * ((i % 50) - 25) / 25 for i in range(16000)])
def wav(name, size, tail=b"", body=x):
    fmt = struct.pack("<HHIIHHH", 3, 1, rate, rate * 4, 4, 32, 0)
    h = b"WAVEfmt " + struct.pack("<I", 18) + fmt + b"fact" + struct.pack("<II", 4, size // 4)
    h += b"data" + struct.pack("<I", size)
    open(name, "wb").write(b"RIFF" + struct.pack("<I", size + 50) + h + body + tail)
wav("zero.wav", 0)                                          # never updated
wav("short.wav", 8000 * 4)                                  # half declared
wav("list.wav", 16000 * 4, b"LIST" + struct.pack("<I", 10) + b"INFOICMT\x00\x00")
wav("trunc.wav", 16000 * 4, body=x[:8000 * 4])             # declares twice what it holds
PY
run_reads zero.wav 16000 warn
run_reads short.wav 16000 warn
run_reads list.wav 16000 quiet
"$CBRNN" run --quiet --model "$MODEL" --out-dir out trunc.wav 2>err.txt; rc=$?
{ [ "$rc" -eq 2 ] &&
    grep -q "trunc.wav: truncated: the header declares 64000 bytes of audio data but the file holds only 32000" err.txt; } ||
  fail "trunc.wav: expected the truncation refused (exit 2), got $rc: $(cat err.txt)"
echo "ok   cbrnn run trunc.wav: refused as truncated"

# --- disk full
mkdir -p small
if mount -t tmpfs -o size=300k tmpfs small 2>/dev/null; then
  trap 'umount "$WORK/small"' EXIT
  for how in close wait; do
    rm -f small/*.wav
    "$WRITER" small/full.wav 16000 160000 "$how" >w.txt 2>&1 &
    pid=$!
    if [ "$how" = wait ]; then
      for _ in $(seq 100); do grep -q waiting w.txt && break; sleep 0.1; done
      kill -KILL "$pid"
    fi
    wait "$pid" 2>/dev/null
    grep -q "failed ENOSPC" w.txt || fail "disk full ($how): the writer did not fail with ENOSPC: $(cat w.txt)"
    n=$("$PY" -c 'import struct,sys; print(struct.unpack("<I", open(sys.argv[1],"rb").read()[54:58])[0] // 4)' small/full.wav)
    [ "$n" -gt 16000 ] || fail "disk full ($how): the header holds only $n samples"
    if [ "$how" = close ]; then
      check_samples small/full.wav "$n" || fail "disk full (closed): the file is not the samples written up to the full disk"
      cp small/full.wav full_closed.wav
      run_reads full_closed.wav "$n" quiet
    else
      # killed after the failure: the header already says what the file holds
      held=$(( ($(stat -c %s small/full.wav) - 58) / 4 ))
      cp small/full.wav full_killed.wav
      if [ "$held" -eq "$n" ]; then run_reads full_killed.wav "$n" quiet
      else run_reads full_killed.wav "$held" warn; fi
    fi
    echo "ok   disk full ($how): $(head -n1 w.txt), the header holds $n samples"
  done
  umount small && trap - EXIT
else
  echo "skip the disk-full case: cannot mount a tmpfs here"
fi

# --- the RIFF size limit (40000 bytes in this build): 10000 samples kept, EFBIG
"$WRITER_LIMIT" limit.wav 16000 16000 close >w.txt 2>&1; rc=$?
{ [ "$rc" -eq 1 ] && grep -q "written 9216 failed EFBIG" w.txt; } ||
  fail "limit: expected EFBIG after 9 whole blocks (exit 1), got $rc: $(cat w.txt)"
check_samples limit.wav 10000 || fail "limit: the file is not the 10000 samples that fit"
run_reads limit.wav 10000 quiet
echo "PASS"
