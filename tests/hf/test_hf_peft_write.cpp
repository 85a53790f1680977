// Writes a PEFT adapter with io::write_peft_adapter for the tiny Llama of check_peft_adapter.py (hidden 16,
// 2 heads, 1 KV head, FFN 32, 2 layers; r 4 on q_proj, v_proj and down_proj; A from cpu::lora_init, B
// non-zero), which then loads it with PeftModel.from_pretrained and compares every tensor.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "io/peft_adapter.h"
#include "src/kernels/cpu/lora.h"

namespace iris {
namespace {

TEST(HuggingFacePeftAdapter, WritesTheTinyLlamaAdapter) {
  const int C = 16, HS = 8, NKV = 1, F = 32, L = 2, R = 4;
  io::PeftAdapter adapter;
  adapter.config = {R, 8.0f, 0.0f, false, {"q_proj", "v_proj", "down_proj"}, ""};
  for (int l = 0; l < L; ++l) {
    const std::string layer = "model.layers." + std::to_string(l) + ".";
    for (const auto& [name, IC, OC] : {std::tuple{"self_attn.q_proj", C, C}, std::tuple{"self_attn.v_proj", C, NKV * HS},
                                       std::tuple{"mlp.down_proj", F, C}}) {
      io::PeftLoraModule m{layer + name, IC, OC, std::vector<float>(R * IC), std::vector<float>(OC * R)};
      cpu::lora_init(m.A.data(), m.B.data(), 1234, m.module, IC, OC, R);
      for (size_t i = 0; i < m.B.size(); ++i) m.B[i] = 0.1f * std::sin(static_cast<float>(i) + l);  // non-zero
      adapter.modules.push_back(m);
    }
  }
  const std::filesystem::path dir = std::filesystem::path(IRIS_HF_PEFT_DIR) / "adapter";
  std::filesystem::remove_all(dir);
  io::write_peft_adapter(dir, adapter);
  EXPECT_TRUE(std::filesystem::exists(dir / "adapter_model.safetensors"));
  EXPECT_EQ(io::read_peft_adapter(dir).modules.size(), adapter.modules.size());
}

}  // namespace
}  // namespace iris
