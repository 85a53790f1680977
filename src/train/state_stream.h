// A rank's training state as checkpoints and weight exports move it: pieces of the flat fp32 weights
// and of this rank's Adam moments, copied through one bounded staging buffer, so neither side needs a
// second full copy of the state (the GPU backend keeps none on the host; its staging buffer is pinned).
// StateStore is what a backend implements (copy one piece into or out of its staging buffer);
// StateStream is the one piece loop both backends run, with the staging size a parameter.
// Flat indices are those of the ParamTable's buffer; weights are read from the ZeRO-1 fp32 master, which
// each DP rank holds only for its shard, so a read of other ranks' weights is collective over DP.
#pragma once
#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

#include "parallel/comm.h"
#include "src/train/optimizer.h"

namespace iris {

enum class StatePart { Weights, ExpAvg, ExpAvgSq };

class StateStore {
 public:
  virtual ~StateStore() = default;
  virtual float* staging() = 0;                  // (staging_elements(),) host memory
  virtual size_t staging_elements() const = 0;
  // Flat range whose Weights this rank can read (its fp32 master shard) and whose moments it holds.
  virtual std::pair<size_t, size_t> weight_range() const = 0;
  virtual std::pair<size_t, size_t> moment_range() const = 0;
  // staging[0, count) ← part[begin, begin + count), inside weight_range() or moment_range().
  virtual void read(StatePart part, size_t begin, size_t count) = 0;
  // part[begin, begin + count) ← staging[0, count). Weights: any range of the flat buffer (the copy the
  // model reads everywhere, the fp32 master inside weight_range()); moments: inside moment_range().
  virtual void write(StatePart part, size_t begin, size_t count) = 0;
};

class StateStream {
 public:
  // dp: the DP group whose ranks hold the other master shards (null: this rank can read every weight).
  StateStream(StateStore& store, Comm* dp);

  // dst (count,) ← weights [begin, begin + count): each piece from the DP rank whose shard holds it,
  // broadcast over DP. Collective over DP: every DP rank calls it with the same range.
  void gather_weights(size_t begin, size_t count, float* dst);
  // dst (count,) ← this rank's moments [begin, begin + count) (inside moment_range()).
  void read_moments(StatePart part, size_t begin, size_t count, float* dst);
  // part[begin, begin + count) ← src (count,). Local (no communication).
  void write(StatePart part, size_t begin, size_t count, const float* src);

  std::pair<size_t, size_t> moment_range() const { return store_.moment_range(); }
  size_t staging_bytes() const { return store_.staging_elements() * sizeof(float); }

 private:
  StateStore& store_;
  Comm* dp_;
};

// A StateStore over host buffers (the CPU backend's, iris-convert's): params (flat, params_size) whose
// weights are read inside weight_range (the ZeRO-1 shard; {0, params_size} without DP) and, when given,
// an AdamW's moments; staging_elements sizes the staging buffer.
class HostStateStore final : public StateStore {
 public:
  HostStateStore(float* params, size_t params_size, std::pair<size_t, size_t> weight_range, AdamW* adam,
                 size_t staging_elements);
  float* staging() override { return staging_.get(); }
  size_t staging_elements() const override { return staging_size_; }
  std::pair<size_t, size_t> weight_range() const override { return weight_range_; }
  std::pair<size_t, size_t> moment_range() const override;
  void read(StatePart part, size_t begin, size_t count) override;
  void write(StatePart part, size_t begin, size_t count) override;

 private:
  float* locate(StatePart part, size_t begin, size_t count);  // checked pointer to part[begin]
  float* params_;
  size_t params_size_;
  std::pair<size_t, size_t> weight_range_;
  AdamW* adam_;
  size_t staging_size_;
  std::unique_ptr<float[]> staging_;  // uninitialised: pages are touched only as far as pieces reach
};

// Staging elements: IRIS_STAGING_BYTES (bytes, ≥ 4; a test hook for tiny buffers) or default_bytes.
size_t staging_elements_from_env(size_t default_bytes);

}  // namespace iris
