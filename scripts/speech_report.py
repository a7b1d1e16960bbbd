#!/usr/bin/python3
"""speech_report.py: per-language-group skill of `cbrnn eval --json` output.

  speech_report.py SPLITS.tsv EVAL.json [EVAL.json ...] [--md]

SPLITS.tsv is scripts/corpus.sh's manifest with its split column (paths
relative to the corpus folder); EVAL.json the output of
`cbrnn eval MODEL @LIST --json [--linear-fit @TRAIN]`. Files are matched to
the manifest by their path relative to the corpus folder. Per language group
(germanic, romance, slavic, other) and pooled: minutes, the model's skill
1 - loss / persistence, and the linear predictor's where the eval has one.
Losses are pooled by frame (sum of squared errors over all frames), as
`cbrnn eval`'s overall line. --md prints a Markdown table."""
import csv
import json
import os
import sys


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    md = "--md" in sys.argv
    if len(args) < 2:
        sys.exit(__doc__)
    corpus = os.path.dirname(os.path.abspath(args[0]))
    with open(args[0], encoding="utf-8") as f:
        rows = {r["path"]: r for r in csv.DictReader(f, delimiter="\t")}
    if md:
        print("| model | group | minutes | skill | linear skill |")
        print("|---|---|---|---|---|")
    for path in args[1:]:
        with open(path, encoding="utf-8") as f:
            ev = json.load(f)
        acc = {}
        for fr in ev["files"]:
            rel = os.path.relpath(os.path.abspath(fr["file"]), corpus)
            r = rows.get(rel)
            if r is None:
                sys.exit("speech_report: %s: %s is not in %s" % (path, fr["file"], args[0]))
            for g in (r["group"], "pooled"):
                a = acc.setdefault(g, [0.0, 0.0, 0.0, 0])
                n = fr["frames"]
                a[0] += fr["loss"] * n
                a[1] += fr["persistence_loss"] * n
                a[2] += fr.get("linear_loss", float("nan")) * n
                a[3] += n
        name = os.path.basename(path).rsplit(".", 1)[0]
        for g in ("germanic", "romance", "slavic", "other", "pooled"):
            if g not in acc:
                continue
            loss, pers, lin, n = acc[g]
            skill, lskill = 1 - loss / pers, 1 - lin / pers
            if md:
                print("| %s | %s | %.1f | %.3f | %.3f |" % (name, g, n / 6000.0, skill, lskill))
            else:
                print("%-28s %-9s %7.1f min  skill %7.4f  linear %7.4f" %
                      (name, g, n / 6000.0, skill, lskill))


if __name__ == "__main__":
    main()
