// Helpers for the GPU kernel tests: skip without a device, seeded random host data, bf16 rounding,
// device buffers, and the element-wise comparison |got − ref| ≤ atol + rtol·|ref| that every test uses.
// Nothing here touches the GPU before a test body runs, so listing the tests works without a device.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "src/core/dtype.h"
#include "src/kernels/cuda/common.cuh"
#include "tests/gpu/gpu_skip.h"

namespace iris::test {

// n values uniform in [lo, hi), reproducible from the seed.
inline std::vector<float> random_floats(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

inline std::vector<int32_t> random_ints(size_t n, uint64_t seed, int32_t lo, int32_t hi_inclusive) {
  std::mt19937_64 gen(seed);
  std::uniform_int_distribution<int32_t> dist(lo, hi_inclusive);
  std::vector<int32_t> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

// bf16 round trip (round to nearest even, as __float2bfloat16_rn): the CPU reference is fed exactly
// the values the GPU sees.
inline std::vector<__nv_bfloat16> to_bf16(const std::vector<float>& v) {
  std::vector<__nv_bfloat16> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    __nv_bfloat16_raw raw;
    raw.x = float_to_bf16(v[i]);
    out[i] = raw;
  }
  return out;
}
inline std::vector<float> to_float(const std::vector<__nv_bfloat16>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = bf16_to_float(static_cast<__nv_bfloat16_raw>(v[i]).x);
  return out;
}
inline std::vector<float> round_bf16(const std::vector<float>& v) { return to_float(to_bf16(v)); }

// Owns n elements of device memory; upload/download are synchronous (tests only).
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) { IRIS_CUDA_CHECK(cudaMalloc(&ptr_, std::max<size_t>(n, 1) * sizeof(T))); }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() { return ptr_; }
  size_t size() const { return n_; }
  void upload(const std::vector<T>& host) {
    IRIS_CUDA_CHECK(cudaMemcpy(ptr_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    IRIS_CUDA_CHECK(cudaDeviceSynchronize());
    IRIS_CUDA_CHECK(cudaMemcpy(host.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  T* ptr_ = nullptr;
  size_t n_;
};

inline std::vector<float> download_as_float(const DeviceBuffer<float>& b) { return b.download(); }
inline std::vector<float> download_as_float(const DeviceBuffer<__nv_bfloat16>& b) { return to_float(b.download()); }

// Passes when |got[i] − ref[i]| ≤ atol + rtol·|ref[i]| for every i (NaN anywhere fails). Prints the
// max abs and max rel error either way, and on failure the worst offending element.
inline ::testing::AssertionResult all_close(const std::string& what, const std::vector<float>& got,
                                            const std::vector<float>& ref, double atol, double rtol) {
  if (got.size() != ref.size())
    return ::testing::AssertionFailure() << what << ": size " << got.size() << " != reference " << ref.size();
  double max_abs = 0.0, max_rel = 0.0, worst_excess = 0.0;
  size_t bad = 0, worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], r = ref[i], diff = std::fabs(g - r);
    const bool ok = std::isfinite(g) == std::isfinite(r) && (diff <= atol + rtol * std::fabs(r) || g == r);
    if (std::isfinite(diff)) {
      max_abs = std::max(max_abs, diff);
      if (r != 0.0) max_rel = std::max(max_rel, diff / std::fabs(r));
    }
    if (!ok) {
      const double excess = std::isfinite(diff) ? diff - (atol + rtol * std::fabs(r)) : INFINITY;
      if (bad == 0 || excess > worst_excess) worst_excess = excess, worst = i;
      ++bad;
    }
  }
  std::printf("  %-40s n=%zu max_abs=%.3e max_rel=%.3e (atol %.1e rtol %.1e)\n", what.c_str(), got.size(), max_abs,
              max_rel, atol, rtol);
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": " << bad << " of " << got.size()
                                       << " elements outside atol + rtol·|ref|; worst at " << worst << ": got "
                                       << got[worst] << ", ref " << ref[worst] << " (max_abs " << max_abs
                                       << ", max_rel " << max_rel << ")";
}

// Stated tolerances. bf16 keeps 8 significant bits: one rounding is ≤ 2^-8 ≈ 3.9e-3 relative, and a
// bf16 output of fp32 math differs from the fp32 reference by that plus accumulation-order noise.
struct Tolerance {
  double atol, rtol;
};
inline constexpr Tolerance kBf16Out{1e-2, 1.6e-2};
inline constexpr Tolerance kFp32Out{1e-5, 1e-5};

// Seeded normal bf16 data: the bits the GPU gets and the same numbers widened to fp32 for the CPU
// reference, so that only the kernels' arithmetic differs.
struct Bf16Data {
  std::vector<__nv_bfloat16> bits;     // what the GPU gets
  std::vector<float> values;  // the same numbers in fp32, for the CPU reference
};

inline Bf16Data random_bf16(size_t n, std::mt19937& rng, float stddev) {
  std::normal_distribution<float> dist(0.0f, stddev);
  Bf16Data d{std::vector<__nv_bfloat16>(n), std::vector<float>(n)};
  for (size_t i = 0; i < n; ++i) {
    d.bits[i] = __float2bfloat16(dist(rng));
    d.values[i] = __bfloat162float(d.bits[i]);
  }
  return d;
}


// Element-wise |got − ref| ≤ atol + rtol·|ref| (NaN fails), and ‖got − ref‖₂ / ‖ref‖₂ ≤ max_rel_l2; prints
// the max abs/rel errors either way.
inline void expect_close(const std::string& what, const std::vector<float>& got, const std::vector<float>& ref,
                  double atol, double rtol, double max_rel_l2) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  double max_abs = 0, max_rel = 0, diff2 = 0, ref2 = 0;
  size_t violations = 0, worst = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = std::fabs(static_cast<double>(got[i]) - ref[i]);
    if (!(d <= atol + rtol * std::fabs(ref[i]))) ++violations;
    if (!(d <= max_abs)) max_abs = d, worst = i;
    if (std::fabs(ref[i]) > atol) max_rel = std::max(max_rel, d / std::fabs(ref[i]));
    diff2 += d * d;
    ref2 += static_cast<double>(ref[i]) * ref[i];
  }
  const double rel_l2 = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  std::printf("  %-44s max_abs %.3e  max_rel %.3e  rel_l2 %.3e\n", what.c_str(), max_abs, max_rel, rel_l2);
  EXPECT_EQ(violations, 0u) << what << ": " << violations << " of " << ref.size() << " elements beyond atol " << atol
                            << " + rtol " << rtol << "; worst at " << worst << ": got " << got[worst] << ", want "
                            << ref[worst];
  EXPECT_LE(rel_l2, max_rel_l2) << what;
}


}  // namespace iris::test
