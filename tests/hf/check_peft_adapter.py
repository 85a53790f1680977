#!/usr/bin/env python3
"""Loads the adapter test_hf_peft_write wrote (DIR/adapter) with PEFT's PeftModel.from_pretrained on a
random-weight tiny LlamaForCausalLM and checks: the adapted modules are exactly the layers' q_proj,
v_proj and down_proj; every lora_A / lora_B equals the file's tensor bit for bit; the scaling is
alpha / r; the adapter changes the logits; the state dict PEFT would save has the same keys and bits.

Usage: check_peft_adapter.py DIR    (exit 0 pass, 1 mismatch)
"""
import os
import sys

import torch
from peft import PeftModel, get_peft_model_state_dict
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM


def main():
    src = os.path.join(sys.argv[1], "adapter")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, attn_implementation="eager")
    base = LlamaForCausalLM(config)
    ids = torch.tensor([[1, 5, 9, 3, 7]])
    base_logits = base(ids).logits.detach()
    model = PeftModel.from_pretrained(base, src)
    stored = load_file(os.path.join(src, "adapter_model.safetensors"))
    want = {f"base_model.model.model.layers.{l}.{m}.lora_{ab}.weight" for l in range(2)
            for m in ("self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj") for ab in "AB"}
    failures = []
    if set(stored) != want:
        failures.append(f"file keys {sorted(set(stored) ^ want)} differ from the expected set")
    loaded = {n.replace(".default", ""): p for n, p in model.named_parameters() if "lora_" in n}
    if set(loaded) != want:
        failures.append(f"PEFT adapted {sorted(set(loaded) ^ want)} unlike the file")
    for name, tensor in stored.items():
        if name in loaded and not torch.equal(loaded[name].detach(), tensor):
            failures.append(f"{name}: PEFT's tensor differs from the file's")
    scaling = model.base_model.model.model.layers[0].self_attn.q_proj.scaling["default"]
    if scaling != 8.0 / 4:
        failures.append(f"scaling {scaling} != alpha/r = 2")
    if torch.equal(model(ids).logits.detach(), base_logits):
        failures.append("the adapter does not change the logits")
    # the state dict save_pretrained writes (save_pretrained itself also renders a model card, which
    # needs Jinja2, not in the pinned set)
    resaved = get_peft_model_state_dict(model)
    if set(resaved) != set(stored) or any(not torch.equal(resaved[k], stored[k]) for k in stored):
        failures.append("PEFT's state dict for saving differs from the file")
    for f in failures:
        print("check_peft_adapter: FAIL", f)
    print(f"check_peft_adapter: {len(stored)} tensors, {len(failures)} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
