#!/bin/sh
# jack_clean.sh: clears what JACK servers that are gone left in /dev/shm,
# when no JACK server runs on this machine at all.
# Why: JACK's shared registry has room for 8 servers, and the entry of a
# server that was killed (rather than stopped) stays there until a server
# of the same name starts again; the tests name their servers after their
# work folders, so every new clone of the repository, and every killed
# server, takes a slot for good, and after 8 of them no server starts
# ("Too many servers already active"). With no jackd or jackdbus running,
# nothing in /dev/shm/jack* is in use, and a server starting afresh makes
# a new registry. Never touches anything while any JACK server runs.
set -eu
if pgrep -x jackd >/dev/null 2>&1 || pgrep -x jackdbus >/dev/null 2>&1; then
  exit 0
fi
for f in /dev/shm/jack-shm-registry /dev/shm/jack-[0-9]* /dev/shm/jack_sem.* /dev/shm/jack_*_[0-9]*_[0-9]*; do
  [ -e "$f" ] && rm -f "$f" 2>/dev/null || true
done
for d in /dev/shm/jack_db-*; do
  [ -d "$d" ] && rm -rf "$d" 2>/dev/null || true
done
exit 0
