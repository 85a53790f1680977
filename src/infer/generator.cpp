#include "src/infer/generator.h"

#include <algorithm>
#include <chrono>
#include <deque>

#include "io/checkpoint.h"
#include "src/core/check.h"
#include "src/infer/cpu_decoder.h"
#include "src/infer/cuda_decoder.h"
#include "src/model/checkpoint_weights.h"
#include "src/model/hf_weights.h"
#include "src/model/param_table.h"

namespace fs = std::filesystem;

namespace iris::infer {

const char* to_string(FinishReason reason) {
  switch (reason) {
    case FinishReason::Eos: return "eos";
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
  }
  return "?";
}

Generator::Generator(LlamaConfig config, const Topology& topo, Comm* tp, std::vector<float> params)
    : config_(std::move(config)), topo_(topo), tp_(tp), params_(std::move(params)) {
  IRIS_CHECK(topo.pp == 1, "generation needs pp = 1, got {}", topo.pp);
  const ParamTable table = ParamTable::build(config_, topo, StageLayers{0, config_.num_hidden_layers});
  IRIS_CHECK(params_.size() == table.total_numel(), "parameter buffer has {} floats, the model {}", params_.size(),
             table.total_numel());
}
Generator::~Generator() = default;
Generator::Generator(Generator&&) noexcept = default;

namespace {

ParamTable table_of(const LlamaConfig& config, const Topology& topo) {
  validate_layout(config, topo.tp, 1);
  return ParamTable::build(config, topo, StageLayers{0, config.num_hidden_layers});
}

}  // namespace

Generator Generator::from_hf(const fs::path& dir, const Topology& topo, Comm* tp) {
  IRIS_USER_CHECK(fs::is_directory(dir), "--hf {}: not a directory (expected config.json and safetensors)",
                  dir.string());
  LlamaConfig config = LlamaConfig::load(dir / "config.json");
  const ParamTable table = table_of(config, topo);
  std::vector<float> params(table.total_numel(), 0.0f);
  load_hf_weights(table, dir, params.data());
  return Generator(std::move(config), topo, tp, std::move(params));
}

Generator Generator::from_checkpoint(const fs::path& path, const Topology& topo, Comm* tp) {
  const fs::path dir = io::resolve_checkpoint(path.string(), "");
  const io::CheckpointDir ckpt = io::CheckpointDir::open(dir);
  LlamaConfig config = LlamaConfig::from_json(ckpt.manifest().model_config, (dir / "manifest.json").string());
  const ParamTable table = table_of(config, topo);
  std::vector<float> params(table.total_numel(), 0.0f);
  load_checkpoint_weights(ckpt, table, params.data());
  return Generator(std::move(config), topo, tp, std::move(params));
}

void Generator::validate(const std::vector<Prompt>& prompts) const {
  const int V = config_.vocab_size, T_max = config_.max_position_embeddings;
  for (const auto& p : prompts) {
    IRIS_USER_CHECK(!p.ids.empty(), "{}: empty prompt (no tokens)", p.where);
    IRIS_USER_CHECK(static_cast<int64_t>(p.ids.size()) <= T_max,
                    "{}: the prompt has {} tokens, more than the model's max_position_embeddings ({})", p.where,
                    p.ids.size(), T_max);
    for (size_t i = 0; i < p.ids.size(); ++i)
      IRIS_USER_CHECK(p.ids[i] >= 0 && p.ids[i] < V, "{}: token {} (id {}) is outside the vocabulary [0, {})",
                      p.where, i, p.ids[i], V);
  }
}

void Generator::set_device(Device device) {
  IRIS_USER_CHECK(device == Device::Cpu || topo_.tp == 1, "--device cuda runs at tp = 1 so far, got tp = {}", topo_.tp);
  if (device != device_) decoder_.reset();
  device_ = device;
  if (device == Device::Cuda) decoder_for(1, 1);  // fails now, not after the prompts are read, without a GPU
}

Decoder& Generator::decoder_for(int slots, int T_max) {
  if (!decoder_ || decoder_->slots() < slots || decoder_->max_positions() < T_max) {
    decoder_.reset();  // free the old cache first
    if (device_ == Device::Cuda)
      decoder_ = make_cuda_decoder(config_, params_.data(), slots, T_max);
    else
      decoder_ = std::make_unique<CpuDecoder>(config_, topo_, tp_, params_.data(), slots, T_max);
  }
  return *decoder_;
}

namespace {

// One sequence being decoded in a slot.
struct Active {
  size_t prompt = 0;
  int32_t slot = 0;
  int32_t next = 0;  // the token just chosen, not yet in the cache
};

// Appends `token` to c and says whether the sequence is done (setting c.finish and c.text).
bool append_and_check(Completion& c, int32_t token, int64_t position, const GenerationSettings& s, int T_limit) {
  c.ids.push_back(token);
  if (std::find(s.stop_ids.begin(), s.stop_ids.end(), token) != s.stop_ids.end()) {
    c.finish = FinishReason::Eos;
    if (s.decode) c.text = s.decode(std::span<const int32_t>(c.ids.data(), c.ids.size() - 1));
    return true;
  }
  if (s.decode) c.text = s.decode(c.ids);
  for (const auto& stop : s.stop_strings) {
    const size_t at = c.text.find(stop);
    if (at == std::string::npos) continue;
    c.text.resize(at);
    c.finish = FinishReason::Stop;
    return true;
  }
  if (static_cast<int>(c.ids.size()) >= s.max_new_tokens || position + 1 >= T_limit) {
    c.finish = FinishReason::Length;
    return true;
  }
  return false;
}

}  // namespace

std::vector<Completion> Generator::generate(const std::vector<Prompt>& prompts, const GenerationSettings& s,
                                            const TokenCallback& on_token) {
  validate(prompts);
  IRIS_USER_CHECK(s.max_new_tokens >= 1, "max_new_tokens must be at least 1, got {}", s.max_new_tokens);
  IRIS_USER_CHECK(s.batch >= 1, "batch must be at least 1, got {}", s.batch);
  IRIS_USER_CHECK(s.stop_strings.empty() || s.decode, "stop strings need a tokenizer to decode the completion");
  std::vector<Completion> out(prompts.size());
  if (prompts.empty()) return out;
  size_t longest = 0;
  for (const auto& p : prompts) longest = std::max(longest, p.ids.size());
  const int T_limit = config_.max_position_embeddings;
  const int T_max = static_cast<int>(std::min<int64_t>(T_limit, static_cast<int64_t>(longest) + s.max_new_tokens));
  const int slots = static_cast<int>(std::min<size_t>(s.batch, prompts.size()));
  Decoder& decoder = decoder_for(slots, T_max);
  const int V = config_.vocab_size;
  std::vector<float> logits(static_cast<size_t>(slots) * V), probs;
  std::vector<double> scratch;
  std::deque<int32_t> free_slots;
  for (int32_t i = 0; i < slots; ++i) free_slots.push_back(i);
  std::vector<Active> active;
  size_t next_prompt = 0;
  stats_ = GenerationStats{};
  using clock = std::chrono::steady_clock;
  auto seconds_since = [](clock::time_point t0) { return std::chrono::duration<double>(clock::now() - t0).count(); };

  // A chosen token: recorded, reported; true when its sequence is done.
  auto take = [&](size_t p, int32_t token, int64_t position) {
    const bool done = append_and_check(out[p], token, position, s, T_limit);
    if (on_token) on_token(p, out[p]);
    return done;
  };
  while (next_prompt < prompts.size() || !active.empty()) {
    // Fill the free slots: prefill, then the first new token from the prompt's last logits.
    while (!free_slots.empty() && next_prompt < prompts.size()) {
      const size_t p = next_prompt++;
      const int32_t slot = free_slots.front();
      free_slots.pop_front();
      const auto& ids = prompts[p].ids;
      const int T = static_cast<int>(ids.size());
      const auto t0 = clock::now();
      decoder.prefill(logits.data(), slot, ids.data(), T);
      const int32_t token = choose_token(logits.data(), V, s.sampling, prompt_stream(prompts[p].id), T, scratch, probs);
      stats_.prefill_s += seconds_since(t0);
      stats_.prompt_tokens += T;
      stats_.prefill_new_tokens += 1;
      if (take(p, token, T))
        free_slots.push_front(slot);
      else
        active.push_back(Active{p, slot, token});
    }
    if (active.empty()) continue;
    std::vector<int32_t> slot_of(active.size()), tokens(active.size());
    for (size_t i = 0; i < active.size(); ++i) {
      slot_of[i] = active[i].slot;
      tokens[i] = active[i].next;
    }
    const auto t0 = clock::now();
    decoder.decode(logits.data(), slot_of.data(), tokens.data(), static_cast<int>(active.size()));
    stats_.decode_tokens += static_cast<int64_t>(active.size());
    std::vector<Active> still;
    for (size_t i = 0; i < active.size(); ++i) {
      Active a = active[i];
      const int64_t position = decoder.length(a.slot);
      a.next = choose_token(logits.data() + i * V, V, s.sampling, prompt_stream(prompts[a.prompt].id), position,
                            scratch, probs);
      if (take(a.prompt, a.next, position))
        free_slots.push_back(a.slot);
      else
        still.push_back(a);
    }
    active.swap(still);
    stats_.decode_s += seconds_since(t0);
  }
  return out;
}

}  // namespace iris::infer
