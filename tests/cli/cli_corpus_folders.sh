#!/bin/bash
# cli_corpus_folders: nothing in an input folder is dropped without a
# word (train/corpus.h). eval and train:
#  - leave out, with a warning naming it and the system's reason, an
#    entry that cannot be examined: a symbolic link to nothing (ENOENT),
#    one in a loop (ELOOP), one through a file (ENOTDIR), a path the
#    system refuses (ENAMETOOLONG, a folder nested past PATH_MAX), an
#    audio-named FIFO; the count of skipped files says so; --strict makes
#    the first an error (exit 2);
#  - as another user than root: a folder that cannot be searched or a
#    folder below that cannot be opened (permissions) likewise;
#  - say that a folder named (alone or in a list) holds no audio file,
#    and name the inputs when nothing is left;
#  - show control characters in names as \xHH, never raw.
# usage: cli_corpus_folders.sh CBRNN SAMPLES WORKDIR
set -u
CBRNN=$1 SAMPLES=$2 WORK=$3
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"

mkdir links
cp "$IN" links/good.wav
ln -s /mnt/unmounted/x.wav links/broken.wav
ln -s loop.wav links/loop.wav
ln -s good.wav/x.wav links/notdir.wav
mkfifo links/fifo.wav
expect 0 "4 files skipped" "$CBRNN" eval "$MODEL" links
for w in "links/broken.wav: cannot examine: No such file or directory" \
         "links/loop.wav: cannot examine: Too many levels of symbolic links" \
         "links/notdir.wav: cannot examine: Not a directory" "links/fifo.wav: not a regular file"; do
  grep -qF "warning: skipping $w" err.txt || fail "eval links: no warning '$w': $(cat err.txt)"
done
grep -q "links/good.wav" out.txt || fail "eval links left out good.wav: $(cat out.txt)"
expect 2 "links/broken.wav: cannot examine: No such file or directory (a symbolic link to a missing file) (--strict" \
  "$CBRNN" eval --strict "$MODEL" links
expect 0 "skipping links/loop.wav: cannot examine" "$CBRNN" train -o t.safetensors "${TINY[@]}" \
  --val-fraction 0 links
expect 2 "links/broken.wav: cannot examine" "$CBRNN" train --strict -o t.safetensors "${TINY[@]}" \
  --val-fraction 0 links

# A folder nested past PATH_MAX: its entries cannot be examined.
mkdir deep
(cd deep && for _ in $(seq 17); do d=$(printf 'd%.0s' $(seq 250)); mkdir "$d" && cd "$d" || exit 1; done
 cp "$IN" x.wav) || fail "making deep folders"
expect 0 "File name too long" "$CBRNN" eval "$MODEL" "$IN" deep
expect 2 "File name too long" "$CBRNN" eval --strict "$MODEL" "$IN" deep

# Names with control characters: shown as \xHH.
mkdir esc
ln -s nowhere "esc/$(printf 'a\033]0;title\007.wav')"
cp "$IN" esc/ok.wav
expect 0 'esc/a\x1b]0;title\x07.wav: cannot examine' "$CBRNN" eval "$MODEL" esc
grep -q "$(printf '\033')" err.txt && fail "a raw escape in the warnings: $(cat -v err.txt)"
echo "ok   control characters shown as \\xHH"

# Empty folders: said, and named when nothing is left.
mkdir empty
expect 2 "no audio files to evaluate in empty (empty corpus)" "$CBRNN" eval "$MODEL" empty
grep -qF "warning: empty: no audio files in this folder" err.txt || fail "no warning: $(cat err.txt)"
printf 'empty\n%s\n' "$IN" >list.txt
expect 0 "warning: list.txt:1: empty: no audio files in this folder" "$CBRNN" eval "$MODEL" @list.txt
expect 2 "no audio files to train on in empty (empty corpus)" "$CBRNN" train -o t.safetensors \
  "${TINY[@]}" empty

# Permissions (root reads every folder: only as another user).
if [ "$(id -u)" -ne 0 ]; then
  mkdir noxdir closed closed/sub
  cp "$IN" noxdir/in.wav
  cp "$IN" closed/sub/in.wav
  chmod 600 noxdir
  chmod 000 closed/sub
  expect 0 "noxdir: cannot look into folder (its 1 entry left out): Permission denied" \
    "$CBRNN" train -o t.safetensors "${TINY[@]}" --val-fraction 0 "$IN" noxdir
  expect 2 "noxdir: cannot look into folder" "$CBRNN" train --strict -o t.safetensors "${TINY[@]}" \
    --val-fraction 0 "$IN" noxdir
  expect 0 "closed/sub: cannot open folder: Permission denied" "$CBRNN" eval "$MODEL" "$IN" closed
  chmod 700 noxdir closed/sub
else
  echo "skip permissions (running as root)"
fi
echo "PASS"
