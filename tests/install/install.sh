#!/bin/bash
# install.sh: `cmake --install` into a fresh prefix gives a usable tree:
#   - libcbrnn.so.VERSION with soname libcbrnn.so.MAJOR (and the links),
#     exporting cbrnn_* functions only;
#   - the public headers, cbrnn.pc (pkg-config finds the prefix itself);
#   - the binaries, the default model, the LV2 bundle (lv2info finds it);
#   - docs/example_embed.c builds with `pkg-config --cflags --libs cbrnn`
#     against that tree and runs on the installed default model.
# Arguments: BUILD_DIR SOURCE_DIR WORKDIR.
set -u
BUILD=$1 SRC=$2 WORK=$3
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
fail() { echo "FAIL: $*" >&2; exit 1; }
PREFIX=$WORK/prefix
cmake --install "$BUILD" --prefix "$PREFIX" >install.log 2>&1 || { cat install.log; fail "cmake --install"; }
PC=$(find "$PREFIX" -name cbrnn.pc)
[ -n "$PC" ] || fail "no cbrnn.pc installed"
LIBDIR=$(dirname "$(dirname "$PC")")
export PKG_CONFIG_PATH=$(dirname "$PC")
VERSION=$(pkg-config --modversion cbrnn) || fail "pkg-config does not find cbrnn"
MAJOR=${VERSION%%.*}
[ -f "$LIBDIR/libcbrnn.so.$VERSION" ] || fail "no $LIBDIR/libcbrnn.so.$VERSION"
[ -L "$LIBDIR/libcbrnn.so.$MAJOR" ] && [ -L "$LIBDIR/libcbrnn.so" ] || fail "libcbrnn.so links missing"
readelf -d "$LIBDIR/libcbrnn.so.$VERSION" | grep -q "SONAME.*\[libcbrnn.so.$MAJOR\]" \
  || fail "soname is not libcbrnn.so.$MAJOR"
other=$(nm -D --defined-only "$LIBDIR/libcbrnn.so" | awk '{print $3}' | grep -v '^cbrnn_' | head)
[ -z "$other" ] || fail "libcbrnn exports non-cbrnn symbols: $other"
[ "$(pkg-config --variable=libdir cbrnn)" -ef "$LIBDIR" ] || fail "pkg-config libdir is wrong"
for h in cbrnn.h cbrnn_dsp.h cbrnn_model.h cbrnn_engine.h cbrnn_host.h cbrnn_control.h; do
  [ -f "$PREFIX/include/cbrnn/$h" ] || fail "header $h not installed"
done
for b in cli/cbrnn plugin/cbrnn-jack plugin/cbrnn-jackplay; do
  [ -x "$BUILD/$b" ] || continue # not built in this configuration (e.g. no JACK)
  [ -x "$PREFIX/bin/${b#*/}" ] || fail "binary ${b#*/} not installed"
done
[ -f "$(pkg-config --variable=datadir cbrnn)/plot_experiment.py" ] || fail "the figure script is not installed"
MODEL=$(pkg-config --variable=datadir cbrnn)/default.safetensors
[ -f "$MODEL" ] || fail "default model not installed ($MODEL)"
# The default model: the build-tree cbrnn-jack takes its source tree's
# samples/ (whatever an install holds), the installed one its prefix's.
if [ -x "$BUILD/plugin/cbrnn-jack" ]; then
  "$BUILD/plugin/cbrnn-jack" --help | grep -qF "default model of this binary: $SRC/samples/default.safetensors" \
    || fail "the build-tree cbrnn-jack does not default to $SRC/samples"
  "$PREFIX/bin/cbrnn-jack" --help | grep -qF "default model of this binary: $PREFIX/bin/../share/cbrnn/default.safetensors" \
    || { "$PREFIX/bin/cbrnn-jack" --help | tail -1; fail "the installed cbrnn-jack does not default to its prefix's model"; }
fi
if [ -d "$BUILD/lib/lv2/cbrnn.lv2" ]; then
  for f in manifest.ttl cbrnn.ttl cbrnn.so default.safetensors; do
    [ -f "$LIBDIR/lv2/cbrnn.lv2/$f" ] || fail "LV2 bundle: $f not installed"
  done
  LV2_PATH=$LIBDIR/lv2 lv2info urn:cbrnn:lv2 >lv2info.txt 2>&1 || { cat lv2info.txt; fail "lv2info on the installed bundle"; }
fi
# The example, built as a user would: only pkg-config, outside the source tree.
cp "$SRC/docs/example_embed.c" .
cc -std=c11 -Wall -Wextra -Werror example_embed.c $(pkg-config --cflags --libs cbrnn) -lm \
  -o embed 2>cc.log || { cat cc.log; fail "the example does not build with pkg-config"; }
LD_LIBRARY_PATH=$LIBDIR ./embed "$MODEL" >embed.txt 2>&1 || { cat embed.txt; fail "the example failed"; }
cat embed.txt
grep -Eq "^[0-9]+ frames .* [0-9]+ updates" embed.txt || fail "the example printed no summary"
LD_LIBRARY_PATH=$LIBDIR ldd embed | grep -q "libcbrnn.so.$MAJOR => $LIBDIR" || { ldd embed; fail "embed does not use the installed libcbrnn"; }
echo "install: ok (libcbrnn $VERSION)"
