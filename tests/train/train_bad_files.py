#!/usr/bin/python3
"""`cbrnn train` on a corpus with bad files in it (issue 10, item 6). Real
files read through libsndfile; what must hold:

- good clips cut from the sample voices, plus a 0-byte file, a WAV whose
  header holds no frames, a truncated WAV (header declares more data than
  the file has), a text file named .wav and a clip too short to give a
  single frame: training succeeds (exit 0), each bad file gets a warning
  naming it, the summary counts them, the model's metadata records
  skipped_files, and the model equals the one trained on the good files
  alone (the bad files change nothing);
- --strict: exit 2, the message names the first bad file, and a model
  already saved at -o is untouched;
- only bad files: exit 2, "no training file left", each one named;
- a bad file given as a validation file (--val-files) is skipped too;
- a too-short file is left out before the validation split (the split
  never picks a file that is then dropped), and one file under several
  names (./, a symbolic link) is one file;
- one empty file among 3000 good ones does not abort the run;
- `cbrnn eval` (and its --linear-fit corpus) skips, names and counts bad
  files the same way, with overall numbers equal to the good files' alone;
  --strict makes a bad file an error there too.

usage: train_bad_files.py CBRNN WORKDIR SAMPLES_DIR
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import wave

FAILS = []


def expect(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)


def read_wav(path):
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        return w.readframes(w.getnframes()), w.getframerate()


def write_wav(path, pcm, rate):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


def train(cbrnn, out, inputs, extra=()):
    cmd = [cbrnn, "train", "-o", out, "--hidden", "16", "--cb", "16", "--warmup-steps", "4",
           "--steps", "4", "--eval-every", "4", "--batch", "4", "--seq-len", "20", *extra, *inputs]
    return subprocess.run(cmd, capture_output=True, text=True)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def info(cbrnn, model):
    return subprocess.run([cbrnn, "info", model], capture_output=True, text=True).stdout


def main():
    cbrnn, work, samples = sys.argv[1:4]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    j = lambda *p: os.path.join(work, *p)  # noqa: E731
    pcm, rate = read_wav(os.path.join(samples, "voiceA_us_male_1.wav"))
    sec = 2 * rate  # bytes per second (16-bit mono)

    good = j("good")
    os.makedirs(good)
    for i in range(4):
        write_wav(os.path.join(good, "g%d.wav" % i), pcm[i * sec:(i + 1) * sec], rate)
    mixed = j("mixed")
    shutil.copytree(good, mixed)
    bad = {
        "a_empty.wav": b"",
        "b_noframes.wav": None,
        "c_truncated.wav": None,
        "d_text.wav": b"this is a text file, not audio\n" * 20,
        "e_short.wav": None,
    }
    open(os.path.join(mixed, "a_empty.wav"), "wb").close()
    write_wav(os.path.join(mixed, "b_noframes.wav"), b"", rate)
    write_wav(j("full.wav"), pcm[:sec], rate)
    with open(j("full.wav"), "rb") as f:
        whole = f.read()
    with open(os.path.join(mixed, "c_truncated.wav"), "wb") as f:
        f.write(whole[:len(whole) // 2])
    with open(os.path.join(mixed, "d_text.wav"), "wb") as f:
        f.write(bad["d_text.wav"])
    write_wav(os.path.join(mixed, "e_short.wav"), pcm[:20], rate)  # 10 samples

    # Bad files among good ones: skipped, named, counted; same model as without them.
    ref = j("ref.safetensors")
    r = train(cbrnn, ref, [good], ["--val-fraction", "0"])
    expect(r.returncode == 0, "training on the good clips alone works (%s)" % r.stderr[-300:])
    m = j("mixed.safetensors")
    r = train(cbrnn, m, [mixed], ["--val-fraction", "0"])
    expect(r.returncode == 0, "bad files among good ones: exit 0 (got %d: %s)" %
           (r.returncode, r.stderr[-400:]))
    for name in bad:
        lines = [l for l in r.stderr.splitlines() if "warning" in l and name in l]
        expect(len(lines) == 1, "one warning names %s: %s" % (name, lines))
    expect("4 training files" in r.stderr and "5 skipped" in r.stderr,
           "the summary counts 4 training files and 5 skipped")
    for name, why in (("a_empty.wav", "empty file"), ("b_noframes.wav", "no audio frames"),
                      ("c_truncated.wav", "truncated"), ("d_text.wav", "not an audio file"),
                      ("e_short.wav", "feature frames")):
        expect(any(name in l and why in l for l in r.stderr.splitlines()),
               "%s's warning says '%s'" % (name, why))
    expect(os.path.exists(m) and "skipped_files" in info(cbrnn, m) and
           [l.split()[-1] for l in info(cbrnn, m).splitlines() if "skipped_files" in l] == ["5"],
           "the model's metadata says skipped_files 5")
    if os.path.exists(ref) and os.path.exists(m):
        # Same training data, same seed: the same weights (metadata differ).
        wr = subprocess.run([cbrnn, "eval", "--json", ref, good], capture_output=True, text=True)
        wm = subprocess.run([cbrnn, "eval", "--json", m, good], capture_output=True, text=True)
        expect(wr.returncode == 0 and wr.stdout.replace(ref, "") == wm.stdout.replace(m, ""),
               "the model trained with the bad files present equals the one trained without")

    # -q keeps the warnings and the count.
    r = train(cbrnn, j("q.safetensors"), [mixed], ["-q"])
    expect(r.returncode == 0 and "5 files skipped" in r.stderr and
           r.stderr.count("warning") == 5, "-q still warns and counts (%s)" % r.stderr[-300:])

    # --strict: an error naming the first bad file; a saved model is untouched.
    before = sha(m)
    r = train(cbrnn, m, [mixed], ["--strict"])
    expect(r.returncode == 2, "--strict: exit 2 (got %d)" % r.returncode)
    expect("a_empty.wav" in r.stderr and "--strict" in r.stderr,
           "--strict names the bad file: %s" % r.stderr.strip()[-200:])
    expect(sha(m) == before, "--strict: the model already at -o is untouched")

    # Nothing good left.
    only = j("only_bad")
    os.makedirs(only)
    for name in ("a_empty.wav", "d_text.wav"):
        shutil.copy(os.path.join(mixed, name), only)
    r = train(cbrnn, j("none.safetensors"), [only])
    expect(r.returncode == 2 and "no training file left" in r.stderr and
           "a_empty.wav" in r.stderr and "d_text.wav" in r.stderr,
           "only bad files: exit 2, each named (%s)" % r.stderr.strip()[-300:])
    expect(not os.path.exists(j("none.safetensors")), "only bad files: no model written")

    # A bad validation file is skipped like a training one.
    r = train(cbrnn, j("v.safetensors"), [good],
              ["--val-files", os.path.join(mixed, "c_truncated.wav"),
               "--val-files", os.path.join(good, "g3.wav")])
    expect(r.returncode == 0 and "1 validation" in r.stderr and "1 skipped" in r.stderr and
           "c_truncated.wav" in r.stderr, "a bad --val-files file is skipped (%s)" %
           r.stderr.strip()[-300:])

    # A too-short file is found before the validation split: with it and
    # three good files every seed still validates on one (seed 3 once
    # split off the short file, then dropped it: no validation at all).
    # The same file under two names is one file.
    for seed in ("1", "2", "3", "4"):
        r = train(cbrnn, j("s.safetensors"), [os.path.join(mixed, "e_short.wav")] +
                  [os.path.join(good, "g%d.wav" % i) for i in range(3)], ["--seed", seed])
        expect(r.returncode == 0 and "2 training files (" in r.stderr and
               "1 validation (" in r.stderr and
               "1 skipped" in r.stderr, "seed %s: a short file does not empty the validation "
               "split (%s)" % (seed, r.stderr.strip()[-200:]))
    g0 = os.path.join(good, "g0.wav")
    os.symlink(g0, j("g0_link.wav"))
    r = train(cbrnn, j("d.safetensors"), [g0, os.path.join(good, ".", "g0.wav"),
                                          j("g0_link.wav"), os.path.join(good, "g1.wav")])
    expect(r.returncode == 0 and "1 training file (" in r.stderr and
           "1 validation (" in r.stderr,
           "one file under three names is one file (%s)" % r.stderr.strip()[-200:])

    # cbrnn eval: the same rules (skipped, named, counted; --strict an error).
    if os.path.exists(ref):
        e = subprocess.run([cbrnn, "eval", "--json", ref, mixed], capture_output=True, text=True)
        g = subprocess.run([cbrnn, "eval", "--json", ref, good], capture_output=True, text=True)
        ok = e.returncode == 0 and g.returncode == 0
        if ok:
            oe, og = json.loads(e.stdout)["overall"], json.loads(g.stdout)["overall"]
        expect(ok and oe["files"] == 4 and oe["skipped"] == 5 and og["skipped"] == 0 and
               oe["loss"] == og["loss"] and all(n in e.stderr for n in bad),
               "eval: bad files skipped, named and counted; the numbers are the good files' (%s)"
               % e.stderr.strip()[-300:])
        e = subprocess.run([cbrnn, "eval", "--strict", ref, mixed], capture_output=True, text=True)
        expect(e.returncode == 2 and "a_empty.wav" in e.stderr and e.stdout == "",
               "eval --strict: exit 2 naming the bad file, no table")
        e = subprocess.run([cbrnn, "eval", ref, only], capture_output=True, text=True)
        expect(e.returncode == 2 and "no file left" in e.stderr, "eval on bad files only: exit 2")
        e = subprocess.run([cbrnn, "eval", ref, "--linear-fit", mixed, good],
                           capture_output=True, text=True)
        # The fit passes over a file too short to hold a target without
        # counting it (it is no error there): 4 of the 5.
        expect(e.returncode == 0 and "4 files skipped" in e.stderr,
               "eval --linear-fit on a corpus with bad files skips them (%s)" %
               e.stderr.strip()[-200:])

    # One empty file among 3000 good ones.
    many = j("many")
    os.makedirs(many)
    clip = pcm[:sec // 4]  # 0.25 s
    for i in range(3000):
        write_wav(os.path.join(many, "c%04d.wav" % i), clip if i % 2 else pcm[sec:sec + sec // 4],
                  rate)
    open(os.path.join(many, "c1500_empty.wav"), "wb").close()
    r = train(cbrnn, j("many.safetensors"), [many], ["-q"])
    expect(r.returncode == 0 and "1 file skipped" in r.stderr and "c1500_empty.wav" in r.stderr,
           "one empty file among 3000: the run completes (exit %d, %s)" %
           (r.returncode, r.stderr.strip()[-300:]))

    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        sys.exit(1)
    print("all bad-file checks passed")


if __name__ == "__main__":
    main()
