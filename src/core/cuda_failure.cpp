#include "src/core/cuda_failure.h"

#include <string>

#include "src/core/error.h"

namespace iris::cuda {

void throw_cuda_failure(const char* call, const char* file, int line, const char* what) {
  throw Error("rank " + std::to_string(current_rank()) + ": CUDA check failed: " + call + " at " + file + ":" +
              std::to_string(line) + ": " + what);
}

}  // namespace iris::cuda
