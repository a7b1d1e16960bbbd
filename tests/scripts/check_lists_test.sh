#!/bin/bash
# tests/scripts/check_lists_test.sh SRC WORK CBRNN: scripts/check_lists.sh
# with the real cbrnn on a corpus of its own (a splits.tsv over short
# noise clips, in a folder whose name holds a space). A model trained on
# the training split with the validation split held out passes (exit 0);
# one trained on a list short of one file, one that holds nothing of the
# kind (trained before the digests) and a test split holding a training
# recording's bytes under another name fail (exit 1) and say which; a
# missing model or corpus is refused (exit 2).
set -u
. "$1/tests/scripts/lib.sh"
src=$1 work=$2 cbrnn=$3
rm -rf "$work"
mkdir -p "$work/my corpus/pkg" && cd "$work" || exit 1
corpus="$work/my corpus"
tsv="$corpus/splits.tsv"
printf 'path\tpackage\tlanguage\tgroup\tspeaker\tseconds\trate\tchannels\tsha1\tsplit\n' > "$tsv"
i=0
for s in train train train valid valid test; do
  i=$((i + 1))
  sox -n -r 16000 -b 16 "$corpus/pkg/c $i.wav" synth 0.3 whitenoise vol "0.$i" || fail "sox"
  printf 'pkg/c %d.wav\tpkg\tl%d\tg\tp:%d\t0.3\t16000\t1\tx\t%s\n' "$i" "$i" "$i" "$s" >> "$tsv"
done
# a file at 8 kHz in the training split: left out of the lists, as by samples/train_default.sh
sox -n -r 8000 -b 16 "$corpus/pkg/narrow.wav" synth 0.3 whitenoise
printf 'pkg/narrow.wav\tpkg\tl9\tg\tp:9\t0.3\t8000\t1\tx\ttrain\n' >> "$tsv"
. "$src/scripts/lib/corpus_lists.sh"
split_files "$corpus" train > train.txt
split_files "$corpus" valid > valid.txt
train() { # OUT LIST...
  local out=$1
  shift
  "$cbrnn" train -q -o "$out" --hidden 8 --cb 8 --warmup-steps 1 --steps 1 --seq-len 8 \
    --batch 2 --val-files @valid.txt "$@" > train.out 2>&1 || { cat train.out; fail "train $out"; }
}
check=$src/scripts/check_lists.sh
export CBRNN=$cbrnn

train good.safetensors @train.txt
"$check" good.safetensors "$corpus" > out.txt 2>&1
expect_status "the model of the splits" 0 $?
expect_grep "the model of the splits" "^train: the same 3 recordings as the corpus's train split" out.txt
expect_grep "the model of the splits" "^valid: the same 2 recordings" out.txt
expect_grep "the model of the splits" "^test: none of its 1 recordings" out.txt

head -n 2 train.txt > short.txt
train short.safetensors @short.txt
"$check" short.safetensors "$corpus" > out.txt 2>&1
expect_status "a list short of one file" 1 $?
expect_grep "a list short of one file" "^train: NOT the corpus's train split (3 recordings)" out.txt
expect_grep "a list short of one file" "^valid: the same 2 recordings" out.txt

# a model written before the digests (a fuzz seed: no provenance)
"$check" "$src/tests/fuzz/seeds/model/readout.safetensors" "$corpus" > out.txt 2>&1
expect_status "a model without digests" 1 $?
expect_grep "a model without digests" "^train: the model records no train_set_sha256" out.txt

# the test split's clip made a copy of a training clip's bytes
cp "$corpus/pkg/c 1.wav" "$corpus/pkg/c 6.wav"
"$check" good.safetensors "$corpus" > out.txt 2>&1
expect_status "a training recording in test" 1 $?
expect_grep "a training recording in test" "^test: 1 of its 1 recordings are, by content" out.txt

"$check" missing.safetensors "$corpus" > out.txt 2>&1
expect_status "a missing model" 2 $?
expect_grep "a missing model" "model 'missing.safetensors' is not a file" out.txt
mkdir -p empty
"$check" good.safetensors empty > out.txt 2>&1
expect_status "a folder without a corpus" 2 $?
expect_grep "a folder without a corpus" "holds no splits.tsv" out.txt
echo "check_lists: the splits' model passes; a short list, a shared test recording, no digest and bad arguments are said"
