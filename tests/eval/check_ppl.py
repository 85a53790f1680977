#!/usr/bin/env python3
"""iris-eval ppl against transformers (ctest eval_ppl_reference).

Usage:  <venv>/bin/python tests/eval/check_ppl.py OUT_DIR IRIS_EVAL

On each random-weight model of eval_models.CONFIGS and a text of the bundled ophthalmology corpus (BOS +
its sentencepiece tokens, as iris-eval reads a plain text file): the Hugging Face perplexity guide's loop
(windows of seq_len every stride tokens, labels -100 on all but the trg_len new tokens, model(input_ids,
labels=...).loss) gives each window's mean loss; times its number of scored labels, summed and divided by the
total, it is the token-weighted loss iris-eval reports. Cases: seq_len 64 without --stride (disjoint
windows) and seq_len 64 --stride 24 (sliding), each from the text file (--input) and from the same tokens
as an indexed dataset (--data PREFIX, Megatron's MMIDIDX format written here). Checks: the same number of scored tokens, loss within 1e-5
(fp32) and perplexity within 1e-5 relative. Exit 1 on any failure.
"""
import json
import math
import os
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eval_models  # noqa: E402

TOL_LOSS = 1e-5
CASES = [(64, None), (64, 24)]


def hf_loss(model, ids, seq_len, stride):
    stride = stride or seq_len
    nll, count, prev_end = 0.0, 0, 0
    for begin in range(0, len(ids), stride):
        end = min(begin + seq_len, len(ids))
        trg_len = end - prev_end
        input_ids = torch.tensor([ids[begin:end]])
        target = input_ids.clone()
        target[:, :-trg_len] = -100
        n = int((target[:, 1:] != -100).sum())
        if n > 0:
            with torch.no_grad():
                loss = model(input_ids, labels=target).loss
            nll += float(loss) * n
            count += n
        prev_end = end
        if end == len(ids):
            break
    return nll / count, count


def write_indexed(prefix, ids):  # Megatron's MMIDIDX v1: one uint16 sequence (dtype code 8), one document
    np.asarray(ids, dtype=np.uint16).tofile(prefix + ".bin")
    with open(prefix + ".idx", "wb") as f:
        f.write(b"MMIDIDX\x00\x00")
        f.write(np.array([1], dtype=np.uint64).tobytes())
        f.write(np.array([8], dtype=np.uint8).tobytes())
        f.write(np.array([1, 2], dtype=np.uint64).tobytes())
        f.write(np.array([len(ids)], dtype=np.int32).tobytes())
        f.write(np.array([0], dtype=np.int64).tobytes())
        f.write(np.array([0, 1], dtype=np.int64).tobytes())


def main(argv):
    out_dir, iris = argv[1], argv[2]
    os.makedirs(out_dir, exist_ok=True)
    corpus = os.path.join(eval_models.REPO, "data", "sample", "corpus")
    name = sorted(os.listdir(corpus))[0]
    text = open(os.path.join(corpus, name), encoding="utf-8").read()[:5000]
    text_path = os.path.join(out_dir, "text.txt")
    with open(text_path, "w", encoding="utf-8") as f:
        f.write(text)
    failures, report = [], {}
    for cfg in eval_models.CONFIGS:
        model, tok, model_dir = eval_models.build(out_dir, cfg)
        ids = tok(text).input_ids  # BOS + the pieces
        prefix = os.path.join(out_dir, f"{cfg}_tokens")
        write_indexed(prefix, ids)
        for (seq_len, stride), source in [(c, s) for c in CASES for s in ("input", "data")]:
            case = f"{cfg}/seq{seq_len}" + (f"_stride{stride}" if stride else "") + f"_{source}"
            ref_loss, ref_tokens = hf_loss(model, ids, seq_len, stride)
            out = os.path.join(out_dir, "iris", case)
            src = (["--input", text_path, "--tokenizer", os.path.join(model_dir, "tokenizer.model")]
                   if source == "input" else ["--data", prefix])
            cmd = [iris, "ppl", "--hf", model_dir, *src, "--seq-len", str(seq_len), "--output", out]
            if stride:
                cmd += ["--stride", str(stride)]
            subprocess.run(cmd, check=True)
            s = json.load(open(os.path.join(out, "summary.json")))
            report[case] = dict(loss=s["loss"], hf_loss=ref_loss, tokens=s["tokens"], hf_tokens=ref_tokens,
                                abs_diff=abs(s["loss"] - ref_loss))
            print(case, json.dumps(report[case]), flush=True)
            if s["tokens"] != ref_tokens:
                failures.append(f"{case}: {s['tokens']} scored tokens, HF {ref_tokens}")
            if abs(s["loss"] - ref_loss) > TOL_LOSS:
                failures.append(f"{case}: loss {s['loss']} vs HF {ref_loss} (> {TOL_LOSS})")
            if abs(s["perplexity"] / math.exp(ref_loss) - 1) > 1e-5:
                failures.append(f"{case}: perplexity {s['perplexity']} vs HF {math.exp(ref_loss)}")
    with open(os.path.join(out_dir, "ppl_report.json"), "w") as f:
        json.dump(report, f, indent=2)
    for msg in failures:
        print("FAIL:", msg, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
