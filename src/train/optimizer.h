// AdamW with fp32 master weights over the flat parameter buffer. Weight decay applies to matrices
// only (the parameter table's weight_decay flag). The update covers a range [begin, end) of the flat
// buffer, so ZeRO-1 (each DP rank updating its shard) uses the same code.
#pragma once
#include <cstddef>
#include <vector>

#include "src/model/param_table.h"

namespace iris {

struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
};

class AdamW {
 public:
  // Optimizer state for flat elements [begin, end) of `table`'s buffer.
  AdamW(const ParamTable& table, AdamWConfig config, size_t begin, size_t end);

  // params, grads: the flat buffers (indexed from 0, only [begin, end) is touched).
  // step is 1-based; grad_scale multiplies the gradients first (clipping).
  void update(float* params, const float* grads, double lr, int step, float grad_scale);

  size_t begin() const { return begin_; }
  size_t end() const { return end_; }
  std::vector<float>& m() { return m_; }  // (end - begin,)
  std::vector<float>& v() { return v_; }
  const std::vector<float>& m() const { return m_; }
  const std::vector<float>& v() const { return v_; }
  size_t state_bytes() const { return (m_.size() + v_.size()) * sizeof(float); }
  const AdamWConfig& config() const { return config_; }

  // [begin, end) cut at tensor boundaries, with each tensor's decay flag (adamw_segments; the device
  // optimizer walks the same segments).
  struct Segment { size_t begin, end; bool decay; };
  const std::vector<Segment>& segments() const { return segments_; }

 private:
  AdamWConfig config_;
  size_t begin_, end_;
  std::vector<Segment> segments_;
  std::vector<float> m_, v_;
};

// The flat range [begin, end) of `table`'s buffer cut at tensor boundaries, with each tensor's decay flag.
std::vector<AdamW::Segment> adamw_segments(const ParamTable& table, size_t begin, size_t end);

// Σ g² over a flat buffer range, in double.
double grad_sum_squares(const ParamTable& table, const float* grads, size_t begin, size_t end, bool skip_replicated);

}  // namespace iris
