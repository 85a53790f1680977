#include "io/tokenizer.h"

#include <sentencepiece_processor.h>

#include <filesystem>

#include "src/core/check.h"

namespace iris::io {

Tokenizer Tokenizer::load(const std::string& model_path) {
  std::error_code ec;
  IRIS_USER_CHECK(std::filesystem::is_regular_file(model_path, ec),
                  "tokenizer model {} not found (expected a sentencepiece .model file, e.g. Llama 2's "
                  "tokenizer.model)", model_path);
  auto processor = std::make_shared<sentencepiece::SentencePieceProcessor>();
  const sentencepiece::util::Status status = processor->Load(model_path);
  IRIS_USER_CHECK(status.ok(), "cannot load tokenizer model {}: it is not a valid sentencepiece model ({})",
                  model_path, status.ToString());
  Tokenizer tok;
  tok.processor_ = std::move(processor);
  tok.path_ = model_path;
  return tok;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  const sentencepiece::util::Status status = processor_->Encode(text, &ids);
  IRIS_USER_CHECK(status.ok(), "tokenizer {} cannot encode text: {}", path_, status.ToString());
  return std::vector<int32_t>(ids.begin(), ids.end());
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  const int V = vocab_size();
  for (int32_t id : ids) {
    IRIS_USER_CHECK(id >= 0 && id < V, "token id {} is outside the vocabulary [0, {}) of tokenizer {}", id, V, path_);
  }
  std::string text;
  const sentencepiece::util::Status status = processor_->Decode(std::vector<int>(ids.begin(), ids.end()), &text);
  IRIS_USER_CHECK(status.ok(), "tokenizer {} cannot decode ids: {}", path_, status.ToString());
  return text;
}

int Tokenizer::vocab_size() const { return processor_->GetPieceSize(); }
int Tokenizer::bos_id() const { return processor_->bos_id(); }
int Tokenizer::eos_id() const { return processor_->eos_id(); }

std::string Tokenizer::piece(int id) const {
  IRIS_USER_CHECK(id >= 0 && id < vocab_size(), "token id {} is outside the vocabulary [0, {}) of tokenizer {}", id,
                  vocab_size(), path_);
  return processor_->IdToPiece(id);
}

}  // namespace iris::io
