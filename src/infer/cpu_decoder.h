// The Llama forward for generation on the CPU (fp32): a prefill of a whole prompt in one forward, then one
// token per sequence per step over a KV cache. Weights are one tensor-parallel rank's flat buffer laid out
// by the ParamTable (docs/design.md decision 2), so the same math runs at any tp (decision 6: q/k/v and
// gate/up column-parallel, o_proj and down row-parallel, embedding and LM head vocab-parallel).
#pragma once
#include <cstdint>
#include <vector>

#include "parallel/comm.h"
#include "src/infer/decoder.h"
#include "src/model/llama_config.h"
#include "src/model/param_table.h"

namespace iris::infer {

// Keys (after RoPE) and values of `slots` sequences, per layer and KV head: k[l], v[l] are
// (slots, NKV_local, T_max, HS), position j of slot s at row j. lengths[s] positions are filled.
struct KvCache {
  int slots = 0, T_max = 0, NKV_local = 0, HS = 0;
  std::vector<std::vector<float>> k, v;  // (L,) of (slots, NKV_local, T_max, HS)
  std::vector<int32_t> lengths;          // (slots,)
  KvCache(int L, int slots, int T_max, int NKV_local, int HS);
  size_t slot_floats() const { return static_cast<size_t>(NKV_local) * T_max * HS; }
  // Writes rows (N, NKV_local·HS) of layer l at positions pos (N,) of slots slot (N,).
  void write(int l, const float* k_rows, const float* v_rows, const int32_t* slot, const int32_t* pos, int N);
};

class CpuDecoder : public Decoder {
 public:
  // topo: pp = 1 (every layer here); params: this TP rank's flat buffer (ParamTable::build(config, topo,
  // all layers) layout), not copied: it must outlive the decoder. tp may be null at tp = 1. slots: sequences decoded together; T_max:
  // the longest sequence (prompt + new tokens), at most max_position_embeddings.
  CpuDecoder(const LlamaConfig& config, const Topology& topo, Comm* tp, const float* params, int slots, int T_max);

  // logits (V,) of the last prompt position. Empties slot `slot`, then fills positions [0, T) with the
  // prompt's keys and values: tokens (T,), 1 <= T <= T_max.
  void prefill(float* logits, int slot, const int32_t* tokens, int T) override;
  // logits (B, V): token tokens[b] at position lengths[slot[b]] of sequence slot[b], appended to its cache.
  // slot (B,) distinct.
  void decode(float* logits, const int32_t* slot, const int32_t* tokens, int B) override;
  int length(int slot) const override { return cache_.lengths[slot]; }
  int slots() const override { return cache_.slots; }
  int max_positions() const override { return cache_.T_max; }

  const LlamaConfig& config() const { return config_; }
  const KvCache& cache() const { return cache_; }
  int vocab() const { return config_.vocab_size; }

 private:
  // resid (N, C) from the tokens; then every layer; attention is prefill (one sequence, N = T rows from
  // position 0) when `prefill` else decode (one row per slot). Leaves the final norm's output in lnf_.
  void forward_rows(const int32_t* tokens, const int32_t* slot, const int32_t* pos, int N, bool prefill);
  void attention(int l, const int32_t* slot, int N, bool prefill);
  // logits (N, V) of the rows of lnf_ listed in rows (N,): the vocab-parallel head, gathered over tp.
  void head(float* logits, const int* rows, int N);
  void ensure_rows(int N);

  LlamaConfig config_;
  Topology topo_;
  Comm* tp_;
  ParamTable table_;
  StageOffsets offsets_;
  const float* params_;
  std::vector<float> inv_freq_;  // (HS/2,)
  KvCache cache_;
  int C_, HS_, NH_local_, NKV_local_, F_local_;
  int rows_ = 0;  // rows the scratch below holds
  // Scratch for N rows: resid, ln (N, C); q, att (N, NH_local·HS); k, v (N, NKV_local·HS); gate, up (N, F_local);
  // cos, sin (N, HS/2); lse (NH_local·N); logits_local (N, V_local); gathered (tp·N·V_local).
  std::vector<float> resid_, ln_, lnf_, rstd_, tmp_, q_, k_, v_, att_, lse_, gate_, up_, cos_, sin_, logits_local_, gathered_;
  std::vector<int32_t> lengths_;  // (N,) per-row attention lengths in decode
};

}  // namespace iris::infer
