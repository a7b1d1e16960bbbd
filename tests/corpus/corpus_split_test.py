#!/usr/bin/python3
"""scripts/corpus_manifest.py and scripts/corpus_split.py without the
network (issue 10, item 1). What must hold:

- the manifest builder, on a package tree laid out like klettres-data's and
  holding real files: a speech clip per locale folder is taken with its
  language, group, speaker, duration (frames / rate, as libsndfile reads
  it) and rate; a WAV claiming 128000 Hz, a 0-byte file, a text file named
  .ogg, a WAV of digital silence and a byte-identical copy are skipped, each
  with its reason in skipped.tsv; locale folders fold (pt_BR -> pt);
- the default split on the full corpus's real speaker/language structure
  (full_speakers.tsv, from the full manifest): no language and no speaker
  group in two splits, every language group keeps a language in training,
  the test split holds one language of each group;
- a speaker who speaks a test language goes to test whole (with the other
  language he speaks), and a split that would then put a language in two
  splits fails, naming it; a language group left out of training fails;
- the @list files hold exactly the manifest's paths of their split (also
  per language group and per speaker group) and `cbrnn eval` reads them
  (the paths are relative to the list).

usage: corpus_split_test.py CBRNN WORKDIR SAMPLES_DIR SCRIPTS_DIR
"""
import csv
import json
import os
import shutil
import subprocess
import sys
import wave

FAILS = []
HERE = os.path.dirname(os.path.abspath(__file__))


def expect(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)


def read_tsv(path):
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader((l for l in f if not l.startswith("#")), delimiter="\t"))


def write_wav(path, pcm, rate):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


def list_paths(path):
    with open(path, encoding="utf-8") as f:
        return [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#")]


def check_disjoint(rows, what):
    for key in ("language", "speaker"):
        where = {}
        for r in rows:
            where.setdefault(r[key], set()).add(r["split"])
        both = sorted(k for k, v in where.items() if len(v) > 1)
        expect(not both, "%s: no %s in two splits (%s)" % (what, key, both))
    train_groups = {r["group"] for r in rows if r["split"] == "train"}
    expect(train_groups == {r["group"] for r in rows},
           "%s: every language group keeps a language in training" % what)


def manifest_builder(py, scripts, work, samples):
    """A klettres-data-shaped tree with real and bad files."""
    cache = os.path.join(work, "mcache")
    root = os.path.join(cache, "pkg", "klettres-data", "usr", "share", "klettres")
    with wave.open(os.path.join(samples, "voiceA_us_male_1.wav")) as w:
        rate = w.getframerate()
        pcm = w.readframes(w.getnframes())
    sec = 2 * rate
    write_wav(os.path.join(root, "en", "alpha", "a.wav"), pcm[:sec], rate)          # 1 s
    write_wav(os.path.join(root, "en", "syllab", "ba.wav"), pcm[sec:sec + sec // 2], rate)
    write_wav(os.path.join(root, "pt_BR", "alpha", "a.wav"), pcm[2 * sec:3 * sec], rate)
    shutil.copy(os.path.join(root, "en", "alpha", "a.wav"),
                os.path.join(root, "pt_BR", "alpha", "copy.wav"))
    write_wav(os.path.join(root, "da", "alpha", "a-0.wav"), pcm[3 * sec:4 * sec], 128000)
    write_wav(os.path.join(root, "da", "alpha", "silent.wav"), b"\0\0" * rate, rate)
    open(os.path.join(root, "da", "alpha", "empty.ogg"), "wb").close()
    with open(os.path.join(root, "da", "alpha", "text.ogg"), "w") as f:
        f.write("not audio\n" * 50)
    with open(os.path.join(root, "en", "alpha", "notes.txt"), "w") as f:
        f.write("not an audio name: not looked at\n")
    r = subprocess.run([py, os.path.join(scripts, "corpus_manifest.py"), "--dir", cache,
                        "--packages", "klettres-data"], capture_output=True, text=True)
    expect(r.returncode == 0, "manifest builder runs (%s)" % r.stderr.strip()[-300:])
    if r.returncode:
        return
    with open(os.path.join(cache, "manifest.tsv")) as f:
        header = f.readline().rstrip("\n").split("\t")
    expect(header == ["path", "package", "language", "group", "speaker", "seconds", "rate",
                      "channels", "sha1"], "manifest columns: %s" % header)
    rows = {r["path"]: r for r in read_tsv(os.path.join(cache, "manifest.tsv"))}
    pre = "pkg/klettres-data/usr/share/klettres/"
    expect(sorted(rows) == [pre + "en/alpha/a.wav", pre + "en/syllab/ba.wav",
                            pre + "pt_BR/alpha/a.wav"], "manifest holds the 3 good clips: %s"
           % sorted(rows))
    a = rows.get(pre + "en/alpha/a.wav", {})
    expect(a.get("language") == "en" and a.get("group") == "germanic" and
           a.get("speaker") == "klettres:en" and a.get("rate") == str(rate) and
           a.get("channels") == "1" and a.get("seconds") == "1.000",
           "en/alpha/a.wav: en, germanic, klettres:en, 1.000 s at %d Hz: %s" % (rate, a))
    b = rows.get(pre + "en/syllab/ba.wav", {})
    expect(b.get("seconds") == "0.500", "a half-second clip lasts 0.500 s: %s" % b.get("seconds"))
    p = rows.get(pre + "pt_BR/alpha/a.wav", {})
    expect(p.get("language") == "pt" and p.get("group") == "romance" and
           p.get("speaker") == "klettres:pt_BR", "pt_BR folds into pt, speaker keeps pt_BR: %s" % p)
    for path in rows:
        expect(os.path.isfile(os.path.join(cache, path)), "%s exists, relative to the cache" % path)
    skipped = {r["path"]: r["reason"] for r in read_tsv(os.path.join(cache, "skipped.tsv"))}
    for name, why in (("da/alpha/a-0.wav", "implausible sample rate 128000"),
                      ("da/alpha/silent.wav", "digital silence"),
                      ("da/alpha/empty.ogg", "libsndfile cannot read"),
                      ("da/alpha/text.ogg", "libsndfile cannot read"),
                      ("pt_BR/alpha/copy.wav", "duplicate of " + pre + "en/alpha/a.wav")):
        expect(why in skipped.get(pre + name, ""), "skipped %s: '%s' (got '%s')" %
               (name, why, skipped.get(pre + name)))
    expect(not any("notes.txt" in k for k in skipped), "files that are not audio are not listed")


def default_split(py, scripts, cbrnn, work, samples):
    """The default split on the full corpus's real speaker/language pairs."""
    cache = os.path.join(work, "scache")
    os.makedirs(cache)
    clip = os.path.abspath(os.path.join(samples, "voiceA_us_male_1.wav"))
    combos = read_tsv(os.path.join(HERE, "full_speakers.tsv"))
    with open(os.path.join(cache, "manifest.tsv"), "w") as f:
        f.write("path\tpackage\tlanguage\tgroup\tspeaker\tseconds\trate\tchannels\tsha1\n")
        for i, c in enumerate(combos):
            rel = "audio/%02d.wav" % i
            os.makedirs(os.path.join(cache, "audio"), exist_ok=True)
            os.symlink(clip, os.path.join(cache, rel))
            f.write("%s\t%s\t%s\t%s\t%s\t17.0\t16000\t1\tx%d\n" % (
                rel, c["package"], c["language"], c["group"], c["speaker"], i))
    split = os.path.join(scripts, "corpus_split.py")
    r = subprocess.run([py, split, "--dir", cache], capture_output=True, text=True)
    expect(r.returncode == 0, "the default split works on the full corpus's structure (%s)" %
           r.stderr.strip())
    if r.returncode:
        return
    rows = read_tsv(os.path.join(cache, "splits.tsv"))
    check_disjoint(rows, "default split")
    test_groups = sorted({r["group"] for r in rows if r["split"] == "test"})
    expect(test_groups == ["germanic", "other", "romance", "slavic"],
           "the test split spans the four language groups: %s" % test_groups)
    for name in ("train", "valid", "test"):
        want = [r["path"] for r in rows if r["split"] == name]
        got = list_paths(os.path.join(cache, name + ".txt"))
        expect(got == want and want, "%s.txt holds exactly the %s rows (%d)" % (name, name,
                                                                                len(want)))
    for name in ("train", "valid", "test"):
        for g in ("germanic", "romance", "slavic", "other"):
            want = [r["path"] for r in rows if r["split"] == name and r["group"] == g]
            got = list_paths(os.path.join(cache, "%s-%s.txt" % (name, g)))
            expect(got == want, "%s-%s.txt holds the %s rows of that group" % (name, g, name))
    spk = os.path.join(cache, "speakers")
    for row in rows:
        lst = os.path.join(spk, "%s-%s.txt" % (row["split"], row["speaker"].replace(":", "_")))
        if not os.path.exists(lst) or "../" + row["path"] not in list_paths(lst):
            expect(False, "%s is in %s" % (row["path"], lst))
            break
    else:
        expect(sum(len(list_paths(os.path.join(spk, f))) for f in os.listdir(spk)) == len(rows),
               "each row is in the list of its speaker group, once")
    e = subprocess.run([cbrnn, "eval", "--json", os.path.join(samples, "default.safetensors"),
                        "@" + os.path.join(cache, "test.txt")], capture_output=True, text=True)
    n_test = sum(r["split"] == "test" for r in rows)
    expect(e.returncode == 0 and json.loads(e.stdout)["overall"]["files"] == n_test,
           "cbrnn eval reads @test.txt (%d files): %s" % (n_test, e.stderr.strip()[-200:]))
    for t in ("| train |", "| valid |", "| test |"):
        expect(t in r.stdout, "the split prints its table row '%s'" % t)


def rules(py, scripts, work, samples):
    """Speaker closure and the failures, on a small hand-made manifest."""
    cache = os.path.join(work, "rcache")
    os.makedirs(cache)
    rows = [("en", "germanic", "asterisk:Allison"), ("es", "romance", "asterisk:Allison"),
            ("de", "germanic", "klettres:de"), ("fr", "romance", "klettres:fr"),
            ("ru", "slavic", "klettres:ru"), ("uk", "slavic", "klettres:uk"),
            ("it", "romance", "asterisk:Carlo"), ("it", "romance", "klettres:it"),
            ("el", "other", "tuxpaint:el"), ("hu", "other", "klettres:hu"),
            ("en", "germanic", "klettres:en")]

    def run(rs, *args):
        with open(os.path.join(cache, "manifest.tsv"), "w") as f:
            f.write("path\tlanguage\tgroup\tspeaker\tseconds\n")
            for i, (lang, group, spk) in enumerate(rs):
                f.write("a/%d.wav\t%s\t%s\t%s\t60\n" % (i, lang, group, spk))
        return subprocess.run([py, os.path.join(scripts, "corpus_split.py"), "--dir", cache,
                               *args], capture_output=True, text=True)

    r = run(rows[:-1], "--test", "es,it", "--valid", "uk")
    ok = r.returncode == 0
    got = read_tsv(os.path.join(cache, "splits.tsv")) if ok else []
    expect(ok and {x["language"] for x in got if x["split"] == "test"} == {"en", "es", "it"},
           "a test-language speaker goes to test whole: Allison's en follows es (%s)" %
           r.stderr.strip())
    if ok:
        check_disjoint(got, "closure split")
    r = run(rows, "--test", "es,it", "--valid", "uk")
    expect(r.returncode != 0 and "language en" in r.stderr,
           "a language pulled into two splits by a shared speaker fails, naming it: %s" %
           r.stderr.strip())
    r = run(rows, "--test", "ru,uk", "--valid", "el")
    expect(r.returncode != 0 and "slavic" in r.stderr,
           "a language group with nothing left in training fails: %s" % r.stderr.strip())
    r = run(rows, "--test", "it", "--valid", "it")
    expect(r.returncode != 0 and "it" in r.stderr, "a language in both --test and --valid fails")


def main():
    cbrnn, work, samples, scripts = sys.argv[1:5]
    py = sys.executable
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    manifest_builder(py, scripts, work, samples)
    default_split(py, scripts, cbrnn, work, samples)
    rules(py, scripts, work, samples)
    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        sys.exit(1)
    print("all corpus manifest/split checks passed")


if __name__ == "__main__":
    main()
