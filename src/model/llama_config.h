// Llama model configuration, read from a Hugging Face config.json (docs/design.md decision 10) so an HF checkpoint
// brings its own config. Validation of the model's own shape lives here; so does the check that a
// layout (tp, pp) fits its shapes (validate_layout).
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace iris {

struct RopeScaling {
  std::string type = "default";  // "default" (none) or "llama3" (Llama 3.1+ frequency-dependent scaling)
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int original_max_position_embeddings = 8192;
};

struct LlamaConfig {
  int hidden_size = 0;          // C
  int intermediate_size = 0;    // F
  int num_hidden_layers = 0;    // L
  int num_attention_heads = 0;  // NH
  int num_key_value_heads = 0;  // NKV
  int head_dim = 0;             // HS (hidden_size / NH unless given)
  int vocab_size = 0;           // V
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  int max_position_embeddings = 2048;
  int sliding_window = 0;       // Mistral's attention window in tokens; 0: none (full causal attention)
  int bos_token_id = 1;
  int eos_token_id = 2;
  std::string source;           // the file it came from, for messages
  nlohmann::json raw;           // the original JSON, written back on export

  // Reads and validates; throws UserError naming the file and key on any problem.
  static LlamaConfig load(const std::filesystem::path& path);
  static LlamaConfig from_json(const nlohmann::json& j, const std::string& source);
  nlohmann::json to_json() const;

  // Parameter count of the full (unsharded, unpadded) model.
  int64_t num_parameters() const;
  // RoPE inverse frequencies (HS/2,), with rope_scaling applied (HF's _compute_llama3_parameters).
  std::vector<float> rope_inv_freq() const;
};

// Checks that a model can be laid out over tp and pp and says what to change if not: query heads,
// KV heads and FFN size divisible by tp; at least one layer per stage. (The model owns this check, so
// parallel/ knows no model; parallel/topology's stage_layers checks how the layers split.)
void validate_layout(const LlamaConfig& config, int tp, int pp);

// Mistral attends to the last sliding_window tokens only; Iris's attention is full causal, which is the
// same computation exactly when no sequence is longer than the window. Throws UserError naming the model
// file, the window and `seq_key` (e.g. "train.seq_len") otherwise.
void check_sliding_window(const LlamaConfig& config, int seq_len, const std::string& seq_key);

}  // namespace iris
