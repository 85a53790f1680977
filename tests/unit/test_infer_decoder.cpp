// The KV-cache decoder and the generation loop on a tiny random GQA model (tests/unit/stage_test_util.h):
//  - the logits of every cached decode step equal the training forward (LlamaStage) of the whole sequence at
//    that position, max |Δ| ≤ 1e-5 (fp32), for three sequences of different lengths decoded together;
//  - a batch gives exactly the tokens of the same prompts one at a time (greedy and seeded sampling), also
//    when there are fewer slots than prompts and finished slots take new prompts;
//  - stop ids, stop strings, max_new_tokens and max_position_embeddings end a sequence with their reason;
//  - bad prompts are refused naming their line before any work.
#include <gtest/gtest.h>

#include <cmath>

#include "src/core/error.h"
#include "src/infer/cpu_decoder.h"
#include "src/infer/generator.h"
#include "tests/unit/stage_test_util.h"

namespace iris::infer {
namespace {

constexpr double kLogitsAtol = 1e-5;

std::vector<float> random_params(const LlamaConfig& c) {
  const ParamTable table = ParamTable::build(c, Topology{}, StageLayers{0, c.num_hidden_layers});
  std::vector<float> params(table.total_numel());
  table.initialize(params.data(), 11);
  for (const auto& e : table.entries())  // norm weights away from 1
    if (e.init_std == 0.0)
      for (size_t i = 0; i < e.numel; ++i) params[e.offset + i] = 1.0f + 0.2f * float(random_normal(3, e.numel, i));
  return params;
}

std::vector<int32_t> random_tokens(int n, uint64_t seed, int V) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = static_cast<int32_t>(random_u64(seed, 5, i) % V);
  return t;
}

// Logits (T, V) of every position of `tokens` by the training forward, one sequence.
std::vector<float> full_forward_logits(const LlamaConfig& c, const std::vector<float>& params,
                                       const std::vector<int32_t>& tokens) {
  const int T = static_cast<int>(tokens.size());
  const Topology topo;
  const StageLayers layers{0, c.num_hidden_layers};
  const ParamTable table = ParamTable::build(c, topo, layers);
  LlamaStage stage(c, topo, table, layers, 1, T, nullptr);
  auto acts = stage.make_activations();
  std::vector<int32_t> targets(T, 0);
  std::vector<float> weight(T, 0.0f);
  stage.forward(*acts, params.data(), MicroBatch{tokens.data(), targets.data(), weight.data(), nullptr, nullptr},
                nullptr);
  const int VL = static_cast<int>(stage.vocab_local());
  std::vector<float> logits(static_cast<size_t>(T) * c.vocab_size);
  for (int t = 0; t < T; ++t) std::copy_n(acts->logits + size_t(t) * VL, c.vocab_size, logits.begin() + t * c.vocab_size);
  return logits;
}

double max_abs_diff(const float* a, const float* b, int n) {
  double m = 0.0;
  for (int i = 0; i < n; ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

TEST(InferDecoder, CachedDecodeLogitsEqualFullForwardOfTheWholeSequence) {
  const LlamaConfig c = test::tiny_config();
  const int V = c.vocab_size;
  const auto params = random_params(c);
  const int prompt_len[] = {1, 4, 9}, total = 14;  // each sequence grows to prompt + decoded tokens = total
  std::vector<std::vector<int32_t>> seqs;
  for (int s = 0; s < 3; ++s) seqs.push_back(random_tokens(total, 40 + s, V));
  CpuDecoder dec(c, Topology{}, nullptr, params.data(), 3, total);
  std::vector<float> logits(3 * V);
  std::vector<std::vector<float>> full;
  for (int s = 0; s < 3; ++s) {
    full.push_back(full_forward_logits(c, params, seqs[s]));
    dec.prefill(logits.data(), s, seqs[s].data(), prompt_len[s]);
    EXPECT_LE(max_abs_diff(logits.data(), full[s].data() + (prompt_len[s] - 1) * V, V), kLogitsAtol) << "prefill " << s;
  }
  // Decode all three together; a sequence joins the step once its prompt is behind it.
  for (int pos = 1; pos < total; ++pos) {
    std::vector<int32_t> slot, token;
    for (int s = 0; s < 3; ++s)
      if (pos >= prompt_len[s]) slot.push_back(s), token.push_back(seqs[s][pos]);
    dec.decode(logits.data(), slot.data(), token.data(), static_cast<int>(slot.size()));
    for (size_t i = 0; i < slot.size(); ++i)
      EXPECT_LE(max_abs_diff(logits.data() + i * V, full[slot[i]].data() + size_t(pos) * V, V), kLogitsAtol)
          << "sequence " << slot[i] << " position " << pos;
  }
  for (int s = 0; s < 3; ++s) EXPECT_EQ(dec.cache().lengths[s], total);
}

std::vector<Prompt> some_prompts(int V) {
  std::vector<Prompt> p;
  const int lengths[] = {3, 1, 11, 6, 2};
  for (int i = 0; i < 5; ++i) p.push_back(Prompt{"q" + std::to_string(i), random_tokens(lengths[i], 60 + i, V), "t"});
  return p;
}

std::vector<std::vector<int32_t>> ids_of(const std::vector<Completion>& out) {
  std::vector<std::vector<int32_t>> ids;
  for (const auto& c : out) ids.push_back(c.ids);
  return ids;
}

TEST(InferGenerator, BatchGivesTheTokensOfOneAtATimeGreedyAndSampled) {
  const LlamaConfig c = test::tiny_config();
  Generator gen(c, Topology{}, nullptr, random_params(c));
  const auto prompts = some_prompts(c.vocab_size);
  for (const bool greedy : {true, false}) {
    GenerationSettings s;
    s.max_new_tokens = 12;
    s.sampling = {greedy, 0.9f, 10, 0.9f, 1234};
    s.batch = 1;
    const auto one = ids_of(gen.generate(prompts, s));
    for (const int batch : {2, 5}) {
      s.batch = batch;
      EXPECT_EQ(ids_of(gen.generate(prompts, s)), one) << (greedy ? "greedy" : "sampled") << " batch " << batch;
    }
    // Reordering prompts does not change any prompt's tokens: the RNG is keyed by the prompt id.
    std::vector<Prompt> reversed(prompts.rbegin(), prompts.rend());
    auto back = ids_of(gen.generate(reversed, s));
    std::reverse(back.begin(), back.end());
    EXPECT_EQ(back, one);
  }
  GenerationSettings a, b;
  a.sampling = {false, 1.0f, 0, 1.0f, 1};
  b.sampling = {false, 1.0f, 0, 1.0f, 2};
  EXPECT_NE(ids_of(gen.generate(prompts, a)), ids_of(gen.generate(prompts, b))) << "the seed changes nothing";
}

std::string as_text(std::span<const int32_t> ids) {
  std::string s;
  for (int32_t id : ids) s += "<" + std::to_string(id) + ">";
  return s;
}

TEST(InferGenerator, StopsAtStopIdStopStringAndLengthLimits) {
  LlamaConfig c = test::tiny_config();
  c.max_position_embeddings = 16;
  Generator gen(c, Topology{}, nullptr, random_params(c));
  const std::vector<Prompt> prompt = {Prompt{"a", random_tokens(4, 70, c.vocab_size), "t"}};
  GenerationSettings s;
  s.max_new_tokens = 10;
  const auto free_run = gen.generate(prompt, s)[0];
  ASSERT_EQ(free_run.ids.size(), 10u);
  EXPECT_EQ(free_run.finish, FinishReason::Length);

  s.stop_ids = {free_run.ids[5]};  // the first occurrence of that id ends the sequence, the id included
  const size_t first = std::find(free_run.ids.begin(), free_run.ids.end(), free_run.ids[5]) - free_run.ids.begin();
  const auto eos = gen.generate(prompt, s)[0];
  EXPECT_EQ(eos.finish, FinishReason::Eos);
  EXPECT_EQ(eos.ids, std::vector<int32_t>(free_run.ids.begin(), free_run.ids.begin() + first + 1));

  s.stop_ids.clear();
  s.decode = as_text;
  s.stop_strings = {as_text(std::span<const int32_t>(free_run.ids.data() + 3, 2))};
  const auto stop = gen.generate(prompt, s)[0];
  EXPECT_EQ(stop.finish, FinishReason::Stop);
  EXPECT_LE(stop.ids.size(), 5u);
  EXPECT_EQ(stop.text.find(s.stop_strings[0]), std::string::npos) << "the stop string is cut from the text";
  const std::string full_text = as_text(free_run.ids);
  EXPECT_EQ(stop.text, full_text.substr(0, full_text.find(s.stop_strings[0])));

  s.stop_strings.clear();
  s.max_new_tokens = 40;  // 4 prompt tokens + 12 new fill max_position_embeddings = 16
  const auto capped = gen.generate(prompt, s)[0];
  EXPECT_EQ(capped.ids.size(), 12u);
  EXPECT_EQ(capped.finish, FinishReason::Length);
}

TEST(InferGenerator, RefusesBadPromptsNamingTheirLine) {
  LlamaConfig c = test::tiny_config();
  c.max_position_embeddings = 16;
  Generator gen(c, Topology{}, nullptr, random_params(c));
  auto message = [&](Prompt p) {
    try {
      gen.generate({Prompt{"ok", {1, 2}, "in.jsonl:1"}, p}, GenerationSettings{});
    } catch (const UserError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(Prompt{"x", std::vector<int32_t>(17, 1), "in.jsonl:2"}).find("in.jsonl:2: the prompt has 17 tokens"),
            std::string::npos);
  EXPECT_NE(message(Prompt{"x", {1, 29}, "in.jsonl:2"}).find("in.jsonl:2: token 1 (id 29) is outside"),
            std::string::npos);
  EXPECT_NE(message(Prompt{"x", {}, "in.jsonl:2"}).find("in.jsonl:2: empty prompt"), std::string::npos);
}

}  // namespace
}  // namespace iris::infer
