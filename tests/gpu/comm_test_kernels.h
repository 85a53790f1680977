// Kernels the communicator tests enqueue on a compute stream to observe ordering and timeouts
// (host-compiled tests cannot launch kernels themselves). Launchers return at once; errors throw.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

namespace iris::test {

// After spinning for about `delay_ms` milliseconds, sets data[0..n) = value.  data: (n,) device
void fill_after_delay(float* data, size_t n, float value, double delay_ms, cudaStream_t stream);

// Spins until *flag (host-mapped memory) becomes non-zero or `limit_ms` pass: a stuck compute stream.
void spin_until_flag(const volatile int* flag, double limit_ms, cudaStream_t stream);

}  // namespace iris::test
