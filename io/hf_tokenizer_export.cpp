#include "io/hf_tokenizer_export.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>

#include "io/durable_file.h"
#include "io/sft_format.h"
#include "io/tokenizer.h"
#include "src/core/check.h"

namespace iris::io {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// HF's Llama 3 post-processor: "<|begin_of_text|> $A" (and "$A <|begin_of_text|> $B" for pairs).
json bos_post_processor(const std::string& bos, int bos_id) {
  const json special = {{"SpecialToken", {{"id", bos}, {"type_id", 0}}}};
  const json pair_special = {{"SpecialToken", {{"id", bos}, {"type_id", 1}}}};
  return {{"type", "TemplateProcessing"},
          {"single", {special, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
          {"pair", {special, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}, pair_special,
                    {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
          {"special_tokens", {{bos, {{"id", bos}, {"ids", {bos_id}}, {"tokens", {bos}}}}}}};
}

}  // namespace

std::vector<std::string> write_hf_tokenizer_files(const std::string& out_dir, const std::string& tokenizer_path,
                                                  const SftTemplate* tmpl, const json& model_config) {
  const Tokenizer tok = Tokenizer::load(tokenizer_path);
  const fs::path out(out_dir);
  std::vector<std::string> written;
  json config = json::object();
  switch (tok.kind()) {
    case TokenizerKind::SentencePiece:
      fs::copy_file(tokenizer_path, out / "tokenizer.model", fs::copy_options::overwrite_existing);
      written.push_back("tokenizer.model");
      config["tokenizer_class"] = "LlamaTokenizer";
      break;
    case TokenizerKind::Tiktoken: {
      json converted = json::parse(tok.hf_tokenizer_json());
      if (tok.bos_id() >= 0) converted["post_processor"] = bos_post_processor(tok.piece(tok.bos_id()), tok.bos_id());
      write_text_durably(out / "tokenizer.json", converted.dump());
      fs::create_directories(out / "original");
      fs::copy_file(tokenizer_path, out / "original" / "tokenizer.model", fs::copy_options::overwrite_existing);
      written.insert(written.end(), {"tokenizer.json", "original/tokenizer.model"});
      config["tokenizer_class"] = "PreTrainedTokenizerFast";
      break;
    }
    case TokenizerKind::HfJson:
      fs::copy_file(tokenizer_path, out / "tokenizer.json", fs::copy_options::overwrite_existing);
      written.push_back("tokenizer.json");
      config["tokenizer_class"] = "PreTrainedTokenizerFast";
      break;
  }
  int eos_id = tok.eos_id();
  if (tmpl != nullptr) {
    const std::string end = tmpl->answer_end_token();
    if (!end.empty() && end != "bos") eos_id = end == "eos" ? tok.eos_id() : tok.token_id(end);
    IRIS_USER_CHECK(!tmpl->hf_chat_template().empty(), "template {} has no \"hf_chat_template\" (the Jinja "
                    "chat_template it reproduces); export without --template or add it", tmpl->source());
    config["chat_template"] = tmpl->hf_chat_template();
  }
  if (tok.bos_id() >= 0) config["bos_token"] = tok.piece(tok.bos_id());
  if (eos_id >= 0) config["eos_token"] = tok.piece(eos_id);
  config["clean_up_tokenization_spaces"] = false;
  config["model_max_length"] = model_config.value("max_position_embeddings", 131072);
  write_text_durably(out / "tokenizer_config.json", config.dump(2) + "\n");
  written.push_back("tokenizer_config.json");

  json generation = {{"_from_model_config", false}};
  if (model_config.contains("bos_token_id")) generation["bos_token_id"] = model_config["bos_token_id"];
  std::vector<int> eos;
  if (model_config.contains("eos_token_id")) {
    const json& e = model_config["eos_token_id"];
    if (e.is_number_integer()) eos.push_back(e.get<int>());
    if (e.is_array())
      for (const json& v : e) eos.push_back(v.get<int>());
  }
  if (eos_id >= 0 && std::find(eos.begin(), eos.end(), eos_id) == eos.end()) eos.push_back(eos_id);
  if (eos.size() == 1) generation["eos_token_id"] = eos[0];
  if (eos.size() > 1) generation["eos_token_id"] = eos;
  write_text_durably(out / "generation_config.json", generation.dump(2) + "\n");
  written.push_back("generation_config.json");
  return written;
}

}  // namespace iris::io
