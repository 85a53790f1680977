// CUDA runtime checks for the device communicators (plain .cpp files compiled by the host compiler;
// kernel sources use src/kernels/cuda/common.cuh instead). A failure names the call, file:line and rank.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "src/core/check.h"

#define IRIS_CUDART_CHECK(call)                                                                 \
  do {                                                                                          \
    const cudaError_t iris_cudart_rc_ = (call);                                                 \
    if (iris_cudart_rc_ != cudaSuccess)                                                         \
      ::iris::detail::throw_check_failure(#call, __FILE__, __LINE__,                            \
                                          ::fmt::format("CUDA error: {}", cudaGetErrorString(iris_cudart_rc_))); \
  } while (0)

namespace iris {

// Throws unless `data` is device (or managed) memory: a host pointer handed to a device communicator
// is a bug that would otherwise surface as a crash inside NCCL or a copy. `what`: "all_reduce on group tp".
// `op` and `group` name the operation in the message; nothing is formatted unless the check fails.
inline void require_device_buffer(const void* data, const char* op, const std::string& group) {
  if (data == nullptr) return;  // empty buffers (count 0) may be null
  cudaPointerAttributes attributes{};
  IRIS_CUDART_CHECK(cudaPointerGetAttributes(&attributes, data));
  IRIS_CHECK(attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged,
             "{} on group {}: buffer {} is not device memory; device communicators take GPU buffers (MpiComm takes "
             "host ones)",
             op, group, data);
}

}  // namespace iris
