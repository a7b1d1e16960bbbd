#!/usr/bin/python3
"""safetensors_diff.py A B: compares the tensors of two safetensors files
(names, dtypes, shapes, bytes), ignoring __metadata__. Prints the tensors
that differ and their largest absolute difference; exit 0 if all are the
same, 1 if any differs, 2 if a file cannot be read. Used by the JACK
integration tests to tell adapted weights from loaded ones."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
from trainlib import safetensors  # noqa: E402


def load(path):
    return safetensors(path)[1]


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
