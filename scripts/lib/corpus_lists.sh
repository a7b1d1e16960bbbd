# shellcheck shell=sh
# scripts/lib/corpus_lists.sh: the file lists the corpus scripts train and
# score on, read from CORPUS/splits.tsv (scripts/corpus.sh writes it;
# columns path package language group speaker seconds rate channels sha1
# split). Sourced (POSIX sh) by samples/train_default.sh,
# scripts/speech_ablation.sh and scripts/adaptation.sh, so every one of
# them picks the same files. Prints paths, one a line; never writes files.

# split_files CORPUS SPLIT: the files of SPLIT (train, valid or test) at
# 16 kHz and up, as CORPUS/PATH. The 8 kHz telephone files are left out:
# their bands above 4 kHz are empty.
split_files() {
  awk -F'\t' -v s="$2" -v c="$1" 'NR > 1 && $NF == s && $7 >= 16000 { print c "/" $1 }' \
    "$1/splits.tsv"
}

# speaker_files CORPUS SPEAKER: every file of one speaker (column speaker,
# e.g. tuxpaint:el), any split and rate, as CORPUS/PATH.
speaker_files() {
  awk -F'\t' -v s="$2" -v c="$1" 'NR > 1 && $5 == s { print c "/" $1 }' "$1/splits.tsv"
}
