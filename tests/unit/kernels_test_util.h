// Shared helpers of the CPU kernel tests (test_kernels_*.cpp): seeded random data, the
// atol + rtol·|ref| comparison, and central finite differences in double.
//
// How the tolerances are chosen: each fp32 kernel is compared with a double-precision reference.
// fp32 sums of at most a few hundred O(1) terms are off by ~1e-6 relative; kFp32 leaves two orders of
// magnitude for cancellation, while a wrong formula (a missing term, a sign, an off-by-one mask) is off
// by 1e-2 or more. Gradients are compared with central differences of a double-precision reference
// loss L = Σ w ⊙ out with step 1e-4: truncation error ~h²·|L'''| ≈ 1e-8 and rounding ~1e-16/h ≈ 1e-12,
// so the finite difference is exact at fp32 resolution and the same kFp32 tolerance applies.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace iris::test {

struct Tolerance {
  double atol, rtol;
};
inline constexpr Tolerance kFp32{1e-5, 1e-4};
inline constexpr double kFdStep = 1e-4;

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> x(n);
  for (float& v : x) v = dist(gen);
  return x;
}

inline std::vector<double> to_double(const std::vector<float>& x) { return {x.begin(), x.end()}; }

// Passes when |got[i] − ref[i]| ≤ atol + rtol·|ref[i]| for every i; otherwise names the worst element.
inline ::testing::AssertionResult all_close(const float* got, const double* ref, size_t n, Tolerance tol) {
  size_t worst = 0, failures = 0;
  double worst_excess = -1.0, max_abs = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - ref[i]);
    const double excess = err - (tol.atol + tol.rtol * std::fabs(ref[i]));
    if (!(excess <= 0.0)) ++failures;  // NaN counts as a failure
    if (!(excess <= worst_excess)) worst_excess = excess, worst = i;
    if (err > max_abs) max_abs = err;
  }
  if (failures == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << failures << " of " << n << " elements outside atol " << tol.atol
                                       << " + rtol " << tol.rtol << "·|ref|; worst [" << worst << "] got "
                                       << got[worst] << " ref " << ref[worst] << "; max abs err " << max_abs;
}
inline ::testing::AssertionResult all_close(const std::vector<float>& got, const std::vector<double>& ref,
                                            Tolerance tol) {
  if (got.size() != ref.size()) return ::testing::AssertionFailure() << "size " << got.size() << " vs " << ref.size();
  return all_close(got.data(), ref.data(), got.size(), tol);
}

// Central differences dL/dx[i] = (L(x + h e_i) − L(x − h e_i)) / 2h for the listed i; loss reads x.
inline std::vector<double> finite_difference(std::vector<double>& x, const std::function<double()>& loss,
                                             const std::vector<size_t>& indices) {
  std::vector<double> grad;
  grad.reserve(indices.size());
  for (size_t i : indices) {
    const double saved = x[i];
    x[i] = saved + kFdStep;
    const double plus = loss();
    x[i] = saved - kFdStep;
    const double minus = loss();
    x[i] = saved;
    grad.push_back((plus - minus) / (2 * kFdStep));
  }
  return grad;
}

inline std::vector<size_t> all_indices(size_t n) {
  std::vector<size_t> idx(n);
  for (size_t i = 0; i < n; ++i) idx[i] = i;
  return idx;
}

// At most `count` distinct indices below n, chosen at random (all of them when n ≤ count).
inline std::vector<size_t> some_indices(size_t n, size_t count, uint32_t seed) {
  if (n <= count) return all_indices(n);
  std::vector<size_t> idx = all_indices(n);
  std::shuffle(idx.begin(), idx.end(), std::mt19937(seed));
  idx.resize(count);
  return idx;
}

// got (fp32, the kernel's gradient) at the listed indices against the finite-difference gradient of loss.
inline ::testing::AssertionResult gradient_matches(const std::vector<float>& got, std::vector<double>& x,
                                                   const std::function<double()>& loss,
                                                   const std::vector<size_t>& indices, Tolerance tol = kFp32) {
  const std::vector<double> fd = finite_difference(x, loss, indices);
  std::vector<float> picked;
  for (size_t i : indices) picked.push_back(got[i]);
  return all_close(picked.data(), fd.data(), fd.size(), tol);
}

inline double weighted_sum(const std::vector<double>& w, const std::vector<double>& out) {
  double s = 0.0;
  for (size_t i = 0; i < out.size(); ++i) s += w[i] * out[i];
  return s;
}

}  // namespace iris::test
