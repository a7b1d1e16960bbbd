#!/usr/bin/python3
"""safetensors_diff.py A B: compares the tensors of two safetensors files
(names, dtypes, shapes, bytes), ignoring __metadata__. Prints the tensors
that differ and their largest absolute difference; exit 0 if all are the
same, 1 if any differs, 2 if a file cannot be read. Used by the JACK
integration tests to tell adapted weights from loaded ones."""
import json
import struct
import sys

import numpy as np


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in head.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(t["shape"])
    return out


def main():
    try:
        x, y = load(sys.argv[1]), load(sys.argv[2])
    except (OSError, ValueError, KeyError) as e:
        print("cannot read: %s" % e)
        return 2
    differ = 0
    for name in sorted(set(x) | set(y)):
        if name not in x or name not in y or x[name].shape != y[name].shape:
            print("%s: only in one file or shapes differ" % name)
            differ = 1
        elif x[name].tobytes() != y[name].tobytes():
            print("%s: max |diff| %.3g" % (name, float(np.max(np.abs(x[name] - y[name])))))
            differ = 1
    return differ


if __name__ == "__main__":
    sys.exit(main())
