// The generative parts of iris-eval, through iris-generate's machinery (src/infer: Generator, PromptEncoder,
// chat templates): `text` generates answers for {question, reference} records and scores them with the
// native ROUGE-L and BLEU (text_metrics.h), METEOR and SemScore through an optional Python scorer
// (tools/eval_scorer.py: nltk, sentence-transformers), reported "unavailable" with the reason otherwise;
// `mcq --mode generate` scores the generated answer letter (medAlpaca's USMLE method). The model is split
// over TP (pp = 1); prompts are spread over DP replicas (prompt i on replica i % dp); rank 0 writes.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "io/sft_format.h"
#include "io/tokenizer.h"
#include "parallel/comm.h"
#include "parallel/topology.h"
#include "src/eval/mcq.h"

namespace iris::eval {

struct ModelSource {
  std::string checkpoint, hf;  // exactly one
};

struct TextOptions {
  int max_new_tokens = 128, top_k = 0, batch = 8;
  float temperature = 1.0f, top_p = 1.0f;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  bool sampled = false;                    // any of temperature / top-k / top-p / seed given; else greedy
  std::string scorer = "python3";          // the Python that runs tools/eval_scorer.py ("" : never)
  std::string scorer_script;               // tools/eval_scorer.py (found next to the binary when empty)
  std::string semscore_model;              // a sentence-transformers model directory
};

struct TextRecord {
  std::string id, question, reference, where;
};
// {question, reference} JSONL (id optional). BadRecordError naming FILE:LINE for a missing/mistyped field.
std::vector<TextRecord> read_text_records(const std::string& path);

// iris-eval text. formatter: --template (chat prompts) or none ("Question: Q\nAnswer:" after BOS).
int run_text(const ModelSource& model, const io::Tokenizer& tok, const std::optional<io::SftFormatter>& formatter,
             const std::string& input, const std::string& output, const TextOptions& opts, const Topology& topo,
             const Communicators& comms);

// iris-eval mcq --mode generate: the question with its choices lettered A, B, … (pubmedqa: answered yes / no /
// maybe), generated greedily; the prediction is the first standalone choice letter (pubmedqa: the first of
// yes / no / maybe as a word, any case) of the answer, none counting as wrong.
int run_mcq_generate(const ModelSource& model, const io::Tokenizer& tok,
                     const std::optional<io::SftFormatter>& formatter, const std::vector<McqItem>& items,
                     const std::string& format, const std::string& output, const TextOptions& opts,
                     const Topology& topo, const Communicators& comms);
// The letter (or word) chosen by a generated answer: an index into choices, -1 when none is found.
int parse_generated_choice(const std::string& text, size_t choices, bool words);

}  // namespace iris::eval
