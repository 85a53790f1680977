// make_device_training in a build without the CUDA backend (src/train/cuda/device_training.cpp is the real one).
#include "src/core/check.h"
#include "src/train/device_training.h"

namespace iris {

void check_device_training_available(int) {
  throw UserError(
      "train.device=cuda needs a CUDA build, and this build has no CUDA backend (nvcc was not found when it was "
      "configured); install the CUDA toolkit and reconfigure with nvcc found (e.g. cmake -S . -B build "
      "-DIRIS_CUDA=ON -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc), or use train.device=cpu");
}

std::unique_ptr<DeviceTraining> make_device_training(const DeviceTrainingSetup& setup) {
  check_device_training_available(setup.topo.rank);
  return nullptr;
}

}  // namespace iris
