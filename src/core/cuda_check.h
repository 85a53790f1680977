// The one check for CUDA runtime calls, for every folder that talks to a GPU (kernels, model, train,
// parallel, infer): a failure throws iris::Error naming the rank, the call (for a kernel launch, the
// launch site's file:line), file:line and CUDA's error string. Built without fmt, which does not
// compile under nvcc in C++20, so .cu files may include it. cuBLASLt's check is in
// src/kernels/cuda/common.cuh, the only folder that calls cuBLASLt.
#pragma once
#include <cuda_runtime.h>

#include "src/core/cuda_failure.h"

#define IRIS_CUDA_CHECK(call)                                                                   \
  do {                                                                                          \
    const cudaError_t iris_cuda_rc_ = (call);                                                   \
    if (iris_cuda_rc_ != cudaSuccess)                                                           \
      ::iris::cuda::throw_cuda_failure(#call, __FILE__, __LINE__, cudaGetErrorString(iris_cuda_rc_)); \
  } while (0)

// After a <<<>>> launch: reports a bad configuration (grid, shared memory) at the launch site. Errors
// raised while the kernel runs surface at the next synchronising call.
// The file:line of the macro names the kernel.
#define IRIS_CUDA_CHECK_LAUNCH() IRIS_CUDA_CHECK(cudaGetLastError())

// Host-side argument check for launchers (shapes, alignment): `what` is a plain message.
#define IRIS_CUDA_REQUIRE(cond, what)                                                           \
  do {                                                                                          \
    if (!(cond)) ::iris::cuda::throw_cuda_failure(#cond, __FILE__, __LINE__, what);             \
  } while (0)
