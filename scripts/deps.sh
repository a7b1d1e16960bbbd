#!/bin/sh
# Installs the Debian 12 packages cbrnn needs to build, test and run its
# demo. Idempotent: installs only what is missing; safe to rerun as root.
# Never uses pip: the Python pieces run on Debian's /usr/bin/python3.
set -eu
PKGS="build-essential cmake pkg-config clang valgrind
libjack-jackd2-dev jackd2 libsndfile1-dev libfftw3-dev libcmocka-dev
libopenblas-dev libsamplerate0-dev librubberband-dev liblo-dev liblo-tools libjansson-dev
sndfile-tools espeak-ng sox ffmpeg time libclang-rt-14-dev
lv2-dev liblilv-dev lilv-utils lv2file jalv sordi ardour
python3-torch python3-torchaudio python3-numpy python3-matplotlib
slurmctld slurmd slurm-client munge"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "deps: installing:$missing" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # jackd2 asks about realtime priority; answer no without a prompt.
  echo "jackd2 jackd/tweak_rt_limits boolean false" | $SUDO debconf-set-selections 2>/dev/null || true
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
