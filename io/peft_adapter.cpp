// PEFT adapter files: the JSON keys written are those PEFT 0.12's LoraConfig reads; the reader accepts
// any adapter PEFT saves for LoRA without bias, DoRA or extra modules_to_save, and refuses the rest.
#include "io/peft_adapter.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "src/core/check.h"

namespace iris::io {
namespace fs = std::filesystem;
namespace {

constexpr const char* kPrefix = "base_model.model.";
constexpr const char* kSuffixA = ".lora_A.weight";
constexpr const char* kSuffixB = ".lora_B.weight";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

nlohmann::json config_json(const PeftLoraConfig& c) {
  return {{"peft_type", "LORA"},          {"task_type", "CAUSAL_LM"},   {"r", c.r},
          {"lora_alpha", c.alpha},        {"lora_dropout", c.dropout},  {"use_rslora", c.use_rslora},
          {"target_modules", c.target_modules}, {"bias", "none"},       {"fan_in_fan_out", false},
          {"inference_mode", true},       {"init_lora_weights", true},  {"modules_to_save", nullptr},
          {"use_dora", false},            {"base_model_name_or_path", c.base_model}};
}

PeftLoraConfig parse_config(const fs::path& file) {
  std::ifstream in(file);
  IRIS_USER_CHECK(in.good(), "{}: cannot open (a PEFT adapter directory holds adapter_config.json)", file.string());
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    IRIS_USER_CHECK(false, "{}: not valid JSON: {}", file.string(), e.what());
  }
  IRIS_USER_CHECK(j.value("peft_type", "") == "LORA", "{}: \"peft_type\" must be \"LORA\"", file.string());
  for (const char* key : {"r", "lora_alpha", "target_modules"})
    IRIS_USER_CHECK(j.contains(key), "{}: missing key \"{}\"", file.string(), key);
  IRIS_USER_CHECK(j.value("bias", "none") == "none", "{}: \"bias\" must be \"none\" (adapter biases are not supported)",
                  file.string());
  IRIS_USER_CHECK(!j.value("use_dora", false), "{}: \"use_dora\" is not supported", file.string());
  PeftLoraConfig c;
  try {
    c.r = j.at("r").get<int>();
    c.alpha = j.at("lora_alpha").get<float>();
    c.dropout = j.value("lora_dropout", 0.0f);
    c.use_rslora = j.value("use_rslora", false);
    const auto& targets = j.at("target_modules");
    if (targets.is_string()) c.target_modules = {targets.get<std::string>()};  // PEFT allows "all-linear"
    else c.target_modules = targets.get<std::vector<std::string>>();
    if (j.contains("base_model_name_or_path") && j["base_model_name_or_path"].is_string())
      c.base_model = j["base_model_name_or_path"].get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    IRIS_USER_CHECK(false, "{}: wrong type: {}", file.string(), e.what());
  }
  IRIS_USER_CHECK(c.r > 0, "{}: \"r\" must be positive, got {}", file.string(), c.r);
  return c;
}

void check_module(const PeftLoraModule& m, int r, const std::string& where) {
  IRIS_USER_CHECK(m.IC > 0 && m.OC > 0, "{}: module {} has empty shape", where, m.module);
  IRIS_USER_CHECK(m.A.size() == static_cast<size_t>(r) * m.IC && m.B.size() == static_cast<size_t>(m.OC) * r,
                  "{}: module {}: lora_A must be (r={}, {}) and lora_B ({}, r)", where, m.module, r, m.IC, m.OC);
}

}  // namespace

void write_peft_adapter(const fs::path& dir, const PeftAdapter& adapter) {
  fs::create_directories(dir);
  SafetensorsWriter writer(dir / "adapter_model.safetensors", {{"format", "pt"}});
  for (const auto& m : adapter.modules) {
    check_module(m, adapter.config.r, (dir / "adapter_model.safetensors").string());
    writer.declare(kPrefix + m.module + kSuffixA, DType::F32, {adapter.config.r, m.IC});
    writer.declare(kPrefix + m.module + kSuffixB, DType::F32, {m.OC, adapter.config.r});
  }
  for (const auto& m : adapter.modules) {
    writer.write_f32(kPrefix + m.module + kSuffixA, m.A.data(), m.A.size());
    writer.write_f32(kPrefix + m.module + kSuffixB, m.B.data(), m.B.size());
  }
  writer.finish();
  std::ofstream out(dir / "adapter_config.json");
  out << config_json(adapter.config).dump(2) << "\n";
  IRIS_USER_CHECK(out.good(), "{}: write failed", (dir / "adapter_config.json").string());
}

PeftAdapter read_peft_adapter(const fs::path& dir) {
  PeftAdapter adapter;
  adapter.config = parse_config(dir / "adapter_config.json");
  const fs::path file = dir / "adapter_model.safetensors";
  IRIS_USER_CHECK(fs::exists(file), "{}: missing (a PEFT adapter directory holds adapter_model.safetensors)",
                  file.string());
  const SafetensorsModel st = SafetensorsModel::open(file);
  std::map<std::string, std::pair<std::string, std::string>> found;  // module -> (A key, B key)
  const std::string prefix = kPrefix;
  for (const std::string& key : st.names()) {
    const bool is_a = ends_with(key, kSuffixA), is_b = ends_with(key, kSuffixB);
    IRIS_USER_CHECK(key.rfind(prefix, 0) == 0 && (is_a || is_b),
                    "{}: tensor \"{}\" is not a LoRA weight (expected base_model.model.<module>.lora_A/B.weight)",
                    file.string(), key);
    const std::string module = key.substr(prefix.size(), key.size() - prefix.size() - std::string(kSuffixA).size());
    (is_a ? found[module].first : found[module].second) = key;
  }
  IRIS_USER_CHECK(!found.empty(), "{}: holds no LoRA weights", file.string());
  const int r = adapter.config.r;
  for (const auto& [module, keys] : found) {
    IRIS_USER_CHECK(!keys.first.empty() && !keys.second.empty(), "{}: module {} has only {}", file.string(), module,
                    keys.first.empty() ? keys.second : keys.first);
    const auto& a = st.info(keys.first).shape;
    const auto& b = st.info(keys.second).shape;
    IRIS_USER_CHECK(a.size() == 2 && b.size() == 2 && a[0] == r && b[1] == r,
                    "{}: \"{}\" and \"{}\" must be (r, in) and (out, r) with r = {} (adapter_config.json)",
                    file.string(), keys.first, keys.second, r);
    PeftLoraModule m{module, static_cast<int>(a[1]), static_cast<int>(b[0]), st.read_f32(keys.first),
                     st.read_f32(keys.second)};
    adapter.modules.push_back(std::move(m));
  }
  return adapter;
}

}  // namespace iris::io
