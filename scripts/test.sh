#!/bin/sh
# The whole test suite, as CI runs it (.ci/run calls this): installs what is
# missing, builds with gcc, runs every test; then builds with clang under
# AddressSanitizer + UndefinedBehaviorSanitizer and runs every test again.
# Set CBRNN_QUICK=1 to skip the sanitizer pass while developing.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"
"$top/scripts/build.sh" "$top/build"
(cd "$top/build" && ctest --output-on-failure -j2)
if [ "${CBRNN_QUICK:-0}" != 1 ]; then
  CC=clang "$top/scripts/build.sh" "$top/build-asan" -DCBRNN_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
  (cd "$top/build-asan" &&
   ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
   ctest --output-on-failure -j2)
fi
echo "test.sh: all tests passed"
