#!/usr/bin/python3
"""readme_table.py: the README's speed table, measured in one run.

Runs the README's benchmark commands (`cbrnn bench` and its PyTorch peer
bench/peer_torch.py, one after the other for each group of items) for
ROUNDS rounds, takes each number's median over the rounds, and prints the
table as Markdown: cbrnn, PyTorch, their ratio and the goal. Both sides
use one thread (OPENBLAS_NUM_THREADS=1 for everything; Debian's PyTorch
reports one thread). Measure on a quiet machine (`uptime`): the numbers
of a shared machine say little.

usage: bench/readme_table.py [--rounds 3] [--cbrnn build/cli/cbrnn] [--json OUT]
About 6 minutes a round on the 2-core machine.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = "40,384,512,40;40,256,512,40;40,128,256,40;40,512,1024,40"
GROUPS = [  # (arguments shared by both sides)
    ["--items", "features", "--rate", "48000", "--repeats", "5"],
    ["--items", "infer,online", "--sizes", SIZES],
    ["--items", "bptt,cbonly,gemm", "--sizes", SIZES, "--batch", "32", "--seq", "100"],
    ["--items", "paper-epoch", "--repeats", "1"],
]
RLS = ["--items", "online-rls", "--sizes", SIZES.rsplit(";", 1)[0]]  # cbrnn only (<= 1023 RLS inputs)


def run(cmd):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode:
        sys.exit("readme_table: %s failed:\n%s" % (" ".join(cmd), r.stderr))
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def key(row):
    """What a row measures, the same for both sides."""
    item = row["item"].replace("-", "_")
    if item == "features":
        return ("features",)
    if item == "paper_epoch":
        return ("paper_epoch", row["model"])
    if item == "gemm":
        return ("gemm", row["M"], row["K"], row["N"])
    return (item, "%d,%d,%d,%d" % (row["F"], row["N"], row["H"], row["O"]))


def value(row):
    for k in ("us_per_frame", "frames_per_s", "s_per_epoch", "gflops"):
        if k in row:
            return k, row[k]
    sys.exit("readme_table: no value in %s" % row)


def measure(cbrnn, rounds):
    got = {}  # (impl, key) -> [values]; also memory floors
    for r in range(rounds):
        print("round %d of %d" % (r + 1, rounds), file=sys.stderr, flush=True)
        for g in GROUPS:
            for impl, cmd in (("cbrnn", [cbrnn, "bench"] + g + ["--json"]),
                              ("torch", ["/usr/bin/python3", os.path.join(TOP, "bench",
                                                                          "peer_torch.py")]
                               + g + ["--json"])):
                for row in run(cmd):
                    got.setdefault((impl, key(row)), []).append(value(row)[1])
                    if "memory_floor_us" in row:
                        got.setdefault(("floor", key(row)), []).append(row["memory_floor_us"])
        for row in run([cbrnn, "bench"] + RLS + ["--json"]):
            got.setdefault(("cbrnn", key(row)), []).append(value(row)[1])
    return {k: statistics.median(v) for k, v in got.items()}


def table(m):
    rows = ["| what | cbrnn | PyTorch | ratio | goal |", "|---|---|---|---|---|"]

    def line(what, k, unit, faster_is_lower, goal):
        c, t = m.get(("cbrnn", k)), m.get(("torch", k))
        if c is None:
            return
        ratio = (t / c if faster_is_lower else c / t) if t else None
        met = "" if goal is None or ratio is None else (
            ">= %gx, %s" % (goal, "met" if ratio >= goal else "**not met**"))
        fmt = "{:,.1f}" if unit == "frames/s" else "{:.3g}" if unit == "s" else "{:.1f}"
        rows.append("| %s | %s %s | %s | %s | %s |" % (
            what, fmt.format(c), unit, "%s %s" % (fmt.format(t), unit) if t else "-",
            "%.1fx" % ratio if ratio else "-", met))

    line("features, one hop at a time, 48 kHz", ("features",), "µs/frame", True, 4)
    sizes = SIZES.split(";")
    for item, what, goal in (("online", "online learning per frame (SGD)", 25),
                             ("online_rls", "online learning per frame (RLS, the default rule)",
                              None),
                             ("infer", "inference per frame", None)):
        for s in sizes:
            line("%s, %s" % (what, s), (item, s), "µs", True, goal)
    for item, what in (("bptt", "warm-up BPTT training (Adam, B=32, T=100)"),
                       ("cbonly", "CB-only training (cortex frozen)")):
        for s in sizes:
            line("%s, %s" % (what, s), (item, s), "frames/s", False, 3)
    for model in ("cbrnn", "rnn"):
        line("one paper epoch (parity, N = 10), %s" % model, ("paper_epoch", model), "s", True, 5)
    floors = ["%s %.1f µs" % (k[1], v) for (impl, k), v in sorted(m.items())
              if impl == "floor" and k[0] == "online"]
    gemm = ["[%d x %d] x [%d x %d]: cbrnn %.1f, PyTorch %.1f GFLOP/s" % (
        k[1], k[2], k[2], k[3], v, m.get(("torch", k), float("nan")))
        for (impl, k), v in sorted(m.items()) if impl == "cbrnn" and k[0] == "gemm"]
    return "\n".join(rows) + "\n\nonline memory floors: " + "; ".join(floors) + \
        "\nsgemm: " + "; ".join(gemm) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--cbrnn", default=os.path.join(TOP, "build", "cli", "cbrnn"))
    p.add_argument("--json", help="also write the medians here")
    a = p.parse_args()
    if a.rounds < 1:
        p.error("--rounds must be at least 1")
    m = measure(a.cbrnn, a.rounds)
    if a.json:
        with open(a.json, "w") as f:
            json.dump([{"impl": k[0], "key": list(k[1]), "median": v} for k, v in m.items()], f,
                      indent=1)
    print(table(m))


if __name__ == "__main__":
    main()
