// Delay and spin kernels for tests/gpu/test_gpu_comm.cpp. Time is measured with %globaltimer
// (nanoseconds), so the delays do not depend on the SM clock.
#include "src/kernels/cuda/common.cuh"
#include "tests/gpu/comm_test_kernels.h"

namespace iris::test {
namespace {

__device__ unsigned long long global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__global__ void fill_after_delay_kernel(float* data, size_t n, float value, unsigned long long delay_ns) {
  if (threadIdx.x == 0) {
    const unsigned long long start = global_ns();
    while (global_ns() - start < delay_ns) __nanosleep(1000);
  }
  __syncthreads();
  for (size_t i = threadIdx.x; i < n; i += blockDim.x) data[i] = value;
}

__global__ void spin_until_flag_kernel(const volatile int* flag, unsigned long long limit_ns) {
  const unsigned long long start = global_ns();
  while (*flag == 0 && global_ns() - start < limit_ns) __nanosleep(10000);
}

}  // namespace

void fill_after_delay(float* data, size_t n, float value, double delay_ms, cudaStream_t stream) {
  fill_after_delay_kernel<<<1, 256, 0, stream>>>(data, n, value, static_cast<unsigned long long>(delay_ms * 1e6));
  IRIS_CUDA_CHECK_LAUNCH();
}

void spin_until_flag(const volatile int* flag, double limit_ms, cudaStream_t stream) {
  spin_until_flag_kernel<<<1, 1, 0, stream>>>(flag, static_cast<unsigned long long>(limit_ms * 1e6));
  IRIS_CUDA_CHECK_LAUNCH();
}

}  // namespace iris::test
