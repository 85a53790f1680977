// Failure reporting for the CUDA check macros: the same message shape as IRIS_CHECK (see
// src/core/check.h), built without fmt because fmt does not compile under nvcc.
#include <string>

#include "src/core/error.h"
#include "src/kernels/cuda/common.cuh"

namespace iris::cuda {

void throw_cuda_failure(const char* call, const char* file, int line, const char* what) {
  throw Error("rank " + std::to_string(current_rank()) + ": CUDA check failed: " + call + " at " + file + ":" +
              std::to_string(line) + ": " + what);
}

}  // namespace iris::cuda
