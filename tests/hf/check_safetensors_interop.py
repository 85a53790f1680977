#!/usr/bin/env python3
"""Checks that a safetensors file written by Iris's C++ writer reads back, with the official Python
`safetensors` library, exactly as the writer intended.

Usage:
  check_safetensors_interop.py DIR                   # DIR/iris.safetensors + DIR/expected.json
  check_safetensors_interop.py FILE.safetensors EXPECTED.json

EXPECTED.json (written by the C++ test):
  {
    "<tensor name>": {"dtype": "F32", "shape": [2, 3], "values": [1.0, 2.5, ...]},
    ...
    "__metadata__": {"key": "value", ...}        <- optional; compared with the header metadata
  }
  dtype:  the safetensors dtype string: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL (U16/U32/U64 too).
  shape:  list of ints ([] for a scalar).
  values: the elements in row-major order, either flat (length = product of shape) or nested.
          Floats: write them with enough digits to round-trip (max_digits10: 9 for F32, 17 for
          F64); "nan", "inf", "-inf" (strings) or bare NaN/Infinity/-Infinity are accepted.
          BF16/F16: best give the exact stored value; otherwise the number is rounded to that
          dtype (BF16 via float32, round-to-nearest-even) before comparing.
  atol:   optional per tensor; default 0, i.e. exact equality (NaN equals NaN).

Checks: the file parses with safetensors (which also validates header, offsets and size); the set
of tensor names equals the expected set (no missing, no extra); each tensor's dtype, shape and
values match; "__metadata__" when given. The file is read with safetensors.numpy.load_file, or with
safetensors.torch.load_file when it holds BF16 (numpy has no bfloat16).

Exit status: 0 all match, 1 any mismatch, 2 usage or unreadable input. Prints one line per tensor.
"""
import json
import os
import sys

import numpy as np
import safetensors
from safetensors import safe_open

NUMPY_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8, "BOOL": np.bool_,
}


def header_dtypes(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    return {k: v["dtype"] for k, v in header.items() if k != "__metadata__"}, header.get("__metadata__")


def load(path, dtypes):
    """name -> numpy array (BF16 as float32 holding the exact bf16 values)."""
    if "BF16" in dtypes.values():
        import torch
        import safetensors.torch
        out = {}
        for k, t in safetensors.torch.load_file(path).items():
            out[k] = t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()
        return out
    import safetensors.numpy
    return safetensors.numpy.load_file(path)


def expected_array(spec):
    dtype, shape = spec["dtype"], [int(d) for d in spec["shape"]]
    values = spec["values"]
    flat = np.array(values, dtype=object).reshape(-1).tolist() if isinstance(values, list) else [values]
    flat = [float(v) if isinstance(v, str) else v for v in flat]  # "nan", "inf", "-inf"
    if dtype == "BF16":
        import torch
        arr = torch.tensor(flat, dtype=torch.float32).to(torch.bfloat16).float().numpy()  # via F32, like C++
    else:
        arr = np.array(flat, dtype=NUMPY_DTYPES[dtype])
    if arr.size != int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"{len(flat)} values for shape {shape}")
    return arr.reshape(shape)


def main(argv):
    if len(argv) == 2 and os.path.isdir(argv[1]):
        path, exp_path = os.path.join(argv[1], "iris.safetensors"), os.path.join(argv[1], "expected.json")
    elif len(argv) == 3:
        path, exp_path = argv[1], argv[2]
    else:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        with open(exp_path) as f:
            expected = json.load(f)
        want_meta = expected.pop("__metadata__", None)
        dtypes, _ = header_dtypes(path)
        got = load(path, dtypes)
        with safe_open(path, framework="numpy") as f:
            got_meta = f.metadata()
    except Exception as e:  # unreadable file / invalid safetensors / bad JSON
        print(f"interop: cannot read {path} / {exp_path}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2

    failures = 0

    def fail(msg):
        nonlocal failures
        failures += 1
        print(f"FAIL {msg}")

    for name in sorted(set(got) - set(expected)):
        fail(f"{name}: in the file but not expected")
    for name in sorted(expected):
        spec = expected[name]
        if name not in got:
            fail(f"{name}: missing from the file")
            continue
        if dtypes[name] != spec["dtype"]:
            fail(f"{name}: dtype {dtypes[name]}, expected {spec['dtype']}")
            continue
        if list(got[name].shape) != [int(d) for d in spec["shape"]]:
            fail(f"{name}: shape {list(got[name].shape)}, expected {spec['shape']}")
            continue
        try:
            want = expected_array(spec)
        except Exception as e:
            fail(f"{name}: bad expected values: {e}")
            continue
        a = got[name]
        atol = float(spec.get("atol", 0.0))
        if a.dtype.kind == "f":
            ok = np.allclose(a, want, rtol=0.0, atol=atol, equal_nan=True) if atol > 0 else \
                np.array_equal(a, want, equal_nan=True)
        else:
            ok = np.array_equal(a, want)
        if not ok:
            diff = np.argwhere(~np.isclose(a, want, rtol=0.0, atol=atol, equal_nan=True)
                               if a.dtype.kind == "f" else a != want)
            i = tuple(diff[0]) if len(diff) else ()
            fail(f"{name}: {len(diff)} element(s) differ, first at {list(i)}: {a[i]!r} vs expected {want[i]!r}")
            continue
        print(f"ok   {name}: {spec['dtype']} {list(a.shape)}")
    if want_meta is not None:
        if (got_meta or {}) != want_meta:
            fail(f"__metadata__: {got_meta}, expected {want_meta}")
        else:
            print(f"ok   __metadata__: {len(want_meta)} key(s)")
    n = len(expected)
    print(f"interop: {path}: {'OK' if failures == 0 else f'{failures} FAILURE(S)'} "
          f"({n} tensor(s) expected, safetensors {safetensors.__version__})")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
