"""Helpers shared by the tests/train scripts: their arguments and work
folder, reading a safetensors model (metadata and float32 tensors, without
the safetensors package), running a command that must succeed, and the
final report."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np


def safetensors(path):
    """(metadata dict, {name: float32 array}) of a model file."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    hdr = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, t in hdr.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(t["shape"])
    return hdr["__metadata__"], out


def run(cmd, code=0):
    """Runs cmd; exits the test with its stderr unless it exits with code."""
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != code:
        sys.exit(f"FAIL: {' '.join(cmd)}: exit {r.returncode}, expected {code}\n{r.stderr}")
    return r


def args():
    """(cbrnn, work, samples) from the command line, absolute; work emptied."""
    cbrnn, work, samples = (os.path.abspath(a) for a in sys.argv[1:4])
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    return cbrnn, work, samples


def report(fails, ok):
    """Prints each failure and exits 1, or prints ok."""
    for f in fails:
        print("FAIL", f)
    if fails:
        sys.exit(1)
    print(ok)
