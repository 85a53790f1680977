// Causal grouped-query flash attention on the GPU (FlashAttention-2, Dao 2023): bf16 q/k/v/out, fp32
// accumulation and log-sum-exp. Same arguments as iris::cpu::attention_forward/backward plus the stream;
// the CPU ops are the reference. No T×T matrix is ever stored; backward is deterministic (no atomics).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace iris::cuda {

// out (B, T, NH, HS) bf16, lse (B, NH, T) fp32 = log Σ_j exp(s_ij), q (B, T, NH, HS), k, v (B, T, NKV, HS),
// doc (B, T) or nullptr. s_ij = q_i·k_j / sqrt(HS) over j ≤ i (and doc[j] == doc[i] when doc is given);
// query head h reads KV head h / (NH / NKV). HS 64 and 128 run on tensor cores; other multiples of 32 up
// to 256 (and buffers not 16-byte aligned) run a slower SIMT kernel. IRIS_ATTENTION=mma selects the
// register-resident tensor-core kernels (attention_mma.cu) for HS 64 and 128, forward and backward:
// written, not yet proven on a GPU, hence opt-in.
void attention_forward(__nv_bfloat16* out, float* lse, const __nv_bfloat16* q, const __nv_bfloat16* k,
                       const __nv_bfloat16* v, const int32_t* doc, int B, int T, int NH, int NKV, int HS,
                       cudaStream_t stream);

// dq (B, T, NH, HS), dk, dv (B, T, NKV, HS) written (bf16), from dout, q, out (B, T, NH, HS), k, v
// (B, T, NKV, HS) and the forward's lse (B, NH, T). dk/dv add their query heads in a fixed order, so two
// runs give bit-identical results. delta: scratch of B·NH·T floats (overwritten): the dq kernel leaves
// D_i = dout_i · out_i there for the dk/dv kernel.
void attention_backward(__nv_bfloat16* dq, __nv_bfloat16* dk, __nv_bfloat16* dv, const __nv_bfloat16* dout,
                        const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
                        const __nv_bfloat16* out, const float* lse, float* delta, const int32_t* doc, int B, int T,
                        int NH, int NKV, int HS, cudaStream_t stream);

}  // namespace iris::cuda
