#!/bin/bash
# cli_summary_files: `cbrnn summary --by file` names each group exactly as
# `cbrnn run` named the input in files.csv:
#  - names holding a line end, a comma or a quote (run writes files.csv
#    as RFC 4180 CSV, quotes doubled; a quote also as older runs wrote it,
#    between quotes as it is);
#  - a path of more than 255 bytes whose byte 255 falls inside a UTF-8
#    character comes out whole (no cut);
#  - a files.csv record that is not "NAME",FIRST_ROW is refused with
#    FILE:LINE (the line the record starts on), exit 2.
# usage: cli_summary_files.sh CBRNN SAMPLES WORKDIR
set -u
CBRNN=$1 SAMPLES=$2 WORK=$3
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"

nl=$(printf 'new\nline.wav')
long=$(printf 'd%.0s' $(seq 200))/$(printf 'e%.0s' $(seq 53))é$(printf 'f%.0s' $(seq 60)).wav
mkdir -p "${long%/*}"
for f in "$nl" 'q"x,y.wav' "$long"; do cp "$IN" "$f"; done
cp "$IN" a2.wav
"$CBRNN" run --model "$MODEL" --out-dir r "$nl" 'q"x,y.wav' "$long" a2.wav >run.txt 2>&1 ||
  fail "run: $(cat run.txt)"
"$CBRNN" summary --by file r/frames.csv >s.csv 2>err.txt || fail "summary: $(cat err.txt)"
# The groups (CSV as Python reads it) are the inputs, in order, whole.
check_groups() {
  /usr/bin/python3 - "$1" "$2" <<'PY' || fail "groups of $1: $(cat "$1")"
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="", encoding="utf-8")))
got = [r[0] for r in rows[1:]]
want = sys.argv[2].split("\x01")
if got != want:
    sys.exit(f"groups {got!r}, expected {want!r}")
PY
}
check_groups s.csv "$nl"$'\x01''q"x,y.wav'$'\x01'"$long"$'\x01'a2.wav
echo "ok   summary --by file of a run over awkward names"
# run's files.csv is itself RFC 4180 CSV: any reader gets the names back
check_groups r/files.csv "$nl"$'\x01''q"x,y.wav'$'\x01'"$long"$'\x01'a2.wav
grep -q '"q""x,y.wav"' r/files.csv || fail "run's files.csv: no doubled quote: $(cat r/files.csv)"
echo "ok   run's files.csv is CSV (quotes doubled)"

# files.csv as older runs wrote a quote (between quotes as it is) and with
# CRLF line ends: the same groups.
names="$nl"$'\x01''q"x,y.wav'$'\x01'"$long"$'\x01'a2.wav
/usr/bin/python3 - r/files.csv "$names" <<'PY' || fail "rewriting files.csv"
import re, sys
firsts = re.findall(rb",([0-9]+)\r?\n", open(sys.argv[1], "rb").read())
names = sys.argv[2].encode("utf-8", "surrogateescape").split(b"\x01")
assert len(firsts) == len(names), (firsts, names)
with open(sys.argv[1], "wb") as f:
    f.write(b"file,first_row\n")
    for name, first in zip(names, firsts):
        f.write(b'"' + name + b'",' + first + b"\r\n")
PY
grep -q '"q"x,y.wav"' r/files.csv || fail "rewrite: not the older form: $(cat r/files.csv)"
"$CBRNN" summary --by file r/frames.csv >s2.csv 2>err.txt || fail "summary: $(cat err.txt)"
check_groups s2.csv "$names"
echo "ok   summary --by file of an older files.csv (CRLF, a quote as it is)"

# Blank lines (a file edited by hand) are skipped, as they always were.
printf '\n' >>r/files.csv
"$CBRNN" summary --by file r/frames.csv >s3.csv 2>err.txt || fail "summary, a blank line: $(cat err.txt)"
check_groups s3.csv "$names"
echo "ok   a blank line in files.csv is skipped"

# Malformed records: refused with the file and the line.
printf 'file,first_row\n"a.wav",0\n"b\nc.wav",x\n' >r/files.csv
expect 2 "r/files.csv:3: expected" "$CBRNN" summary --by file r/frames.csv
printf 'file,first_row\n"a.wav,0\n' >r/files.csv
expect 2 "r/files.csv:2: expected" "$CBRNN" summary --by file r/frames.csv
printf 'file,first_row\na"b.wav,0\n' >r/files.csv
expect 2 "r/files.csv:2: expected" "$CBRNN" summary --by file r/frames.csv
echo "PASS"
