#!/usr/bin/python3
"""`cbrnn train --init MODEL` continues from MODEL (issue 13, item 7): a
small model trained on voice A at 16 kHz is the start; training it further
on voice B (frozen cortex only: --warmup-steps 0) must keep its features,
rate, architecture and normaliser (frontend.mean/std bit for bit), keep the
cortex weights bit for bit, record init_from, and lower its `cbrnn eval`
loss on a held-out voice-B file. Also: train records the files it held out
(metadata held_out). Refused: a model of another target, a
task model path that is not a model, --init with a missing file, and
--init with options it would ignore (--hidden, --mels).

usage: train_init.py CBRNN WORKDIR SAMPLES_DIR
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_rates import safetensors  # noqa: E402  (one safetensors reader for these tests)
from trainlib import args, run  # noqa: E402



def main():
    cbrnn, work, samples = args()
    s = lambda n: os.path.join(samples, n)
    j = lambda n: os.path.join(work, n)
    a = [s("voiceA_us_male_%d.wav" % i) for i in (1, 2)]
    b_train = [s("voiceB_gb_female_%d.wav" % i) for i in (1, 2)]
    b_test = s("voiceB_gb_female_4.wav")
    run([cbrnn, "train", "-q", "-o", j("a.safetensors"), "--hidden", "32", "--cb", "64",
         "--warmup-steps", "100", "--steps", "100", "--val-fraction", "0", "--seed", "3", *a])
    run([cbrnn, "train", "-q", "-o", j("ab.safetensors"), "--init", j("a.safetensors"),
         "--warmup-steps", "0", "--steps", "200", "--val-fraction", "0", *b_train])
    ma, ta = safetensors(j("a.safetensors"))
    mb, tb = safetensors(j("ab.safetensors"))
    fails = []
    for k in ("sample_rate", "n_mels", "n_hidden", "wiring", "target"):
        if ma.get(k) != mb.get(k):
            fails.append(f"metadata {k}: {ma.get(k)} became {mb.get(k)}")
    for k in ("frontend.mean", "frontend.std") + tuple(n for n in ta if n.startswith("cortex.")):
        if not np.array_equal(ta[k], tb[k]):
            fails.append(f"{k} changed")
    if not any(not np.array_equal(ta[k], tb[k]) for k in ta if k.startswith("cerebellum.")):
        fails.append("the cerebellum did not train")
    if mb.get("init_from") != j("a.safetensors"):
        fails.append(f"init_from {mb.get('init_from')!r}")
    ev = lambda m: json.loads(run([cbrnn, "eval", "--json", m, b_test]).stdout)["files"][0]["loss"]
    la, lb = ev(j("a.safetensors")), ev(j("ab.safetensors"))
    print(f"eval on {os.path.basename(b_test)}: start {la:.4f}, after --init training {lb:.4f}")
    if not lb < la:
        fails.append(f"continued training did not lower the held-out loss ({la:.4f} -> {lb:.4f})")
    r = run([cbrnn, "train", "-q", "-o", j("x.safetensors"), "--init", j("a.safetensors"),
             "--target", "map", "--teacher-suffix", "_t", *b_train], 2)
    if "another target" not in r.stderr:
        fails.append(f"--init with another --target: {r.stderr.strip()}")
    # options --init would ignore (the model has its own) are refused, naming them
    r = run([cbrnn, "train", "-q", "-o", j("x.safetensors"), "--init", j("a.safetensors"),
             "--hidden", "64", "--mels", "20", *b_train], 2)
    if "--hidden, --mels would be ignored" not in r.stderr:
        fails.append(f"--init with --hidden/--mels: {r.stderr.strip()}")
    r = run([cbrnn, "train", "-q", "-o", j("x.safetensors"), "--init", j("none.safetensors"),
             *b_train], 2)
    if "none.safetensors" not in r.stderr:
        fails.append(f"--init missing file: {r.stderr.strip()}")
    # a model adapted live by RLS carries the rule's state (rls.P); training
    # on from it moves the weights, so the state is not carried into the result
    run([cbrnn, "run", "--quiet", "--model", j("a.safetensors"), "--learn", "--rule", "rls",
         "--out-dir", j("adapt"), "--save-model", j("adapted.safetensors"), b_test])
    if "rls.P" not in safetensors(j("adapted.safetensors"))[1]:
        fails.append("the RLS-adapted model holds no rls.P: the check below proves nothing")
    run([cbrnn, "train", "-q", "-o", j("ad2.safetensors"), "--init", j("adapted.safetensors"),
         "--warmup-steps", "0", "--steps", "5", "--val-fraction", "0", *b_train])
    if "rls.P" in safetensors(j("ad2.safetensors"))[1]:
        fails.append("train --init carried the adapted model's rls.P into a retrained model")
    # train records which files it held out (issue 13)
    run([cbrnn, "train", "-q", "-o", j("h.safetensors"), "--hidden", "8", "--cb", "8",
         "--warmup-steps", "2", "--steps", "2", "--val-fraction", "0.5", *a])
    meta = safetensors(j("h.safetensors"))[0]
    held = os.path.join(meta.get("held_out_dir", ""), meta.get("held_out", ""))
    if held not in a:
        fails.append(f"held_out_dir/held_out {held!r}: expected one of {a}")
    for f in fails:
        print("FAIL", f)
    if fails:
        sys.exit(1)
    print("train --init: ok")


if __name__ == "__main__":
    main()
