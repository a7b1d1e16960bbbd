#!/usr/bin/python3
"""corpus_split.py: train/valid/test lists of the speech corpus, split by
language and speaker group, never by file.

  corpus_split.py --dir CACHE [--test LANGS] [--valid LANGS]

Reads CACHE/manifest.tsv (scripts/corpus_manifest.py). The test split is
every file of the test languages, in every package, plus every file of a
speaker group that speaks one of them (a voice recorded in two languages
goes to test whole). The validation split is built the same way from the
validation languages out of what is left; training is the rest. The script
fails if a language or a speaker group would land in two splits, or if a
language group (germanic, romance, slavic, other) would be missing from
training.

Writes CACHE/{train,valid,test}.txt (@list files for `cbrnn train` and
`cbrnn eval`: one path per line, relative to the list's folder), the same
per language group (CACHE/SPLIT-GROUP.txt, e.g. test-romance.txt) and per
speaker group (CACHE/speakers/SPLIT-SOURCE_VOICE.txt, e.g.
speakers/test-asterisk_Carlo.txt), CACHE/splits.tsv (the manifest with a
split column), and prints a Markdown table per split: minutes, files,
languages, speaker groups.
"""
import argparse
import collections
import os
import sys

# Fixed, documented choice (docs/CORPUS.md): one language of each language
# group for test and one for validation; each is spoken by at least two
# speaker groups, and training keeps several languages of every group.
TEST = "it,da,bg,el"
VALID = "nl,pt,uk,lt"
SPLITS = ("train", "valid", "test")


def read_manifest(path):
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        rows = [dict(zip(header, line.rstrip("\n").split("\t"))) for line in f if line.strip()]
    for need in ("path", "language", "group", "speaker", "seconds"):
        if need not in header:
            sys.exit("corpus_split: %s: no column '%s'" % (path, need))
    return header, rows


def assign(rows, test_langs, valid_langs):
    """split name per row (same order); raises SystemExit on a violation."""
    split = ["train"] * len(rows)
    for name, langs in (("test", test_langs), ("valid", valid_langs)):
        speakers = {r["speaker"] for i, r in enumerate(rows)
                    if split[i] == "train" and r["language"] in langs}
        for i, r in enumerate(rows):
            if split[i] == "train" and (r["language"] in langs or r["speaker"] in speakers):
                split[i] = name
    for key in ("language", "speaker"):
        where = collections.defaultdict(set)
        for r, s in zip(rows, split):
            where[r[key]].add(s)
        bad = sorted(k for k, v in where.items() if len(v) > 1)
        if bad:
            sys.exit("corpus_split: %s %s would be in more than one split (%s); choose other "
                     "--test/--valid languages" % (key, ", ".join(bad),
                                                    ", ".join(sorted(where[bad[0]]))))
    groups = {r["group"] for r in rows}
    trained = {r["group"] for r, s in zip(rows, split) if s == "train"}
    if groups - trained:
        sys.exit("corpus_split: language group(s) %s have no language left in training" %
                 ", ".join(sorted(groups - trained)))
    return split


def table(rows, split):
    out = ["| split | minutes | files | languages | speaker groups |",
           "|---|---|---|---|---|"]
    for name in SPLITS:
        sel = [r for r, s in zip(rows, split) if s == name]
        mins = sum(float(r["seconds"]) for r in sel) / 60
        langs = sorted({r["language"] for r in sel})
        out.append("| %s | %.1f | %d | %d (%s) | %d |" % (
            name, mins, len(sel), len(langs), " ".join(langs), len({r["speaker"] for r in sel})))
    return "\n".join(out)


def write(path, lines):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", required=True, help="cache folder holding manifest.tsv")
    ap.add_argument("--test", default=TEST, help="test languages (default %(default)s)")
    ap.add_argument("--valid", default=VALID, help="validation languages (default %(default)s)")
    a = ap.parse_args()
    test = set(filter(None, a.test.split(",")))
    valid = set(filter(None, a.valid.split(",")))
    if test & valid:
        ap.error("languages in both --test and --valid: " + ",".join(sorted(test & valid)))
    header, rows = read_manifest(os.path.join(a.dir, "manifest.tsv"))
    split = assign(rows, test, valid)
    for name in SPLITS:
        write(os.path.join(a.dir, name + ".txt"),
              ["# %s split of %s (scripts/corpus_split.py --test %s --valid %s)" % (
                  name, os.path.join(a.dir, "manifest.tsv"), a.test, a.valid)] +
              [r["path"] for r, s in zip(rows, split) if s == name])
    # The same lists per language group and per speaker group, for reports
    # per group and for adaptation on one voice.
    for name in SPLITS:
        for g in sorted({r["group"] for r, s in zip(rows, split) if s == name}):
            write(os.path.join(a.dir, "%s-%s.txt" % (name, g)),
                  [r["path"] for r, s in zip(rows, split) if s == name and r["group"] == g])
    spk_dir = os.path.join(a.dir, "speakers")
    os.makedirs(spk_dir, exist_ok=True)
    for old in os.listdir(spk_dir):
        if old.endswith(".txt"):
            os.remove(os.path.join(spk_dir, old))
    for spk in sorted({r["speaker"] for r in rows}):
        sel = [(r, s) for r, s in zip(rows, split) if r["speaker"] == spk]
        write(os.path.join(spk_dir, "%s-%s.txt" % (sel[0][1], spk.replace(":", "_"))),
              ["../" + r["path"] for r, _ in sel])
    write(os.path.join(a.dir, "splits.tsv"),
          ["\t".join(header + ["split"])] +
          ["\t".join([r[h] for h in header] + [s]) for r, s in zip(rows, split)])
    print(table(rows, split))


if __name__ == "__main__":
    main()
