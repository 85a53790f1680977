#include "src/model/llama_config.h"

#include <cmath>
#include <fstream>

#include "src/core/check.h"

namespace iris {
namespace {

template <typename T>
T get_required(const nlohmann::json& j, const char* key, const std::string& source) {
  IRIS_USER_CHECK(j.contains(key) && !j[key].is_null(), "{}: missing required key \"{}\"", source, key);
  try {
    return j[key].get<T>();
  } catch (const nlohmann::json::exception&) {
    throw UserError(fmt::format("{}: key \"{}\" has the wrong type (got {})", source, key, j[key].dump()));
  }
}

template <typename T>
T get_optional(const nlohmann::json& j, const char* key, T fallback, const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  try {
    return j[key].get<T>();
  } catch (const nlohmann::json::exception&) {
    throw UserError(fmt::format("{}: key \"{}\" has the wrong type (got {})", source, key, j[key].dump()));
  }
}

// HF stores eos_token_id as an int or a list (Llama 3 instruct); the first entry is the EOS we append.
int token_id(const nlohmann::json& j, const char* key, int fallback, const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (j[key].is_array() && !j[key].empty()) return j[key][0].get<int>();
  IRIS_USER_CHECK(j[key].is_number_integer(), "{}: key \"{}\" must be an integer or a list of integers", source, key);
  return j[key].get<int>();
}

}  // namespace

LlamaConfig LlamaConfig::from_json(const nlohmann::json& j, const std::string& source) {
  IRIS_USER_CHECK(j.is_object(), "{}: expected a JSON object (a Hugging Face config.json)", source);
  LlamaConfig c;
  c.source = source;
  c.raw = j;
  c.hidden_size = get_required<int>(j, "hidden_size", source);
  c.intermediate_size = get_required<int>(j, "intermediate_size", source);
  c.num_hidden_layers = get_required<int>(j, "num_hidden_layers", source);
  c.num_attention_heads = get_required<int>(j, "num_attention_heads", source);
  c.num_key_value_heads = get_optional<int>(j, "num_key_value_heads", c.num_attention_heads, source);
  c.vocab_size = get_required<int>(j, "vocab_size", source);
  c.rms_norm_eps = get_optional<double>(j, "rms_norm_eps", 1e-6, source);
  c.rope_theta = get_optional<double>(j, "rope_theta", 10000.0, source);
  c.tie_word_embeddings = get_optional<bool>(j, "tie_word_embeddings", false, source);
  c.max_position_embeddings = get_optional<int>(j, "max_position_embeddings", 2048, source);
  c.bos_token_id = token_id(j, "bos_token_id", 1, source);
  c.eos_token_id = token_id(j, "eos_token_id", 2, source);

  auto positive = [&](int v, const char* key) {
    IRIS_USER_CHECK(v > 0, "{}: \"{}\" must be positive, got {}", source, key, v);
  };
  positive(c.hidden_size, "hidden_size");
  positive(c.intermediate_size, "intermediate_size");
  positive(c.num_hidden_layers, "num_hidden_layers");
  positive(c.num_attention_heads, "num_attention_heads");
  positive(c.num_key_value_heads, "num_key_value_heads");
  positive(c.vocab_size, "vocab_size");
  IRIS_USER_CHECK(c.hidden_size % c.num_attention_heads == 0,
                  "{}: num_attention_heads ({}) must divide hidden_size ({})", source, c.num_attention_heads,
                  c.hidden_size);
  c.head_dim = get_optional<int>(j, "head_dim", c.hidden_size / c.num_attention_heads, source);
  positive(c.head_dim, "head_dim");
  IRIS_USER_CHECK(c.head_dim % 2 == 0, "{}: head_dim ({}) must be even for rotary embeddings", source, c.head_dim);
  IRIS_USER_CHECK(c.num_attention_heads % c.num_key_value_heads == 0,
                  "{}: num_key_value_heads ({}) must divide num_attention_heads ({})", source,
                  c.num_key_value_heads, c.num_attention_heads);
  IRIS_USER_CHECK(c.rms_norm_eps > 0, "{}: rms_norm_eps must be positive", source);
  IRIS_USER_CHECK(c.rope_theta > 0, "{}: rope_theta must be positive", source);
  if (j.contains("model_type") && j["model_type"].is_string()) {
    IRIS_USER_CHECK(j["model_type"] == "llama" || j["model_type"] == "mistral",
                    "{}: model_type is \"{}\"; Iris trains Llama models (\"llama\", or \"mistral\", which is a Llama "
                    "with a sliding window)",
                    source, j["model_type"].get<std::string>());
  }
  // Mistral v0.1 attends over a 4096-token window; v0.2 and later set it to null (full attention).
  if (j.contains("sliding_window") && !j["sliding_window"].is_null()) {
    c.sliding_window = get_required<int>(j, "sliding_window", source);
    positive(c.sliding_window, "sliding_window");
  }
  for (const char* key : {"attention_bias", "mlp_bias"}) {
    IRIS_USER_CHECK(!get_optional<bool>(j, key, false, source), "{}: \"{}\": true is not supported (Llama has no biases)",
                    source, key);
  }
  std::string act = get_optional<std::string>(j, "hidden_act", "silu", source);
  IRIS_USER_CHECK(act == "silu", "{}: hidden_act \"{}\" is not supported (expected \"silu\")", source, act);

  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    const auto& rs = j["rope_scaling"];
    IRIS_USER_CHECK(rs.is_object(), "{}: rope_scaling must be an object or null", source);
    std::string type = rs.contains("rope_type") ? rs["rope_type"].get<std::string>()
                       : rs.contains("type")    ? rs["type"].get<std::string>()
                                                : std::string("default");
    IRIS_USER_CHECK(type == "llama3" || type == "default",
                    "{}: rope_scaling type \"{}\" is not supported (expected \"llama3\" or \"default\")", source, type);
    c.rope_scaling.type = type;
    if (type == "llama3") {
      c.rope_scaling.factor = get_required<double>(rs, "factor", source + " rope_scaling");
      c.rope_scaling.low_freq_factor = get_required<double>(rs, "low_freq_factor", source + " rope_scaling");
      c.rope_scaling.high_freq_factor = get_required<double>(rs, "high_freq_factor", source + " rope_scaling");
      c.rope_scaling.original_max_position_embeddings =
          get_required<int>(rs, "original_max_position_embeddings", source + " rope_scaling");
      IRIS_USER_CHECK(c.rope_scaling.high_freq_factor > c.rope_scaling.low_freq_factor,
                      "{}: rope_scaling high_freq_factor must exceed low_freq_factor", source);
    }
  }
  return c;
}

void check_sliding_window(const LlamaConfig& config, int seq_len, const std::string& seq_key) {
  IRIS_USER_CHECK(config.sliding_window == 0 || seq_len <= config.sliding_window,
                  "{}: sliding_window = {} is active at {} = {}: this model attends only to the last {} tokens, "
                  "and Iris's attention is full causal (no sliding window), so it would compute another model; "
                  "use {} <= {}, or a config with \"sliding_window\": null (e.g. Mistral-7B-v0.2)",
                  config.source, config.sliding_window, seq_key, seq_len, config.sliding_window, seq_key,
                  config.sliding_window);
}

LlamaConfig LlamaConfig::load(const std::filesystem::path& path) {
  std::ifstream in(path);
  IRIS_USER_CHECK(in.good(), "model config {}: cannot open the file (does it exist?)", path.string());
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::parse_error& e) {
    throw UserError(fmt::format("model config {}: invalid JSON: {}", path.string(), e.what()));
  }
  return from_json(j, path.string());
}

nlohmann::json LlamaConfig::to_json() const {
  nlohmann::json j = raw.is_object() ? raw : nlohmann::json::object();
  // A Mistral config goes back as Mistral (its sliding_window kept), so HF loads the class it came from.
  const bool mistral = raw.is_object() && raw.value("model_type", "") == "mistral";
  j["model_type"] = mistral ? "mistral" : "llama";
  j["architectures"] = {mistral ? "MistralForCausalLM" : "LlamaForCausalLM"};
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  j["head_dim"] = head_dim;
  j["vocab_size"] = vocab_size;
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_theta"] = rope_theta;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["max_position_embeddings"] = max_position_embeddings;
  j["hidden_act"] = "silu";
  return j;
}

int64_t LlamaConfig::num_parameters() const {
  int64_t C = hidden_size, F = intermediate_size, V = vocab_size, HS = head_dim;
  int64_t NH = num_attention_heads, NKV = num_key_value_heads;
  int64_t attention = C * NH * HS + 2 * C * NKV * HS + NH * HS * C;
  int64_t mlp = 3 * C * F;
  int64_t per_layer = attention + mlp + 2 * C;
  return num_hidden_layers * per_layer + V * C * (tie_word_embeddings ? 1 : 2) + C;
}

std::vector<float> LlamaConfig::rope_inv_freq() const {
  // Computed in float32 like HF (base ** (arange(0, dim, 2).float() / dim)) so angles agree bit-closely.
  const int half = head_dim / 2;
  std::vector<float> inv(half);
  for (int i = 0; i < half; ++i) {
    float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    inv[i] = 1.0f / std::pow(static_cast<float>(rope_theta), exponent);
  }
  if (rope_scaling.type != "llama3") return inv;
  // Llama 3.1 scaling (HF modeling_rope_utils._compute_llama3_parameters): long wavelengths are
  // divided by `factor`, short ones kept, and the band between interpolated smoothly.
  const double old_len = rope_scaling.original_max_position_embeddings;
  const double low_wavelen = old_len / rope_scaling.low_freq_factor;
  const double high_wavelen = old_len / rope_scaling.high_freq_factor;
  const float factor = static_cast<float>(rope_scaling.factor);
  for (int i = 0; i < half; ++i) {
    float f = inv[i];
    double wavelen = 2.0 * M_PI / f;
    float scaled = wavelen > low_wavelen ? f / factor : f;
    if (!(wavelen < high_wavelen) && !(wavelen > low_wavelen)) {
      float smooth = static_cast<float>((old_len / wavelen - rope_scaling.low_freq_factor) /
                                        (rope_scaling.high_freq_factor - rope_scaling.low_freq_factor));
      scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
    }
    inv[i] = scaled;
  }
  return inv;
}

void validate_layout(const LlamaConfig& c, int tp, int pp) {
  IRIS_USER_CHECK(c.num_attention_heads % tp == 0,
                  "parallel.tp = {} must divide num_attention_heads = {} of {}; choose a tp that divides it", tp,
                  c.num_attention_heads, c.source);
  IRIS_USER_CHECK(c.num_key_value_heads % tp == 0,
                  "parallel.tp = {} must divide num_key_value_heads = {} of {}; choose a tp that divides it", tp,
                  c.num_key_value_heads, c.source);
  IRIS_USER_CHECK(c.intermediate_size % tp == 0,
                  "parallel.tp = {} must divide intermediate_size = {} of {}; choose a tp that divides it", tp,
                  c.intermediate_size, c.source);
  IRIS_USER_CHECK(pp <= c.num_hidden_layers,
                  "parallel.pp = {} exceeds num_hidden_layers = {} of {}; every stage needs at least one layer", pp,
                  c.num_hidden_layers, c.source);
}

}  // namespace iris
