// The parameter table: exact parameter counts of the bundled configs (published figures), shards
// that tile every global tensor exactly once under tensor parallelism, and layout validation.
#include <gtest/gtest.h>

#include <map>

#include "src/core/error.h"
#include "src/model/param_table.h"

namespace iris {
namespace {

std::string model_path(const std::string& name) { return std::string(IRIS_SOURCE_DIR) + "/configs/models/" + name + ".json"; }

TEST(ParamTable, ExactParameterCountsOfBundledConfigs) {
  const std::map<std::string, int64_t> expected = {{"llama2-7b", 6738415616LL},  {"llama2-13b", 13015864320LL},
                                                   {"llama3-8b", 8030261248LL},  {"llama3.2-1b", 1235814400LL},
                                                   {"llama3.2-3b", 3212749824LL}};
  for (const auto& [name, count] : expected) {
    const LlamaConfig c = LlamaConfig::load(model_path(name));
    EXPECT_EQ(c.num_parameters(), count) << name;
    // The table (one rank, one stage) holds exactly the same number of elements.
    const ParamTable t = ParamTable::build(c, Topology::make(1, 0, 1, 1), stage_layers(c.num_hidden_layers, 1, 0));
    EXPECT_EQ(static_cast<int64_t>(t.total_numel()), count) << name;
  }
}

TEST(ParamTable, TensorParallelShardsTileEveryTensorOnce) {
  const LlamaConfig c = LlamaConfig::load(model_path("tiny"));
  for (int tp : {1, 2, 4}) {
    std::map<std::string, std::vector<int>> hits;  // global element → how many ranks hold it
    for (int r = 0; r < tp; ++r) {
      const Topology topo = Topology::make(tp, r, tp, 1);
      const ParamTable t = ParamTable::build(c, topo, stage_layers(c.num_hidden_layers, 1, 0));
      for (const auto& e : t.entries()) {
        int64_t global = 1;
        for (int64_t d : e.global_shape) global *= d;
        auto& h = hits[e.name];
        h.resize(global, 0);
        for (size_t i = 0; i < e.numel; ++i) {
          int64_t g = e.global_index(i);
          if (g >= 0) h[g] += 1;
        }
      }
    }
    for (const auto& [name, h] : hits)
      for (size_t g = 0; g < h.size(); ++g) {
        const bool replicated = name.find("norm") != std::string::npos;
        ASSERT_EQ(h[g], replicated ? tp : 1) << name << " element " << g << " at tp=" << tp;
      }
  }
}

TEST(ParamTable, VocabIsPaddedToAMultipleOfTp) {
  nlohmann::json j = {{"hidden_size", 8}, {"intermediate_size", 8}, {"num_hidden_layers", 1}, {"num_attention_heads", 2},
                      {"num_key_value_heads", 2}, {"vocab_size", 11}};
  const LlamaConfig c = LlamaConfig::from_json(j, "odd-vocab");
  const ParamTable t0 = ParamTable::build(c, Topology::make(2, 0, 2, 1), {0, 1});
  const ParamTable t1 = ParamTable::build(c, Topology::make(2, 1, 2, 1), {0, 1});
  EXPECT_EQ(t0.padded_vocab(), 12);
  EXPECT_EQ(t0.at("lm_head.weight").valid_rows, 6);
  EXPECT_EQ(t1.at("lm_head.weight").valid_rows, 5);  // one padding row on the last shard
  std::vector<float> p(t1.total_numel(), 7.0f);
  t1.initialize(p.data(), 3);
  const auto& head = t1.at("lm_head.weight");
  const TensorView head_view = ParamTable::view(head, p.data());
  EXPECT_EQ(head_view.shape, (std::vector<int64_t>{6, 8}));  // 5 valid rows + 1 padding row
  for (int col = 0; col < 8; ++col) EXPECT_EQ(head_view.at<float>({5, col}), 0.0f) << "padding row must be zero";
  EXPECT_NE(head_view.at<float>({4, 0}), 0.0f);
}

// The named views of all tensors tile the flat buffer: in table order, each starts where the previous
// one ended, with the tensor's local shape.
TEST(ParamTable, NamedViewsTileTheFlatBuffer) {
  const LlamaConfig c = LlamaConfig::load(model_path("tiny"));
  const ParamTable t = ParamTable::build(c, Topology::make(4, 1, 2, 2), stage_layers(c.num_hidden_layers, 2, 0));
  std::vector<float> buffer(t.total_numel());
  float* next = buffer.data();
  for (const auto& e : t.entries()) {
    const TensorView v = ParamTable::view(e, buffer.data());
    EXPECT_EQ(v.as<float>(), next) << e.name;
    EXPECT_EQ(v.shape, e.local_shape) << e.name;
    EXPECT_EQ(v.numel(), e.numel) << e.name;
    next += v.numel();
  }
  EXPECT_EQ(next, buffer.data() + buffer.size());
}

TEST(ParamTable, InitialisationIsIndependentOfTheLayout) {
  const LlamaConfig c = LlamaConfig::load(model_path("tiny"));
  const ParamTable full = ParamTable::build(c, Topology::make(1, 0, 1, 1), stage_layers(c.num_hidden_layers, 1, 0));
  std::vector<float> pf(full.total_numel());
  full.initialize(pf.data(), 42);
  for (int r = 0; r < 2; ++r) {
    const ParamTable shard = ParamTable::build(c, Topology::make(2, r, 2, 1), stage_layers(c.num_hidden_layers, 1, 0));
    std::vector<float> ps(shard.total_numel());
    shard.initialize(ps.data(), 42);
    for (const auto& e : shard.entries()) {
      const auto& f = full.at(e.name);
      for (size_t i = 0; i < e.numel; ++i) {
        int64_t g = e.global_index(i);
        if (g >= 0) ASSERT_EQ(ps[e.offset + i], pf[f.offset + g]) << e.name;
      }
    }
  }
}

TEST(LlamaConfigErrors, HeadsMustDivideHidden) {
  nlohmann::json j = {{"hidden_size", 10}, {"intermediate_size", 8}, {"num_hidden_layers", 1},
                      {"num_attention_heads", 4}, {"vocab_size", 11}};
  try {
    LlamaConfig::from_json(j, "bad.json");
    FAIL() << "expected an error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("num_attention_heads"), std::string::npos) << e.what();
  }
}

TEST(LlamaConfigErrors, TpMustDivideKvHeads) {
  const LlamaConfig c = LlamaConfig::load(model_path("tiny"));  // 8 heads, 4 KV heads
  EXPECT_THROW(validate_layout(c, 8, 1), UserError);
  EXPECT_NO_THROW(validate_layout(c, 4, 1));
  EXPECT_THROW(validate_layout(c, 1, 5), UserError);  // more stages than layers
}

}  // namespace
}  // namespace iris
