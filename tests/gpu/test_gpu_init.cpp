// Device weight initialisation (src/kernels/cuda/init.cuh through src/train/cuda/device_init.h's index
// map) against ParamTable::initialize, the CPU reference: every element of every tensor of a stage, at
// tp = 2 (column, row and vocab-parallel blocks with padding rows, replicated norms) and tied/untied
// heads, generated in pieces of an odd size as the CUDA backend's staging does. Tolerance: bit-identical.
// The kernel evaluates the host's double arithmetic with rounded operations; only log and cos come from
// CUDA's libm (1 and 2 ulp in double), which changes the fp32 result only when that straddles a float
// rounding boundary, so a mismatch is reported with its count and the largest difference in fp32 ulps.
// Host C++ (not nvcc) because it includes the model headers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "src/core/rng.h"
#include "src/kernels/cuda/init.cuh"
#include "src/model/param_table.h"
#include "src/train/cuda/device_init.h"
#include "tests/gpu/gpu_skip.h"

namespace iris {
namespace {

void expect_device_init_matches(const LlamaConfig& config, int tp, int pp, int rank, uint64_t seed) {
  const Topology topo = Topology::make(tp * pp, rank, tp, pp);
  const ParamTable table = ParamTable::build(config, topo, stage_layers(config.num_hidden_layers, pp, topo.pp_rank));
  std::vector<float> cpu(table.total_numel());
  table.initialize(cpu.data(), seed);

  const size_t piece = 1001;  // odd: pieces end mid-row
  float* device = nullptr;
  ASSERT_EQ(cudaMalloc(&device, piece * sizeof(float)), cudaSuccess);
  std::vector<float> gpu(table.total_numel());
  for (const auto& e : table.entries()) {
    for (size_t first = 0; first < e.numel; first += piece) {
      const size_t n = std::min(piece, e.numel - first);
      cuda::init_weights(device, static_cast<int64_t>(first), static_cast<int64_t>(n), init_index_map(e), e.init_std,
                         seed, name_hash(e.name), nullptr);
      ASSERT_EQ(cudaMemcpy(gpu.data() + e.offset + first, device, n * sizeof(float), cudaMemcpyDeviceToHost),
                cudaSuccess);
    }
  }
  cudaFree(device);
  for (const auto& e : table.entries()) {
    size_t mismatches = 0;
    int64_t worst_ulps = 0;
    for (size_t i = e.offset; i < e.offset + e.numel; ++i) {
      int32_t a, b;
      std::memcpy(&a, &cpu[i], 4);
      std::memcpy(&b, &gpu[i], 4);
      if (a == b) continue;
      ++mismatches;
      worst_ulps = std::max<int64_t>(worst_ulps, std::abs(static_cast<int64_t>(a) - b));
    }
    EXPECT_EQ(mismatches, 0u) << e.name << " (tp " << tp << ", rank " << rank << "): " << mismatches << " of "
                              << e.numel << " elements differ, worst by " << worst_ulps << " fp32 ulps";
  }
}

nlohmann::json model_json(int hidden, int intermediate, int layers, int heads, int kv_heads, int vocab) {
  return {{"model_type", "llama"}, {"hidden_size", hidden}, {"intermediate_size", intermediate},
          {"num_hidden_layers", layers}, {"num_attention_heads", heads}, {"num_key_value_heads", kv_heads},
          {"vocab_size", vocab}, {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0}, {"tie_word_embeddings", false},
          {"max_position_embeddings", 64}, {"initializer_range", 0.02}};
}

TEST(GpuInit, MatchesParamTableInitializeAtTp2) {
  IRIS_REQUIRE_GPU();
  // vocab 2047 over tp = 2: a padding row on the last rank's vocab block.
  nlohmann::json j = model_json(64, 96, 2, 4, 2, 2047);
  const LlamaConfig untied = LlamaConfig::from_json(j, "untied test model");
  for (int rank = 0; rank < 2; ++rank) expect_device_init_matches(untied, 2, 1, rank, 1234);
  j["tie_word_embeddings"] = true;
  const LlamaConfig tied = LlamaConfig::from_json(j, "tied test model");
  for (int rank = 0; rank < 4; ++rank) expect_device_init_matches(tied, 2, 2, rank, 42);  // both copies of the embedding
}

TEST(GpuInit, MatchesAtLlama32_1bWidth) {
  IRIS_REQUIRE_GPU();
  // One layer at llama3.2-1b's widths (hidden 2048, FFN 8192, 32/8 heads; 58 M values), vocab cut to 2048.
  const LlamaConfig config = LlamaConfig::from_json(model_json(2048, 8192, 1, 32, 8, 2048), "1b-width test model");
  expect_device_init_matches(config, 1, 1, 0, 7);
}

}  // namespace
}  // namespace iris
