#include "io/tokenizer.h"

#include <sentencepiece_processor.h>

#include <filesystem>

#include "io/bpe_files.h"
#include "io/bpe_tokenizer.h"
#include "src/core/check.h"

namespace iris::io {
namespace {

class SentencePieceModel final : public TokenizerModel {
 public:
  explicit SentencePieceModel(const std::string& path) : path_(path) {
    const sentencepiece::util::Status status = processor_.Load(path);
    IRIS_USER_CHECK(status.ok(), "cannot load tokenizer model {}: it is not a valid sentencepiece model, a tiktoken "
                    "tokenizer.model or a tokenizer.json ({})", path, status.ToString());
  }
  std::vector<int32_t> encode(std::string_view text, bool allow_special) const override {
    IRIS_USER_CHECK(!allow_special, "tokenizer {} is a sentencepiece model: special tokens cannot be read from text "
                    "(--allow-special is for byte-level BPE tokenizers such as Llama 3's)", path_);
    std::vector<int> ids;
    const sentencepiece::util::Status status = processor_.Encode(text, &ids);
    IRIS_USER_CHECK(status.ok(), "tokenizer {} cannot encode text: {}", path_, status.ToString());
    return std::vector<int32_t>(ids.begin(), ids.end());
  }
  std::string decode(std::span<const int32_t> ids) const override {
    const int V = vocab_size();
    for (int32_t id : ids)
      IRIS_USER_CHECK(id >= 0 && id < V, "token id {} is outside the vocabulary [0, {}) of tokenizer {}", id, V, path_);
    std::string text;
    const sentencepiece::util::Status status = processor_.Decode(std::vector<int>(ids.begin(), ids.end()), &text);
    IRIS_USER_CHECK(status.ok(), "tokenizer {} cannot decode ids: {}", path_, status.ToString());
    return text;
  }
  int vocab_size() const override { return processor_.GetPieceSize(); }
  int bos_id() const override { return processor_.bos_id(); }
  int eos_id() const override { return processor_.eos_id(); }
  std::string piece(int id) const override {
    IRIS_USER_CHECK(id >= 0 && id < vocab_size(), "token id {} is outside the vocabulary [0, {}) of tokenizer {}", id,
                    vocab_size(), path_);
    return processor_.IdToPiece(id);
  }
  int token_id(std::string_view piece) const override {
    const int id = processor_.PieceToId(piece);
    return id >= 0 && id < vocab_size() && processor_.IdToPiece(id) == piece ? id : -1;
  }
  std::string hf_tokenizer_json() const override {
    IRIS_USER_CHECK(false, "tokenizer {} is a sentencepiece model; it has no tokenizer.json form here", path_);
    return "";
  }

 private:
  sentencepiece::SentencePieceProcessor processor_;
  std::string path_;
};

class BpeModel final : public TokenizerModel {
 public:
  explicit BpeModel(BpeModelSpec spec) : bpe_(std::move(spec)) {}
  std::vector<int32_t> encode(std::string_view text, bool allow_special) const override {
    return bpe_.encode(text, allow_special);
  }
  std::string decode(std::span<const int32_t> ids) const override { return bpe_.decode(ids); }
  int vocab_size() const override { return bpe_.vocab_size(); }
  int bos_id() const override { return bpe_.bos_id(); }
  int eos_id() const override { return bpe_.eos_id(); }
  std::string piece(int id) const override { return bpe_.piece(id); }
  int token_id(std::string_view piece) const override { return bpe_.token_id(piece); }
  std::string hf_tokenizer_json() const override { return bpe_.hf_tokenizer_json(); }

 private:
  BpeTokenizer bpe_;
};

}  // namespace

Tokenizer Tokenizer::load(const std::string& model_path) {
  Tokenizer tok;
  tok.path_ = model_path;
  switch (detect_tokenizer_file(model_path)) {
    case TokenizerFileKind::Tiktoken:
      tok.kind_ = TokenizerKind::Tiktoken;
      tok.model_ = std::make_shared<BpeModel>(read_tiktoken_file(model_path));
      break;
    case TokenizerFileKind::HfJson:
      tok.kind_ = TokenizerKind::HfJson;
      tok.model_ = std::make_shared<BpeModel>(read_hf_tokenizer_json(model_path));
      break;
    case TokenizerFileKind::SentencePiece:
      tok.kind_ = TokenizerKind::SentencePiece;
      tok.model_ = std::make_shared<SentencePieceModel>(model_path);
      break;
  }
  return tok;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool allow_special) const {
  return model_->encode(text, allow_special);
}
std::string Tokenizer::decode(std::span<const int32_t> ids) const { return model_->decode(ids); }
int Tokenizer::vocab_size() const { return model_->vocab_size(); }
int Tokenizer::bos_id() const { return model_->bos_id(); }
int Tokenizer::eos_id() const { return model_->eos_id(); }
std::string Tokenizer::piece(int id) const { return model_->piece(id); }
int Tokenizer::token_id(std::string_view piece) const { return model_->token_id(piece); }
std::string Tokenizer::hf_tokenizer_json() const { return model_->hf_tokenizer_json(); }

}  // namespace iris::io
