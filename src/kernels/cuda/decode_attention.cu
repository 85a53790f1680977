// One block per (query head, sequence); its warps take every kWarps-th cached key, each keeping an online
// softmax (running max m, sum l and the weighted sum of values, FlashAttention's rescaling, Dao et al. 2022),
// and the block merges the warps' partial results at the end. A lane holds HS/32 dimensions of the query and
// the accumulator, so a key's dot product is one warp sum and the cache is read once, row by row, coalesced.
#include <cmath>

#include "src/kernels/cuda/common.cuh"
#include "src/kernels/cuda/decode_attention.cuh"

namespace iris::cuda {
namespace {

constexpr int kWarps = 8;

template <int HS>
__global__ void decode_attention_kernel(bf16* out, const bf16* q, const bf16* k_cache, const bf16* v_cache,
                                        const int32_t* slot, const int32_t* lengths, int NH, int NKV, int T_max,
                                        float scale) {
  constexpr int kPer = HS / 32;  // dimensions per lane
  const int h = blockIdx.x, b = blockIdx.y, lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int T = lengths[b];
  const size_t s_b = slot ? static_cast<size_t>(slot[b]) : static_cast<size_t>(b);
  const size_t base = (s_b * NKV + h / (NH / NKV)) * T_max * HS;
  const bf16* qh = q + (static_cast<size_t>(b) * NH + h) * HS;
  float qv[kPer], acc[kPer];
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    qv[i] = to_float(qh[lane + 32 * i]) * scale;
    acc[i] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int j = warp; j < T; j += kWarps) {
    const bf16* kj = k_cache + base + static_cast<size_t>(j) * HS;
    const bf16* vj = v_cache + base + static_cast<size_t>(j) * HS;
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < kPer; ++i) s += qv[i] * to_float(kj[lane + 32 * i]);
    s = warp_sum(s);
    const float m_new = fmaxf(m, s);
    const float rescale = __expf(m - m_new), p = __expf(s - m_new);  // rescale = 0 on the first key
    l = l * rescale + p;
#pragma unroll
    for (int i = 0; i < kPer; ++i) acc[i] = acc[i] * rescale + p * to_float(vj[lane + 32 * i]);
    m = m_new;
  }
  __shared__ float warp_m[kWarps], warp_l[kWarps], warp_acc[kWarps][HS];
  if (lane == 0) warp_m[warp] = m, warp_l[warp] = l;
#pragma unroll
  for (int i = 0; i < kPer; ++i) warp_acc[warp][lane + 32 * i] = acc[i];
  __syncthreads();
  float M = -INFINITY;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) M = fmaxf(M, warp_m[w]);
  for (int d = threadIdx.x; d < HS; d += blockDim.x) {
    float L = 0.0f, o = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      if (warp_m[w] == -INFINITY) continue;  // a warp that saw no key (T < kWarps)
      const float c = __expf(warp_m[w] - M);
      L += warp_l[w] * c;
      o += warp_acc[w][d] * c;
    }
    out[(static_cast<size_t>(b) * NH + h) * HS + d] = from_float<bf16>(o / L);
  }
}

template <int HS>
void launch(bf16* out, const bf16* q, const bf16* k, const bf16* v, const int32_t* slot, const int32_t* lengths, int B,
            int NH, int NKV, int T_max, cudaStream_t stream) {
  decode_attention_kernel<HS><<<dim3(NH, B), 32 * kWarps, 0, stream>>>(out, q, k, v, slot, lengths, NH, NKV, T_max,
                                                                       1.0f / std::sqrt(static_cast<float>(HS)));
  IRIS_CUDA_CHECK_LAUNCH();
}

// One block per row n, threads over its NKV·HS elements.
__global__ void kv_cache_write_kernel(bf16* k_cache, bf16* v_cache, const bf16* k_rows, const bf16* v_rows,
                                      const int32_t* slot, const int32_t* pos, int NKV, int HS, int T_max) {
  const int n = blockIdx.x;
  for (int e = threadIdx.x; e < NKV * HS; e += blockDim.x) {
    const int h = e / HS, d = e % HS;
    const size_t dst = ((static_cast<size_t>(slot[n]) * NKV + h) * T_max + pos[n]) * HS + d;
    const size_t src = static_cast<size_t>(n) * NKV * HS + e;
    k_cache[dst] = k_rows[src];
    v_cache[dst] = v_rows[src];
  }
}

}  // namespace

void kv_cache_write(bf16* k_cache, bf16* v_cache, const bf16* k_rows, const bf16* v_rows, const int32_t* slot,
                    const int32_t* pos, int N, int NKV, int HS, int T_max, cudaStream_t stream) {
  if (N == 0) return;
  kv_cache_write_kernel<<<N, 256, 0, stream>>>(k_cache, v_cache, k_rows, v_rows, slot, pos, NKV, HS, T_max);
  IRIS_CUDA_CHECK_LAUNCH();
}

void decode_attention_forward(bf16* out, const bf16* q, const bf16* k_cache, const bf16* v_cache, const int32_t* slot,
                              const int32_t* lengths, int B, int NH, int NKV, int HS, int T_max, cudaStream_t stream) {
  IRIS_CUDA_REQUIRE(NKV > 0 && NH % NKV == 0, "decode_attention_forward: NH must be a multiple of NKV");
  if (B == 0) return;
  switch (HS) {
    case 32: return launch<32>(out, q, k_cache, v_cache, slot, lengths, B, NH, NKV, T_max, stream);
    case 64: return launch<64>(out, q, k_cache, v_cache, slot, lengths, B, NH, NKV, T_max, stream);
    case 128: return launch<128>(out, q, k_cache, v_cache, slot, lengths, B, NH, NKV, T_max, stream);
    case 256: return launch<256>(out, q, k_cache, v_cache, slot, lengths, B, NH, NKV, T_max, stream);
    default: IRIS_CUDA_REQUIRE(false, "decode_attention_forward: HS must be 32, 64, 128 or 256");
  }
}

}  // namespace iris::cuda
