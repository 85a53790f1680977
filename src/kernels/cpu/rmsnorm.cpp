// RMSNorm (Zhang & Sennrich 2019), no bias: out = x · rstd · w, rstd = 1/sqrt(mean(x²) + eps),
// the mean taken in fp32 as HF LlamaRMSNorm does. Backward: with g = dout·w,
// dx = rstd·g − rstd³·(g·x)/C · x, and dw = Σ_n dout·x·rstd summed over rows in a fixed order.
#include <algorithm>
#include <cmath>

#include "src/kernels/cpu/ops.h"

namespace iris::cpu {
namespace {
constexpr int kColumnBlock = 32;  // dweight: columns per task, each task sums its rows in order
}  // namespace

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int N, int C, float eps) {
  // out (N, C), rstd (N,), inp (N, C), weight (C,)
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const float* x = inp + static_cast<size_t>(n) * C;  // (C,)
    float* o = out + static_cast<size_t>(n) * C;        // (C,)
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int c = 0; c < C; ++c) ss += x[c] * x[c];
    const float r = 1.0f / std::sqrt(ss / static_cast<float>(C) + eps);
    rstd[n] = r;
#pragma omp simd
    for (int c = 0; c < C; ++c) o[c] = x[c] * r * weight[c];
  }
}

void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int N, int C) {
  // dinp (N, C) written, dweight (C,) +=, dout (N, C), inp (N, C), weight (C,), rstd (N,)
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const size_t row = static_cast<size_t>(n) * C;
    const float* x = inp + row;
    const float* dy = dout + row;
    float* dx = dinp + row;
    float gx = 0.0f;  // Σ_c dout·w·x
#pragma omp simd reduction(+ : gx)
    for (int c = 0; c < C; ++c) gx += dy[c] * weight[c] * x[c];
    const float r = rstd[n];
    const float coeff = r * r * r * gx / static_cast<float>(C);
#pragma omp simd
    for (int c = 0; c < C; ++c) dx[c] = r * dy[c] * weight[c] - coeff * x[c];
  }

  const int blocks = (C + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for schedule(static)
  for (int blk = 0; blk < blocks; ++blk) {
    const int c0 = blk * kColumnBlock, width = std::min(kColumnBlock, C - c0);
    float acc[kColumnBlock] = {};  // (width,)
    for (int n = 0; n < N; ++n) {
      const size_t row = static_cast<size_t>(n) * C + c0;
      const float r = rstd[n];
#pragma omp simd
      for (int c = 0; c < width; ++c) acc[c] += dout[row + c] * inp[row + c] * r;
    }
    for (int c = 0; c < width; ++c) dweight[c0 + c] += acc[c];
  }
}

}  // namespace iris::cpu
