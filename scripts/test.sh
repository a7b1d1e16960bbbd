#!/bin/sh
# The whole test suite, as CI runs it (.ci/run calls this): installs what is
# missing, builds with gcc, runs every test, the engine tests under valgrind
# and a 60 s live soak of cbrnn-jack; then builds with clang under
# AddressSanitizer + UndefinedBehaviorSanitizer and runs every test again,
# and runs each libFuzzer target for 60 s.
# Set CBRNN_QUICK=1 to skip the sanitizer and fuzzing pass while developing.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"
"$top/scripts/build.sh" "$top/build"
# JACK's registry of servers killed in earlier runs (scripts/jack_clean.sh)
"$top/scripts/jack_clean.sh"
(cd "$top/build" && ctest --output-on-failure -j2)
# valgrind memcheck of the engine tests: no error, no leak. test_engine_rt
# is left out (it replaces malloc itself, as valgrind does; also under ASan).
for t in test_engine test_spsc; do
  valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
    "$top/build/tests/engine/$t" >"$top/build/memcheck-$t.log" 2>&1 ||
    { cat "$top/build/memcheck-$t.log"; echo "test.sh: valgrind: $t" >&2; exit 1; }
done
# cbrnn-jack learning live for 60 s under load and changing buffer sizes
"$top/scripts/soak.sh" 60
if [ "${CBRNN_QUICK:-0}" != 1 ]; then
  CC=clang "$top/scripts/build.sh" "$top/build-asan" -DCBRNN_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
  "$top/scripts/jack_clean.sh"
  (cd "$top/build-asan" &&
   ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
   ctest --output-on-failure -j2)
  # every fuzz target for 60 s: any crash, leak or sanitizer report fails
  "$top/scripts/fuzz.sh" 60
fi
echo "test.sh: all tests passed"
