// The generation library (iris-generate is a thin CLI over it; evaluation calls it too): load a Llama from an
// Iris checkpoint of any layout or a Hugging Face directory, then complete a list of token-id prompts —
// prefill each prompt in one forward, then one token per sequence per step over a KV cache, up to `batch`
// sequences at a time (a finished sequence's slot takes the next prompt). Every TP rank calls the same
// functions with the same arguments and gets the same results.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "parallel/comm.h"
#include "src/core/device.h"  // Cuda: bf16 weights and activations on one GPU, fp32 logits (tp = 1)
#include "parallel/topology.h"
#include "src/infer/sampling.h"
#include "src/model/llama_config.h"

namespace iris::infer {

class Decoder;


enum class FinishReason { Eos, Stop, Length };
const char* to_string(FinishReason reason);  // "eos" | "stop" | "length"

struct Prompt {
  std::string id;             // keys the sampling RNG (prompt_stream)
  std::vector<int32_t> ids;   // (T,) the prompt's tokens, BOS included when the model wants one
  std::string where;          // for messages, e.g. "prompts.jsonl:3"
};

struct Completion {
  std::vector<int32_t> ids;   // generated tokens, the final stop id (EOS) included, as HF generate() returns
  std::string text;           // decode(ids) cut before the stop string / stop id; "" without settings.decode
  FinishReason finish = FinishReason::Length;
};

struct GenerationSettings {
  int max_new_tokens = 64;
  SamplingSettings sampling;
  std::vector<int32_t> stop_ids;          // finish "eos": the tokenizer's EOS, a template's end of turn
  std::vector<std::string> stop_strings;  // finish "stop" once the decoded completion contains one
  // Token ids → text; needed for stop_strings and Completion::text.
  std::function<std::string(std::span<const int32_t>)> decode;
  int batch = 8;                          // sequences decoded together
};

// Where the time of the last generate() went: prefills (each prompt's forward and its first new token) and
// decode steps (one token per running sequence per step).
struct GenerationStats {
  int64_t prompt_tokens = 0, prefill_new_tokens = 0, decode_tokens = 0;
  double prefill_s = 0.0, decode_s = 0.0;
};

// Told each token as it is chosen: (index of the prompt, the completion so far).
using TokenCallback = std::function<void(size_t prompt, const Completion& so_far)>;

class Generator {
 public:
  // params: this TP rank's flat buffer in ParamTable::build(config, topo, every layer) layout. topo.pp = 1,
  // topo.tp = tp's size (tp may be null at tp = 1).
  Generator(LlamaConfig config, const Topology& topo, Comm* tp, std::vector<float> params);
  ~Generator();
  Generator(Generator&&) noexcept;

  // An HF directory (config.json + safetensors) or an Iris checkpoint (a step_* directory, or a root with
  // `latest`), read at this rank's TP block. UserError naming the path and tensor on any mismatch.
  static Generator from_hf(const std::filesystem::path& dir, const Topology& topo, Comm* tp);
  static Generator from_checkpoint(const std::filesystem::path& path, const Topology& topo, Comm* tp);

  // UserError naming prompt.where when a prompt is empty, longer than max_position_embeddings or holds an
  // id outside the vocabulary; checked for every prompt before any work.
  void validate(const std::vector<Prompt>& prompts) const;
  // Completions in prompt order. Sequences stop at a stop id, a stop string, max_new_tokens, or the
  // model's max_position_embeddings (finish "length").
  std::vector<Completion> generate(const std::vector<Prompt>& prompts, const GenerationSettings& settings,
                                   const TokenCallback& on_token = nullptr);

  const LlamaConfig& config() const { return config_; }
  const std::vector<float>& params() const { return params_; }
  const GenerationStats& last_stats() const { return stats_; }
  // Cuda: UserError unless this is a CUDA build with a device, at tp = 1. The decoder is made on first use.
  void set_device(Device device);

 private:
  LlamaConfig config_;
  Topology topo_;
  Comm* tp_;
  std::vector<float> params_;
  GenerationStats stats_;
  Device device_ = Device::Cpu;
  std::unique_ptr<Decoder> decoder_;  // kept between generate() calls while its slots and positions suffice
  Decoder& decoder_for(int slots, int T_max);
};

}  // namespace iris::infer
