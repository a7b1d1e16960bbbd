#!/bin/bash
# tests/scripts/demo_test.sh SRC WORK: scripts/demo.sh with fakes of JACK
# (jackd, jack_lsp on PATH), of the hosts (cbrnn-jack, cbrnn-jackplay) and
# of cbrnn, and stubs of deps.sh and build.sh. A missing clip is refused
# before anything is installed; a file that is not audio is refused before
# JACK starts; a player that fails fails the demo (non-zero exit and a
# message) and the jackd the demo started is stopped all the same; a clip
# that plays ends in "demo: done" with status 0. deps.sh is asked for the
# demo's set only.
set -u
. "$1/tests/scripts/lib.sh"
start_test "$1" "$2"
mkdir -p "$work/bin"
printf '#!/bin/sh\n' > "$t/scripts/jack_clean.sh"   # never touch the real /dev/shm
export FAKEJACK=$work/jack
mkdir -p "$FAKEJACK"
cat > "$work/bin/jack_lsp" <<'F'
#!/bin/sh
[ -e "$FAKEJACK/up" ] || exit 1
cat "$FAKEJACK"/ports 2>/dev/null
exit 0
F
cat > "$work/bin/jackd" <<'F'
#!/bin/bash
trap 'echo stopped >> "$FAKEJACK/jackd"; rm -f "$FAKEJACK/up"; exit 0' TERM
echo started >> "$FAKEJACK/jackd"; touch "$FAKEJACK/up"
while :; do sleep 0.1; done
F
cat > "$t/build/plugin/cbrnn-jack" <<'F'
#!/bin/bash
name=$2
trap 'echo "$name stopped" >> "$FAKEJACK/clients"; exit 0' TERM
echo "$name:input" >> "$FAKEJACK/ports"
while :; do sleep 0.1; done
F
cat > "$t/build/plugin/cbrnn-jackplay" <<'F'
#!/bin/sh
[ "${FAKE_PLAY:-ok}" = fail ] && { echo "cbrnn-jackplay: cannot connect" >&2; exit 1; }
sleep 1
F
chmod +x "$work"/bin/* "$t"/build/plugin/*
export PATH="$work/bin:$PATH"
printf 'RIFF fake audio\n' > clip.wav
printf 'not audio\n' > notes.txt
reset_jack() { rm -f "$FAKEJACK"/*; }

"$t/scripts/demo.sh" MISSING.wav > out.txt 2>&1
expect_status "missing clip" 2 $?
expect_grep "missing clip" "audio file 'MISSING.wav' not found" out.txt
[ ! -e "$t/deps.calls" ] || fail "missing clip: deps.sh ran"

"$t/scripts/demo.sh" notes.txt > out.txt 2>&1
expect_status "not audio" 2 $?
expect_grep "not audio" "'notes.txt' is not audio" out.txt
expect_same "deps.sh asked for the demo's set" "$t/deps.calls" "deps.sh --demo"
[ ! -e "$FAKEJACK/jackd" ] || fail "not audio: jackd started"

reset_jack
FAKE_PLAY=fail "$t/scripts/demo.sh" clip.wav > out.txt 2>&1
expect_status "failed player" 1 $?
expect_grep "failed player" "the player (cbrnn-jackplay) failed with exit status 1" out.txt
! grep -q "demo: done" out.txt || fail "failed player: said done"
expect_same "failed player: jackd" "$FAKEJACK/jackd" "$(printf 'started\nstopped')"
[ "$(wc -l < "$FAKEJACK/clients")" = 2 ] || fail "failed player: clients not stopped"

reset_jack
"$t/scripts/demo.sh" clip.wav > out.txt 2>&1
expect_status "clip played" 0 $?
expect_grep "clip played" "demo: done" out.txt
expect_same "clip played: jackd" "$FAKEJACK/jackd" "$(printf 'started\nstopped')"
echo "demo_test: all checks passed"
