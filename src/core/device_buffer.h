// An owning, zero-initialised device allocation of n elements of T: the trainer's flat device buffers
// (bf16 weights, fp32 gradients, the optimizer shard), the pipeline's transfer buffers, the cuBLASLt
// workspace and the communicators' scratch: the one owner of a plain device allocation. Host-clean.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "src/core/cuda_check.h"

namespace iris {

template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t n) : size_(n) {
    if (n == 0) return;
    IRIS_CUDA_CHECK(cudaMalloc(&data_, n * sizeof(T)));
    IRIS_CUDA_CHECK(cudaMemset(data_, 0, n * sizeof(T)));
  }
  ~DeviceBuffer() {
    if (data_ != nullptr) cudaFree(data_);  // no check: destructors must not throw
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept { *this = std::move(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    return *this;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  T* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace iris
