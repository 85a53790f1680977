// Shared by the CUDA kernel files: the cuBLASLt check macro (the CUDA runtime's is src/core/cuda_check.h,
// included here), bf16 helpers and block reductions. Convention: launchers take the stream last and never
// synchronise. CUDA sources must not include fmt (fmt 9's consteval format strings do not compile under
// nvcc in C++20), so src/core/check.h is off limits here: failures go through throw_cuda_failure, which
// throws iris::Error with the rank, the call, file:line and the library's error string, as IRIS_CHECK does.
// Host-clean: the device helpers are compiled only under nvcc (__CUDACC__), so the launcher headers
// (*.cuh, host declarations only) can be included from plain C++ files built by the host compiler.
#pragma once
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "src/core/cuda_check.h"

namespace iris::cuda {

using bf16 = __nv_bfloat16;

}  // namespace iris::cuda

#define IRIS_CUBLAS_CHECK(call)                                                                 \
  do {                                                                                          \
    const cublasStatus_t iris_cublas_rc_ = (call);                                              \
    if (iris_cublas_rc_ != CUBLAS_STATUS_SUCCESS)                                               \
      ::iris::cuda::throw_cuda_failure(#call, __FILE__, __LINE__,                               \
                                       cublasLtGetStatusString(iris_cublas_rc_));               \
  } while (0)


namespace iris::cuda {

inline constexpr unsigned ceil_div(size_t a, size_t b) { return static_cast<unsigned>((a + b - 1) / b); }

#if defined(__CUDACC__)

// Loads and stores that read fp32 or bf16 storage as fp32 math (bf16 rounds to nearest even).
__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(bf16 x) { return __bfloat162float(x); }
template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) { return x; }
template <>
__device__ __forceinline__ bf16 from_float<bf16>(float x) { return __float2bfloat16_rn(x); }

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}
__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, offset));
  return x;
}

// Sum over the whole block, returned to every thread. The order is fixed by the block shape, so the
// result is the same on every run. `scratch` holds one float per warp; blockDim.x is a multiple of 32.
__device__ __forceinline__ float block_sum(float x, float* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  x = warp_sum(x);
  __syncthreads();  // scratch may still be read by a previous block_sum
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < warps; ++w) total += scratch[w];
  return total;
}

// Lets `kernel` use `bytes` of dynamic shared memory (past the default 48 KiB) and asks for the largest
// shared-memory carve-out of the SM's L1, so as many blocks fit per SM as their shared memory allows.
template <typename Kernel>
void allow_shared_memory(Kernel* kernel, size_t bytes) {
  IRIS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  IRIS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                       cudaSharedmemCarveoutMaxShared));
}
#endif  // __CUDACC__

}  // namespace iris::cuda

namespace iris::cuda {

// Grid for a grid-stride loop over n elements with `threads` per block: enough blocks to fill any
// current GPU, capped so the launch stays valid for any n.
inline unsigned elementwise_blocks(size_t n, unsigned threads) {
  const size_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 65536 ? (blocks == 0 ? 1 : blocks) : 65536);
}

// Whether a block of the current device may use `bytes` of dynamic shared memory (opting in past 48 KiB):
// up to 163 KiB on sm_80, 227 KiB on sm_90, but 99 KiB on sm_86/sm_89 (which run the sm_80 code), where a
// kernel sized for A100/H100 must fall back to a smaller one instead of failing to launch.
// Asked at every attention launch, so the device attribute is read once per device.
inline bool shared_memory_fits(size_t bytes) {
  constexpr int kDevices = 64;
  static std::atomic<int> optin_of[kDevices] = {};  // 0: not read yet
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return false;
  int optin = device < kDevices ? optin_of[device].load(std::memory_order_relaxed) : 0;
  if (optin == 0) {
    if (cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess) return false;
    if (device < kDevices) optin_of[device].store(optin, std::memory_order_relaxed);
  }
  return bytes <= static_cast<size_t>(optin);
}

// Whether every pointer allows 16-byte vector loads (cudaMalloc'd buffers and arena carvings do).
inline bool aligned16(std::initializer_list<const void*> pointers) {
  for (const void* p : pointers)
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  return true;
}

// Eight bf16, one 16-byte load or store: bandwidth-bound kernels move these where aligned16 allows, and
// the last n % 8 elements (or all, when not aligned) one at a time.
struct alignas(16) Bf16x8 {
  __nv_bfloat16 v[8];
};

}  // namespace iris::cuda
