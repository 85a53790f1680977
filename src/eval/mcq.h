// Multiple choice by log-likelihood, as lm-evaluation-harness's `multiple_choice` output type does it: each
// question's context, then each choice as the continuation " " + choice; acc takes the argmax of the summed
// log-probabilities, acc_norm the argmax of log-probability / len(choice) in characters (code points, the
// delimiter not counted: the harness's completion_len); standard errors are the sample stderr of the mean.
// Input formats (docs/eval.md), each the prompt of the harness's task of the same name:
//   medmcqa   {question, opa, opb, opc, opd, cop}  "Question: Q\nChoices:\nA. a\nB. b\nC. c\nD. d\nAnswer:",
//             choices "A"–"D", gold cop (0-3)
//   pubmedqa  {question, context: {contexts: [..]}, final_decision}  "Abstract: C1\nC2…\nQuestion: Q\nAnswer:",
//             choices yes / no / maybe, gold final_decision
//   generic   {question, choices: [..], answer}  "Question: Q\nAnswer:", gold answer (an index)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/tokenizer.h"
#include "src/eval/loglik.h"

namespace iris::eval {

enum class McqFormat { MedMcqa, PubMedQa, Generic };
McqFormat parse_mcq_format(const std::string& text);  // UserError listing the formats

struct McqItem {
  std::string id;                    // the record's "id" when it has one, else its line number
  std::string context;               // the prompt, "Answer:" last
  std::string lettered;              // --mode generate's prompt: the choices listed as "A. …" (pubmedqa: context)
  std::vector<std::string> choices;  // without the leading space
  int gold = 0;                      // index into choices
  bool answered_by_word = false;     // --mode generate: the answer is a choice itself (pubmedqa), not a letter
  std::string where;                 // "FILE:LINE"
};

// Every non-blank line of a JSONL file. BadRecordError naming FILE:LINE for malformed JSON, a missing or
// mistyped field, an answer index / decision out of range, an empty choice.
std::vector<McqItem> read_mcq(const std::string& path, McqFormat format);

// Few-shot: K other items of the same file (chosen by a seeded shuffle, never the item itself), each as
// context + " " + its gold choice, joined with "\n\n" before the item's context (the harness's
// fewshot_delimiter and target_delimiter); the lettered prompts get the same items with their gold letter.
void add_fewshot(std::vector<McqItem>& items, int k, uint64_t seed);

// The harness's _encode_pair: trailing whitespace of the context moves to the continuation; the
// continuation's tokens are encode(context + continuation) past the first len(encode(context)) tokens.
ScoreRequest encode_pair(const io::Tokenizer& tok, const std::vector<int32_t>& prefix, const std::string& context,
                         const std::string& continuation, const std::string& where);

struct McqResult {
  std::vector<double> loglik;  // (choices,)
  int pred = 0, pred_norm = 0;
  bool acc = false, acc_norm = false;
};
// The choice lengths are UTF-8 code points (Python's len of the choice string).
McqResult score_item(const McqItem& item, const std::vector<double>& loglik);
size_t utf8_length(const std::string& s);

struct McqSummary {
  double acc = 0, acc_norm = 0, acc_stderr = 0, acc_norm_stderr = 0;
  int64_t n = 0;
};
// mean and the sample standard error of the mean (stddev with n-1, over sqrt(n)), as lm_eval's mean_stderr.
McqSummary summarize(const std::vector<McqResult>& results);

}  // namespace iris::eval
