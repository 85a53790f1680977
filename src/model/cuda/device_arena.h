// One cudaMalloc carved into typed buffers that live and die together (the activations of a micro-batch,
// a stage's scratch), the device counterpart of src/core/arena.h. Sized by carving twice: a first pass
// on an unallocated arena only counts bytes (take() returns nullptr), allocate() makes the one
// allocation, and a second identical pass hands out the buffers. Host-clean (no device code).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <utility>

#include "src/kernels/cuda/common.cuh"

namespace iris {

class DeviceArena {
 public:
  // Every buffer starts on a 256-byte boundary: cuBLASLt's best kernels and the 16-byte vector loads
  // of the attention kernels want aligned pointers.
  static constexpr size_t kAlign = 256;

  DeviceArena() = default;
  ~DeviceArena() {
    if (base_ != nullptr) cudaFree(base_);  // no check: destructors must not throw
  }
  DeviceArena(const DeviceArena&) = delete;
  DeviceArena& operator=(const DeviceArena&) = delete;
  DeviceArena(DeviceArena&& other) noexcept { *this = std::move(other); }
  DeviceArena& operator=(DeviceArena&& other) noexcept {
    std::swap(base_, other.base_);
    std::swap(capacity_, other.capacity_);
    std::swap(used_, other.used_);
    return *this;
  }

  // n elements of T; nullptr while sizing. Running past the allocation is a layout bug (the two passes
  // differed), reported rather than handed out.
  template <typename T>
  T* take(size_t n) {
    const size_t offset = used_;
    used_ += (n * sizeof(T) + kAlign - 1) / kAlign * kAlign;
    if (base_ == nullptr) return nullptr;
    IRIS_CUDA_REQUIRE(used_ <= capacity_, "DeviceArena: the carving pass asked for more than the sizing pass");
    return reinterpret_cast<T*>(static_cast<char*>(base_) + offset);
  }

  // Allocates the bytes counted so far (zeroed) and restarts carving from the beginning.
  void allocate() {
    IRIS_CUDA_REQUIRE(base_ == nullptr, "DeviceArena: allocate() called twice");
    capacity_ = used_ > 0 ? used_ : kAlign;
    IRIS_CUDA_CHECK(cudaMalloc(&base_, capacity_));
    IRIS_CUDA_CHECK(cudaMemset(base_, 0, capacity_));
    used_ = 0;
  }

  bool allocated() const { return base_ != nullptr; }
  size_t used_bytes() const { return used_; }
  size_t capacity_bytes() const { return capacity_; }

 private:
  void* base_ = nullptr;
  size_t capacity_ = 0;
  size_t used_ = 0;
};

}  // namespace iris
