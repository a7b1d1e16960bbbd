#!/bin/bash
# tests/scripts/corpus_scripts_test.sh SRC WORK: scripts/speech_ablation.sh,
# scripts/online_rules.sh and scripts/adaptation.sh with a fake cbrnn.
# Relative corpus and output folders whose paths hold spaces reach cbrnn
# as paths that exist (the fake checks every @list entry the way cbrnn
# resolves it); each online_rules stream is one @list; a folder without a
# corpus is refused without fetching; --help, a bad split and a wrong
# argument order are answered before anything runs.
set -u
. "$1/tests/scripts/lib.sh"
start_test "$1" "$2"
nothing_ran() { # WHAT
  { [ ! -e "$FAKE_LOG" ] && [ ! -e "$t/corpus.calls" ] && [ ! -e "$t/build.calls" ]; } ||
    fail "$1: cbrnn, corpus.sh or build.sh ran"
}

# speech_ablation.sh: checks first
sa=$t/scripts/speech_ablation.sh
"$sa" --help > out.txt 2>&1
expect_status "speech_ablation --help" 0 $?
expect_grep "speech_ablation --help" "speech_ablation.sh \[--fetch\] \[CORPUS_DIR\]" out.txt
! grep -q mkdir out.txt || fail "speech_ablation --help: $(cat out.txt)"
"$sa" "my corpus" out tset > out.txt 2>&1
expect_status "speech_ablation bad split" 2 $?
expect_grep "speech_ablation bad split" "split 'tset': expected valid or test" out.txt
"$sa" test "my corpus" > out.txt 2>&1
expect_status "speech_ablation split first" 2 $?
expect_grep "speech_ablation split first" "'test' is a split, not a corpus folder" out.txt
"$sa" out "my corpus" > out.txt 2>&1
expect_status "speech_ablation corpus second" 2 $?
expect_grep "speech_ablation corpus second" "holds a corpus (splits.tsv): the order is" out.txt
"$sa" "my corpsu" out > out.txt 2>&1
expect_status "speech_ablation no corpus" 2 $?
expect_grep "speech_ablation no corpus" "corpus folder '$work/my corpsu' does not exist" out.txt
nothing_ran "speech_ablation refusals"
[ ! -e out ] || fail "speech_ablation refusals: made out/"
# a whole run, relative folders with spaces
"$sa" "my corpus" "out dir" valid > out.txt 2>&1
expect_status "speech_ablation run" 0 $?
expect_grep "speech_ablation run: training file" "^input $work/my corpus/a b/t1.wav$" "$FAKE_LOG"
expect_grep "speech_ablation run: scored file" "^input $work/my corpus/a b/v1.wav$" "$FAKE_LOG"
[ -s "out dir/table.md" ] || fail "speech_ablation run: no table.md"
rm -f "$FAKE_LOG"

# online_rules.sh: checks first
or=$t/scripts/online_rules.sh
"$or" --help > out.txt 2>&1
expect_status "online_rules --help" 0 $?
expect_grep "online_rules --help" "online_rules.sh \[--fetch\] valid|test" out.txt
"$or" out test "my corpus" > out.txt 2>&1
expect_status "online_rules split second" 2 $?
expect_grep "online_rules split second" "split 'out': expected valid or test first" out.txt
"$or" test "my corpus" out > out.txt 2>&1
expect_status "online_rules corpus second" 2 $?
expect_grep "online_rules corpus second" "holds a corpus (splits.tsv): the order is" out.txt
mkdir -p empty
"$or" test out empty > out.txt 2>&1
expect_status "online_rules no corpus" 2 $?
expect_grep "online_rules no corpus" "'$work/empty' holds no splits.tsv" out.txt
nothing_ran "online_rules refusals"
# a whole run: the corpus path holds spaces; every stream is one @list
"$or" test "rules out" "my corpus" > out.txt 2>&1
expect_status "online_rules run" 0 $?
for f in x1 x2 x3; do
  expect_grep "online_rules run: $f" "^input $work/my corpus/t/$f.wav$" "$FAKE_LOG"
done
[ "$(grep -c '^run ' "$FAKE_LOG")" = 7 ] || fail "online_rules run: expected 7 runs, got $(grep -c '^run ' "$FAKE_LOG")"
expect_grep "online_rules run: stream list" "\[@$work/rules out/it/files.txt\]" "$FAKE_LOG"
expect_same "online_rules run: the files after the minute" "rules out/it/rest.txt" "$work/my corpus/t/x3.wav"
rm -f "$FAKE_LOG" "$t/build.calls"

# adaptation.sh: checks first
ad=$t/scripts/adaptation.sh
"$ad" --help > out.txt 2>&1
expect_status "adaptation --help" 0 $?
expect_grep "adaptation --help" "adaptation.sh \[--fetch\] \[OUT_DIR\] \[CORPUS_DIR\]" out.txt
"$ad" out "my corpsu" > out.txt 2>&1
expect_status "adaptation no corpus" 2 $?
expect_grep "adaptation no corpus" "corpus folder '$work/my corpsu' does not exist" out.txt
nothing_ran "adaptation refusals"
echo "corpus_scripts_test: all checks passed"
