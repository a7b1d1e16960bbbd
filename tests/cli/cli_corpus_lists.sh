#!/bin/bash
# cli_corpus_lists: @LIST files as editors write them (docs/FORMATS.md,
# Input lists), read by eval, train and run alike:
#  - a UTF-8 byte order mark before the first name is not part of it;
#  - blanks (spaces, tabs) after and before a name are not part of it,
#    with LF or CRLF line ends;
#  - a line whose first non-blank is '#' is a comment;
#  - a --pairs list likewise.
# usage: cli_corpus_lists.sh CBRNN SAMPLES WORKDIR
set -u
CBRNN=$1 SAMPLES=$2 WORK=$3
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"

cp "$IN" a1.wav
cp "$SAMPLES/voiceA_us_male_2.wav" a2.wav
# evals LIST N: eval of @LIST succeeds on N files
evals() {
  "$CBRNN" eval "$MODEL" "@$1" >out.txt 2>err.txt || fail "eval @$1: $(cat err.txt)"
  [ "$(grep -c '\.wav ' out.txt)" -eq "$2" ] || fail "eval @$1: not $2 files: $(cat out.txt)"
  [ ! -s err.txt ] || fail "eval @$1 said: $(cat err.txt)"
  echo "ok   eval @$1 ($2 files)"
}
printf '\xef\xbb\xbfa1.wav\na2.wav\n' >bom.txt
evals bom.txt 2
printf 'a1.wav \na2.wav\t \r\n' >trailing.txt
evals trailing.txt 2
printf '  a1.wav\n\ta2.wav\r\n' >leading.txt
evals leading.txt 2
printf '  # an indented comment\n\t# another\na1.wav\n   \n' >comment.txt
evals comment.txt 1
printf '\xef\xbb\xbf  # a comment on line 1 after a BOM\na2.wav\n' >bomcomment.txt
evals bomcomment.txt 1

# A name that really ends in a blank cannot be listed: the message names
# the name without it.
cp a1.wav 'sp.wav '
printf 'sp.wav \n' >sp.txt
expect 2 "sp.txt:1: sp.wav: no such file or folder" "$CBRNN" eval "$MODEL" @sp.txt

# run and train read lists with the same code.
"$CBRNN" run --model "$MODEL" --out-dir r @bom.txt >run.txt 2>&1 || fail "run @bom.txt: $(cat run.txt)"
[ "$(grep -c wav r/files.csv)" -eq 2 ] || fail "run @bom.txt: $(cat r/files.csv)"
echo "ok   run @bom.txt"
"$CBRNN" train -q -o t.safetensors "${TINY[@]}" --val-fraction 0 @comment.txt >tr.txt 2>&1 ||
  fail "train @comment.txt: $(cat tr.txt)"
echo "ok   train @comment.txt"

# --pairs: BOM, comment, trailing blanks.
cp a1.wav t1.wav
printf '\xef\xbb\xbfa1.wav\tt1.wav \n  # comment\n' >pairs.txt
"$CBRNN" train -q -o p.safetensors "${TINY[@]}" --val-fraction 0 --target map --pairs pairs.txt \
  >tr.txt 2>&1 || fail "train --pairs pairs.txt: $(cat tr.txt)"
echo "ok   --pairs list with a BOM, a comment and trailing blanks"
echo "PASS"
