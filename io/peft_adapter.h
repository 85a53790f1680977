// LoRA adapters in Hugging Face PEFT's on-disk format: DIR/adapter_model.safetensors (keys
// "base_model.model.<module>.lora_A.weight" (R, IC) and ".lora_B.weight" (OC, R), module as in the HF
// model, e.g. "model.layers.0.self_attn.q_proj") and DIR/adapter_config.json (peft_type LORA).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace iris::io {

struct PeftLoraConfig {
  int r = 0;
  float alpha = 0;
  float dropout = 0;
  bool use_rslora = false;
  std::vector<std::string> target_modules;  // short names: q_proj, v_proj, ...
  std::string base_model;                   // base_model_name_or_path (may be empty)
};

struct PeftLoraModule {
  std::string module;  // HF module path without the "base_model.model." prefix
  int IC = 0, OC = 0;
  std::vector<float> A;  // (R, IC)
  std::vector<float> B;  // (OC, R)
};

struct PeftAdapter {
  PeftLoraConfig config;
  std::vector<PeftLoraModule> modules;  // sorted by module path
};

// Writes both files (fp32 tensors). Shapes are checked against config.r.
void write_peft_adapter(const std::filesystem::path& dir, const PeftAdapter& adapter);
// Reads and validates them: missing files or keys, a non-LORA peft_type, a module with only one of
// lora_A / lora_B, shapes that disagree with r or with each other, and tensors that are not LoRA weights
// are UserErrors naming the file and the key.
PeftAdapter read_peft_adapter(const std::filesystem::path& dir);

}  // namespace iris::io
