// The mcq pieces that need no model: the harness's metric formulas on hand-computed examples (argmax with the
// first of equal maxima, acc_norm by characters, the sample stderr of the mean), the seeded few-shot choice,
// the generated-answer parser of --mode generate, and the harness's context/continuation split.
#include <gtest/gtest.h>

#include <cmath>

#include "src/eval/mcq.h"
#include "src/eval/text_task.h"

namespace iris::eval {
namespace {

McqItem item(std::vector<std::string> choices, int gold, const std::string& q = "Q") {
  McqItem it;
  it.context = "Question: " + q + "\nAnswer:";
  it.lettered = it.context;
  it.choices = std::move(choices);
  it.gold = gold;
  return it;
}

TEST(McqMetrics, AccAndAccNormOnAHandComputedExample) {
  // lls -4, -6, -6.5 for "ab", "abcd", "abcdefgh": acc picks 0; per character -2, -1.5, -0.8125: acc_norm picks 2.
  const McqResult r = score_item(item({"ab", "abcd", "abcdefgh"}, 2), {-4.0, -6.0, -6.5});
  EXPECT_EQ(r.pred, 0);
  EXPECT_EQ(r.pred_norm, 2);
  EXPECT_FALSE(r.acc);
  EXPECT_TRUE(r.acc_norm);
  // Characters are code points: "µm" is 2 characters (3 bytes): -3/2 = -1.5 < -4/3, so acc_norm picks "abc"
  // (counting bytes it would still pick "abc", so the length itself is checked too).
  const McqResult u = score_item(item({"µm", "abc"}, 1), {-3.0, -4.0});
  EXPECT_EQ(utf8_length("µm"), 2u);
  EXPECT_EQ(u.pred, 0);       // -3 > -4
  EXPECT_EQ(u.pred_norm, 1);  // -1.333 > -1.5
  // Ties: the first maximum, as np.argmax.
  EXPECT_EQ(score_item(item({"a", "b"}, 1), {-1.0, -1.0}).pred, 0);
}

TEST(McqMetrics, StderrIsTheSampleStderrOfTheMean) {
  std::vector<McqResult> rs(4);
  rs[0].acc = rs[2].acc = rs[3].acc = true;  // acc 1, 0, 1, 1: mean 0.75, s = sqrt(0.75/3) = 0.5, stderr 0.25
  rs[1].acc_norm = true;                     // acc_norm 0, 1, 0, 0: mean 0.25, stderr 0.25
  const McqSummary s = summarize(rs);
  EXPECT_EQ(s.n, 4);
  EXPECT_DOUBLE_EQ(s.acc, 0.75);
  EXPECT_DOUBLE_EQ(s.acc_stderr, 0.25);
  EXPECT_DOUBLE_EQ(s.acc_norm, 0.25);
  EXPECT_DOUBLE_EQ(s.acc_norm_stderr, 0.25);
}

TEST(McqFewshot, SeededOtherItemsBeforeEachQuestion) {
  std::vector<McqItem> base;
  for (int i = 0; i < 6; ++i) base.push_back(item({"x" + std::to_string(i), "y"}, 0, "q" + std::to_string(i)));
  auto a = base, b = base, c = base;
  add_fewshot(a, 2, 7);
  add_fewshot(b, 2, 7);
  add_fewshot(c, 2, 8);
  bool differs = false;
  for (size_t i = 0; i < base.size(); ++i) {
    EXPECT_EQ(a[i].context, b[i].context);  // the same seed, the same examples
    differs = differs || a[i].context != c[i].context;
    // Two "Question: qJ\nAnswer: xJ\n\n" blocks of other items, then the item's own context.
    const std::string own = base[i].context;
    ASSERT_GE(a[i].context.size(), own.size());
    EXPECT_EQ(a[i].context.substr(a[i].context.size() - own.size()), own);
    int shots = 0;
    for (size_t j = 0; j < base.size(); ++j) {
      const std::string shot = base[j].context + " x" + std::to_string(j) + "\n\n";
      if (a[i].context.find(shot) != std::string::npos) {
        EXPECT_NE(i, j) << "an item is its own example";
        ++shots;
      }
    }
    EXPECT_EQ(shots, 2) << a[i].context;
  }
  EXPECT_TRUE(differs) << "another seed should choose other examples somewhere";
}

TEST(McqGenerate, ParsesTheFirstStandaloneLetterOrWord) {
  EXPECT_EQ(parse_generated_choice(" B. Myopia", 4, false), 1);
  EXPECT_EQ(parse_generated_choice("The answer is (C)", 4, false), 2);
  EXPECT_EQ(parse_generated_choice("Because A", 4, false), 0);  // "Because" holds no standalone letter
  EXPECT_EQ(parse_generated_choice("E is not offered; D", 4, false), 3);
  EXPECT_EQ(parse_generated_choice("none of these", 4, false), -1);
  EXPECT_EQ(parse_generated_choice("Maybe, but yes", 3, true), 2);
  EXPECT_EQ(parse_generated_choice("Not known: no.", 3, true), 1);
  EXPECT_EQ(parse_generated_choice("yesterday", 3, true), -1);
}

}  // namespace
}  // namespace iris::eval
