// The state stream's piece loop (src/train/state_stream.h) on host buffers without a DP group: reads and
// writes through staging buffers of 1, 3, 1000 and more elements than the buffer give exactly the
// buffer's bytes; the store refuses pieces outside its ranges and larger than its staging; and the
// ZeRO-1 layout (src/train/zero1_layout.h) is the one Zero1CpuOptimizer uses. Exact comparisons.
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <vector>

#include "src/core/check.h"
#include "src/model/param_table.h"
#include "src/train/zero1_cpu_optimizer.h"
#include "src/train/state_stream.h"
#include "src/train/zero1_layout.h"

namespace iris {
namespace {

ParamTable tiny_table() {
  const LlamaConfig c = LlamaConfig::load(IRIS_SOURCE_DIR "/configs/models/tiny.json");
  return ParamTable::build(c, Topology::make(1, 0, 1, 1), stage_layers(c.num_hidden_layers, 1, 0));
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(StateStream, PiecesOfEverySizeMoveTheExactBytes) {
  const ParamTable table = tiny_table();
  const size_t P = table.total_numel();
  std::vector<float> source(P);
  table.initialize(source.data(), 3);
  AdamW adam(table, AdamWConfig{}, 100, P - 7);  // a range that is not a tensor boundary
  std::iota(adam.m().begin(), adam.m().end(), 0.5f);
  std::iota(adam.v().begin(), adam.v().end(), -3.25f);
  for (size_t staging : {size_t{1}, size_t{3}, size_t{1000}, P + 5}) {
    HostStateStore src_store(source.data(), P, {0, P}, &adam, staging);
    StateStream src(src_store, nullptr);
    std::vector<float> weights(P), m(adam.m().size()), v(adam.v().size());
    src.gather_weights(0, P, weights.data());
    src.read_moments(StatePart::ExpAvg, 100, m.size(), m.data());
    src.read_moments(StatePart::ExpAvgSq, 100, v.size(), v.data());
    EXPECT_TRUE(same_bits(weights, source)) << "staging " << staging;
    EXPECT_TRUE(same_bits(m, adam.m())) << "staging " << staging;
    EXPECT_TRUE(same_bits(v, adam.v())) << "staging " << staging;

    std::vector<float> copy(P, 0.0f);
    AdamW copy_adam(table, AdamWConfig{}, 100, P - 7);
    HostStateStore dst_store(copy.data(), P, {0, P}, &copy_adam, staging);
    StateStream dst(dst_store, nullptr);
    dst.write(StatePart::Weights, 0, P, weights.data());
    dst.write(StatePart::ExpAvg, 100, m.size(), m.data());
    dst.write(StatePart::ExpAvgSq, 100, v.size(), v.data());
    EXPECT_TRUE(same_bits(copy, source)) << "staging " << staging;
    EXPECT_TRUE(same_bits(copy_adam.m(), adam.m())) << "staging " << staging;
    EXPECT_TRUE(same_bits(copy_adam.v(), adam.v())) << "staging " << staging;
  }
}

TEST(StateStream, StoreRefusesPiecesOutsideItsRanges) {
  const ParamTable table = tiny_table();
  const size_t P = table.total_numel();
  std::vector<float> params(P, 0.0f);
  AdamW adam(table, AdamWConfig{}, 0, 64);
  HostStateStore store(params.data(), P, {0, 128}, &adam, 16);
  EXPECT_THROW(store.read(StatePart::Weights, 120, 16), Error);   // past the readable shard
  EXPECT_THROW(store.read(StatePart::ExpAvg, 60, 8), Error);      // past the moments
  EXPECT_THROW(store.write(StatePart::Weights, 0, 17), Error);    // larger than the staging
  EXPECT_NO_THROW(store.write(StatePart::Weights, P - 16, 16));   // weights may be written anywhere
  EXPECT_THROW(store.write(StatePart::Weights, P - 15, 16), Error);
}

TEST(Zero1Layout, IsTheZero1CpuOptimizersGeometry) {
  const ParamTable table = tiny_table();
  const size_t P = table.total_numel();
  for (int dp : {1, 3}) {
    for (int rank = 0; rank < dp; ++rank) {
      const Zero1Layout l = Zero1Layout::make(table, dp, rank, 1000, true);
      const size_t padded = (P + dp - 1) / dp * dp, shard = padded / dp;
      EXPECT_EQ(l.padded, padded);
      EXPECT_EQ(l.shard_begin, rank * shard);
      EXPECT_EQ(l.shard_end, (rank + 1) * shard);
      EXPECT_EQ(l.adam_end, std::min(l.shard_end, P));
      EXPECT_EQ(l.overlap, dp > 1);
      EXPECT_EQ(l.owner(l.shard_begin), rank);
      EXPECT_EQ(l.grad_reduce_calls(), dp == 1 ? 0u : overlap_buckets(padded, dp, 1000).size());
      const Zero1Layout plain = Zero1Layout::make(table, dp, rank, 1000, false);
      EXPECT_EQ(plain.grad_reduce_calls(), dp == 1 ? 0u : (shard + 999) / 1000);
      // AdamW's segments over the real parameters of the shard, as the host AdamW cuts them.
      const AdamW adam(table, AdamWConfig{}, l.adam_begin, l.adam_end);
      ASSERT_EQ(l.segments.size(), adam.segments().size());
      for (size_t i = 0; i < l.segments.size(); ++i) {
        EXPECT_EQ(l.segments[i].begin, adam.segments()[i].begin);
        EXPECT_EQ(l.segments[i].end, adam.segments()[i].end);
        EXPECT_EQ(l.segments[i].decay, adam.segments()[i].decay);
      }
    }
  }
}

}  // namespace
}  // namespace iris
