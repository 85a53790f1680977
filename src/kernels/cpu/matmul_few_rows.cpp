// Weight-streaming matrix-vector products: each thread takes a contiguous range of output features, and for
// each weight row computes its dot product with every input row (N ≤ 16 rows stay in L1/L2), so the weight
// matrix, the dominant memory traffic of a decode step, is read from memory exactly once.
#include "src/kernels/cpu/matmul_few_rows.h"

#include <cstddef>

namespace iris::cpu {

void matmul_forward_few_rows(float* out, const float* inp, const float* weight, int N, int IC, int OC) {
#pragma omp parallel for schedule(static)
  for (int o = 0; o < OC; ++o) {
    const float* w = weight + static_cast<size_t>(o) * IC;
    for (int n = 0; n < N; ++n) {
      const float* x = inp + static_cast<size_t>(n) * IC;
      float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
      for (int i = 0; i < IC; ++i) acc += x[i] * w[i];
      out[static_cast<size_t>(n) * OC + o] = acc;
    }
  }
}

}  // namespace iris::cpu
