// Rotary position embedding (Su et al. 2021, RoFormer) in HF's rotate-half layout: dimension i
// pairs with i + HS/2. Angles are pos · inv_freq rounded to fp32, as HF LlamaRotaryEmbedding computes
// them, so HF weights load without permutation and match HF's activations.
#include <cmath>

#include "src/kernels/cpu/ops.h"

namespace iris::cpu {

void rope_tables(float* cos, float* sin, const int32_t* pos, const float* inv_freq, int N, int HS) {
  // cos, sin (N, HS/2), pos (N,), inv_freq (HS/2,)
  const int half = HS / 2;
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    for (int i = 0; i < half; ++i) {
      const float angle = static_cast<float>(pos[n]) * inv_freq[i];
      cos[static_cast<size_t>(n) * half + i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      sin[static_cast<size_t>(n) * half + i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }
}

namespace {
// x (N, H, HS) rotated by +angle (sign = 1) or −angle (sign = −1, the transpose).
void rotate(float* x, const float* cos, const float* sin, int N, int H, int HS, float sign) {
  const int half = HS / 2;
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const float* c = cos + static_cast<size_t>(n) * half;  // (HS/2,)
    const float* s = sin + static_cast<size_t>(n) * half;  // (HS/2,)
    for (int h = 0; h < H; ++h) {
      float* lo = x + (static_cast<size_t>(n) * H + h) * HS;  // (HS/2,) first half
      float* hi = lo + half;                                   // (HS/2,) second half
#pragma omp simd
      for (int i = 0; i < half; ++i) {
        const float a = lo[i], b = hi[i], si = sign * s[i];
        lo[i] = a * c[i] - b * si;
        hi[i] = b * c[i] + a * si;
      }
    }
  }
}
}  // namespace

void rope_forward(float* x, const float* cos, const float* sin, int N, int H, int HS) {
  rotate(x, cos, sin, N, H, HS, 1.0f);
}

void rope_backward(float* dx, const float* cos, const float* sin, int N, int H, int HS) {
  rotate(dx, cos, sin, N, H, HS, -1.0f);
}

}  // namespace iris::cpu
