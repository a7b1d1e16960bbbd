#!/usr/bin/python3
"""scripts/corpus.sh end to end on a small slice of the real corpus: one
Debian package, asterisk-core-sounds-it-g722 (10 MB: 599 Italian prompts of
one male voice in G.722), fetched with apt-get download from Debian's
mirror (issue 10, item 1). What must hold:

- the script downloads, unpacks and decodes the package and writes the
  manifest: the header's columns; every row Italian, group romance,
  speaker asterisk:Carlo, 16 kHz mono, a file that exists; each duration
  equals the G.722 file's size / 8000 bytes per second (64 kbit/s: an
  independent measure); sha1s unique;
- what is not speech (silence/, beeps) is in skipped.tsv, not in the
  manifest, and every .g722 file of the package is in one or the other;
- a second run downloads nothing and writes the same manifest;
- the split refuses a test set that would leave a language group without
  training data (the slice holds one language), naming the group;
- unknown and TTS packages are refused (exit 2) before any download.

usage: corpus_slice.py WORKDIR SCRIPTS_DIR
"""
import csv
import os
import shutil
import subprocess
import sys

PKG = "asterisk-core-sounds-it-g722"
FAILS = []


def expect(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)


def read_tsv(path):
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def main():
    work, scripts = sys.argv[1:3]
    corpus = os.path.join(scripts, "corpus.sh")
    cache = os.path.join(work, "cache")
    # Keep a downloaded .deb between runs of the test; redo everything else.
    if os.path.isdir(cache):
        for d in os.listdir(cache):
            if d != "debs":
                p = os.path.join(cache, d)
                shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    os.makedirs(cache, exist_ok=True)

    for pkg, want in (("qabcs-data", "TTS"), ("no-such-package", "no rules")):
        r = subprocess.run(["sh", corpus, "--packages", pkg, "--dir", cache], capture_output=True,
                           text=True)
        expect(r.returncode == 2 and want in r.stderr, "%s refused: %s" % (pkg, r.stderr.strip()))

    r = subprocess.run(["sh", corpus, "--packages", PKG, "--dir", cache, "--no-split"],
                       capture_output=True, text=True, timeout=600)
    expect(r.returncode == 0, "corpus.sh --packages %s: exit 0 (%s)" % (PKG, r.stderr[-500:]))
    if r.returncode:
        sys.exit("FAIL: corpus.sh did not run; Debian's mirror must be reachable")
    with open(os.path.join(cache, "manifest.tsv")) as f:
        header = f.readline().rstrip("\n").split("\t")
    expect(header == ["path", "package", "language", "group", "speaker", "seconds", "rate",
                      "channels", "sha1"], "manifest columns: %s" % header)
    rows = read_tsv(os.path.join(cache, "manifest.tsv"))
    skipped = read_tsv(os.path.join(cache, "skipped.tsv"))
    expect(len(rows) > 400, "the manifest holds the prompts (%d rows)" % len(rows))
    bad = [r["path"] for r in rows if (r["package"], r["language"], r["group"], r["speaker"],
                                       r["rate"], r["channels"]) !=
           (PKG, "it", "romance", "asterisk:Carlo", "16000", "1")]
    expect(not bad, "every row: it, romance, asterisk:Carlo, 16000 Hz mono (%s)" % bad[:3])
    off = []
    for r in rows:
        wav = os.path.join(cache, r["path"])
        src = os.path.join(cache, "pkg", PKG, os.path.relpath(wav, os.path.join(cache, "decoded",
                                                                                 PKG)))
        src = src[:-len(".wav")] + ".g722"
        if not os.path.isfile(wav) or not os.path.isfile(src) or \
                abs(float(r["seconds"]) - os.path.getsize(src) / 8000.0) > 0.0011:
            off.append((r["path"], r["seconds"]))
    expect(not off, "each duration = G.722 bytes / 8000 (%d off: %s)" % (len(off), off[:3]))
    expect(len({r["sha1"] for r in rows}) == len(rows), "sha1s are unique (deduplicated)")
    minutes = sum(float(r["seconds"]) for r in rows) / 60
    print("     %d files, %.1f min" % (len(rows), minutes))
    expect(not any("/silence/" in r["path"] or "beep" in r["path"] for r in rows),
           "no silence or beep in the manifest")
    expect(any("/silence/" in s["path"] and "not speech" in s["reason"] for s in skipped),
           "silence/ is skipped as not speech")
    n_g722 = sum(f.endswith(".g722") for _, _, fs in os.walk(os.path.join(cache, "pkg", PKG))
                 for f in fs)
    expect(len(rows) + len(skipped) == n_g722, "every .g722 file is in the manifest or skipped "
           "(%d + %d of %d)" % (len(rows), len(skipped), n_g722))

    debs = os.listdir(os.path.join(cache, "debs"))
    stamp = [os.path.getmtime(os.path.join(cache, "debs", d)) for d in debs]
    with open(os.path.join(cache, "manifest.tsv")) as f:
        first = f.read()
    r = subprocess.run(["sh", corpus, "--packages", PKG, "--dir", cache, "--no-split"],
                       capture_output=True, text=True, timeout=600)
    with open(os.path.join(cache, "manifest.tsv")) as f:
        again = f.read()
    expect(r.returncode == 0 and "downloading" not in r.stderr and again == first and
           [os.path.getmtime(os.path.join(cache, "debs", d)) for d in debs] == stamp,
           "a second run downloads nothing and writes the same manifest")

    r = subprocess.run([sys.executable, os.path.join(scripts, "corpus_split.py"), "--dir", cache,
                        "--test", "it", "--valid", ""], capture_output=True, text=True)
    expect(r.returncode != 0 and "romance" in r.stderr,
           "a split leaving romance out of training is refused: %s" % r.stderr.strip())

    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        sys.exit(1)
    print("all corpus slice checks passed")


if __name__ == "__main__":
    main()
