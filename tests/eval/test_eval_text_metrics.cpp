// The native ROUGE-L and BLEU (src/eval/text_metrics.h) against rouge-score 0.1.2 and sacrebleu 2.4.3
// (make_text_reference.py) on fixtures/text_pairs.jsonl: 240 pairs with punctuation, numbers, casing and
// Unicode. Every pair's ROUGE-L F1 and tokens, every reference's 13a tokenization, corpus BLEU (score,
// n-gram counts, precisions, brevity penalty, lengths) over the whole fixture and over chunks of 10 pairs,
// and NLTK's Porter stem of every word: equal within 1e-9 (counts and strings exactly). A missing reference
// is a failure, never a skip.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "src/eval/text_metrics.h"

namespace iris::eval {
namespace {
namespace fs = std::filesystem;
constexpr double kTol = 1e-9;

nlohmann::json reference() {
  std::ifstream in(fs::path(IRIS_EVAL_TEXT_REF_DIR) / "text_reference.json");
  if (!in.good()) ADD_FAILURE() << "no " << IRIS_EVAL_TEXT_REF_DIR << "/text_reference.json: run make_text_reference.py";
  return in.good() ? nlohmann::json::parse(in) : nlohmann::json();
}

std::vector<nlohmann::json> fixture() {
  std::ifstream in(fs::path(IRIS_EVAL_FIXTURES) / "text_pairs.jsonl");
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  EXPECT_GE(out.size(), 200u);
  return out;
}

TEST(TextMetrics, PorterStemsEqualNltk) {
  const auto ref = reference();
  ASSERT_TRUE(ref.contains("stems"));
  int checked = 0;
  for (const auto& [word, stem] : ref["stems"].items()) {
    EXPECT_EQ(porter_stem(word), stem.get<std::string>()) << word;
    ++checked;
  }
  EXPECT_GT(checked, 150);
}

TEST(TextMetrics, RougeLEqualsRougeScoreOnEveryPair) {
  const auto ref = reference();
  const auto pairs = fixture();
  ASSERT_EQ(ref["pairs"].size(), pairs.size());
  double sum = 0, ref_sum = 0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const std::string p = pairs[i]["prediction"], r = pairs[i]["reference"];
    EXPECT_EQ(rouge_tokens(r), ref["pairs"][i]["ref_tokens"].get<std::vector<std::string>>()) << "pair " << i;
    const double f = rouge_l_f1(r, p), expected = ref["pairs"][i]["rougeL"];
    EXPECT_NEAR(f, expected, kTol) << "pair " << i << ": " << p << " | " << r;
    sum += f;
    ref_sum += expected;
  }
  EXPECT_NEAR(sum / pairs.size(), ref_sum / pairs.size(), kTol);
}

TEST(TextMetrics, Tokenizer13aEqualsSacrebleu) {
  const auto ref = reference();
  const auto pairs = fixture();
  for (size_t i = 0; i < pairs.size(); ++i) {
    std::string r = pairs[i]["reference"];
    while (!r.empty() && (r.back() == ' ' || r.back() == '\n' || r.back() == '\t')) r.pop_back();
    EXPECT_EQ(tokenize_13a(r), ref["pairs"][i]["tok13a"].get<std::string>()) << "pair " << i;
  }
}

TEST(TextMetrics, CorpusBleuEqualsSacrebleu) {
  const auto ref = reference();
  const auto pairs = fixture();
  ASSERT_TRUE(ref.contains("corpus"));
  for (const auto& c : ref["corpus"]) {
    std::vector<std::string> hyps, refs;
    for (size_t i = c["begin"]; i < c["end"].get<size_t>(); ++i) {
      hyps.push_back(pairs[i]["prediction"]);
      refs.push_back(pairs[i]["reference"]);
    }
    const BleuScore b = corpus_bleu(hyps, refs);
    const std::string what = "pairs [" + c["begin"].dump() + ", " + c["end"].dump() + ")";
    EXPECT_NEAR(b.score, c["score"].get<double>(), kTol) << what;
    EXPECT_NEAR(b.bp, c["bp"].get<double>(), kTol) << what;
    EXPECT_EQ(b.hyp_len, c["sys_len"].get<long long>()) << what;
    EXPECT_EQ(b.ref_len, c["ref_len"].get<long long>()) << what;
    for (int n = 0; n < 4; ++n) EXPECT_NEAR(b.precisions[n], c["precisions"][n].get<double>(), kTol) << what << " n=" << n + 1;
  }
  EXPECT_GT(ref["corpus"][0]["score"].get<double>(), 1.0);  // the fixture is not trivially unrelated
}

}  // namespace
}  // namespace iris::eval
