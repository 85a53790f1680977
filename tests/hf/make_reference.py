#!/usr/bin/env python3
"""Hugging Face reference for Iris's parity test (tests/hf/test_hf_parity.cpp).

Usage:  <venv>/bin/python tests/hf/make_reference.py OUT_DIR      (venv from tools/setup-pyref.sh)

Builds small random transformers.LlamaForCausalLM models (float32, eager attention, fixed seeds) and,
for one fixed batch, records logits, Iris's masked-mean cross-entropy loss and every parameter
gradient. Exits non-zero on any failure; OUT_DIR/manifest.json is written last, only on success.

Output, per case (OUT_DIR/<case>/):
  config.json, model.safetensors   model.save_pretrained(dir, safe_serialization=True): one file, no
                                   shards. With tie_word_embeddings the file has no lm_head.weight
                                   (HF drops the tied copy); Iris must use model.embed_tokens.weight.
  generation_config.json           also written by save_pretrained; not needed by Iris.
  reference.safetensors            (safetensors.torch.save_file), tensors:
      input_ids   I64 (B, T)        random tokens in [0, V)
      targets     I64 (B, T)        next tokens: a (B, T+1) draw, input_ids = [:, :-1], targets = [:, 1:]
      loss_mask   F32 (B, T)        0/1, a few zeros
      logits      F32 (B, T, V)     model(input_ids).logits (positions 0..T-1, no attention mask: causal only)
      loss        F32 (1,)          sum(mask * CE(logits, targets)) / sum(mask), CE per token in fp32
      grad.<name> F32 (param shape) d loss / d param for every model.named_parameters() name
                                    (e.g. grad.model.layers.0.self_attn.q_proj.weight,
                                    grad.model.embed_tokens.weight; grad.lm_head.weight only when
                                    untied; when tied the embedding gradient includes the lm_head use)
      rope.inv_freq F32 (head_dim/2,) the model's rotary inverse frequencies (after llama3 scaling),
                                    for debugging the rope path; the parity test does not need it.
    header metadata: {"iris_hf_reference": JSON string {case, torch, transformers, safetensors}}.
OUT_DIR/manifest.json: {"cases": [...names...], "versions": {...}, "case_info": {name: details}}.

Cases (all GQA: 4 query heads over 2 KV heads, head_dim 16, hidden 64, intermediate 160, 2 layers,
vocab 96, rms_norm_eps 1e-5):
  untied       rope_theta 1e4, B=2, T=12
  tied         same with tie_word_embeddings=True
  llama3_rope  rope_theta 5e5, rope_scaling llama3 (factor 8, low 1, high 4,
               original_max_position_embeddings 64), B=2, T=24, untied. With head_dim 16 the
               wavelengths are 6.3, 32.4, 167, ...: 64/4=16 and 64/1=64 put one frequency in each of
               the three llama3 branches (kept, smoothly interpolated, divided by factor). This is
               checked below against the unscaled inv_freq.

Weights: N(0, 0.2) for every matrix (embedding, projections, lm_head) and 1 + N(0, 0.1) for the
RMSNorm weights, so gradients are not tiny and the norm weights are exercised.

Self-check: an independent float64 re-implementation of the Llama forward (written here from the
HF semantics: RMSNorm, rotate_half RoPE, repeat_kv GQA, causal softmax, SwiGLU) recomputes logits,
loss and gradients from the same weights. The HF fp32 reference must agree with it well inside the
C++ test's tolerances: logits 2.5e-5 abs, loss 1e-6 rel, gradients 1e-5 rel (observed about 9e-6,
1e-7 and 2e-6). So the reference's own fp32 rounding is a small part of what the C++ test allows,
and HF's semantics are confirmed independently.
"""
import json
import math
import os
import shutil
import sys
import traceback

import torch
import torch.nn.functional as F

import safetensors
import safetensors.torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

BASE = dict(
    vocab_size=96,
    hidden_size=64,
    intermediate_size=160,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
    max_position_embeddings=128,
    tie_word_embeddings=False,
    hidden_act="silu",
    attention_bias=False,
    mlp_bias=False,
    pretraining_tp=1,
    bos_token_id=1,
    eos_token_id=2,
    torch_dtype="float32",
)
LLAMA3_SCALING = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 64,
}
CASES = [
    ("untied", dict(), 2, 12, 1001),
    ("tied", dict(tie_word_embeddings=True), 2, 12, 1002),
    ("llama3_rope", dict(rope_theta=500000.0, rope_scaling=LLAMA3_SCALING), 2, 24, 1003),
    # Mistral without a sliding window is a Llama with other numbers: MistralForCausalLM is the reference.
    ("mistral", dict(model_type="mistral", sliding_window=None, rope_theta=1000000.0), 2, 12, 1004),
]
ARCHITECTURES = {"llama": (LlamaConfig, LlamaForCausalLM), "mistral": (MistralConfig, MistralForCausalLM)}
MATRIX_STD = 0.2
NORM_STD = 0.1
MASK_ZERO_P = 0.2
# Self-check thresholds (HF fp32 vs float64 re-implementation), well inside the C++ tolerances
# (1e-4 logits abs, 1e-5 loss rel, 1e-4 grad rel). Observed: logits <= 9e-6, loss <= 1e-7, grads <= 2.2e-6.
TOL_LOGITS_ABS, TOL_LOSS_REL, TOL_GRAD_REL = 2.5e-5, 1e-6, 1e-5


class ReferenceError(RuntimeError):
    pass


def check(cond, msg):
    if not cond:
        raise ReferenceError(msg)


def init_weights(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64).mul_(MATRIX_STD))
            elif p.dim() == 1 and name.endswith("norm.weight"):
                p.copy_(1.0 + torch.randn(p.shape, generator=gen, dtype=torch.float64).mul_(NORM_STD))
            else:
                raise ReferenceError(f"unexpected parameter {name} {tuple(p.shape)}")


def make_batch(B, T, V, gen):
    seq = torch.randint(0, V, (B, T + 1), generator=gen, dtype=torch.int64)
    input_ids = seq[:, :-1].contiguous()
    targets = seq[:, 1:].contiguous()
    mask = (torch.rand((B, T), generator=gen, dtype=torch.float64) >= MASK_ZERO_P).to(torch.float32)
    mask[:, -1] = 0.0  # at least one hidden token per row (like a padded tail)
    mask[:, 0] = 1.0  # and at least one trained token per row
    check(0 < mask.sum().item() < B * T, "mask must hide some tokens and keep some")
    return input_ids, targets, mask


def masked_mean_ce(logits, targets, mask):
    V = logits.shape[-1]
    ce = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="none")
    m = mask.reshape(-1).to(ce.dtype)
    return (ce * m).sum() / m.sum()


# ---- independent float64 Llama (for the self-check) ---------------------------------------------
def inv_freq_f64(cfg):
    D = cfg["head_dim"]
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
    rs = cfg.get("rope_scaling")
    if not rs:
        return inv, None
    old, lo, hi, factor = (rs["original_max_position_embeddings"], rs["low_freq_factor"],
                           rs["high_freq_factor"], rs["factor"])
    out, branches = [], []
    for f in inv.tolist():
        wl = 2 * math.pi / f
        if wl < old / hi:
            out.append(f), branches.append("kept")
        elif wl > old / lo:
            out.append(f / factor), branches.append("divided")
        else:
            s = (old / wl - lo) / (hi - lo)
            out.append((1 - s) * f / factor + s * f), branches.append("smoothed")
    return torch.tensor(out, dtype=torch.float64), branches


def rmsnorm64(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def llama_forward64(P, cfg, input_ids):
    """P: name -> float64 tensor (HF names). Returns logits (B, T, V) in float64."""
    B, T = input_ids.shape
    H, KV, D, eps = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"], cfg["rms_norm_eps"]
    inv, _ = inv_freq_f64(cfg)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    ang = torch.cat((ang, ang), dim=-1)
    cos, sin = ang.cos(), ang.sin()  # (T, D)
    causal = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    x = P["model.embed_tokens.weight"][input_ids]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        n = rmsnorm64(x, P[p + "input_layernorm.weight"], eps)
        q = (n @ P[p + "self_attn.q_proj.weight"].T).view(B, T, H, D).transpose(1, 2)
        k = (n @ P[p + "self_attn.k_proj.weight"].T).view(B, T, KV, D).transpose(1, 2)
        v = (n @ P[p + "self_attn.v_proj.weight"].T).view(B, T, KV, D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=1)  # query head h uses KV head h // (H/KV)
        v = v.repeat_interleave(H // KV, dim=1)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(D)
        s = s.masked_fill(causal, float("-inf"))
        a = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, H * D)
        x = x + a @ P[p + "self_attn.o_proj.weight"].T
        n = rmsnorm64(x, P[p + "post_attention_layernorm.weight"], eps)
        g = n @ P[p + "mlp.gate_proj.weight"].T
        u = n @ P[p + "mlp.up_proj.weight"].T
        x = x + (F.silu(g) * u) @ P[p + "mlp.down_proj.weight"].T
    x = rmsnorm64(x, P["model.norm.weight"], eps)
    head = P["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else P["lm_head.weight"]
    return x @ head.T


def rel_l2(a, b):
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm()).item()


# ---- one case ------------------------------------------------------------------------------------
def build_case(out_dir, name, overrides, B, T, seed):
    cfg = dict(BASE)
    cfg.update(overrides)
    check(cfg["hidden_size"] == cfg["num_attention_heads"] * cfg["head_dim"],
          "transformers 4.44 derives head_dim = hidden_size / num_attention_heads; keep them consistent")
    case_dir = os.path.join(out_dir, name)
    if os.path.isdir(case_dir):
        shutil.rmtree(case_dir)
    os.makedirs(case_dir)

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    config_class, model_class = ARCHITECTURES[cfg.pop("model_type", "llama")]
    config = config_class(attn_implementation="eager", **cfg)
    model = model_class(config).to(torch.float32)
    model.eval()  # no dropout anywhere in Llama; eval() only to be explicit
    check(model.config._attn_implementation == "eager", f"attention is {model.config._attn_implementation}")
    tied = cfg["tie_word_embeddings"]
    check((model.lm_head.weight is model.model.embed_tokens.weight) == tied, "lm_head tying is not as configured")
    init_weights(model, gen)

    params = dict(model.named_parameters())
    check(("lm_head.weight" in params) == (not tied), "named_parameters lm_head presence")
    check(all(p.dtype == torch.float32 for p in params.values()), "parameters must be float32")

    # RoPE: the model's inv_freq vs our float64 formula; for llama3, vs the unscaled frequencies.
    # (transformers 4.44's Mistral keeps the rotary embedding in each attention layer, Llama in the model)
    rotary = getattr(model.model, "rotary_emb", None) or model.model.layers[0].self_attn.rotary_emb
    inv_model = rotary.inv_freq.detach().clone().to(torch.float32)
    inv64, branches = inv_freq_f64(cfg)
    check(torch.allclose(inv_model.double(), inv64, rtol=1e-6, atol=0), f"inv_freq {inv_model} vs {inv64}")
    rope_info = {"inv_freq": inv_model.tolist()}
    if cfg.get("rope_scaling"):
        plain = LlamaForCausalLM(LlamaConfig(attn_implementation="eager", **dict(cfg, rope_scaling=None)))
        inv_plain = plain.model.rotary_emb.inv_freq.detach().to(torch.float32)
        changed = int((inv_plain != inv_model).sum())
        check(changed > 0, "llama3 rope_scaling did not change any frequency")
        for b in ("kept", "divided", "smoothed"):
            check(b in branches, f"llama3 branch '{b}' not exercised: {branches}")
        rope_info.update(inv_freq_unscaled=inv_plain.tolist(), frequencies_changed=changed, branches=branches)
        del plain

    # save_pretrained: one safetensors file, tied copy absent.
    model.save_pretrained(case_dir, safe_serialization=True, max_shard_size="10GB")
    files = sorted(os.listdir(case_dir))
    check("model.safetensors" in files and "config.json" in files, f"save_pretrained wrote {files}")
    with open(os.path.join(case_dir, "config.json")) as f:
        saved_type = json.load(f)["model_type"]
    check(saved_type == config.model_type, f"config.json model_type {saved_type}, expected {config.model_type}")
    check(not any("index" in f or f.startswith("model-") for f in files), f"sharded checkpoint: {files}")
    saved = safetensors.torch.load_file(os.path.join(case_dir, "model.safetensors"))
    check(set(saved) == set(params), f"saved tensors {sorted(set(saved) ^ set(params))} differ from named_parameters")
    for n, p in params.items():
        check(saved[n].dtype == torch.float32 and torch.equal(saved[n], p.detach()), f"saved {n} differs")
    with open(os.path.join(case_dir, "config.json")) as f:
        saved_cfg = json.load(f)
    check(saved_cfg.get("tie_word_embeddings") == tied, "config.json tie_word_embeddings")
    check(saved_cfg.get("rope_scaling") == cfg.get("rope_scaling"), "config.json rope_scaling")
    check(saved_cfg.get("head_dim") == cfg["head_dim"], "config.json head_dim")

    # Forward, Iris's loss, backward (fp32).
    input_ids, targets, mask = make_batch(B, T, cfg["vocab_size"], gen)
    model.zero_grad(set_to_none=True)
    logits = model(input_ids=input_ids, use_cache=False).logits
    check(logits.dtype == torch.float32 and logits.shape == (B, T, cfg["vocab_size"]), f"logits {logits.shape}")
    loss = masked_mean_ce(logits, targets, mask)
    loss.backward()
    grads = {}
    for n, p in params.items():
        check(p.grad is not None, f"no gradient for {n}")
        check(bool(torch.isfinite(p.grad).all()) and p.grad.abs().max() > 0, f"gradient of {n} is not finite/nonzero")
        grads[n] = p.grad.detach().clone()
    check(bool(torch.isfinite(logits).all()) and math.isfinite(loss.item()), "non-finite logits/loss")

    # The reloaded checkpoint reproduces the logits (checks that save/tie handling round-trips).
    reloaded = model_class.from_pretrained(case_dir, attn_implementation="eager", torch_dtype=torch.float32)
    reloaded.eval()
    with torch.no_grad():
        check(torch.equal(reloaded(input_ids=input_ids, use_cache=False).logits, logits.detach()),
              "from_pretrained(case_dir) does not reproduce the logits")
    del reloaded

    # Self-check against the float64 re-implementation.
    P64 = {n: p.detach().double().requires_grad_(True) for n, p in params.items()}
    logits64 = llama_forward64(P64, cfg, input_ids)
    loss64 = masked_mean_ce(logits64, targets, mask)
    loss64.backward()
    err_logits = (logits.detach().double() - logits64.detach()).abs().max().item()
    err_loss = abs(loss.item() - loss64.item()) / abs(loss64.item())
    err_grads = {n: rel_l2(grads[n], P64[n].grad) for n in params}
    worst = max(err_grads, key=err_grads.get)
    print(f"[{name}] HF fp32 vs float64 re-implementation: logits max abs {err_logits:.2e}, "
          f"loss rel {err_loss:.2e}, worst grad rel {err_grads[worst]:.2e} ({worst})")
    check(err_logits <= TOL_LOGITS_ABS, f"logits disagree with float64 re-implementation: {err_logits}")
    check(err_loss <= TOL_LOSS_REL, f"loss disagrees with float64 re-implementation: {err_loss}")
    check(err_grads[worst] <= TOL_GRAD_REL, f"{worst} gradient disagrees with float64 re-implementation")

    tensors = {
        "input_ids": input_ids,
        "targets": targets,
        "loss_mask": mask,
        "logits": logits.detach().contiguous(),
        "loss": loss.detach().reshape(1).to(torch.float32),
        "rope.inv_freq": inv_model.contiguous(),
    }
    for n, g in grads.items():
        tensors["grad." + n] = g.contiguous()
    ref_path = os.path.join(case_dir, "reference.safetensors")
    # One metadata key: the Rust writer orders metadata keys by hash, so several keys would make
    # the header (not the data) differ between runs.
    safetensors.torch.save_file(tensors, ref_path, metadata={"iris_hf_reference": json.dumps(
        {"case": name, "torch": torch.__version__, "transformers": transformers.__version__,
         "safetensors": safetensors.__version__}, sort_keys=True)})
    back = safetensors.torch.load_file(ref_path)
    check(set(back) == set(tensors) and all(torch.equal(back[k], tensors[k]) for k in tensors), "reference round trip")

    info = {
        "B": B, "T": T, "seed": seed, "tie_word_embeddings": tied,
        "config": {k: cfg[k] for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                       "num_attention_heads", "num_key_value_heads", "head_dim", "rms_norm_eps",
                                       "rope_theta")},
        "rope_scaling": cfg.get("rope_scaling"),
        "rope": rope_info,
        "loss": loss.item(),
        "mask_sum": mask.sum().item(),
        "parameters": {n: list(p.shape) for n, p in params.items()},
        "selfcheck_vs_float64": {"logits_max_abs": err_logits, "loss_rel": err_loss,
                                 "grad_rel_max": err_grads[worst], "grad_rel_worst": worst},
    }
    print(f"[{name}] wrote {case_dir}/: " + ", ".join(
        f"{f} ({os.path.getsize(os.path.join(case_dir, f))} B)" for f in sorted(os.listdir(case_dir))))
    print(f"[{name}] B={B} T={T} V={cfg['vocab_size']} tied={tied} loss={loss.item():.7f} "
          f"(mask {int(mask.sum().item())}/{B * T}), {len(grads)} gradients, "
          f"grad norms {min(g.norm().item() for g in grads.values()):.3g}..{max(g.norm().item() for g in grads.values()):.3g}")
    if cfg.get("rope_scaling"):
        print(f"[{name}] llama3 rope: {rope_info['frequencies_changed']}/{len(branches)} frequencies changed, "
              f"branches {branches}")
    return info


def main(argv):
    if len(argv) != 2:
        print(__doc__.split("\n\n")[0] + "\n\nusage: make_reference.py OUT_DIR", file=sys.stderr)
        return 2
    out_dir = os.path.abspath(argv[1])
    os.makedirs(out_dir, exist_ok=True)
    manifest_path = os.path.join(out_dir, "manifest.json")
    if os.path.exists(manifest_path):
        os.remove(manifest_path)  # written again only when every case succeeds
    torch.set_num_threads(min(2, torch.get_num_threads()))
    torch.use_deterministic_algorithms(True)
    versions = {"python": sys.version.split()[0], "torch": torch.__version__,
                "transformers": transformers.__version__, "safetensors": safetensors.__version__}
    print("make_reference: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    case_info = {}
    for name, overrides, B, T, seed in CASES:
        case_info[name] = build_case(out_dir, name, overrides, B, T, seed)
    manifest = {"cases": [c[0] for c in CASES], "versions": versions, "case_info": case_info,
                "init": {"matrix_std": MATRIX_STD, "norm_weight": f"1 + N(0, {NORM_STD})"},
                "loss": "sum(loss_mask * CE(logits, targets)) / sum(loss_mask)"}
    tmp = manifest_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, manifest_path)
    print(f"make_reference: wrote {manifest_path} ({len(CASES)} cases)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except Exception:
        traceback.print_exc()
        print("make_reference: FAILED", file=sys.stderr)
        sys.exit(1)
