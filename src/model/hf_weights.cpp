#include "src/model/hf_weights.h"

#include <vector>

#include "io/safetensors.h"
#include "src/core/check.h"

namespace iris {

void load_hf_weights(const ParamTable& table, const std::filesystem::path& hf_path, float* params) {
  read_hf_weights(table, hf_path,
                  [&](const ParamEntry& e, const float* global) { table.scatter_from_global(e, global, params); });
}

void read_hf_weights(const ParamTable& table, const std::filesystem::path& hf_path,
                     const std::function<void(const ParamEntry& e, const float* global)>& take) {
  io::SafetensorsModel model = io::SafetensorsModel::open(hf_path);
  std::vector<float> global;
  for (const auto& e : table.entries()) {
    IRIS_USER_CHECK(model.contains(e.name), "{}: tensor {} is missing (the model config expects it)", hf_path.string(),
                    e.name);
    const auto& info = model.info(e.name);
    IRIS_USER_CHECK(info.shape == e.global_shape, "{}: tensor {} has shape [{}] but the model config gives [{}]",
                    hf_path.string(), e.name, fmt::join(info.shape, ", "), fmt::join(e.global_shape, ", "));
    global.resize(static_cast<size_t>(info.numel()));
    model.read_f32(e.name, global.data(), global.size());
    take(e, global.data());
  }
}

}  // namespace iris
