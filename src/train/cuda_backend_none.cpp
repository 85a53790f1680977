// make_cuda_backend in a build without the CUDA backend (src/train/cuda/cuda_backend.cpp is the real one).
#include "src/core/check.h"
#include "src/train/training_backend.h"

namespace iris {

std::unique_ptr<TrainingBackend> make_cuda_backend(const TrainingBackendSetup&) {
  throw UserError(
      "train.device=cuda needs a CUDA build, and this build has no CUDA backend (nvcc was not found when it was "
      "configured); install the CUDA toolkit and reconfigure with nvcc found (e.g. cmake -S . -B build "
      "-DIRIS_CUDA=ON -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc), or use train.device=cpu");
}

}  // namespace iris
