// Essay metrics computed natively, equal to the Python packages the papers used:
//   ROUGE-L F1 as rouge-score 0.1.2's RougeScorer(["rougeL"], use_stemmer=True): lowercase, every run of
//   characters other than [a-z0-9] a separator, NLTK's Porter stemmer (NLTK_EXTENSIONS mode) on tokens
//   longer than 3 characters, F1 of the longest common subsequence.
//   Corpus BLEU as sacrebleu 2.4.3's corpus_bleu(hyps, [refs]) with its defaults: the 13a tokenizer (the
//   mteval-v13a regular expressions), n-grams up to 4, exponential smoothing, the closest reference length.
// Texts are UTF-8; characters are Unicode code points as Python's str sees them.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace iris::eval {

// NLTK's PorterStemmer().stem(word) for a lowercase ASCII word.
std::string porter_stem(const std::string& word);
// rouge_score.tokenize.tokenize(text, PorterStemmer()).
std::vector<std::string> rouge_tokens(std::string_view text);
// RougeScorer(["rougeL"], use_stemmer=True).score(reference, prediction)["rougeL"].fmeasure
double rouge_l_f1(std::string_view reference, std::string_view prediction);

// sacrebleu's Tokenizer13a()(line).
std::string tokenize_13a(std::string_view line);

struct BleuStats {
  long long hyp_len = 0, ref_len = 0;
  long long correct[4] = {0, 0, 0, 0}, total[4] = {0, 0, 0, 0};
};
struct BleuScore {
  double score = 0;          // 0-100, as sacrebleu prints it
  double precisions[4] = {0, 0, 0, 0};
  double bp = 0;
  long long hyp_len = 0, ref_len = 0;
};
// One segment's sufficient statistics (hypothesis and reference are raw text).
BleuStats bleu_segment(std::string_view hypothesis, std::string_view reference);
BleuScore bleu_from_stats(const BleuStats& stats);
BleuScore corpus_bleu(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references);

}  // namespace iris::eval
