#!/usr/bin/python3
"""Every bad input a user can give `cbrnn features` (the files are made in
a temporary folder now): a missing path, a directory, a text file named
x.wav, a WAV header with 0 frames, a WAV cut in the middle of its data,
WAVs at 4000 Hz and 384000 Hz, an output path in a missing directory, an
output that is a directory, an output where nobody may write, and bad
option values. Each must exit with status 2 (not a crash, not 1), print
"cbrnn features: ..." naming the file (or the option) and the problem, and
leave no output or temporary file behind; an existing output must be left
untouched. Standard library only.

    bad_input.py CBRNN SAMPLE.wav
"""
import os
import struct
import subprocess
import sys
import tempfile
import wave

failures = 0


def fail(what, detail):
    global failures
    failures += 1
    print("FAIL %s: %s" % (what, detail))


def run(cbrnn, args):
    p = subprocess.run([cbrnn, "features"] + args, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    return p.returncode, p.stderr.strip()


def expect_bad(what, cbrnn, args, names, words, out_dir=None):
    """Exit 2; stderr starts with 'cbrnn features:', contains every string
    of names (file names) and one of words (what is wrong)."""
    before = set(os.listdir(out_dir)) if out_dir else None
    code, err = run(cbrnn, args)
    if code != 2:
        fail(what, "exit status expected 2 got %d (stderr: %r)" % (code, err))
        return
    if not err.startswith("cbrnn features:"):
        fail(what, "message should start with 'cbrnn features:', got %r" % err)
    for n in names:
        if n not in err:
            fail(what, "message should name %r, got %r" % (n, err))
    if not any(w.lower() in err.lower() for w in words):
        fail(what, "message should say one of %r, got %r" % (words, err))
    if out_dir is not None:
        after = set(os.listdir(out_dir))
        if after != before:
            fail(what, "files left behind in %s: %s" % (out_dir, sorted(after - before)))
    print("ok   %s -> %s" % (what, err))


def write_wav(path, rate, frames, channels=1):
    w = wave.open(path, "wb")
    w.setnchannels(channels)
    w.setsampwidth(2)
    w.setframerate(rate)
    w.writeframes(b"".join(struct.pack("<h", (i * 37) % 2000 - 1000)
                           for i in range(frames * channels)))
    w.close()


def main():
    cbrnn, sample = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory(prefix="cbrnn-bad-") as tmp:
        out_dir = os.path.join(tmp, "out")
        os.mkdir(out_dir)
        out = os.path.join(out_dir, "feat.npy")

        missing = os.path.join(tmp, "nope.wav")
        expect_bad("missing input", cbrnn, [missing, "-o", out], [missing],
                   ["no such file"], out_dir)

        expect_bad("directory as input", cbrnn, [tmp, "-o", out], [tmp], ["directory"], out_dir)

        text = os.path.join(tmp, "x.wav")
        with open(text, "w") as f:
            f.write("this is not audio\n" * 20)
        expect_bad("text file named x.wav", cbrnn, [text, "-o", out], [text],
                   ["not an audio file"], out_dir)

        empty = os.path.join(tmp, "empty.wav")
        write_wav(empty, 16000, 0)
        expect_bad("WAV with 0 frames", cbrnn, [empty, "-o", out], [empty], ["empty"], out_dir)

        cut = os.path.join(tmp, "cut.wav")
        with open(sample, "rb") as f:
            data = f.read()
        with open(cut, "wb") as f:
            f.write(data[:len(data) // 2 + 1])   # mid-data, odd byte count too
        expect_bad("WAV cut in the middle of its data", cbrnn, [cut, "-o", out], [cut],
                   ["truncated"], out_dir)

        for rate in (4000, 384000):
            p = os.path.join(tmp, "r%d.wav" % rate)
            write_wav(p, rate, rate // 2)
            expect_bad("WAV at %d Hz" % rate, cbrnn, [p, "-o", out], [p, str(rate)],
                       ["sample rate"], out_dir)

        nodir = os.path.join(tmp, "no", "such", "dir", "feat.npy")
        expect_bad("output in a missing directory", cbrnn, [sample, "-o", nodir], [nodir],
                   ["no such file or directory", "cannot create"], out_dir)

        expect_bad("output is a directory", cbrnn, [sample, "-o", out_dir], [out_dir],
                   ["directory"], out_dir)

        # /proc refuses new files even to root.
        if os.path.isdir("/proc/self"):
            p = "/proc/cbrnn-test-%d.npy" % os.getpid()
            expect_bad("output where nobody may write", cbrnn, [sample, "-o", p], [p],
                       ["cannot create"])
        if os.geteuid() != 0:
            ro = os.path.join(tmp, "ro")
            os.mkdir(ro, 0o555)
            p = os.path.join(ro, "feat.npy")
            expect_bad("output in a read-only directory", cbrnn, [sample, "-o", p], [p],
                       ["permission denied"], ro)

        # An existing output survives a failed run untouched.
        with open(out, "wb") as f:
            f.write(b"keep me")
        expect_bad("bad input, existing output", cbrnn, [cut, "-o", out], [cut], ["truncated"],
                   out_dir)
        with open(out, "rb") as f:
            if f.read() != b"keep me":
                fail("existing output", "was modified by a failed run")
        os.unlink(out)

        for args, names, words in (
                (["--mels", "0"], ["--mels", "'0'"], ["expected an integer"]),
                (["--mels", "abc"], ["--mels", "abc"], ["expected an integer"]),
                (["--mels", "12x"], ["--mels", "12x"], ["expected an integer"]),
                (["--mfcc", "41"], ["--mfcc", "41"], ["at most"]),
                (["--mfcc", "-3"], ["--mfcc"], ["expected an integer"]),
                (["--block", "0"], ["--block", "'0'"], ["expected an integer"]),
                (["--block", "99999999999999999999"], ["--block"], ["expected an integer"]),
                (["--rate", "4000"], ["--rate", "4000"], ["sample rate"]),
                (["--rate", "1e9"], ["--rate"], ["sample rate"]),
                (["--rate", "nan"], ["--rate"], ["sample rate"]),
                (["--frobnicate"], ["--frobnicate"], ["unknown option"]),
                (["--mels"], ["--mels"], ["needs a value"])):
            expect_bad("option %s" % " ".join(args), cbrnn, [sample, "-o", out] + args, names,
                       words, out_dir)
        expect_bad("no output", cbrnn, [sample], [sample], ["no output"], out_dir)
        expect_bad("no input", cbrnn, ["-o", out], [], ["no input"], out_dir)
        expect_bad("two inputs", cbrnn, [sample, sample, "-o", out], [sample], ["one input"],
                   out_dir)
        expect_bad("output would overwrite input", cbrnn, [sample, "-o", sample], [sample],
                   ["overwrite"])

        code, err = run(cbrnn, ["--help"])
        if code != 0:
            fail("--help", "exit status %d" % code)
        p = subprocess.run([cbrnn, "features", "--help"], stdout=subprocess.PIPE, text=True)
        for word in ("--mels", "--mfcc", "--deltas", "--block", "--rate", "Hann", "10 ms",
                     "1e-6", "shape (frames, features)", "Exit status"):
            if word not in p.stdout:
                fail("--help", "does not explain %r" % word)

        # After all that, a good run still works and leaves only its output.
        code, err = run(cbrnn, [sample, "-o", out])
        if code != 0 or sorted(os.listdir(out_dir)) != ["feat.npy"]:
            fail("good run", "exit %d, files %s, stderr %r" % (code, os.listdir(out_dir), err))
    print("bad input: %d failures" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
