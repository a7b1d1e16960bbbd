#!/usr/bin/python3
"""`cbrnn train` keeps the corpus's features in a disk cache, not in memory
(issue 6, big input). What must hold:

- a corpus larger than the memory it is given trains: 192 names of the
  eight 17 s sample clips (copies; 55 min of audio, 331k frames, 51 MiB
  of features if loaded naively) train inside a memory cgroup limited to
  40 MiB (the kernel's own accounting, page cache included; the loader
  that held every feature in memory was OOM-killed there). Skipped, and
  said so, where this machine does not let us make a memory cgroup;
- nothing is left in the cache folder after a normal run, after SIGKILL
  while features are being computed, and after SIGKILL during training;
- --cache-dir on a folder that does not exist: exit 2, the message names
  the folder; a full cache folder (a 256 KiB tmpfs, when this machine lets
  us mount one): exit 1, "No space left on device", and a model already
  saved at -o is untouched;
- the same command with different --cache-dir gives a byte-identical model.

usage: train_cache.py CBRNN WORKDIR SAMPLES_DIR
"""
import glob
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

FAILS = []


def expect(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)


def train_cmd(cbrnn, out, inputs, extra=()):
    return [cbrnn, "train", "-q", "-o", out, "--hidden", "32", "--cb", "32",
            "--warmup-steps", "10", "--steps", "10", "--eval-every", "10", *extra, *inputs]


def make_memory_cgroup(limit):
    """A cgroup-v1 memory group limited to `limit` bytes, or None (said why)."""
    if os.environ.get("CBRNN_NO_MEMORY_LIMIT"):
        print("skip memory-limit check: sanitizer build (CBRNN_NO_MEMORY_LIMIT)")
        return None
    cg = f"/sys/fs/cgroup/memory/cbrnn-train-cache-{os.getpid()}"
    try:
        os.mkdir(cg)
        with open(os.path.join(cg, "memory.limit_in_bytes"), "w") as f:
            f.write(str(limit))
        return cg
    except OSError as e:
        print(f"skip memory-limit check: cannot make a memory cgroup here ({e})")
        if os.path.isdir(cg):
            os.rmdir(cg)
        return None


def split_safetensors(path):
    """(header dict, tensor bytes) of a safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    cbrnn, work, samples = (os.path.abspath(a) for a in sys.argv[1:4])
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000", OPENBLAS_NUM_THREADS="1")
    clips = sorted(glob.glob(os.path.join(samples, "voice*.wav")))
    expect(len(clips) == 8, f"eight sample clips in {samples}")

    # ---- a corpus larger than the memory limit ----
    big = os.path.join(work, "big")
    os.makedirs(big)
    for k in range(24):
        for c in clips:
            # copies, not links: training takes a file under two names once
            shutil.copyfile(c, os.path.join(big, f"r{k}_{os.path.basename(c)}"))
    cache = os.path.join(work, "cache")
    os.makedirs(cache)
    cg = make_memory_cgroup(40 << 20)
    if cg:
        try:
            procs = os.path.join(cg, "cgroup.procs")
            cmd = train_cmd(cbrnn, os.path.join(work, "big.safetensors"), [big],
                            ["--cache-dir", cache])
            pid = os.fork()
            if pid == 0:  # the child joins the group, then becomes cbrnn
                try:
                    with open(procs, "w") as f:
                        f.write(str(os.getpid()))
                    os.execvpe(cmd[0], cmd, env)
                finally:
                    os._exit(127)
            _, status, ru = os.wait4(pid, 0)
            rc = os.waitstatus_to_exitcode(status)
            with open(os.path.join(cg, "memory.oom_control")) as f:
                ooms = [l for l in f.read().split("\n") if l.startswith("oom_kill ")]
            print(f"55 min corpus (51 MiB of features) in a 40 MiB cgroup: exit {rc}, "
                  f"peak RSS {ru.ru_maxrss} kB, {ooms[0] if ooms else ''}")
            expect(rc == 0, f"training under the 40 MiB limit succeeds (exit {rc})")
        finally:
            os.rmdir(cg)
    expect(os.listdir(cache) == [], "cache folder empty after the run")

    # ---- the cache folder does not change the model ----
    cache2 = os.path.join(work, "cache2")
    os.makedirs(cache2)
    a, b = os.path.join(work, "a.safetensors"), os.path.join(work, "b.safetensors")
    for out, cd in ((a, cache), (b, cache2)):
        r = subprocess.run(train_cmd(cbrnn, out, clips[:3], ["--cache-dir", cd, "--seed", "5"]),
                           env=env, capture_output=True, text=True)
        expect(r.returncode == 0, f"train with --cache-dir {cd}: {r.stderr.strip()}")
    # the command line (naming the cache folder) is in the metadata: compare
    # the tensors' bytes and every other header entry
    ha, ta = split_safetensors(a)
    hb, tb = split_safetensors(b)
    ha["__metadata__"].pop("command")
    hb["__metadata__"].pop("command")
    expect(ta == tb and ha == hb,
           "models trained with different --cache-dir are identical but for the command line")

    # ---- no leftovers after SIGKILL, during features and during training ----
    for when, delay, steps in (("features", 0.2, "10"), ("training", None, "100000")):
        cmd = train_cmd(cbrnn, os.path.join(work, "k.safetensors"), [big], ["--cache-dir", cache])
        cmd[cmd.index("--steps") + 1] = steps
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if delay is not None:
            time.sleep(delay)
        else:  # wait until training is under way: the model's log shows a row
            t0 = time.time()
            while p.poll() is None and time.time() - t0 < 120:
                time.sleep(0.2)
                # /proc tells whether the cache file is mapped: training started
                try:
                    maps = open(f"/proc/{p.pid}/maps").read()
                except OSError:
                    break
                if ".cbrnn-features-" in maps:
                    time.sleep(0.5)
                    break
        running = p.poll() is None
        p.kill()
        p.wait()
        expect(running, f"the run was still going when killed ({when})")
        expect(os.listdir(cache) == [], f"cache folder empty after SIGKILL during {when}")

    # ---- bad cache folders ----
    missing = os.path.join(work, "no-such-dir")
    r = subprocess.run(train_cmd(cbrnn, os.path.join(work, "x.safetensors"), clips[:2],
                                 ["--cache-dir", missing]), env=env, capture_output=True, text=True)
    expect(r.returncode == 2 and missing in r.stderr,
           f"missing --cache-dir: exit 2 naming it (got {r.returncode}: {r.stderr.strip()})")
    full = os.path.join(work, "full")
    os.makedirs(full)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", full],
                             capture_output=True).returncode == 0
    if not mounted:
        print("skip full-disk check: cannot mount a tmpfs here")
    else:
        try:
            out = os.path.join(work, "keep.safetensors")
            shutil.copy(a, out)
            before = sha(out)
            r = subprocess.run(train_cmd(cbrnn, out, [big], ["--cache-dir", full]), env=env,
                               capture_output=True, text=True)
            expect(r.returncode == 1 and "No space left on device" in r.stderr and full in r.stderr,
                   f"full cache folder: exit 1 and the reason (got {r.returncode}: {r.stderr.strip()})")
            expect(sha(out) == before, "the model already at -o is untouched")
            expect(os.listdir(full) == [], "nothing left on the full tmpfs")
        finally:
            subprocess.run(["umount", full])

    if FAILS:
        sys.exit(f"{len(FAILS)} failure(s)")
    print("all cache checks passed")


if __name__ == "__main__":
    main()
