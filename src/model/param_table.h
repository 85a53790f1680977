// The parameter table (docs/design.md decision 2): (HF name, global shape, shard rule) for every tensor of one
// pipeline stage on one tensor-parallel rank, with its place in the flat parameter/gradient buffer.
// Flat buffers, ZeRO shard ranges, checkpoint names and HF import/export all come from here;
// nothing else hard-codes a tensor name or a shard offset.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "parallel/topology.h"
#include "src/core/tensor.h"
#include "src/model/llama_config.h"

namespace iris {

// How a tensor is split over the tensor-parallel group (Megatron-LM, Shoeybi et al. 2019, sec. 3).
enum class ShardRule {
  Replicated,  // every TP rank holds it whole (norm weights)
  Column,      // split along dim 0, the output features (q/k/v, gate/up)
  Row,         // split along dim 1, the input features (o_proj, down_proj)
  Vocab,       // split along dim 0 after padding the vocabulary to a multiple of tp (embedding, lm_head)
};

struct ParamEntry {
  std::string name;                    // HF name, e.g. model.layers.3.self_attn.q_proj.weight
  std::vector<int64_t> global_shape;   // unpadded, HF layout (out, in)
  ShardRule rule = ShardRule::Replicated;
  std::vector<int64_t> local_shape;    // this rank's block (Vocab: padded rows included)
  int64_t shard_begin = 0;             // first global index along the split dim held here
  int64_t valid_rows = 0;              // Vocab: local rows < V (the rest is padding); else local rows
  size_t offset = 0;                   // first element in the flat buffer
  size_t numel = 0;                    // local elements
  bool weight_decay = false;           // matrices decay, 1-D tensors (norms) do not
  int layer = -1;                      // transformer layer, -1 for embedding/final norm/head
  double init_std = 0.0;               // 0: ones (norm weights)
  // The element index in the global tensor of local element i (padding rows: -1).
  int64_t global_index(size_t i) const;
};

class ParamTable {
 public:
  // Tensors of pipeline stage topo.pp_rank on TP rank topo.tp_rank.
  static ParamTable build(const LlamaConfig& config, const Topology& topo, const StageLayers& layers);

  const std::vector<ParamEntry>& entries() const { return entries_; }
  const ParamEntry& at(const std::string& name) const;  // Error when missing
  const ParamEntry* find(const std::string& name) const;
  size_t total_numel() const { return total_; }          // local flat buffer length
  int64_t padded_vocab() const { return padded_vocab_; } // V rounded up to a multiple of tp
  // Elements of this rank's tensors that every TP rank also holds (replicated): counted once in norms.
  bool replicated(const ParamEntry& e) const { return e.rule == ShardRule::Replicated; }

  // The named view of tensor e inside a flat buffer laid out by this table (parameters or gradients):
  // F32, e.local_shape, starting at e.offset. The views of all entries tile [0, total_numel()).
  static TensorView view(const ParamEntry& e, float* buffer) { return TensorView::of(buffer + e.offset, e.local_shape); }

  // Fills the flat buffer from the counter-based RNG keyed by (seed, name, global index) (docs/design.md decision 11).
  void initialize(float* params, uint64_t seed) const;
  // Copies this rank's block of a whole global tensor (global_shape, row-major) into the flat buffer.
  void scatter_from_global(const ParamEntry& e, const float* global, float* params) const;
  // Writes this rank's block into a whole global tensor (other blocks untouched).
  void gather_to_global(const ParamEntry& e, const float* params, float* global) const;

  static std::string layer_name(int layer, const std::string& suffix);  // "model.layers.{l}.{suffix}"

 private:
  void add(const std::string& name, std::vector<int64_t> global_shape, ShardRule rule, int layer, double init_std,
           const Topology& topo);
  std::vector<ParamEntry> entries_;
  size_t total_ = 0;
  int64_t padded_vocab_ = 0;
};

// Where one pipeline stage's tensors start in the flat buffer, and the vocabulary shard of its
// embedding or LM head: what both model stages (CPU and CUDA) index the buffer with.
struct StageOffsets {
  struct Layer { size_t ln1, q, k, v, o, ln2, gate, up, down; };
  std::vector<Layer> layers;                       // the stage's layers, in order
  size_t embed = 0, norm = 0, head = 0;            // first stage: embed; last stage: norm and head
  int64_t V_local = 0, vocab_start = 0, V_valid = 0;  // rows of this rank's vocabulary shard
};
StageOffsets stage_offsets(const LlamaConfig& config, const Topology& topo, const ParamTable& table,
                           const StageLayers& layers);

}  // namespace iris
