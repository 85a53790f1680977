// Text ↔ token ids. One interface, two implementations chosen by the file's content (not its name):
// a sentencepiece model (Llama 2's tokenizer.model) or a byte-level BPE (Llama 3's tiktoken
// tokenizer.model, a Hugging Face tokenizer.json; io/bpe_tokenizer.h). encode() never adds BOS/EOS;
// callers that frame documents (iris-tokenize, SFT formatting) add them, and it never produces a
// special token from ordinary text unless allow_special. A Tokenizer is cheap to copy: copies share
// one immutable model, and encode/decode are const and thread-safe.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace iris::io {

enum class TokenizerKind { SentencePiece, Tiktoken, HfJson };

// What each implementation provides (tokenizer.cpp).
class TokenizerModel {
 public:
  virtual ~TokenizerModel() = default;
  virtual std::vector<int32_t> encode(std::string_view text, bool allow_special) const = 0;
  virtual std::string decode(std::span<const int32_t> ids) const = 0;
  virtual int vocab_size() const = 0;
  virtual int bos_id() const = 0;
  virtual int eos_id() const = 0;
  virtual std::string piece(int id) const = 0;
  virtual int token_id(std::string_view piece) const = 0;
  virtual std::string hf_tokenizer_json() const = 0;
};

class Tokenizer {
 public:
  // Throws UserError naming `model_path` when the file is missing or not a tokenizer of a known kind.
  static Tokenizer load(const std::string& model_path);

  // Byte-level BPE needs valid UTF-8 (UserError otherwise; iris-tokenize checks first and names
  // FILE:LINE). allow_special: text such as "<|eot_id|>" becomes its special token (byte-level BPE only).
  std::vector<int32_t> encode(std::string_view text, bool allow_special = false) const;
  std::string decode(std::span<const int32_t> ids) const;  // UserError on an id outside the vocabulary

  int vocab_size() const;
  int bos_id() const;  // -1 when the model defines none
  int eos_id() const;  // -1 when the model defines none
  std::string piece(int id) const;
  int token_id(std::string_view piece) const;  // -1 when no token has this piece
  // A Hugging Face tokenizer.json of a byte-level BPE (UserError for sentencepiece, which exports as is).
  std::string hf_tokenizer_json() const;
  TokenizerKind kind() const { return kind_; }
  bool byte_level() const { return kind_ != TokenizerKind::SentencePiece; }
  const std::string& path() const { return path_; }

 private:
  std::shared_ptr<const TokenizerModel> model_;
  TokenizerKind kind_ = TokenizerKind::SentencePiece;
  std::string path_;
};

}  // namespace iris::io
