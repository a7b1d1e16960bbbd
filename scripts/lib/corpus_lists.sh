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

# split_speakers CORPUS SPLIT MIN_SECONDS: the speakers of SPLIT with at
# least MIN_SECONDS of audio at 16 kHz and up, one a line, in manifest order.
split_speakers() {
  awk -F'\t' -v s="$2" -v m="$3" 'NR > 1 && $NF == s && $7 >= 16000 {
      if (!($5 in t)) o[n++] = $5; t[$5] += $6 }
    END { for (i = 0; i < n; i++) if (t[o[i]] >= m) print o[i] }' "$1/splits.tsv"
}

# speaker_stream CORPUS SPLIT SPEAKER SECONDS: the speaker's first files in
# SPLIT (16 kHz and up, manifest order) until they reach SECONDS, as
# CORPUS/PATH: one continuous stream for `cbrnn run`.
speaker_stream() {
  awk -F'\t' -v s="$2" -v p="$3" -v m="$4" -v c="$1" \
    'NR > 1 && $NF == s && $5 == p && $7 >= 16000 && t < m { print c "/" $1; t += $6 }' \
    "$1/splits.tsv"
}
