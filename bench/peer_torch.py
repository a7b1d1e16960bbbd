#!/usr/bin/python3
"""PyTorch peer of `cbrnn bench`: times PyTorch/torchaudio doing the same
work as each cbrnn bench item, on this machine, and prints the same JSON
lines (with "impl": "torch"). Each item lives in bench/peer_<item>.py and
defines run(args) -> list of dicts. Run with Debian's /usr/bin/python3.

    /usr/bin/python3 bench/peer_torch.py --items features,bptt --json
"""
import argparse
import glob
import importlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def available():
    return sorted(os.path.basename(p)[5:-3].replace("_", "-")
                  for p in glob.glob(os.path.join(HERE, "peer_*.py"))
                  if not p.endswith("peer_torch.py"))


def parse_sizes(s):
    out = []
    for part in s.split(";"):
        f, n, h, o = (int(v) for v in part.split(","))
        out.append((f, n, h, o))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", default=",".join(available()))
    p.add_argument("--sizes", default="40,256,512,40", type=parse_sizes)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=100)
    p.add_argument("--rate", type=float, default=48000.0)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0,
                   help="torch.set_num_threads (default: PyTorch's own choice)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    import torch
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    for item in args.items.split(","):
        mod_name = "peer_" + item.replace("-", "_")
        if not os.path.exists(os.path.join(HERE, mod_name + ".py")):
            sys.exit("peer_torch.py: no peer for item '%s' (have: %s)" % (item, ", ".join(available())))
        mod = importlib.import_module(mod_name)
        for row in mod.run(args):
            row.setdefault("impl", "torch")
            if args.json:
                print(json.dumps(row), flush=True)
            else:
                print(" ".join("%s=%s" % kv for kv in row.items()), flush=True)


if __name__ == "__main__":
    main()
