// The tokenizer half of an exported Hugging Face model directory (iris-convert iris-to-hf):
//   sentencepiece   tokenizer.model copied; tokenizer_config.json with LlamaTokenizer
//   tiktoken        tokenizer.json made from it (BpeTokenizer::hf_tokenizer_json, with a BOS post-processor
//                   as HF's Llama 3 files have) and the file itself as original/tokenizer.model, as in HF's
//                   Llama 3 repositories
//   tokenizer.json  copied
// plus tokenizer_config.json (bos/eos tokens, model_max_length, and the template's hf_chat_template
// when a template is given; its eos is the token that closes each answer, e.g. <|eot_id|>) and
// generation_config.json (bos and eos ids: the model config's and the answer-closing token).
// AutoTokenizer.from_pretrained(DIR).apply_chat_template(...) then gives what iris-tokenize --sft wrote.
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

namespace iris::io {

class SftTemplate;

// Returns the files written (names inside `out_dir`). `tmpl` may be null (no chat template).
std::vector<std::string> write_hf_tokenizer_files(const std::string& out_dir, const std::string& tokenizer_path,
                                                  const SftTemplate* tmpl, const nlohmann::json& model_config);

}  // namespace iris::io
