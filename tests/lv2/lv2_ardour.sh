#!/bin/bash
# lv2_ardour.sh: the plugin's learned state through an Ardour session.
# ardour7-lua (headless, dummy backend) makes a session with cbrnn.lv2 on a
# track, learns for 2 s, turns learning off and saves: the session folder
# then holds a cbrnn model file with the learned weights (not the default
# model's). A second ardour7-lua loads the session, runs it and saves it
# again: the model saved then holds exactly the same weights, so the
# reload restored the learned state (a failed restore would put the
# default model's weights back).
# Arguments: LV2_DIR WORKDIR SOURCE_DIR.
set -u
LV2DIR=$1 WORK=$2 SRC=$3
PY=${CBRNN_PYTHON:-/usr/bin/python3}
rm -rf "$WORK" && mkdir -p "$WORK/home" && cd "$WORK" || exit 1
fail() { echo "FAIL: $*" >&2; exit 1; }
export HOME=$WORK/home XDG_CONFIG_HOME=$WORK/home/.config XDG_CACHE_HOME=$WORK/home/.cache
export LV2_PATH=$LV2DIR:/usr/lib/lv2 SESS_DIR=$WORK/sess SESS_NAME=sess
LUA=$SRC/tests/lv2/ardour_session.lua
DIFF=$SRC/tests/jack/safetensors_diff.py
STEP=create timeout 120 ardour7-lua "$LUA" >create.log 2>&1 || { cat create.log; fail "ardour7-lua create"; }
grep -q "created and saved" create.log || { cat create.log; fail "the session was not saved"; }
first=$(find sess/plugins -name cbrnn-model.safetensors | sort | head -1)
[ -n "$first" ] || fail "no cbrnn model in the session's plugin state"
"$PY" "$DIFF" "$first" "$LV2DIR/cbrnn.lv2/default.safetensors" >/dev/null \
  && fail "the saved state holds the default model's weights: nothing learned"
STEP=reload timeout 120 ardour7-lua "$LUA" >reload.log 2>&1 || { cat reload.log; fail "ardour7-lua reload"; }
grep -q "reloaded and saved" reload.log || { cat reload.log; fail "the reloaded session was not saved"; }
[ -f sess/reloaded.ardour ] || fail "no reloaded.ardour"
n=$(find sess/plugins -name cbrnn-model.safetensors | wc -l)
[ "$n" -ge 2 ] || fail "the second save wrote no new plugin state"
for m in $(find sess/plugins -name cbrnn-model.safetensors); do
  "$PY" "$DIFF" "$first" "$m" || fail "$m: weights differ from the saved learned state"
done
echo "lv2_ardour: learned state saved with the session and restored on reload ($n saves)"
