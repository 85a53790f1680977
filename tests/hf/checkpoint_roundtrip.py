#!/usr/bin/env python3
"""Hugging Face round trip through an Iris checkpoint (ctest hf_checkpoint_roundtrip).

Usage:  <venv>/bin/python tests/hf/checkpoint_roundtrip.py WORK_DIR IRIS_CONVERT

1. A random transformers LlamaForCausalLM (GQA 4/2 heads, 4 layers, vocab 96, untied), saved in bfloat16
   as sharded safetensors (max_shard_size 60KB: several shards plus model.safetensors.index.json).
2. iris-convert hf-to-iris --tp 2 --pp 2 (WORK/iris), verify, then iris-to-hf --dtype bf16 (WORK/export).
3. Every tensor of the export must be bit-identical to the original (same names, dtype, shape, bytes).
4. transformers loads the export with no missing or unexpected keys; its fp32 logits on a fixed batch
   go to WORK/logits.safetensors, which test_hf_checkpoint compares with Iris's forward on WORK/iris.
Exits non-zero on any failure.
"""
import glob, json, os, shutil, subprocess, sys

import torch
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM

work, convert = sys.argv[1], sys.argv[2]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
torch.manual_seed(1234)
config = LlamaConfig(hidden_size=64, intermediate_size=160, num_hidden_layers=4, num_attention_heads=4,
                     num_key_value_heads=2, vocab_size=96, rms_norm_eps=1e-5, rope_theta=10000.0,
                     max_position_embeddings=64, tie_word_embeddings=False, attn_implementation="eager")
model = LlamaForCausalLM(config)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(1 + 0.1 * torch.randn_like(p) if p.dim() == 1 else 0.2 * torch.randn_like(p))
model = model.to(torch.bfloat16)
hf = os.path.join(work, "hf")
model.save_pretrained(hf, safe_serialization=True, max_shard_size="60KB")
assert os.path.exists(os.path.join(hf, "model.safetensors.index.json")), os.listdir(hf)


def run(*args):
    print("+", " ".join(args), flush=True)
    subprocess.run(args, check=True)


iris, export = os.path.join(work, "iris"), os.path.join(work, "export")
run(convert, "hf-to-iris", "--hf", hf, "--out", iris, "--tp", "2", "--pp", "2")
run(convert, "verify", "--checkpoint", iris)
run(convert, "iris-to-hf", "--checkpoint", iris, "--out", export, "--dtype", "bf16")


def tensors(d):
    out = {}
    for f in sorted(glob.glob(os.path.join(d, "*.safetensors"))):
        out.update(load_file(f))
    return out


a, b = tensors(hf), tensors(export)
assert a.keys() == b.keys(), sorted(a.keys() ^ b.keys())
for name in a:
    assert a[name].dtype == b[name].dtype == torch.bfloat16, (name, a[name].dtype, b[name].dtype)
    assert a[name].shape == b[name].shape, (name, a[name].shape, b[name].shape)
    assert torch.equal(a[name].view(torch.int16), b[name].view(torch.int16)), f"{name} differs"
print(f"{len(a)} tensors bit-identical after HF -> Iris (tp=2, pp=2) -> HF")

# The same through a checkpoint that stores the weights as bf16 (hf-to-iris --dtype bf16): half the
# bytes on disk, still bit-identical, and inspect names the storage type.
iris16, export16 = os.path.join(work, "iris_bf16"), os.path.join(work, "export_bf16")
run(convert, "hf-to-iris", "--hf", hf, "--out", iris16, "--tp", "2", "--pp", "2", "--dtype", "bf16")
run(convert, "verify", "--checkpoint", iris16)
inspect = subprocess.run([convert, "inspect", "--checkpoint", iris16], check=True, capture_output=True, text=True).stdout
assert " BF16 " in inspect and " F32 " not in inspect, inspect
run(convert, "iris-to-hf", "--checkpoint", iris16, "--out", export16, "--dtype", "bf16")
c = tensors(export16)
assert a.keys() == c.keys(), sorted(a.keys() ^ c.keys())
for name in a:
    assert torch.equal(a[name].view(torch.int16), c[name].view(torch.int16)), f"{name} differs (bf16 checkpoint)"
size = lambda d: sum(os.path.getsize(f) for f in glob.glob(os.path.join(d, "step_*", "rank_*.h5")))
ratio = size(iris16) / size(iris)
assert ratio < 0.75, f"bf16 checkpoint is {ratio:.2f} of the fp32 one (data halves; HDF5 metadata does not)"
print(f"bf16 checkpoint ({ratio:.2f} of the fp32 size): {len(c)} tensors bit-identical after HF -> Iris -> HF")

loaded, info = LlamaForCausalLM.from_pretrained(export, torch_dtype=torch.float32, output_loading_info=True,
                                                attn_implementation="eager")
assert not info["missing_keys"] and not info["unexpected_keys"], info
loaded.eval()
g = torch.Generator().manual_seed(7)
input_ids = torch.randint(0, config.vocab_size, (2, 12), generator=g)
with torch.no_grad():
    logits = loaded(input_ids).logits.float()
save_file({"input_ids": input_ids.to(torch.int64).contiguous(), "logits": logits.contiguous()},
          os.path.join(work, "logits.safetensors"))
print("transformers loaded the export; logits", tuple(logits.shape), "written")
