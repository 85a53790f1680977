// Private to attention.cu, attention_simt.cu and the test: the plain SIMT kernels (one warp per query row or key row, fp32
// math, no tensor cores). They are the fallback for head sizes the tensor-core kernels do not cover and a
// second GPU implementation the test compares against, to tell a tile bug from a math bug.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>

namespace iris::cuda::detail {

// Same contracts as iris::cuda::attention_forward/backward; HS a multiple of 32, at most 256.
void attention_forward_simt(__nv_bfloat16* out, float* lse, const __nv_bfloat16* q, const __nv_bfloat16* k,
                            const __nv_bfloat16* v, const int32_t* doc, int B, int T, int NH, int NKV, int HS,
                            cudaStream_t stream);
void attention_backward_simt(__nv_bfloat16* dq, __nv_bfloat16* dk, __nv_bfloat16* dv,
                             const __nv_bfloat16* dout, const __nv_bfloat16* q, const __nv_bfloat16* k,
                             const __nv_bfloat16* v, const __nv_bfloat16* out, const float* lse,
                             const int32_t* doc, int B, int T, int NH, int NKV, int HS, cudaStream_t stream);

// The register-resident mma.sync kernels (attention_mma.cu): head size 64 or 128 and 16-byte aligned
// buffers only (they throw std::invalid_argument otherwise). attention_forward/backward take them when
// IRIS_ATTENTION=mma. delta: as attention_backward's.
bool attention_mma_supports(int HS, std::initializer_list<const void*> pointers);
// Whether the forward (or both backward kernels) fit the current device's shared memory (not sm_86/89's).
bool attention_mma_fits(int HS, bool backward);
void attention_forward_mma(__nv_bfloat16* out, float* lse, const __nv_bfloat16* q, const __nv_bfloat16* k,
                           const __nv_bfloat16* v, const int32_t* doc, int B, int T, int NH, int NKV, int HS,
                           cudaStream_t stream);
void attention_backward_mma(__nv_bfloat16* dq, __nv_bfloat16* dk, __nv_bfloat16* dv, const __nv_bfloat16* dout,
                            const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
                            const __nv_bfloat16* out, const float* lse, float* delta, const int32_t* doc, int B,
                            int T, int NH, int NKV, int HS, cudaStream_t stream);
// IRIS_ATTENTION=mma (read once): whether attention_forward/backward use the kernels above.
bool attention_mma_selected();

// Throws std::invalid_argument unless the shapes are usable (simt: by the SIMT kernels alone).
void check_attention_shapes(int B, int T, int NH, int NKV, int HS, bool simt);
// 1 / sqrt(HS), as the CPU op.
float attention_softmax_scale(int HS);

}  // namespace iris::cuda::detail
