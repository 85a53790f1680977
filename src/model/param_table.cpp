#include "src/model/param_table.h"

#include <algorithm>

#include "src/core/check.h"
#include "src/core/rng.h"

namespace iris {

int64_t ParamEntry::global_index(size_t i) const {
  if (local_shape.size() == 1) return shard_begin + static_cast<int64_t>(i);
  const int64_t local_cols = local_shape[1];
  const int64_t r = static_cast<int64_t>(i) / local_cols, c = static_cast<int64_t>(i) % local_cols;
  switch (rule) {
    case ShardRule::Replicated: return r * global_shape[1] + c;
    case ShardRule::Column:
    case ShardRule::Vocab:
      if (r >= valid_rows) return -1;
      return (shard_begin + r) * global_shape[1] + c;
    case ShardRule::Row: return r * global_shape[1] + shard_begin + c;
  }
  return -1;
}

std::string ParamTable::layer_name(int layer, const std::string& suffix) {
  return fmt::format("model.layers.{}.{}", layer, suffix);
}

void ParamTable::add(const std::string& name, std::vector<int64_t> global_shape, ShardRule rule, int layer,
                     double init_std, const Topology& topo) {
  ParamEntry e;
  e.name = name;
  e.global_shape = global_shape;
  e.rule = rule;
  e.layer = layer;
  e.init_std = init_std;
  e.weight_decay = global_shape.size() >= 2;
  e.local_shape = global_shape;
  const int64_t tp = topo.tp, t = topo.tp_rank;
  switch (rule) {
    case ShardRule::Replicated: e.valid_rows = global_shape[0]; break;
    case ShardRule::Column:
      e.local_shape[0] = global_shape[0] / tp;
      e.shard_begin = t * e.local_shape[0];
      e.valid_rows = e.local_shape[0];
      break;
    case ShardRule::Row:
      e.local_shape[1] = global_shape[1] / tp;
      e.shard_begin = t * e.local_shape[1];
      e.valid_rows = e.local_shape[0];
      break;
    case ShardRule::Vocab:
      e.local_shape[0] = padded_vocab_ / tp;
      e.shard_begin = t * e.local_shape[0];
      e.valid_rows = std::clamp<int64_t>(global_shape[0] - e.shard_begin, 0, e.local_shape[0]);
      break;
  }
  e.numel = 1;
  for (int64_t d : e.local_shape) e.numel *= static_cast<size_t>(d);
  e.offset = total_;
  total_ += e.numel;
  entries_.push_back(std::move(e));
}

ParamTable ParamTable::build(const LlamaConfig& c, const Topology& topo, const StageLayers& layers) {
  validate_layout(c, topo.tp, topo.pp);
  ParamTable t;
  const int64_t C = c.hidden_size, F = c.intermediate_size, HS = c.head_dim;
  const int64_t NH = c.num_attention_heads, NKV = c.num_key_value_heads, V = c.vocab_size;
  t.padded_vocab_ = (V + topo.tp - 1) / topo.tp * topo.tp;
  const double std = c.raw.value("initializer_range", 0.02);

  // The tied embedding also serves as the LM head, so the last stage holds a copy when pp > 1; the
  // copies start equal (same RNG key) and their gradients are summed over the embedding group.
  if (topo.is_first_stage() || (c.tie_word_embeddings && topo.is_last_stage()))
    t.add("model.embed_tokens.weight", {V, C}, ShardRule::Vocab, -1, std, topo);
  for (int l = layers.first; l < layers.last; ++l) {
    t.add(layer_name(l, "input_layernorm.weight"), {C}, ShardRule::Replicated, l, 0.0, topo);
    t.add(layer_name(l, "self_attn.q_proj.weight"), {NH * HS, C}, ShardRule::Column, l, std, topo);
    t.add(layer_name(l, "self_attn.k_proj.weight"), {NKV * HS, C}, ShardRule::Column, l, std, topo);
    t.add(layer_name(l, "self_attn.v_proj.weight"), {NKV * HS, C}, ShardRule::Column, l, std, topo);
    t.add(layer_name(l, "self_attn.o_proj.weight"), {C, NH * HS}, ShardRule::Row, l, std, topo);
    t.add(layer_name(l, "post_attention_layernorm.weight"), {C}, ShardRule::Replicated, l, 0.0, topo);
    t.add(layer_name(l, "mlp.gate_proj.weight"), {F, C}, ShardRule::Column, l, std, topo);
    t.add(layer_name(l, "mlp.up_proj.weight"), {F, C}, ShardRule::Column, l, std, topo);
    t.add(layer_name(l, "mlp.down_proj.weight"), {C, F}, ShardRule::Row, l, std, topo);
  }
  if (topo.is_last_stage()) {
    t.add("model.norm.weight", {C}, ShardRule::Replicated, -1, 0.0, topo);
    if (!c.tie_word_embeddings) t.add("lm_head.weight", {V, C}, ShardRule::Vocab, -1, std, topo);
  }
  return t;
}

const ParamEntry* ParamTable::find(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

const ParamEntry& ParamTable::at(const std::string& name) const {
  const ParamEntry* e = find(name);
  IRIS_CHECK(e != nullptr, "parameter {} is not held by this rank", name);
  return *e;
}

void ParamTable::initialize(float* params, uint64_t seed) const {
  for (const auto& e : entries_) {
    float* p = view(e, params).as<float>();
    const uint64_t stream = name_hash(e.name);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < e.numel; ++i) {
      int64_t g = e.global_index(i);
      if (g < 0) p[i] = 0.0f;  // vocab padding rows stay zero
      else if (e.init_std == 0.0) p[i] = 1.0f;
      else p[i] = static_cast<float>(e.init_std * random_normal(seed, stream, static_cast<uint64_t>(g)));
    }
  }
}

void ParamTable::scatter_from_global(const ParamEntry& e, const float* global, float* params) const {
  float* p = view(e, params).as<float>();
  for (size_t i = 0; i < e.numel; ++i) {
    int64_t g = e.global_index(i);
    p[i] = g < 0 ? 0.0f : global[g];
  }
}

void ParamTable::gather_to_global(const ParamEntry& e, const float* params, float* global) const {
  const float* p = params + e.offset;
  for (size_t i = 0; i < e.numel; ++i) {
    int64_t g = e.global_index(i);
    if (g >= 0) global[g] = p[i];
  }
}

StageOffsets stage_offsets(const LlamaConfig& config, const Topology& topo, const ParamTable& table,
                           const StageLayers& layers) {
  StageOffsets o;
  for (int l = layers.first; l < layers.last; ++l) {
    auto off = [&](const char* suffix) { return table.at(ParamTable::layer_name(l, suffix)).offset; };
    o.layers.push_back({off("input_layernorm.weight"), off("self_attn.q_proj.weight"), off("self_attn.k_proj.weight"),
                        off("self_attn.v_proj.weight"), off("self_attn.o_proj.weight"),
                        off("post_attention_layernorm.weight"), off("mlp.gate_proj.weight"),
                        off("mlp.up_proj.weight"), off("mlp.down_proj.weight")});
  }
  const ParamEntry* vocab_entry = nullptr;
  if (topo.is_first_stage()) {
    vocab_entry = &table.at("model.embed_tokens.weight");
    o.embed = vocab_entry->offset;
  }
  if (topo.is_last_stage()) {
    o.norm = table.at("model.norm.weight").offset;
    vocab_entry = &table.at(config.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight");
    o.head = vocab_entry->offset;
  }
  if (vocab_entry) {
    o.V_local = vocab_entry->local_shape[0];
    o.vocab_start = vocab_entry->shard_begin;
    o.V_valid = vocab_entry->valid_rows;
  }
  return o;
}

}  // namespace iris
