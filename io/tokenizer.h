// Text ↔ token ids through a sentencepiece model (Llama 2's tokenizer.model works as is). encode()
// never adds BOS/EOS; callers that frame documents (iris-tokenize, SFT formatting) add them.
// A Tokenizer is cheap to copy: copies share one immutable model, and encode/decode are const.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace iris::io {

class Tokenizer {
 public:
  // Throws UserError naming `model_path` when the file is missing or not a sentencepiece model.
  static Tokenizer load(const std::string& model_path);

  std::vector<int32_t> encode(std::string_view text) const;
  std::string decode(std::span<const int32_t> ids) const;  // UserError on an id outside the vocabulary

  int vocab_size() const;
  int bos_id() const;  // -1 when the model defines none
  int eos_id() const;  // -1 when the model defines none
  std::string piece(int id) const;
  const std::string& path() const { return path_; }

 private:
  std::shared_ptr<const sentencepiece::SentencePieceProcessor> processor_;
  std::string path_;
};

}  // namespace iris::io
