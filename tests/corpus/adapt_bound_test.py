#!/usr/bin/python3
"""scripts/adapt_bound.py where the answers are known, on the shipped
default model and a made-up stream of log-mel frames (no corpus needed):
its PyTorch forward pass (cortex by torch.nn.RNN, cerebellum) gives the
numpy reference's predictions to float64 rounding; a fit of zero steps and
a ridge with an overwhelming prior score exactly the frozen model; a real
fit lowers the loss on the frames it was fitted to.
usage: adapt_bound_test.py SCRIPTS_DIR MODEL"""
import sys

import numpy as np


def stream(t, frames, seed=1):
    """Frames around the corpus mean, moving slowly (an AR(1) walk)."""
    rng = np.random.default_rng(seed)
    mean, std = t["frontend.mean"], t["frontend.std"]
    x, out = np.zeros(len(mean)), []
    for _ in range(frames):
        x = 0.95 * x + 0.3 * rng.standard_normal(len(mean))
        out.append(mean + std * x)
    return np.array(out)


def main():
    sys.dont_write_bytecode = True  # nothing written into the source tree
    sys.path.insert(0, sys.argv[1])
    import adapt_bound as ab
    import torch

    t, meta = ab.read_safetensors(sys.argv[2])
    st = ab.frozen_pass(t, meta, stream(t, 1200))
    n, m = len(st["xg"]), 800
    frozen_head = ab.head_frozen(t, st)
    fails = 0
    for cortex in (False, True):
        with torch.no_grad():
            head = ab.Net(t, cortex)(st, n).numpy()
        d = np.abs(head - frozen_head).max()
        ok = d < 1e-9
        fails += not ok
        print("%s forward (cortex %s): max |torch - numpy| %.2e" % ("ok" if ok else "FAIL", cortex, d))
    fz = ab.skill(st["xg"], ab.predict(st, frozen_head), m)
    for spec in ("cb:1e-3:0:0", "all:1e-3:0:0", "last:1e12"):
        g = ab.method(spec, t, st, m) - fz
        ok = abs(g) < 1e-6
        fails += not ok
        print("%s %s scores the frozen model: gain %.2e" % ("ok" if ok else "FAIL", spec, g))
    # A fit lowers the loss on its own frames (in sample: frames 1..m-1).
    for cortex in (False, True):
        head = ab.fit(t, st, m, 1e-3, 15, 0.0, cortex)
        before = ab.skill(st["xg"][:m], ab.predict(st, frozen_head)[:m - 1], 1)
        after = ab.skill(st["xg"][:m], ab.predict(st, head)[:m - 1], 1)
        ok = after > before + 1e-3
        fails += not ok
        print("%s fit (cortex %s) in sample: skill %.4f -> %.4f" %
              ("ok" if ok else "FAIL", cortex, before, after))
    # RLS scored after m: a learner, so it cannot be scored as frozen.
    g = ab.rls_after(t, st, m) - fz
    ok = np.isfinite(g) and g != 0.0
    fails += not ok
    print("%s rls after the minute: gain %+.4f" % ("ok" if ok else "FAIL", g))
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
