// The CPU backend's op set: fp32, row-major, readable, and the reference for every CUDA kernel.
// Conventions (llm.c order): outputs first, then what is saved for backward, then inputs, then
// weights, then dimensions. N = B*T rows. Parameter gradients ACCUMULATE (+=) so micro-batches add
// up; activation gradients are WRITTEN (=) unless a flag says otherwise.
// Dimension letters: B batch, T sequence, C hidden, NH query heads, NKV KV heads, HS head size,
// F FFN size, V vocab; _local marks a per-rank (tensor-parallel) size.
#pragma once
#include <cstddef>
#include <cstdint>

namespace iris::cpu {

// ---- dense algebra -------------------------------------------------------------------------
// out (N, OC) = inp (N, IC) · weight (OC, IC)^T        (HF nn.Linear layout, no bias)
void matmul_forward(float* out, const float* inp, const float* weight, int N, int IC, int OC);
// dinp (N, IC) = dout (N, OC) · weight (OC, IC)   [+= instead of = when accumulate_dinp]
// dweight (OC, IC) += dout^T · inp. dinp may be nullptr (not needed).
void matmul_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                     int N, int IC, int OC, bool accumulate_dinp = false);

// a (n) += b (n)
void add_inplace(float* a, const float* b, size_t n);
// Σ x², accumulated in double.
double sum_squares(const float* x, size_t n);
// x (n) *= s
void scale_inplace(float* x, float s, size_t n);

// ---- RMSNorm (Zhang & Sennrich 2019) ------------------------------------------------------
// out (N, C) = inp · rstd · weight;   rstd (N,) = 1 / sqrt(mean(inp²) + eps)
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int N, int C, float eps);
// dinp (N, C) written; dweight (C,) +=
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int N, int C);

// ---- RoPE (Su et al. 2021), HF rotate-half layout ------------------------------------------
// cos, sin (N, HS/2): angle = pos[n] · inv_freq[i].
void rope_tables(float* cos, float* sin, const int32_t* pos, const float* inv_freq, int N, int HS);
// x (N, H, HS) rotated in place: for i < HS/2, with h = HS/2,
//   x'[i] = x[i]·cos[i] − x[i+h]·sin[i];   x'[i+h] = x[i+h]·cos[i] + x[i]·sin[i]
void rope_forward(float* x, const float* cos, const float* sin, int N, int H, int HS);
// dx (N, H, HS) in place: the transpose (inverse) rotation, turning d(rotated) into d(unrotated).
void rope_backward(float* dx, const float* cos, const float* sin, int N, int H, int HS);

// ---- causal grouped-query attention --------------------------------------------------------
// q (B, T, NH, HS), k and v (B, T, NKV, HS), out (B, T, NH, HS), lse (B, NH, T) = log Σ_j exp(s_ij)
// Query head h reads KV head h / (NH / NKV). Scores s_ij = q_i·k_j / sqrt(HS), j ≤ i, and when
// doc (B, T) is given also doc[j] == doc[i] (packed documents do not see each other).
void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, const int32_t* doc,
                       int B, int T, int NH, int NKV, int HS);
// dq (B, T, NH, HS), dk and dv (B, T, NKV, HS) all written. Uses the saved out and lse.
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, const int32_t* doc,
                        int B, int T, int NH, int NKV, int HS);

// ---- SwiGLU MLP activation (Shazeer 2020) --------------------------------------------------
// out (N, F) = silu(gate) · up, silu(x) = x / (1 + e^-x)
void swiglu_forward(float* out, const float* gate, const float* up, int N, int F);
// dgate, dup (N, F) written
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int N, int F);

// ---- vocab-parallel embedding --------------------------------------------------------------
// wte (V_local, C) holds vocab rows [vocab_start, vocab_start + V_local). out (N, C) gets the row of
// each token that falls in this shard and 0 otherwise (the TP all-reduce sums the shards).
void embedding_forward(float* out, const int32_t* tokens, const float* wte, int N, int C, int vocab_start, int V_local);
// dwte (V_local, C) += rows of dout (N, C) for tokens in this shard; deterministic order.
void embedding_backward(float* dwte, const float* dout, const int32_t* tokens, int N, int C, int vocab_start,
                        int V_local);

// ---- vocab-parallel softmax cross-entropy (Megatron-LM, Shoeybi et al. 2019, sec. 3) ----------
// logits (N, V_local) cover vocab ids [vocab_start, vocab_start + V_local); only the first V_valid
// columns are real tokens (the rest is tp padding and never enters the loss). The full logits are
// never gathered: each phase is local and the caller all-reduces between phases.
// Phase 1: max (N,) = row max over the valid columns             -> all-reduce MAX
void xent_local_max(float* max, const float* logits, int N, int V_local, int V_valid);
// Phase 2: sumexp (N,) = Σ_valid exp(l − max); target_logit (N,) = logits[n, targets[n] − vocab_start]
// when the target is in this shard, else 0                        -> all-reduce SUM of both
void xent_local_sumexp(float* sumexp, float* target_logit, const float* logits, const float* max,
                       const int32_t* targets, int N, int V_local, int V_valid, int vocab_start);
// Phase 3: losses (N,) = log(sumexp) + max − target_logit
void xent_losses(float* losses, const float* max, const float* sumexp, const float* target_logit, int N);
// dlogits (N, V_local) = dloss[n] · (softmax − onehot(target)); padded columns get 0.
// dloss (N,) is the weight of each token's loss (mask / number of trained tokens). dlogits may alias logits.
void xent_backward(float* dlogits, const float* logits, const float* max, const float* sumexp,
                   const int32_t* targets, const float* dloss, int N, int V_local, int V_valid, int vocab_start);

// ---- optimizer -------------------------------------------------------------------------------
// AdamW (Loshchilov & Hutter 2019) on n fp32 elements: g = grads·grad_scale (clipping);
// m = β1 m + (1−β1) g; v = β2 v + (1−β2) g²; p −= lr·(m̂ / (sqrt(v̂) + eps) + weight_decay·p),
// m̂ = m / (1 − β1^step), v̂ = v / (1 − β2^step), step ≥ 1.
void adamw_update(float* params, float* m, float* v, const float* grads, size_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int step, float grad_scale);

}  // namespace iris::cpu
