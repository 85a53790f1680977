// Branch-free float exp for the CPU kernels' inner loops (softmax, SiLU, cross-entropy). glibc's expf
// is only vectorised under -ffast-math, so this inlines Cephes' expf (range reduction by ln 2, degree-6
// polynomial; ~1 ulp on [-87, 88]) written so that GCC turns a whole `omp simd` loop into AVX2 code.
#pragma once
#include <bit>
#include <cstdint>

namespace iris::cpu::detail {

// cond ? a : b as bit operations. GCC keeps a float `?:` (and std::fmin/fmax, libm calls) as a branch
// around arithmetic that might trap and then refuses to vectorise the loop; masks have no such problem.
inline float select(bool cond, float a, float b) {
  const uint32_t mask = 0u - static_cast<uint32_t>(cond);
  return std::bit_cast<float>((std::bit_cast<uint32_t>(a) & mask) | (std::bit_cast<uint32_t>(b) & ~mask));
}

// exp(x): exactly 0 below -87.3 (and for -inf), 2^127·e^r at most above 88.3, NaN for NaN.
inline float fast_exp(float x) {
  constexpr float kLow = -87.3f, kHigh = 88.3f;  // 2^n stays a normal float for n in [-126, 127]
  float clamped = select(x < kLow, kLow, x);
  clamped = select(clamped > kHigh, kHigh, clamped);
  // n = round(x / ln 2): adding 1.5·2^23 pushes the fraction out of the mantissa (round to nearest even);
  // std::floor would be a libm call here. A NaN n becomes 0 so the int conversion below is defined.
  constexpr float kRound = 12582912.0f;
  float n = (clamped * 1.44269504088896341f + kRound) - kRound;
  n = select(n == n, n, 0.0f);
  // r = x − n·ln 2, with ln 2 split into a part exact in float and a small correction
  const float r = clamped - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * r * r + r + 1.0f;  // e^r
  const float two_n = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
  return select(x < kLow, 0.0f, er * two_n);
}

}  // namespace iris::cpu::detail
