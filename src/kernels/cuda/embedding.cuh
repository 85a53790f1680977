// Vocab-parallel token embedding on the GPU; reference: cpu::embedding_forward / embedding_backward.
// wte (V_local, C) holds vocab rows [vocab_start, vocab_start + V_local); tokens outside give zero rows.
// Activations and weights bf16; the weight gradient is fp32 or bf16 (train.grad_dtype) and accumulates (+=).
#pragma once
#include "src/kernels/cuda/common.cuh"

namespace iris::cuda {

// out (N, C) bf16, tokens (N,), wte (V_local, C) bf16
void embedding_forward(bf16* out, const int32_t* tokens, const bf16* wte, int N, int C, int vocab_start, int V_local,
                       cudaStream_t stream);
// dwte (V_local, C) fp32 += rows of dout (N, C) bf16 for tokens in this shard. Each row sums its tokens
// in token order, as the CPU op does, so the result is bit-identical run to run (and to the CPU op
// given the same bf16 dout). No workspace, no atomics.
void embedding_backward(float* dwte, const bf16* dout, const int32_t* tokens, int N, int C, int vocab_start,
                        int V_local, cudaStream_t stream);

// Workspace bytes of the bf16-gradient embedding_backward for N tokens and V_local rows.
size_t embedding_backward_workspace_bytes(int N, int V_local);
// dwte (V_local, C) bf16 += the same row sums, each summed in fp32 in token order and added to its bf16 row
// once (one rounding per row and call, not per token). Deterministic, no atomics: the in-shard tokens
// are stably sorted by row (CUB radix sort of (row, token) pairs in `workspace`), then one block per
// distinct row sums its run. workspace: embedding_backward_workspace_bytes(N, V_local) device bytes.
void embedding_backward(bf16* dwte, const bf16* dout, const int32_t* tokens, int N, int C, int vocab_start,
                        int V_local, void* workspace, size_t workspace_bytes, cudaStream_t stream);

}  // namespace iris::cuda
