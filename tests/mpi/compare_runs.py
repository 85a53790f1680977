#!/usr/bin/env python3
"""Compares two iris-train runs: per-step losses and global gradient norms (metrics.jsonl) and final weights (weights/*.safetensors,
one file per model-parallel rank, each tensor a block of the global tensor described in the file's
iris_layout metadata). Reassembles the global tensors of each run with numpy and compares.
Usage: compare_runs.py REF_DIR RUN_DIR LOSS_RTOL WEIGHT_RTOL
Loss: |l - l_ref| <= LOSS_RTOL * |l_ref| at every step, and the same for val_loss at every step whose
reference has one (the run must have it there too), and for grad_norm (the pre-clipping global norm, so
counting a replicated tensor, e.g. a norm weight under TP, twice would show here).
Weights: ||w - w_ref||_2 <= WEIGHT_RTOL * ||w_ref||_2 per tensor."""
import glob, json, struct, sys

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", (path, name, info["dtype"])
        b, e = info["data_offsets"]
        tensors[name] = np.frombuffer(data[b:e], dtype="<f4").reshape(info["shape"])
    return tensors, meta


def global_weights(run):
    out = {}
    files = sorted(glob.glob(f"{run}/weights/*.safetensors"))
    assert files, f"no weights in {run}/weights"
    for path in files:
        tensors, meta = read_safetensors(path)
        layout = json.loads(meta["iris_layout"])
        for name, t in tensors.items():
            lay = layout[name]
            g = out.setdefault(name, np.full(lay["global_shape"], np.nan, dtype=np.float32))
            rule, b = lay["rule"], lay["shard_begin"]
            if rule == "replicated":
                g[...] = t
            elif rule in ("column", "vocab"):
                rows = lay["valid_rows"]
                g[b:b + rows] = t[:rows]
            elif rule == "row":
                g[:, b:b + t.shape[1]] = t
    for name, g in out.items():
        assert not np.isnan(g).any(), f"{run}: {name} is not fully covered by the shards"
    return out


ref, run, loss_rtol, weight_rtol = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
ml = [json.loads(l) for l in open(f"{ref}/metrics.jsonl")]
mr = [json.loads(l) for l in open(f"{run}/metrics.jsonl")]
assert len(ml) == len(mr) and ml, (len(ml), len(mr))
worst_loss = max(abs(a["loss"] - b["loss"]) / abs(a["loss"]) for a, b in zip(ml, mr))
worst_norm = max(abs(a["grad_norm"] - b["grad_norm"]) / abs(a["grad_norm"]) for a, b in zip(ml, mr))
for a, b in zip(ml, mr):
    if "val_loss" in a:
        assert b.get("val_loss") is not None, f"{run}: step {a['step']} has no val_loss (the reference has one)"
        worst_loss = max(worst_loss, abs(a["val_loss"] - b["val_loss"]) / abs(a["val_loss"]))
wr, wx = global_weights(ref), global_weights(run)
assert wr.keys() == wx.keys(), (sorted(wr.keys() ^ wx.keys()))
worst_w, worst_name = 0.0, ""
for name in wr:
    rel = float(np.linalg.norm(wx[name] - wr[name]) / np.linalg.norm(wr[name]))
    if rel > worst_w:
        worst_w, worst_name = rel, name
print(f"{run}: {len(ml)} steps, worst loss rel err {worst_loss:.2e}, worst grad_norm rel err {worst_norm:.2e}, worst weight rel err {worst_w:.2e} ({worst_name})")
ok = worst_loss <= loss_rtol and worst_norm <= loss_rtol and worst_w <= weight_rtol
if not ok:
    for a, b in zip(ml, mr):
        print(f"  step {a['step']}: loss {a['loss']!r} vs {b['loss']!r}, grad_norm {a['grad_norm']!r} vs {b['grad_norm']!r}")
sys.exit(0 if ok else 1)
