// PEFT adapter files (io/peft_adapter.h): write then read back bit for bit, and the bad inputs the reader
// refuses, each with a message naming the file and the key.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "io/peft_adapter.h"
#include "io/safetensors.h"
#include "src/core/error.h"

namespace iris::io {
namespace {
namespace fs = std::filesystem;

PeftAdapter sample(int r = 2) {
  PeftAdapter a;
  a.config = {r, 16.0f, 0.05f, true, {"q_proj", "v_proj"}, "tiny-llama"};
  for (const char* m : {"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj"}) {
    PeftLoraModule mod{m, 8, m[24] == 'q' ? 8 : 4, {}, {}};
    for (int i = 0; i < r * mod.IC; ++i) mod.A.push_back(0.01f * i - 0.3f);
    for (int i = 0; i < mod.OC * r; ++i) mod.B.push_back(-0.02f * i + 0.1f);
    a.modules.push_back(mod);
  }
  return a;
}

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("iris_peft_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir;
}

std::string error_of(const fs::path& dir) {
  try {
    read_peft_adapter(dir);
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(PeftAdapter, RoundTripsBitForBit) {
  const fs::path dir = fresh_dir("roundtrip");
  const PeftAdapter a = sample();
  write_peft_adapter(dir, a);
  const SafetensorsModel st = SafetensorsModel::open(dir / "adapter_model.safetensors");
  EXPECT_TRUE(st.contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
  const PeftAdapter b = read_peft_adapter(dir);
  EXPECT_EQ(b.config.r, 2);
  EXPECT_EQ(b.config.alpha, 16.0f);
  EXPECT_EQ(b.config.dropout, 0.05f);
  EXPECT_TRUE(b.config.use_rslora);
  EXPECT_EQ(b.config.target_modules, a.config.target_modules);
  EXPECT_EQ(b.config.base_model, "tiny-llama");
  ASSERT_EQ(b.modules.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(b.modules[i].module, a.modules[i].module);
    EXPECT_EQ(b.modules[i].IC, a.modules[i].IC);
    EXPECT_EQ(b.modules[i].OC, a.modules[i].OC);
    EXPECT_EQ(b.modules[i].A, a.modules[i].A);
    EXPECT_EQ(b.modules[i].B, a.modules[i].B);
  }
  fs::remove_all(dir);
}

TEST(PeftAdapter, RefusesBadInputNamingFileAndKey) {
  const fs::path dir = fresh_dir("bad");
  EXPECT_NE(error_of(dir).find("adapter_config.json"), std::string::npos);

  write_peft_adapter(dir, sample());
  {  // a rank the tensors do not have
    std::ofstream(dir / "adapter_config.json")
        << R"({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]})";
    const std::string e = error_of(dir);
    EXPECT_NE(e.find("r = 4"), std::string::npos) << e;
    EXPECT_NE(e.find("lora_A.weight"), std::string::npos) << e;
  }
  {
    std::ofstream(dir / "adapter_config.json") << R"({"peft_type": "IA3", "r": 2})";
    EXPECT_NE(error_of(dir).find("peft_type"), std::string::npos);
  }
  {
    std::ofstream(dir / "adapter_config.json") << R"({"peft_type": "LORA", "r": 2, "target_modules": ["q_proj"]})";
    EXPECT_NE(error_of(dir).find("lora_alpha"), std::string::npos);
  }
  {  // a module with lora_A only, and a tensor that is no LoRA weight
    PeftAdapter a = sample();
    write_peft_adapter(dir, a);
    SafetensorsWriter w(dir / "adapter_model.safetensors");
    w.declare("base_model.model.model.layers.0.mlp.up_proj.lora_A.weight", DType::F32, {2, 8});
    const std::vector<float> zeros(16, 0.0f);
    w.write_f32("base_model.model.model.layers.0.mlp.up_proj.lora_A.weight", zeros.data(), zeros.size());
    w.finish();
    const std::string e = error_of(dir);
    EXPECT_NE(e.find("has only base_model.model.model.layers.0.mlp.up_proj.lora_A.weight"), std::string::npos) << e;
    SafetensorsWriter w2(dir / "adapter_model.safetensors");
    w2.declare("model.embed_tokens.weight", DType::F32, {2, 8});
    w2.write_f32("model.embed_tokens.weight", zeros.data(), zeros.size());
    w2.finish();
    EXPECT_NE(error_of(dir).find("\"model.embed_tokens.weight\" is not a LoRA weight"), std::string::npos);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace iris::io
