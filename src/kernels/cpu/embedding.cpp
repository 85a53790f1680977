// Vocab-parallel token embedding (Megatron-LM, Shoeybi et al. 2019, sec. 3): this shard holds rows
// [vocab_start, vocab_start + V_local) of the table; other tokens get a zero row, and the TP
// all-reduce sums the shards. Backward sums rows in token order, so it is bit-reproducible.
#include <algorithm>
#include <cstring>

#include "src/kernels/cpu/ops.h"

namespace iris::cpu {
namespace {
constexpr int kColumnBlock = 32;  // backward: columns per task; each task walks all N tokens in order
}  // namespace

void embedding_forward(float* out, const int32_t* tokens, const float* wte, int N, int C, int vocab_start,
                       int V_local) {
  // out (N, C), tokens (N,), wte (V_local, C)
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    float* o = out + static_cast<size_t>(n) * C;
    const int row = tokens[n] - vocab_start;
    if (row >= 0 && row < V_local)
      std::memcpy(o, wte + static_cast<size_t>(row) * C, sizeof(float) * C);
    else
      std::memset(o, 0, sizeof(float) * C);
  }
}

void embedding_backward(float* dwte, const float* dout, const int32_t* tokens, int N, int C, int vocab_start,
                        int V_local) {
  // dwte (V_local, C) +=, dout (N, C), tokens (N,)
  // Parallel over column blocks, sequential over tokens: a row hit by several tokens is summed in token
  // order whatever the thread count.
  const int blocks = (C + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for schedule(static)
  for (int blk = 0; blk < blocks; ++blk) {
    const int c0 = blk * kColumnBlock, width = std::min(kColumnBlock, C - c0);
    for (int n = 0; n < N; ++n) {
      const int row = tokens[n] - vocab_start;
      if (row < 0 || row >= V_local) continue;
      float* dst = dwte + static_cast<size_t>(row) * C + c0;
      const float* src = dout + static_cast<size_t>(n) * C + c0;
#pragma omp simd
      for (int c = 0; c < width; ++c) dst[c] += src[c];
    }
  }
}

}  // namespace iris::cpu
