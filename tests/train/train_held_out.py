#!/usr/bin/python3
"""`cbrnn train` records the files it held out for validation, capped
(issue 11): the metadata names at most 50 of them (held_out,
';'-separated), relative to their common folder (held_out_dir), says when
the list is cut (held_out_truncated "50 of N names"; val_files is N), and
`cbrnn info` shows a long list in one readable line (--json in full). A
model continued with --init gets its own list, not its start's. The
content digests of the training and held-out recordings
(train_set_sha256, val_set_sha256) are those `sha256sum FILES | cut -c1-64
| LC_ALL=C sort | sha256sum` gives, whatever the files' names and order;
--speed-perturb copies do not change them.

usage: train_held_out.py CBRNN WORKDIR SAMPLES_DIR
"""
import hashlib
import json
import os
import shutil
import sys
import wave

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_init import run  # noqa: E402  (runs a command, fails on another exit code)
from train_rates import safetensors  # noqa: E402  (one safetensors reader for these tests)


def write_clip(path, seed):
    """0.2 s of noise at 16 kHz: 18 feature frames, enough to train on."""
    x = np.random.default_rng(seed).normal(0, 3000, 3200).clip(-32767, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(x.tobytes())


def set_digest(files):
    """The digest of a set of files by content (docs/FORMATS.md)."""
    lines = sorted(hashlib.sha256(open(f, "rb").read()).hexdigest() for f in files)
    return hashlib.sha256("".join(l + "\n" for l in lines).encode()).hexdigest()


def check_digests(meta, train_files, val_files, what, fails):
    for key, files in (("train_set_sha256", train_files), ("val_set_sha256", val_files)):
        want = set_digest(files) if files else None
        if meta.get(key) != want:
            fails.append(f"{what}: {key} {meta.get(key)!r}, expected {want!r}")


def train(cbrnn, out, *args):
    # --init takes the architecture from its model (the sizes would be refused)
    size = [] if "--init" in args else ["--hidden", "8", "--cb", "8"]
    run([cbrnn, "train", "-q", "-o", out, *size, "--warmup-steps", "1",
         "--steps", "1", "--seq-len", "8", "--batch", "2", *args])
    return safetensors(out)[0]


def main():
    cbrnn, work, samples = (os.path.abspath(a) for a in sys.argv[1:4])
    shutil.rmtree(work, ignore_errors=True)
    clips = os.path.join(work, "clips")
    paths = []
    for i in range(120):  # two folders, so the common folder is clips/
        d = os.path.join(clips, "ab"[i % 2])
        os.makedirs(d, exist_ok=True)
        paths.append(os.path.join(d, f"c{i:03d}.wav"))
        write_clip(paths[-1], i)
    fails = []

    # 60 of 120 held out: 50 names, relative to clips/, and the cut said
    big = os.path.join(work, "big.safetensors")
    meta = train(cbrnn, big, "--val-fraction", "0.5", clips)
    names = meta.get("held_out", "").split(";")
    if meta.get("val_files") != "60":
        fails.append(f"val_files {meta.get('val_files')!r}, expected '60'")
    if meta.get("held_out_dir") != clips:
        fails.append(f"held_out_dir {meta.get('held_out_dir')!r}, expected {clips!r}")
    if len(names) != 50 or len(set(names)) != 50:
        fails.append(f"held_out has {len(names)} names ({len(set(names))} distinct), expected 50")
    missing = [n for n in names if os.path.join(meta.get("held_out_dir", ""), n) not in paths]
    if missing:
        fails.append(f"held_out names that are not corpus files: {missing[:3]}")
    if meta.get("held_out_truncated") != "50 of 60 names":
        fails.append(f"held_out_truncated {meta.get('held_out_truncated')!r}, "
                     "expected '50 of 60 names'")
    # cbrnn info: one readable line; --json the whole list
    info = run([cbrnn, "info", big]).stdout
    line = [l for l in info.splitlines() if l.split()[:1] == ["held_out"]]
    if len(line) != 1 or len(line[0]) > 300 or "(" not in line[0] or "more" not in line[0]:
        fails.append(f"cbrnn info's held_out line: {line!r}")
    js = json.loads(run([cbrnn, "info", "--json", big]).stdout)
    if js.get("metadata", {}).get("held_out") != meta.get("held_out"):
        fails.append("cbrnn info --json does not give the whole held_out list")

    # 2 of 4 held out, in both folders: not cut, names keep their subfolder
    small = os.path.join(work, "small.safetensors")
    meta = train(cbrnn, small, "--val-fraction", "0.5", *paths[:4])
    names = meta.get("held_out", "").split(";")
    if "held_out_truncated" in meta or len(names) != 2:
        fails.append(f"4 files, 2 held out: held_out {meta.get('held_out')!r}, "
                     f"truncated {meta.get('held_out_truncated')!r}")
    if not all(os.path.join(meta.get("held_out_dir", ""), n) in paths[:4] for n in names):
        fails.append(f"held_out {names} not relative to held_out_dir "
                     f"{meta.get('held_out_dir')!r}")
    held = [os.path.join(meta.get("held_out_dir", ""), n) for n in names]
    check_digests(meta, [p for p in paths[:4] if p not in held], held, "4 files", fails)

    # the same recordings named otherwise, in another order, with --speed-perturb
    # copies: the same digests
    links = os.path.join(work, "links")
    os.makedirs(links, exist_ok=True)
    named = []
    for i, p in enumerate(reversed(paths[:4])):
        named.append(os.path.join(links, f"x{i}.wav"))
        shutil.copy(p, named[-1])
    trained = [n for n, p in zip(named, reversed(paths[:4])) if p not in held]
    held2 = [n for n, p in zip(named, reversed(paths[:4])) if p in held]
    meta2 = train(cbrnn, os.path.join(work, "renamed.safetensors"), "--speed-perturb", "0.9,1.1",
                  *[a for h in held2 for a in ("--val-files", h)], *trained)
    for key in ("train_set_sha256", "val_set_sha256"):
        if meta2.get(key) != meta.get(key):
            fails.append(f"renamed, reordered, speed copies: {key} {meta2.get(key)!r}, "
                         f"expected {meta.get(key)!r}")

    # --init from the big model, nothing held out: no list is carried over
    meta = train(cbrnn, os.path.join(work, "init.safetensors"), "--init", big,
                 "--val-fraction", "0", "--warmup-steps", "0", *paths[:2])
    stale = {k: meta[k] for k in ("held_out", "held_out_dir", "held_out_truncated")
             if meta.get(k)}
    if stale:
        fails.append(f"--init with nothing held out kept its start's list: {stale}")
    check_digests(meta, paths[:2], [], "--init, nothing held out", fails)

    for f in fails:
        print("FAIL", f)
    if fails:
        sys.exit(1)
    print("train held_out: 50 of 60 names kept, relative to their folder; info shows one line; "
          "content digests as sha256sum gives them")


if __name__ == "__main__":
    main()
