// Vocab-parallel softmax cross-entropy on the GPU (Megatron-LM, Shoeybi et al. 2019, sec. 3): the phases of
// iris::cpu::xent_* (the reference) on bf16 logits, with fp32 statistics and the stream last. The caller
// all-reduces between phases; fp32 copies of the (N, V_local) logits are never made.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace iris::cuda {

// logits (N, V_local) bf16 cover vocab ids [vocab_start, vocab_start + V_local); only the first V_valid columns
// are real tokens, the rest (tp padding) never enters. Phase 1: max (N,) over the valid columns (−inf if none).
void xent_local_max(float* max, const __nv_bfloat16* logits, int N, int V_local, int V_valid, cudaStream_t stream);
// Phase 2: sumexp (N,) = Σ_valid exp(l − max), max (N,) the all-reduced row max; target_logit (N,) = the
// target's logit when targets[n] − vocab_start is in [0, V_valid), else 0.
void xent_local_sumexp(float* sumexp, float* target_logit, const __nv_bfloat16* logits, const float* max,
                       const int32_t* targets, int N, int V_local, int V_valid, int vocab_start,
                       cudaStream_t stream);
// Phase 3: losses (N,) = log(sumexp) + max − target_logit.
void xent_losses(float* losses, const float* max, const float* sumexp, const float* target_logit, int N,
                 cudaStream_t stream);
// dlogits (N, V_local) bf16 = dloss[n] · (softmax − onehot(target)), padded columns 0; dloss (N,). dlogits may
// alias logits (in place: each element is read, then written, by the same thread).
void xent_backward(__nv_bfloat16* dlogits, const __nv_bfloat16* logits, const float* max, const float* sumexp,
                   const int32_t* targets, const float* dloss, int N, int V_local, int V_valid, int vocab_start,
                   cudaStream_t stream);

}  // namespace iris::cuda
