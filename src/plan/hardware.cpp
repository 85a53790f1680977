#include "src/plan/hardware.h"

#include <fmt/format.h>
#include <fstream>
#include <nlohmann/json.hpp>

#include "src/core/check.h"

namespace iris::plan {

std::map<std::string, GpuSpec> load_gpus(const std::filesystem::path& path) {
  std::ifstream in(path);
  IRIS_USER_CHECK(in.good(), "cannot open the GPU table {} (give --hardware FILE)", path.string());
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    IRIS_USER_CHECK(false, "{} is not valid JSON: {}", path.string(), e.what());
  }
  IRIS_USER_CHECK(j.is_object(), "{}: expected an object of GPU entries", path.string());
  std::map<std::string, GpuSpec> gpus;
  for (const auto& [key, value] : j.items()) {
    if (!key.empty() && key[0] == '_') continue;
    auto number = [&](const char* field, bool required, double fallback) {
      if (!value.contains(field)) {
        IRIS_USER_CHECK(!required, "{}: GPU \"{}\" lacks \"{}\"", path.string(), key, field);
        return fallback;
      }
      IRIS_USER_CHECK(value[field].is_number() && value[field].get<double>() > 0,
                      "{}: GPU \"{}\" key \"{}\" must be a positive number", path.string(), key, field);
      return value[field].get<double>();
    };
    GpuSpec g;
    g.name = key;
    g.description = value.value("description", key);
    g.peak_bf16_tflops = number("peak_bf16_tflops", true, 0);
    g.memory_gib = number("memory_gib", true, 0);
    g.nvlink_gb_s = number("nvlink_gb_s", true, 0);
    g.network_gb_s = number("network_gb_s", true, 0);
    g.gemm_efficiency = number("gemm_efficiency", false, 0.5);
    g.comm_efficiency = number("comm_efficiency", false, 0.7);
    IRIS_USER_CHECK(g.gemm_efficiency <= 1 && g.comm_efficiency <= 1,
                    "{}: GPU \"{}\": efficiencies are fractions in (0, 1]", path.string(), key);
    gpus[key] = g;
  }
  return gpus;
}

GpuSpec find_gpu(const std::filesystem::path& path, const std::string& name) {
  auto gpus = load_gpus(path);
  auto it = gpus.find(name);
  if (it == gpus.end()) {
    std::string known;
    for (const auto& [k, v] : gpus) known += (known.empty() ? "" : ", ") + k;
    IRIS_USER_CHECK(false, "unknown GPU \"{}\"; {} lists: {} (add an entry there for yours)", name, path.string(),
                    known);
  }
  return it->second;
}

}  // namespace iris::plan
