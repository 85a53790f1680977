#!/usr/bin/env python3
"""Hugging Face PEFT reference for one LoRA linear layer (test_hf_lora): a torch nn.Linear (no bias)
wrapped by peft.get_peft_model with LoraConfig(r, lora_alpha, target_modules=["proj"], use_rslora),
random non-zero lora_A and lora_B, dropout 0 (PEFT's dropout draws from torch's generator, which Iris
does not reproduce; Iris's own mask is checked by finite differences in test_kernels_lora). Records the
output and, for L = Σ out ⊙ G, the gradients of lora_A, lora_B and the input; fp32, CPU.

Usage: make_lora_reference.py OUT_DIR   -> OUT_DIR/lora_reference.safetensors
"""
import os
import sys

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file

CASES = [  # name, N, IC, OC, r, alpha, rslora
    ("plain", 6, 32, 24, 4, 8.0, False),
    ("rslora", 5, 48, 16, 8, 16.0, True),
    ("rank1", 3, 16, 40, 1, 2.0, False),
]


class One(torch.nn.Module):
    def __init__(self, ic, oc):
        super().__init__()
        self.proj = torch.nn.Linear(ic, oc, bias=False)

    def forward(self, x):
        return self.proj(x)


def case(name, N, IC, OC, r, alpha, rslora, gen):
    model = One(IC, OC)
    with torch.no_grad():
        model.proj.weight.copy_(torch.randn(OC, IC, generator=gen))
    peft_model = get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0,
                                                  target_modules=["proj"], use_rslora=rslora))
    layer = peft_model.base_model.model.proj
    with torch.no_grad():
        layer.lora_A["default"].weight.copy_(torch.randn(r, IC, generator=gen))
        layer.lora_B["default"].weight.copy_(torch.randn(OC, r, generator=gen))
    assert not layer.base_layer.weight.requires_grad, "PEFT should freeze the base"
    x = torch.randn(N, IC, generator=gen, requires_grad=True)
    G = torch.randn(N, OC, generator=gen)
    out = peft_model(x)
    (out * G).sum().backward()
    return {f"{name}.W0": layer.base_layer.weight.detach(), f"{name}.A": layer.lora_A["default"].weight.detach(),
            f"{name}.B": layer.lora_B["default"].weight.detach(), f"{name}.x": x.detach(), f"{name}.G": G,
            f"{name}.out": out.detach(), f"{name}.dA": layer.lora_A["default"].weight.grad,
            f"{name}.dB": layer.lora_B["default"].weight.grad, f"{name}.dx": x.grad,
            f"{name}.hparams": torch.tensor([r, alpha, float(rslora), layer.scaling["default"]])}


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    os.makedirs(sys.argv[1], exist_ok=True)
    gen = torch.Generator().manual_seed(16)
    tensors = {}
    for c in CASES:
        tensors.update(case(*c, gen))
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(sys.argv[1], "lora_reference.safetensors"))
    print(f"make_lora_reference: {len(CASES)} cases written to {sys.argv[1]}")


if __name__ == "__main__":
    main()
