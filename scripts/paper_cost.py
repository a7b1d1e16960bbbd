#!/usr/bin/python3
"""paper_cost.py: the cost of the authors' full budget, projected from
`cbrnn bench --items paper-cost --json` (CPU seconds per epoch at N = 2, 10,
20, 40 for each task and kind of epoch). Prints docs/CLUSTER.md's tables.

Per epoch at level N: the lowest CPU time any task measured for that kind
of epoch (the four tasks run the same matrix products, give or take an
input or two output units; on a shared machine the spread between them is
other work's cache and memory traffic, so the lowest is the closest to the
true cost), interpolated linearly in N between the measured levels.

A run of E epochs is assumed to climb linearly from N = 2 to its final
level (the authors' max N where they report one), so its cost is E times
the mean of the per-epoch cost over that climb; the upper bound has every
epoch at the final level. Variants: cbrnn and rnn are their own kinds;
frozen is core-frozen epochs; interleaved is core-frozen, with one level in
ten trained whole (N = 12, 22, ...).

usage: paper_cost.py COST.jsonl [--seeds 8] [--epochs 1000]
"""
import json
import sys

SEEDS, EPOCHS = 8, 1000
# The authors' max N after 1000 epochs (docs/PAPER.md); multitask and switch
# have none published here: assumed 20, as parity.
FINAL_N = {
    "parity": {"cbrnn": 18.75, "rnn": 16.75, "frozen": 15.1, "interleaved": 16.75},
    "dms": {"cbrnn": 34.75, "rnn": 31.4, "frozen": 30.0, "interleaved": 35.6},
    "multitask": {"cbrnn": 20, "rnn": 20, "frozen": 20, "interleaved": 20},
    "switch": {"cbrnn": 20, "rnn": 20, "frozen": 20, "interleaved": 20},
}


def main():
    args = sys.argv[1:]
    seeds = int(args[args.index("--seeds") + 1]) if "--seeds" in args else SEEDS
    epochs = int(args[args.index("--epochs") + 1]) if "--epochs" in args else EPOCHS
    rows = [json.loads(l) for l in open(args[0]) if l.strip()]
    cells = {}
    for r in rows:
        cells.setdefault((r["kind"], r["N"]), {})[r["task"]] = r["cpu_s_per_epoch"]
    levels = sorted({n for _, n in cells})
    kinds = ["cbrnn", "core-frozen", "rnn"]
    tasks = ["dms", "parity", "multitask", "switch"]
    best = {k: [min(cells[(k, n)].values()) for n in levels] for k in kinds}

    print("CPU seconds per epoch (100 training steps, 50 test batches, batch 64):\n")
    print("| kind of epoch | N | " + " | ".join(tasks) + " | used |")
    print("|---|---:|" + "---:|" * (len(tasks) + 1))
    for k in kinds:
        for i, n in enumerate(levels):
            vals = " | ".join("%.2f" % cells[(k, n)][t] for t in tasks)
            print("| %s | %d | %s | %.2f |" % (k, n, vals, best[k][i]))

    def cost(kind, n):
        xs, ys = levels, best[kind]
        if n <= xs[0]:
            return ys[0]
        for i in range(1, len(xs)):
            if n <= xs[i]:
                f = (n - xs[i - 1]) / (xs[i] - xs[i - 1])
                return ys[i - 1] + f * (ys[i] - ys[i - 1])
        return ys[-1] + (n - xs[-1]) * (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])

    def epoch_cost(variant, n):
        if variant == "cbrnn":
            return cost("cbrnn", n)
        if variant == "rnn":
            return cost("rnn", n)
        if variant == "frozen":
            return cost("core-frozen", n)
        return 0.9 * cost("core-frozen", n) + 0.1 * cost("cbrnn", n)

    print("\nProjected core-hours, %d seeds x %d epochs per variant:\n" % (seeds, epochs))
    print("| task | variant | final N | climb (core-h) | all at final N (core-h) |")
    print("|---|---|---:|---:|---:|")
    tot = tot_hi = 0.0
    for task, variants in FINAL_N.items():
        for v, fin in variants.items():
            steps = 200
            mean = sum(epoch_cost(v, 2 + (fin - 2) * (i + 0.5) / steps) for i in range(steps)) / steps
            h = seeds * epochs * mean / 3600
            hi = seeds * epochs * epoch_cost(v, fin) / 3600
            tot += h
            tot_hi += hi
            print("| %s | %s | %.4g | %.1f | %.1f |" % (task, v, fin, h, hi))
    print("| all | | | **%.0f** | %.0f |" % (tot, tot_hi))


if __name__ == "__main__":
    main()
