#!/bin/bash
# tests/scripts/train_default_test.sh SRC WORK: samples/train_default.sh
# with a fake cbrnn. A run that is interrupted (the fake saves its -o and
# exits 130, as cbrnn train does on Ctrl-C) or fails leaves the shipped
# model and log as they were and no temporary behind; a complete run
# replaces both. A relative CORPUS_DIR (with a space) works; a folder that
# holds no corpus is refused without fetching unless --fetch asks; the
# default folder is fetched into; --help, a wrong argument order and an
# unknown option are answered before anything runs.
set -u
. "$1/tests/scripts/lib.sh"
start_test "$1" "$2"
cb=$t/build/cli/cbrnn
shipped() { # WHAT: the shipped files are untouched and no temporary is left
  expect_same "$1" "$t/samples/default.safetensors" "shipped model"
  expect_same "$1" "$t/samples/default_train.csv" "shipped log"
  ! ls -d "$t"/samples/.train_default.* >/dev/null 2>&1 || fail "$1: temporary left in samples/"
}

# 1. Ctrl-C (the fake's interrupt) and a failure keep the shipped files.
FAKE_MODE=interrupt "$t/samples/train_default.sh" "$cb" "my corpus" > out.txt 2>&1
expect_status "interrupted run" 130 $?
shipped "interrupted run"
# A real Ctrl-C: SIGINT to the script's process group while cbrnn trains
# (run from python: a background job of a script ignores SIGINT).
FAKE_MODE="wait" /usr/bin/python3 - "$t/samples/train_default.sh" "$cb" "my corpus" > out.txt 2>&1 <<'PY'
import os, signal, subprocess, sys, time
def child():
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.setsid()
p = subprocess.Popen(sys.argv[1:], preexec_fn=child)
flag = os.environ["FAKE_LOG"] + ".training"
for _ in range(200):
    if os.path.exists(flag) or p.poll() is not None:
        break
    time.sleep(0.1)
if p.poll() is None:
    os.killpg(p.pid, signal.SIGINT)
sys.exit(p.wait())
PY
expect_status "Ctrl-C" 130 $?
[ -e "$FAKE_LOG.training" ] || fail "Ctrl-C: the fake never trained: $(cat out.txt)"
shipped "Ctrl-C"
FAKE_MODE=fail "$t/samples/train_default.sh" "$cb" "my corpus" > out.txt 2>&1
expect_status "failed run" 1 $?
shipped "failed run"

# 2. A complete run with a relative corpus folder replaces both; the lists
# it gave cbrnn resolve (the fake checks every entry) to the corpus files.
: > "$FAKE_LOG"
FAKE_MODE=ok "$t/samples/train_default.sh" "$cb" "my corpus" > out.txt 2>&1
expect_status "complete run" 0 $?
expect_same "complete run" "$t/samples/default.safetensors" "model ok"
expect_same "complete run" "$t/samples/default_train.csv" "log ok"
! ls -d "$t"/samples/.train_default.* >/dev/null 2>&1 || fail "complete run: temporary left"
expect_grep "complete run: training file" "^input $work/my corpus/a b/t1.wav$" "$FAKE_LOG"
expect_grep "complete run: validation file" "^input $work/my corpus/a b/v1.wav$" "$FAKE_LOG"
! grep -q "tel.wav" "$FAKE_LOG" || fail "complete run: the 8 kHz file was listed"
expect_grep "complete run: -o" "^train \[-o\] \[default.safetensors\]" "$FAKE_LOG"
[ ! -e "$t/corpus.calls" ] || fail "a fetched corpus was fetched again"

# 3. Folders without a corpus: refused (exit 2, the folder named), nothing
# fetched, the shipped files kept.
printf 'shipped model\n' > "$t/samples/default.safetensors"
printf 'shipped log\n' > "$t/samples/default_train.csv"
"$t/samples/train_default.sh" "$cb" "my corpsu" > out.txt 2>&1
expect_status "missing corpus folder" 2 $?
expect_grep "missing corpus folder" "corpus folder '$work/my corpsu' does not exist" out.txt
mkdir -p other
"$t/samples/train_default.sh" "$cb" other > out.txt 2>&1
expect_status "folder without splits.tsv" 2 $?
expect_grep "folder without splits.tsv" "'$work/other' holds no splits.tsv" out.txt
expect_grep "folder without splits.tsv" "add --fetch" out.txt
[ ! -e "$t/corpus.calls" ] || fail "a folder without a corpus was fetched into"
[ ! -e other/splits.tsv ] || fail "other/ was written"
shipped "refused corpus folder"

# 4. --fetch fetches into the folder asked; with no CORPUS_DIR the default
# folder is fetched into.
FAKE_MODE=ok "$t/samples/train_default.sh" --fetch "$cb" new > out.txt 2>&1
expect_status "--fetch" 0 $?
expect_grep "--fetch" "^corpus.sh --dir $work/new$" "$t/corpus.calls"
rm -f "$t/corpus.calls"
FAKE_MODE=ok "$t/samples/train_default.sh" "$cb" > out.txt 2>&1
expect_status "default corpus folder" 0 $?
expect_grep "default corpus folder" "^corpus.sh --dir $work/cache/cbrnn-corpus$" "$t/corpus.calls"

# 5. Arguments checked up front.
rm -f "$t/corpus.calls" "$FAKE_LOG"
"$t/samples/train_default.sh" --help > out.txt 2>&1
expect_status "--help" 0 $?
expect_grep "--help" "train_default.sh \[--fetch\] \[CBRNN\] \[CORPUS_DIR\]" out.txt
"$t/samples/train_default.sh" "my corpus" "$cb" > out.txt 2>&1
expect_status "corpus first" 2 $?
expect_grep "corpus first" "is a folder, not the cbrnn binary" out.txt
"$t/samples/train_default.sh" --fecth "$cb" > out.txt 2>&1
expect_status "unknown option" 2 $?
expect_grep "unknown option" "unknown option '--fecth'" out.txt
{ [ ! -e "$FAKE_LOG" ] && [ ! -e "$t/corpus.calls" ]; } || fail "a refused call ran cbrnn or corpus.sh"
echo "train_default_test: all checks passed"
