#!/usr/bin/python3
"""Bad input to `cbrnn train`, `cbrnn eval` and `cbrnn info`: each case must
exit with status 2 and a message on stderr that names the file (and line)
and the problem, never crash (no signal, no sanitizer report).

Model files: truncated, garbage, empty, corrupted header JSON, header that
is not an object, metadata that does not match the tensors, NaN weights,
missing. Training inputs: empty corpus, missing input, a file that is not
audio, label files with a bad line (the message has the line number) or
missing, a teacher of a different length, a missing teacher, bad @list and
pairs lines, bad option values. Evaluation: a label the model does not
know, a map model without teachers.

usage: cli_bad_input.py CBRNN WORKDIR SAMPLES_DIR
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import wave

import numpy as np

FAILS = []


def check(name, cmd, want_status, *want_in_stderr):
    try:  # a load that blocks (a named pipe) fails instead of hanging the suite
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        FAILS.append(f"{name}: still running after 120 s\n    cmd: {' '.join(cmd)}")
        print(f"FAIL {name}")
        return
    err = r.stderr
    problems = []
    if r.returncode != want_status:
        problems.append(f"exit status {r.returncode}, expected {want_status}")
    for w in want_in_stderr:
        if w not in err:
            problems.append(f"stderr lacks {w!r}")
    if "Sanitizer" in err or "runtime error" in err:
        problems.append("sanitizer report")
    if problems:
        FAILS.append(f"{name}: {'; '.join(problems)}\n    cmd: {' '.join(cmd)}\n"
                     f"    stderr: {err.strip()[:600]}")
        print(f"FAIL {name}")
    else:
        last = err.strip().splitlines()[-1] if err.strip() else ""
        print(f"ok   {name}: {last[:150]}")


def write_wav(path, x, rate):
    y = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(y.tobytes())


def read_wav(path):
    with wave.open(path, "rb") as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768
    return x, rate


def split_model(b):
    n = int.from_bytes(b[:8], "little")
    return json.loads(b[8:8 + n]), b[8 + n:]


def join_model(header, data):
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def main():
    cbrnn, work, samples = sys.argv[1:4]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    j = lambda *p: os.path.join(work, *p)
    a1 = os.path.join(samples, "voiceA_us_male_1.wav")
    a2 = os.path.join(samples, "voiceA_us_male_2.wav")
    tiny = ["--hidden", "8", "--cb", "16", "--warmup-steps", "2", "--steps", "2",
            "--batch", "2", "--seq-len", "20", "-q", "--val-fraction", "0"]

    # A good model to damage.
    good = j("good.safetensors")
    r = subprocess.run([cbrnn, "train", "-o", good, *tiny, a1], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAIL: training the reference model: {r.stderr}")
    b = open(good, "rb").read()
    header, data = split_model(b)

    def bad_model(name, content, *want):
        p = j(name + ".safetensors")
        with open(p, "wb") as f:
            f.write(content)
        check(f"info {name}", [cbrnn, "info", p], 2, p, *want)
        check(f"eval {name}", [cbrnn, "eval", p, a2], 2, p, *want)

    bad_model("truncated", b[:len(b) // 2], "the file is truncated or damaged")
    bad_model("truncated_header", b[:40], "larger than the rest of the file")
    bad_model("empty", b"", "too short")
    # eval's arguments swapped: audio where the model belongs
    bad_model("audio_swapped", open(a2, "rb").read(), "this is a WAV (RIFF) audio file, not a cbrnn model")
    bad_model("garbage", b"this is not a model file at all, just text\n" * 4,
              "larger than the rest of the file")
    hb = bytearray(b)
    hb[9] = ord("#")
    bad_model("bad_json", bytes(hb), "not valid JSON")
    hb = bytearray(b)
    hb[8] = ord("[")
    bad_model("not_object", bytes(hb), "does not start with '{'")
    h2 = json.loads(json.dumps(header))
    h2["__metadata__"]["n_hidden"] = "12"
    bad_model("mismatched", join_model(h2, data),
              "tensor cortex.rnn.weight_ih_l0: shape [8,40] but the configuration needs [12,40]")
    h2 = json.loads(json.dumps(header))
    h2["cerebellum.fc1.weight"]["dtype"] = "F16"
    bad_model("dtype", join_model(h2, data), "dtype F16")
    h2 = json.loads(json.dumps(header))
    h2["__metadata__"][""] = "2026-11-27"  # a fuzzer's find: loaded, then could not be saved
    bad_model("empty_meta_key", join_model(h2, data), "metadata has an empty key")
    h2 = json.loads(json.dumps(header))
    del h2["__metadata__"]["target"]
    bad_model("no_target", join_model(h2, data), "missing metadata 'target'")
    lo = header["cerebellum.fc2.bias"]["data_offsets"][0]
    nan_data = data[:lo + 8] + struct.pack("<f", float("nan")) + data[lo + 12:]
    bad_model("nan", join_model(header, nan_data), "tensor cerebellum.fc2.bias: element 2 is NaN")
    # The RLS rule's saved state (rls.P, [17,17] for --cb 16: last layer inputs + bias).
    def with_rls(P, shape=None):
        h2 = json.loads(json.dumps(header))
        h2["rls.P"] = {"dtype": "F32", "shape": list(shape or P.shape),
                       "data_offsets": [len(data), len(data) + 4 * P.size]}
        return join_model(h2, data + P.astype("<f4").tobytes())
    eye = np.eye(17) / 30
    p_ok = j("rls_ok.safetensors")
    open(p_ok, "wb").write(with_rls(eye))
    check("info a model with rls.P", [cbrnn, "info", p_ok], 0)
    # info --json says whether a model holds an RLS state, and the format
    info = lambda p: json.loads(subprocess.run([cbrnn, "info", "--json", p], capture_output=True,
                                               text=True).stdout or "{}")
    if info(p_ok).get("rls_state") != {"tensor": "rls.P", "n": 17}:
        FAILS.append(f"info --json rls_state of a model with rls.P: {info(p_ok).get('rls_state')}")
    if "rls_state" not in info(good) or info(good)["rls_state"] is not None:
        FAILS.append(f"info --json rls_state of a model without: {info(good).get('rls_state', '?')}")
    if info(good).get("format") != "cbrnn-1":
        FAILS.append(f"info --json format of a plain model: {info(good).get('format')}")
    h2 = json.loads(json.dumps(header))
    h2["__metadata__"]["format"] = "cbrnn-2"
    p2 = j("format2.safetensors")
    open(p2, "wb").write(join_model(h2, data))
    if info(p2).get("format") != "cbrnn-2":
        FAILS.append(f"info --json format of a cbrnn-2 file: {info(p2).get('format')}")
    # an RLS state where RLS cannot apply (a sequence-task model)
    h2 = json.loads(json.dumps(header))
    h2["__metadata__"]["target"] = "task"
    h2["rls.P"] = {"dtype": "F32", "shape": [17, 17],
                   "data_offsets": [len(data), len(data) + 4 * 17 * 17]}
    bad_model("rls_task", join_model(h2, data + eye.astype("<f4").tobytes()),
              "tensor rls.P: an RLS state, but RLS does not apply")
    # format names: only cbrnn-N above the newest is newer
    for name, fmt, want in (("format_point", "cbrnn-1.1", "not a cbrnn model format"),
                            ("format_zero", "cbrnn-0", "not a cbrnn model format"),
                            ("format_newer", "cbrnn-3", "is newer than this build reads")):
        h2 = json.loads(json.dumps(header))
        h2["__metadata__"]["format"] = fmt
        bad_model(name, join_model(h2, data), want)
    # a horizon the engine cannot take, and settings that vanish as floats
    for name, key, val, want in (("horizon", "horizon", "1001", "outside 1..1000"),
                                 ("rls_prior_tiny", "rls_prior", "1e-50", "outside")):
        h2 = json.loads(json.dumps(header))
        h2["__metadata__"][key] = val
        bad_model(name, join_model(h2, data), want)
    # training that the save at its end would refuse is refused before it starts
    check("train --horizon past the engine's", [cbrnn, "train", "-o", j("h.safetensors"), *tiny,
          "--horizon", "1001", a1], 2, "--horizon '1001': expected an integer in 1..1000")
    check("train --stream-norm under 10 hops",
          [cbrnn, "train", "-o", j("s.safetensors"), *tiny, "--output-mode", "residual",
           "--stream-norm", "0.05", a1], 2, "--stream-norm 0.05: at least 10 hops (0.1 s)")
    # a named pipe given as a model: refused at once, not waited on
    fifo = j("pipe.safetensors")
    os.mkfifo(fifo)
    check("info a named pipe", [cbrnn, "info", fifo], 2, "not a regular file (a named pipe)")
    check("eval a named pipe", [cbrnn, "eval", fifo, a2], 2, "not a regular file")
    bad_model("rls_shape", with_rls(np.eye(16) / 30),
              "tensor rls.P: shape [16,16] but the configuration needs [17,17]")
    p_nan = eye.copy()
    p_nan[2, 3] = np.nan
    bad_model("rls_nan", with_rls(p_nan), "tensor rls.P: element 37 is NaN")
    p_asym = eye.copy()
    p_asym[1, 4] = 0.5
    bad_model("rls_asymmetric", with_rls(p_asym),
              "tensor rls.P: not symmetric (elements [1,4] and [4,1] differ)")
    p_diag = eye.copy()
    p_diag[5, 5] = 0
    bad_model("rls_diagonal", with_rls(p_diag),
              "tensor rls.P: diagonal element 5 is 0; it must be positive")
    check("info missing file", [cbrnn, "info", j("none.safetensors")], 2, "none.safetensors")
    check("train -o into a missing folder", [cbrnn, "train", "-q", "-o", j("nodir/x.safetensors"), a2],
          2, "the folder", "nodir does not exist")
    check("info a folder", [cbrnn, "info", work], 2, "not a regular file")
    check("train with a SOURCE_DATE_EPOCH that is not seconds",
          ["env", "SOURCE_DATE_EPOCH=yesterday", cbrnn, "train", "-o", j("sde.safetensors"), *tiny, a1],
          2, "SOURCE_DATE_EPOCH 'yesterday'")
    if os.path.exists(j("sde.safetensors")):
        FAILS.append("train with a bad SOURCE_DATE_EPOCH wrote a model")

    # Training inputs.
    os.makedirs(j("empty_dir"))
    check("train empty corpus", [cbrnn, "train", "-o", j("x.safetensors"), *tiny, j("empty_dir")],
          2, "empty corpus")
    check("train no inputs", [cbrnn, "train", "-o", j("x.safetensors"), *tiny], 2, "empty corpus")
    check("train missing input", [cbrnn, "train", "-o", j("x.safetensors"), *tiny, j("nope.wav")],
          2, "nope.wav", "no such file or folder")
    with open(j("text.wav"), "w") as f:
        f.write("not audio\n" * 100)
    check("train not audio", [cbrnn, "train", "-o", j("x.safetensors"), *tiny, j("text.wav")],
          2, "text.wav")
    with open(j("list.txt"), "w") as f:
        f.write(f"# inputs\n{os.path.abspath(a1)}\nmissing.wav\n")
    check("train bad @list", [cbrnn, "train", "-o", j("x.safetensors"), *tiny, "@" + j("list.txt")],
          2, "list.txt:3:", "missing.wav")

    # Labels (classify).
    os.makedirs(j("labels"))
    with open(j("labels", "voiceA_us_male_1.txt"), "w") as f:
        f.write("0.000000\t1.500000\tspeech\n\\\t100.0\t2000.0\n1.5\tabc\tnoise\n")
    check("train label bad number", [cbrnn, "train", "-o", j("x.safetensors"), *tiny,
                                     "--target", "classify", "--labels-dir", j("labels"), a1],
          2, "voiceA_us_male_1.txt:3:", "seconds")
    with open(j("labels", "voiceA_us_male_1.txt"), "w") as f:
        f.write("0.0\t1.5\tspeech\n2.0 3.0 noise\n")
    check("train label no tabs", [cbrnn, "train", "-o", j("x.safetensors"), *tiny,
                                  "--target", "classify", "--labels-dir", j("labels"), a1],
          2, "voiceA_us_male_1.txt:2:", "start<TAB>end<TAB>label")
    with open(j("labels", "voiceA_us_male_1.txt"), "w") as f:
        f.write("0.0\t1.5\tspeech\n3.0\t2.0\tnoise\n")
    check("train label reversed", [cbrnn, "train", "-o", j("x.safetensors"), *tiny,
                                   "--target", "classify", "--labels-dir", j("labels"), a1],
          2, "voiceA_us_male_1.txt:2:", "reversed")
    # A label's text becomes a class name (UTF-8) and a CSV field: control
    # characters, a NUL, bytes that are not UTF-8 and hex times are refused
    # where the file is read, naming the line.
    for what, body, line, why in (
            ("tab", b"0.0\t1.5\tspeech\n1.5\t2.0\tno\tise\n", 2, "a tab"),
            ("CR", b"0.0\t0.5\tnoise\r0.5\t1.5\tspeech\r", 1, "carriage return"),
            ("NUL", b"0.0\t1.5\tspe\0ech\n", 1, "NUL"),
            ("not UTF-8", b"0.0\t0.5\tno\xffise\n0.5\t1.5\tspeech\n", 1, "not UTF-8"),
            ("hex", b"0x1\t1.5\tspeech\n", 1, "seconds")):
        with open(j("labels", "voiceA_us_male_1.txt"), "wb") as f:
            f.write(body)
        check("train label " + what, [cbrnn, "train", "-o", j("x.safetensors"), *tiny,
                                      "--target", "classify", "--labels-dir", j("labels"), a1],
              2, "voiceA_us_male_1.txt:%d:" % line, why)
    with open(j("labels", "voiceA_us_male_1.txt"), "w") as f:
        f.write("0.0\t1.5\tspeech\n")
    check("train one class", [cbrnn, "train", "-o", j("x.safetensors"), *tiny,
                              "--target", "classify", "--labels-dir", j("labels"), a1],
          2, "at least 2")
    # Labels that name classes but label no frame (times in ms, past the
    # file's end, zero length) would train on a loss of 0 and "succeed".
    for what, body in (("ms", "500\t1000\tspeech\n1000\t2000\tnoise\n"),
                       ("zero length", "1.0\t1.0\tspeech\n2.0\t2.0\tnoise\n")):
        with open(j("labels", "voiceA_us_male_1.txt"), "w") as f:
            f.write(body)
        check("train no labelled frame " + what, [cbrnn, "train", "-o", j("x.safetensors"),
                                                  *tiny, "--target", "classify",
                                                  "--labels-dir", j("labels"), a1],
              2, j("labels"), "no frame of the training files is labelled",
              "times in milliseconds?")
    # Inputs of one stem (in two folders; x.wav beside x.flac) would share
    # one label file: refused, naming both and the label file.
    x1, rate1 = read_wav(a1)
    for d in ("stem/s1", "stem/s2", "stem2", "stem_labels"):
        os.makedirs(j(d))
    write_wav(j("stem", "s1", "x.wav"), x1, rate1)
    write_wav(j("stem", "s2", "x.wav"), x1[: len(x1) // 2], rate1)
    write_wav(j("stem2", "x.wav"), x1, rate1)
    shutil.copy(j("stem2", "x.wav"), j("stem2", "x.flac"))
    with open(j("stem_labels", "x.txt"), "w") as f:
        f.write("0.0\t1.0\tspeech\n1.0\t2.0\tnoise\n")
    for what, inputs, one, two in (
            ("two folders", [j("stem")], j("stem", "s1", "x.wav"), j("stem", "s2", "x.wav")),
            ("two extensions", [j("stem2")], j("stem2", "x.flac"), j("stem2", "x.wav"))):
        check("train one label file for two inputs, " + what,
              [cbrnn, "train", "-o", j("x.safetensors"), *tiny, "--target", "classify",
               "--labels-dir", j("stem_labels"), *inputs],
              2, one, two, j("stem_labels", "x.txt"), "share the label file")
    # A folder where a label file, pairs list or @list should be: said so,
    # not "read error".
    os.makedirs(j("labels_dirs", "voiceA_us_male_1.txt"))
    os.makedirs(j("pairs_dir"))
    check("train label file is a folder", [cbrnn, "train", "-o", j("x.safetensors"), *tiny,
                                           "--target", "classify",
                                           "--labels-dir", j("labels_dirs"), a1],
          2, j("labels_dirs", "voiceA_us_male_1.txt") + ": is a folder, not a label file")
    check("train pairs list is a folder", [cbrnn, "train", "-o", j("x.safetensors"), *tiny,
                                           "--target", "map", "--pairs", j("pairs_dir")],
          2, "pairs_dir: is a folder, not a pairs list")
    # A byte order mark (editors on Windows write one) is skipped, as in
    # lists: not an invisible character in "start must be a number".
    with open(j("labels", "voiceA_us_male_1.txt"), "wb") as f:
        f.write(b"\xef\xbb\xbf0.0\t5.0\tspeech\n5.0\t10.0\tnoise\n")
    check("train label file with a BOM", [cbrnn, "train", "-o", j("x.safetensors"), *tiny,
                                          "--target", "classify", "--labels-dir", j("labels"),
                                          a1], 0)
    check("train label file missing", [cbrnn, "train", "-o", j("x.safetensors"), *tiny,
                                       "--target", "classify", "--labels-dir", j("labels"), a2],
          2, "voiceA_us_male_2.txt")

    # Teachers (map).
    x, rate = read_wav(a1)
    os.makedirs(j("map"))
    write_wav(j("map", "in.wav"), x, rate)
    write_wav(j("map", "in_t.wav"), x[: len(x) - rate // 2], rate)  # 0.5 s shorter
    check("train teacher shorter", [cbrnn, "train", "-o", j("x.safetensors"), *tiny,
                                    "--target", "map", "--teacher-suffix", "_t", j("map")],
          2, "in.wav", "in_t.wav", "same length")
    write_wav(j("map", "lone.wav"), x[:rate], rate)
    check("train teacher missing", [cbrnn, "train", "-o", j("x.safetensors"), *tiny,
                                    "--target", "map", "--teacher-suffix", "_t",
                                    j("map", "lone.wav")],
          2, "lone_t.wav")
    with open(j("pairs.txt"), "w") as f:
        f.write("map/in.wav\tmap/in_t.wav\nmap/lone.wav map/lone_t.wav\n")
    check("train bad pairs line", [cbrnn, "train", "-o", j("x.safetensors"), *tiny,
                                   "--target", "map", "--pairs", j("pairs.txt")],
          2, "pairs.txt:2:", "input<TAB>teacher")

    # Options.
    for opt, want in ((["--hidden", "0"], "--hidden"), (["--cb", "12,x"], "--cb"),
                      (["--target", "foo"], "--target"), (["--lr", "-1"], "--lr"),
                      (["--activation", "sigmoid"], "--activation"),
                      (["--target", "map"], "--teacher-suffix"),
                      (["--warmup-steps", "0", "--steps", "0"], "nothing to do"),
                      (["--mfcc", "50"], "--mfcc")):
        check(f"train option {' '.join(opt)}", [cbrnn, "train", "-o", j("x.safetensors"),
                                                *tiny, *opt, a1], 2, want)
    check("train no -o", [cbrnn, "train", a1], 2, "-o MODEL.safetensors is required")

    # Evaluation against labels the model does not know.
    with open(j("labels", "voiceA_us_male_1.txt"), "w") as f:
        f.write("0.0\t5.0\tspeech\n5.0\t10.0\tnoise\n")
    cls = j("cls.safetensors")
    r = subprocess.run([cbrnn, "train", "-o", cls, *tiny, "--target", "classify",
                        "--labels-dir", j("labels"), a1], capture_output=True, text=True)
    if r.returncode != 0:
        FAILS.append(f"training a classify model failed: {r.stderr}")
    else:
        with open(j("labels", "voiceA_us_male_1.txt"), "w") as f:
            f.write("0.0\t5.0\tspeech\n5.0\t10.0\tmusic\n")
        check("eval unknown label", [cbrnn, "eval", cls, a1, "--labels-dir", j("labels")], 2,
              "voiceA_us_male_1.txt:2:", "'music' is not one of the model's classes")
        check("eval one label file for two inputs", [cbrnn, "eval", cls, j("stem"),
                                                     "--labels-dir", j("stem_labels")], 2,
              j("stem", "s1", "x.wav"), j("stem", "s2", "x.wav"), j("stem_labels", "x.txt"),
              "share the label file")
        check("eval classify without labels", [cbrnn, "eval", cls, a1], 2, "--labels-dir")
    check("eval map options on predict model", [cbrnn, "eval", good, a1, "--teacher-suffix", "_t"],
          2, "map models")
    check("eval empty corpus", [cbrnn, "eval", good, j("empty_dir")], 2, "empty corpus")
    check("eval not audio", [cbrnn, "eval", good, j("text.wav")], 2, "text.wav")
    # A failed eval leaves no partial --outputs file behind (--strict: a
    # file that is not audio fails the run instead of being skipped).
    check("eval outputs on failure", [cbrnn, "eval", "--strict", good, a1, j("text.wav"),
                                      "--outputs", j("out.npy")], 2, "text.wav")
    if os.path.exists(j("out.npy")):
        FAILS.append("eval left a partial --outputs file after failing")

    if FAILS:
        sys.exit("FAIL:\n" + "\n".join(FAILS))
    print("ok: every bad input gave exit status 2 and a message")


if __name__ == "__main__":
    main()
