// iris-generate's input: JSONL lines {"id", "prompt"} (text, encoded with BOS first when the tokenizer has one),
// {"id", "messages": [...]} (a chat rendered through an SFT template up to the final assistant answer, so the
// prompt ends with the template's assistant header), or {"id", "prompt_ids": [...]} (token ids, no tokenizer).
// Errors name FILE:LINE and what was expected.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "io/sft_format.h"
#include "io/tokenizer.h"
#include "src/infer/generator.h"

namespace iris::infer {

// What turns input records into token ids; either member may be absent (prompt_ids need neither).
struct PromptEncoder {
  std::optional<io::Tokenizer> tokenizer;
  std::optional<io::SftFormatter> formatter;  // --template

  // The prompt of one JSONL line (where = "FILE:LINE"). BadRecordError naming `where` for malformed JSON,
  // a missing or mistyped field, a record that needs a tokenizer or template it was not given.
  Prompt parse(const std::string& line, const std::string& where) const;
  // Ids that end an answer: the tokenizer's EOS and the template's trained end-of-turn tokens (e.g. "eos",
  // or "<|eot_id|>" for llama3-chat), sorted and unique.
  std::vector<int32_t> stop_ids() const;
};

// The tokens of `sample` (its last turn's answer empty) up to where that answer would start: the prompt a
// chat model continues. sample: a system prompt and user turns; the last turn's answer is ignored.
std::vector<int32_t> render_chat_prompt(const io::SftFormatter& formatter, const io::SftSample& sample,
                                        const std::string& where);

// The ids of the template's trained "token" segments in its assistant part (what closes an answer: "eos",
// "<|eot_id|>", ...), the pieces the vocabulary lacks left out.
std::vector<int32_t> template_stop_ids(const io::SftTemplate& tmpl, const io::SftVocabulary& vocab);

// Every non-blank line of a JSONL file, parsed. UserError naming the file when it cannot be read.
std::vector<Prompt> read_prompts(const std::string& path, const PromptEncoder& encoder);

}  // namespace iris::infer
