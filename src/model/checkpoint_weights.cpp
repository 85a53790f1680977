#include "src/model/checkpoint_weights.h"

#include <vector>

#include "src/core/check.h"

namespace iris {

void load_checkpoint_weights(const io::CheckpointDir& ckpt, const ParamTable& table, float* params) {
  const std::string dir = ckpt.dir().string();
  std::vector<float> global;  // one tensor at a time
  for (const auto& e : table.entries()) {
    const auto slices = ckpt.slices_of("weights", e.name);
    IRIS_USER_CHECK(!slices.empty(), "checkpoint {} has no weights for tensor {}", dir, e.name);
    IRIS_USER_CHECK(slices.front().second.global_shape == e.global_shape,
                    "checkpoint {}: tensor {} has another shape than its manifest's model_config gives", dir, e.name);
    int64_t n = 1;
    for (int64_t d : e.global_shape) n *= d;
    global.assign(static_cast<size_t>(n), 0.0f);
    ckpt.read_global("weights", e.name, global.data(), 0, e.global_shape[0]);
    table.scatter_from_global(e, global.data(), params);
  }
}

}  // namespace iris
