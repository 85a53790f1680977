// Decode attention on the CPU: one task per (sequence, query head); two passes over the cached keys (scores
// with a running max, then exp and the weighted sum of values), so the softmax is exact in fp32.
#include "src/kernels/cpu/decode_attention.h"

#include <cmath>
#include <vector>

namespace iris::cpu {

void decode_attention_forward(float* out, const float* q, const float* k_cache, const float* v_cache,
                              const int32_t* slot, const int32_t* lengths, int B, int NH, int NKV, int HS,
                              int T_max) {
  const int group = NH / NKV;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
#pragma omp parallel
  {
    std::vector<float> scores(static_cast<size_t>(T_max));  // (T_max,) one row of probabilities
#pragma omp for collapse(2) schedule(static)
    for (int b = 0; b < B; ++b) {
      for (int h = 0; h < NH; ++h) {
        const int T = lengths[b];
        const size_t s_b = slot ? static_cast<size_t>(slot[b]) : static_cast<size_t>(b);
        const size_t kv_base = (s_b * NKV + h / group) * T_max * HS;
        const float* qh = q + (static_cast<size_t>(b) * NH + h) * HS;
        const float* kh = k_cache + kv_base;
        const float* vh = v_cache + kv_base;
        float m = -INFINITY;
        for (int j = 0; j < T; ++j) {
          float s = 0.0f;
#pragma omp simd reduction(+ : s)
          for (int d = 0; d < HS; ++d) s += qh[d] * kh[static_cast<size_t>(j) * HS + d];
          scores[j] = s * scale;
          m = scores[j] > m ? scores[j] : m;
        }
        float sum = 0.0f;
        for (int j = 0; j < T; ++j) {
          scores[j] = std::exp(scores[j] - m);
          sum += scores[j];
        }
        float* oh = out + (static_cast<size_t>(b) * NH + h) * HS;
        for (int d = 0; d < HS; ++d) oh[d] = 0.0f;
        const float inv = 1.0f / sum;
        for (int j = 0; j < T; ++j) {
          const float p = scores[j] * inv;
          const float* vj = vh + static_cast<size_t>(j) * HS;
#pragma omp simd
          for (int d = 0; d < HS; ++d) oh[d] += p * vj[d];
        }
      }
    }
  }
}

}  // namespace iris::cpu
