// Whole-buffer helpers used by the residual stream, gradient clipping and the global grad norm.
// sum_squares is deterministic for any thread count: fixed-size chunks are summed in parallel,
// then the chunk sums are added in order.
#include <algorithm>
#include <vector>

#include "src/kernels/cpu/ops.h"

namespace iris::cpu {
namespace {
constexpr size_t kParallelMin = 1 << 15;  // below this, threads cost more than they save
constexpr size_t kChunk = 1 << 14;        // sum_squares chunk; fixed so the result never depends on threads
}  // namespace

void add_inplace(float* a, const float* b, size_t n) {
  // a (n) += b (n)
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (size_t i = 0; i < n; ++i) a[i] += b[i];
}

double sum_squares(const float* x, size_t n) {
  // x (n)
  const size_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(chunks);  // (chunks,)
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (size_t c = 0; c < chunks; ++c) {
    const size_t begin = c * kChunk, end = std::min(n, begin + kChunk);
    double acc = 0.0;
#pragma omp simd reduction(+ : acc)
    for (size_t i = begin; i < end; ++i) acc += static_cast<double>(x[i]) * x[i];
    partial[c] = acc;
  }
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

void scale_inplace(float* x, float s, size_t n) {
  // x (n) *= s
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (size_t i = 0; i < n; ++i) x[i] *= s;
}

}  // namespace iris::cpu
