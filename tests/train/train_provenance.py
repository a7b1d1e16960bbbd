#!/usr/bin/python3
"""Provenance in model files, end to end (the model format audit, items 4
and 5):

- `cbrnn train --init` writes this run's provenance, not the init model's:
  no final_skill / final_val_loss / average / interrupted / adapted_* left
  from it, and no empty speed_perturb, held_out_dir or held_out_truncated
  (they appear only when they apply); the model's own keys stay.
- A model with the most free-form keys of its own a file may hold (32)
  still trains on with --init and adapts with `cbrnn run --save-model`:
  the tools' keys always fit (they used to fail at the very end: "out of
  memory" with an empty message, "cannot create the model: success",
  "cannot record the provenance").
- One key more is refused at load, naming the file and the limit.

usage: train_provenance.py CBRNN WORKDIR SAMPLES_DIR
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trainlib import args, report, run, safetensors  # noqa: E402



def edit_metadata(src, dst, change):
    """Copies the model file src to dst with change(meta) applied to its
    metadata (header re-padded to 8 bytes, data unchanged)."""
    with open(src, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    hdr = json.loads(raw[8:8 + n])
    change(hdr["__metadata__"])
    text = json.dumps(hdr, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(dst, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + raw[8 + n:])


def main():
    cbrnn, work, samples = args()
    s = lambda n: os.path.join(samples, n)
    j = lambda n: os.path.join(work, n)
    a = [s("voiceA_us_male_%d.wav" % i) for i in (1, 2)]
    b = s("voiceB_gb_female_1.wav")
    fails = []
    # a model with every optional provenance key: validation, --average,
    # --speed-perturb, held-out files in a folder
    run([cbrnn, "train", "-q", "-o", j("full.safetensors"), "--hidden", "8", "--cb", "8",
         "--warmup-steps", "4", "--steps", "4", "--val-fraction", "0.5", "--average", "0.5",
         "--speed-perturb", "0.9,1.1", *a])
    full = safetensors(j("full.safetensors"))[0]
    for k in ("final_skill", "final_val_loss", "average", "speed_perturb", "held_out_dir"):
        if k not in full:
            fails.append(f"the start model has no {k}: the checks below prove nothing")

    def own_keys(count, extra):
        def change(meta):
            meta.update(extra)
            for i in range(count):
                meta[f"own_{i}"] = f"value {i}"
        return change
    stale = {"interrupted": "yes", "adapted_by": "cbrnn.lv2", "adapted_frames": "12",
             "held_out_truncated": "50 of 99 names"}
    edit_metadata(j("full.safetensors"), j("own32.safetensors"), own_keys(32, stale))
    run([cbrnn, "info", j("own32.safetensors")])

    # train --init: this run's provenance only; the model's own keys kept
    r = run([cbrnn, "train", "-q", "-o", j("next.safetensors"), "--init", j("own32.safetensors"),
             "--warmup-steps", "0", "--steps", "2", "--val-fraction", "0", b])
    meta = safetensors(j("next.safetensors"))[0]
    for k in ("final_skill", "final_val_loss", "final_val_persistence_loss", "average",
              "interrupted", "adapted_by", "adapted_frames", "speed_perturb", "held_out_dir",
              "held_out_truncated"):
        if k in meta:
            fails.append(f"train --init kept {k}={meta[k]!r} (not of this run)")
    for k, v in meta.items():
        if v == "" and k not in ("cb_hidden", "frozen", "held_out"):
            fails.append(f"train --init wrote an empty {k}")
    if meta.get("init_from") != j("own32.safetensors"):
        fails.append(f"init_from {meta.get('init_from')!r}")
    if any(f"own_{i}" not in meta for i in range(32)):
        fails.append("train --init dropped the model's own keys")
    if meta.get("steps_done") != "2":
        fails.append(f"steps_done {meta.get('steps_done')!r}: the run's provenance is missing")

    # cbrnn run --save-model from the same model: adapted_* fit beside 32 own keys
    r = run([cbrnn, "run", "--quiet", "--model", j("own32.safetensors"), "--learn",
             "--out-dir", j("adapt"), "--save-model", j("adapted.safetensors"), b])
    meta = safetensors(j("adapted.safetensors"))[0]
    for k in ("adapted_updates", "adapted_by", "adapted_frames", "own_31"):
        if k not in meta:
            fails.append(f"run --save-model: no {k} in the adapted model")
    run([cbrnn, "info", j("adapted.safetensors")])

    # one own key more: refused at load, with the file and the limit named
    edit_metadata(j("full.safetensors"), j("own33.safetensors"), own_keys(33, {}))
    r = run([cbrnn, "info", j("own33.safetensors")], 2)
    if j("own33.safetensors") not in r.stderr or "more than 32 free-form" not in r.stderr:
        fails.append(f"33 own keys: {r.stderr.strip()!r}")
    report(fails, "provenance: ok")


if __name__ == "__main__":
    main()
