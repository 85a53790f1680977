// LoRA forward/backward by explicit GEMMs (OpenBLAS), no autograd. The dropout mask is recomputed from
// the counter-based RNG in the backward rather than stored: (N, IC) bytes per adapted layer saved.
#include "src/kernels/cpu/lora.h"

#include <cblas.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "src/core/check.h"
#include "src/core/rng.h"

namespace iris::cpu {

float lora_scale(float alpha, int R, bool use_rslora) {
  IRIS_USER_CHECK(R > 0, "lora.r must be positive, got {}", R);
  return use_rslora ? alpha / std::sqrt(static_cast<float>(R)) : alpha / static_cast<float>(R);
}

void lora_init(float* A, float* B, uint64_t seed, std::string_view name, int IC, int OC, int R) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(IC));
  const uint64_t stream = name_hash(name);
  for (size_t i = 0; i < static_cast<size_t>(R) * IC; ++i)
    A[i] = static_cast<float>((2.0 * random_uniform(seed, stream, i) - 1.0) * bound);
  std::memset(B, 0, sizeof(float) * static_cast<size_t>(OC) * R);
}

bool LoraDropout::keeps(size_t i) const { return random_uniform(seed, stream, i) >= p; }

void lora_dropout(float* x_dropped, const float* x, const LoraDropout& dropout, int N, int IC) {
  const size_t n = static_cast<size_t>(N) * IC;
  if (dropout.p <= 0.0f) {
    std::memcpy(x_dropped, x, n * sizeof(float));
    return;
  }
  const float keep_scale = 1.0f / (1.0f - dropout.p);
  for (size_t i = 0; i < n; ++i) x_dropped[i] = dropout.keeps(i) ? x[i] * keep_scale : 0.0f;
}

void lora_linear_forward(float* out, float* xa, const float* x, const float* x_dropped, const float* W0,
                         const float* A, const float* B, float scale, int N, int IC, int OC, int R) {
  // out = x · W0^T;  xa = x_dropped · A^T;  out += scale · xa · B^T
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, IC, 1.0f, x, IC, W0, IC, 0.0f, out, OC);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, R, IC, 1.0f, x_dropped, IC, A, IC, 0.0f, xa, R);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, R, scale, xa, R, B, R, 1.0f, out, OC);
}

void lora_linear_backward(float* dx, float* dA, float* dB, float* scratch, const float* dout, const float* x_dropped,
                          const float* xa, const float* W0, const float* A, const float* B, float scale,
                          const LoraDropout& dropout, int N, int IC, int OC, int R) {
  // dB += scale · dout^T · xa;  scratch = dxa = scale · dout · B;  dA += dxa^T · x_dropped
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, R, N, scale, dout, OC, xa, R, 1.0f, dB, R);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, R, OC, scale, dout, OC, B, R, 0.0f, scratch, R);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, R, IC, N, 1.0f, scratch, R, x_dropped, IC, 1.0f, dA, IC);
  if (dx == nullptr) return;
  // dx = dout · W0 (the frozen base passes the gradient through), then the adapter path dxa · A
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IC, OC, 1.0f, dout, OC, W0, IC, 0.0f, dx, IC);
  if (dropout.p <= 0.0f) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IC, R, 1.0f, scratch, R, A, IC, 1.0f, dx, IC);
    return;
  }
  const float keep_scale = 1.0f / (1.0f - dropout.p);
  std::vector<float> row(IC);  // (IC,) one row of dxa · A before the mask
  for (int n = 0; n < N; ++n) {
    cblas_sgemv(CblasRowMajor, CblasTrans, R, IC, 1.0f, A, IC, scratch + static_cast<size_t>(n) * R, 1, 0.0f,
                row.data(), 1);
    float* dx_row = dx + static_cast<size_t>(n) * IC;
    for (int c = 0; c < IC; ++c)
      if (dropout.keeps(static_cast<size_t>(n) * IC + c)) dx_row[c] += row[c] * keep_scale;
  }
}

}  // namespace iris::cpu
