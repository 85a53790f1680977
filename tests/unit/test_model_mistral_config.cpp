// Mistral configs (src/model/llama_config): model_type "mistral" loads as a Llama with other numbers,
// its sliding window is recorded, an active window is refused with the reason, and export keeps the type.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "src/core/error.h"
#include "src/model/llama_config.h"

namespace iris {
namespace {

nlohmann::json tiny_mistral() {
  return {{"model_type", "mistral"}, {"hidden_size", 32}, {"intermediate_size", 64}, {"num_hidden_layers", 2},
          {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"vocab_size", 128}, {"sliding_window", nullptr}};
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

TEST(MistralConfig, Mistral7Bv02LoadsWithItsNumbers) {
  const LlamaConfig c = LlamaConfig::load(IRIS_SOURCE_DIR "/configs/models/mistral-7b-v0.2.json");
  EXPECT_EQ(c.sliding_window, 0);
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.intermediate_size, 14336);
  EXPECT_EQ(c.rope_theta, 1e6);
  // 32000·4096·2 (embedding, lm_head) + 32 layers · (4096·(4096 + 2·1024 + 4096) + 3·4096·14336 + 2·4096) + 4096
  EXPECT_EQ(c.num_parameters(), 7241732096);
  check_sliding_window(c, 32768, "train.seq_len");  // no window: any length
  const nlohmann::json out = c.to_json();
  EXPECT_EQ(out["model_type"], "mistral");
  EXPECT_EQ(out["architectures"][0], "MistralForCausalLM");
}

TEST(MistralConfig, AnActiveSlidingWindowIsRefusedWithTheReason) {
  nlohmann::json j = tiny_mistral();
  j["sliding_window"] = 4096;  // Mistral-7B-v0.1
  const LlamaConfig c = LlamaConfig::from_json(j, "v01.json");
  EXPECT_EQ(c.sliding_window, 4096);
  check_sliding_window(c, 4096, "train.seq_len");  // a window as long as the sequence is full attention
  const std::string msg = error_of([&] { check_sliding_window(c, 8192, "train.seq_len"); });
  EXPECT_NE(msg.find("v01.json: sliding_window = 4096 is active at train.seq_len = 8192"), std::string::npos) << msg;
  EXPECT_NE(msg.find("full causal"), std::string::npos) << msg;
  j["sliding_window"] = 0;
  EXPECT_NE(error_of([&] { LlamaConfig::from_json(j, "zero.json"); }).find("\"sliding_window\" must be positive"),
            std::string::npos);
}

TEST(MistralConfig, OtherModelTypesAreStillRefused) {
  nlohmann::json j = tiny_mistral();
  j["model_type"] = "mixtral";
  const std::string msg = error_of([&] { LlamaConfig::from_json(j, "m.json"); });
  EXPECT_NE(msg.find("model_type is \"mixtral\""), std::string::npos) << msg;
  j["model_type"] = "llama";
  EXPECT_EQ(LlamaConfig::from_json(j, "l.json").to_json()["model_type"], "llama");
}

}  // namespace
}  // namespace iris
