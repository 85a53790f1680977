// IRIS_REQUIRE_GPU(): skip a GPU test (GTEST_SKIP with the reason) where no CUDA device is usable.
// Needs only the CUDA runtime and GoogleTest, so host-compiled (.cpp) GPU tests can use it too.
#pragma once
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace iris::test {

// Empty when a CUDA device is usable, else why not (cudaGetDeviceCount's error string).
inline std::string gpu_unavailable_reason() {
  int count = 0;
  const cudaError_t rc = cudaGetDeviceCount(&count);
  if (rc != cudaSuccess) return std::string("no CUDA device: ") + cudaGetErrorString(rc);
  if (count == 0) return "no CUDA device: cudaGetDeviceCount found 0 devices";
  return "";
}

// Skips the test without a usable device. With IRIS_EXPECT_GPU=1 in the environment (set it on GPU
// machines) a missing device fails instead, so a driver/runtime mismatch cannot pass as all-skipped.
inline bool gpu_expected() {
  const char* v = std::getenv("IRIS_EXPECT_GPU");
  return v != nullptr && *v != '\0' && std::string(v) != "0";
}

#define IRIS_REQUIRE_GPU()                                                              \
  do {                                                                                  \
    const std::string iris_gpu_reason_ = ::iris::test::gpu_unavailable_reason();        \
    if (!iris_gpu_reason_.empty()) {                                                    \
      if (::iris::test::gpu_expected()) FAIL() << iris_gpu_reason_ << " (IRIS_EXPECT_GPU is set)"; \
      GTEST_SKIP() << iris_gpu_reason_;                                                 \
    }                                                                                   \
  } while (0)

}  // namespace iris::test
