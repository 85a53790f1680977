// A build without the CUDA backend: --device cuda is refused with how to get it.
#include "src/core/check.h"
#include "src/infer/cuda_decoder.h"

namespace iris::infer {

std::unique_ptr<Decoder> make_cuda_decoder(const LlamaConfig&, const float*, int, int) {
  throw UserError("--device cuda needs a CUDA build of Iris (cmake -DIRIS_CUDA=ON with nvcc installed)");
}

}  // namespace iris::infer
