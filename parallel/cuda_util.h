// The device communicators' check that a buffer is GPU memory (CUDA runtime calls are checked with
// src/core/cuda_check.h's IRIS_CUDA_CHECK, as everywhere).
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "src/core/check.h"
#include "src/core/cuda_check.h"

namespace iris {

// Throws unless `data` is device (or managed) memory: a host pointer handed to a device communicator
// is a bug that would otherwise surface as a crash inside NCCL or a copy. `what`: "all_reduce on group tp".
// `op` and `group` name the operation in the message; nothing is formatted unless the check fails.
inline void require_device_buffer(const void* data, const char* op, const std::string& group) {
  if (data == nullptr) return;  // empty buffers (count 0) may be null
  cudaPointerAttributes attributes{};
  IRIS_CUDA_CHECK(cudaPointerGetAttributes(&attributes, data));
  IRIS_CHECK(attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged,
             "{} on group {}: buffer {} is not device memory; device communicators take GPU buffers (MpiComm takes "
             "host ones)",
             op, group, data);
}

}  // namespace iris
