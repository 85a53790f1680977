#!/usr/bin/env python3
"""Reference NF4 quantization (bitsandbytes quantize_4bit(blocksize=64, quant_type="nf4",
compress_statistics=True) and dequantize_4bit), written from bitsandbytes' published algorithm in
numpy float32, for test_hf_nf4 to compare Iris's quantizer with bit for bit.

Why not bitsandbytes itself: its quantize_4bit (0.43.3, the release contemporary with the pinned
transformers) raises NotImplementedError for tensors that are not on CUDA, and this reference must
run on a CPU-only machine.

What is reproduced, operation by operation, from the CUDA kernels (kQuantizeBlockwise with NF4 and
with the General8bit dynamic map, kDequantizeBlockwise):
  - per block of 64: absmax in fp32, its reciprocal 1/absmax in fp32, each x·(1/absmax) in fp32
    coded by the NF4 decision tree (x > threshold at each node; an all-zero block gives 0·inf = NaN,
    which every comparison sends to code 0);
  - two codes per byte, the first element in the high nibble;
  - double quantization: offset = mean of the absmaxes, subtracted; then blocks of 256 absmaxes
    coded on the signed dynamic map with the kernel's 7-step binary search and fp32 midpoints.
The mean is the one quantity whose bits depend on summation order (torch's reduction on the GPU);
we take the correctly rounded mean (float64 sum) and check that torch's float32 mean is within one
ulp of it, so "bit-identical" is defined up to that documented choice.
The code books are checked against the library's documented values: the NF4 table of
get_4bit_type("nf4") and create_dynamic_map(signed=True) rebuilt with torch as published.

Usage: make_nf4_reference.py OUT_DIR   -> OUT_DIR/nf4_reference.safetensors
"""
import os
import sys

import numpy as np
import torch
from safetensors.numpy import save_file

# bitsandbytes functional.get_4bit_type("nf4") (documented values).
NF4 = np.array([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
                -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
                0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
                0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0], dtype=np.float32)
# The thresholds of the kernel's dQuantizeNF4 tree, in index order (midpoints of adjacent values).
NF4_THRESHOLDS = np.array([-0.8480964004993439, -0.6106329262256622, -0.4599952697753906,
                           -0.33967943489551544, -0.23460740596055984, -0.13791173323988914,
                           -0.045525018125772476, 0.03979014977812767, 0.1202552504837513,
                           0.2035212516784668, 0.2920137718319893, 0.3893125355243683,
                           0.5016634166240692, 0.6427869200706482, 0.8614784181118011],
                          dtype=np.float32)


def dynamic_map():
    """create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8) in torch, as published."""
    data = []
    for i in range(7):
        boundaries = torch.linspace(0.1, 1, 2 ** i + 1)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-6 + i)) * means).tolist()
        data += (-(10 ** (-6 + i)) * means).tolist()
    data += [0.0, 1.0]
    assert len(data) == 256
    data.sort()
    return torch.tensor(data, dtype=torch.float32).numpy()


def nf4_code(x):
    """dQuantizeNF4 on an fp32 array: the tree's comparisons are x > threshold, NaN fails them all."""
    code = np.zeros(x.shape, dtype=np.uint8)
    for t in NF4_THRESHOLDS:
        code += (x > t).astype(np.uint8)  # monotone thresholds: the count of those passed is the leaf
    return code


def dynamic_code(code_book, x):
    """dQuantize<STOCHASTIC=0>: binary search from pivot 127 in steps 64..1, then a midpoint test."""
    f = np.float32
    out = np.empty(x.shape, dtype=np.uint8)
    for k, v in enumerate(x):
        pivot, upper_pivot, lower_pivot = 127, 255, 0
        lower, upper = f(-1.0), f(1.0)
        val = code_book[pivot]
        i = 64
        while i > 0:
            if v > val:
                lower_pivot, lower, pivot = pivot, val, pivot + i
            else:
                upper_pivot, upper, pivot = pivot, val, pivot - i
            val = code_book[pivot]
            i >>= 1
        if upper_pivot == 255:
            upper = code_book[255]
        if lower_pivot == 0:
            lower = code_book[0]
        if v > val:
            out[k] = upper_pivot if v > (upper + val) * f(0.5) else pivot
        else:
            out[k] = lower_pivot if v < (lower + val) * f(0.5) else pivot
    return out


def blockwise_absmax(x, block):
    pad = (-len(x)) % block
    return np.abs(np.concatenate([x, np.zeros(pad, np.float32)])).reshape(-1, block).max(axis=1)


def quantize_nf4(x):
    n = len(x)
    absmax = blockwise_absmax(x, 64)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.float32(1.0) / absmax                    # inf for an all-zero block, as on the GPU
        scaled = x * np.repeat(inv, 64)[:n]               # fp32 products; 0·inf = NaN
    codes = nf4_code(scaled)
    if n % 2:
        codes = np.concatenate([codes, np.zeros(1, np.uint8)])
    packed = (codes[0::2] << 4) | codes[1::2]
    offset = np.float32(absmax.astype(np.float64).mean())
    torch_mean = torch.from_numpy(absmax).mean().numpy()
    assert abs(float(torch_mean) - float(offset)) <= float(np.spacing(offset)), (torch_mean, offset)
    centred = absmax - offset
    nested = blockwise_absmax(centred, 256)
    book = dynamic_map()
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled_absmax = centred * np.repeat(np.float32(1.0) / nested, 256)[:len(centred)]
    absmax_code = dynamic_code(book, scaled_absmax)
    # dequantize_4bit: absmax = code[q]·nested + offset (fp32), then NF4 value · absmax
    absmax_back = book[absmax_code] * np.repeat(nested, 256)[:len(centred)] + offset
    deq = NF4[codes[:n]] * np.repeat(absmax_back, 64)[:n]
    return packed, absmax_code, nested, offset, deq


def inputs():
    rng = np.random.default_rng(16)
    normal = rng.standard_normal(64 * 700).astype(np.float32) * np.float32(0.02)  # 700 blocks: 3 nested
    odd = rng.standard_normal(64 * 5 + 37).astype(np.float32)                     # partial last block
    zeros = rng.standard_normal(64 * 4).astype(np.float32)
    zeros[64:128] = 0                                                             # one all-zero block
    heavy = (rng.standard_t(2, 64 * 300) * 0.05).astype(np.float32)               # outlier blocks
    return {"normal": normal, "odd": odd, "zeros": zeros, "heavy": heavy}


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    os.makedirs(sys.argv[1], exist_ok=True)
    book = dynamic_map()
    assert book[255] == 1.0 and book[0] < -0.99 and (np.diff(book) >= 0).all()
    mids = ((NF4[:-1].astype(np.float64) + NF4[1:]) / 2).astype(np.float32)
    assert (mids == NF4_THRESHOLDS).all(), "tree thresholds are not the code book's midpoints"
    tensors = {"dynamic_map": book, "nf4_code": NF4}
    for name, x in inputs().items():
        packed, absmax_code, nested, offset, deq = quantize_nf4(x)
        tensors.update({f"{name}.x": x, f"{name}.packed": packed, f"{name}.absmax_code": absmax_code,
                        f"{name}.nested_absmax": nested, f"{name}.offset": np.array([offset], np.float32),
                        f"{name}.dequant": deq.astype(np.float32)})
    save_file(tensors, os.path.join(sys.argv[1], "nf4_reference.safetensors"))
    print(f"make_nf4_reference: {len(tensors)} tensors written to {sys.argv[1]}")


if __name__ == "__main__":
    main()
