#!/bin/sh
# Installs the Debian 12 packages cbrnn needs. Idempotent: installs only
# what is missing; safe to rerun as root. Never uses pip: the Python
# pieces run on Debian's /usr/bin/python3.
#
#   scripts/deps.sh          everything: build, the whole test suite and the
#                            experiments (scripts/test.sh): clang, valgrind,
#                            PyTorch, the LV2 hosts and Ardour, Slurm, ...
#   scripts/deps.sh --demo   only what building and the live demo need
#                            (scripts/demo.sh): compiler, cmake, JACK,
#                            libsndfile, FFTW, OpenBLAS, libsamplerate,
#                            Rubber Band, liblo, jansson, cmocka (the build
#                            configures the tests), python3. No service is
#                            started: slurmctld, slurmd and munge, which
#                            Debian starts on install, are only in the full set.
set -eu
# What CMakeLists.txt requires (pkg-config modules fftw3, sndfile,
# samplerate, openblas, jansson, rubberband, jack, liblo; cmocka for
# tests/), what demo.sh runs (jackd, jack_lsp: jackd2; /usr/bin/python3)
# and scripts/jack_clean.sh (pgrep: procps).
DEMO="build-essential cmake pkg-config
libjack-jackd2-dev jackd2 libsndfile1-dev libfftw3-dev libcmocka-dev
libopenblas-dev libsamplerate0-dev librubberband-dev liblo-dev libjansson-dev
python3 procps"
# The rest of the test suite and experiments: tests/ (sanitizers, parity
# against PyTorch, LV2 hosts, OSC, Slurm; ss and ip for the OSC binding
# check and the Slurm test's private network: iproute2, absent from a
# minimal Debian 12; strace for tests/jack/osc_net.sh, which checks that
# no socket is bound to every interface), scripts/corpus.sh, the plots.
TEST="clang valgrind liblo-tools iproute2 strace
sndfile-tools espeak-ng sox ffmpeg time libclang-rt-14-dev
lv2-dev liblilv-dev lilv-utils lv2file jalv sordi ardour
python3-torch python3-torchaudio python3-numpy python3-matplotlib
slurmctld slurmd slurm-client munge"
case ${1:-} in
  "") PKGS="$DEMO $TEST" ;;
  --demo) PKGS=$DEMO ;;
  -h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "deps.sh: unknown argument '$1' (expected --demo or nothing; see --help)" >&2; exit 2 ;;
esac
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
  # shellcheck disable=SC2086 # one word per package
  $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
