// Byte-level BPE (GPT-2 / tiktoken / Llama 3): text → pre-tokens by a regex (PCRE2 with JIT) → each
// pre-token's UTF-8 bytes → byte tokens → adjacent pairs merged, lowest merge priority first (the
// leftmost of equal ones), until no pair merges. Special tokens are matched in the text only when
// the caller allows it; otherwise "<|eot_id|>" in a document is ordinary text.
// Two file formats build the same model (bpe_files.cpp): Meta's tiktoken `tokenizer.model` (merge
// priority = rank of the merged bytes, Llama 3's 256 special tokens after the ranks) and Hugging Face
// `tokenizer.json` (model.type BPE, merge priority = line in `merges`, `added_tokens`).
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace iris::io {

// Everything a file says, before the lookup tables are built.
struct BpeModelSpec {
  std::string source;                          // the file, for messages
  std::string pattern;                         // pre-tokenizer regex (PCRE2 syntax)
  std::vector<std::string> token_bytes;        // (V,) raw bytes of each id; empty for unused/special ids
  std::vector<std::pair<std::string, int32_t>> specials;  // special token text → id
  // Merges as (left id, right id, merged id), in priority order (index = priority). Empty: derive
  // tiktoken's rule (a pair merges when its concatenation is a token; priority = that token's id).
  std::vector<std::array<int32_t, 3>> merges;
  bool whole_piece_lookup = true;              // a pre-token that is a token is emitted as is (tiktoken; HF ignore_merges)
  int bos_id = -1, eos_id = -1;
};

class BpeTables;  // hash tables, bpe_tokenizer.cpp
struct BpeRegex;   // the compiled PCRE2 pattern

class BpeTokenizer {
 public:
  // UserError naming spec.source for a regex PCRE2 rejects or a byte without a token.
  explicit BpeTokenizer(BpeModelSpec spec);
  ~BpeTokenizer();

  // `text` must be valid UTF-8 (UserError otherwise). Thread-safe.
  std::vector<int32_t> encode(std::string_view text, bool allow_special) const;
  void encode_ordinary(std::string_view text, std::vector<int32_t>& out) const;  // appends; no specials
  std::string decode(std::span<const int32_t> ids) const;  // UserError on an unknown id

  int vocab_size() const { return static_cast<int>(spec_.token_bytes.size()); }
  int bos_id() const { return spec_.bos_id; }
  int eos_id() const { return spec_.eos_id; }
  // A special token's text, or the token's bytes in GPT-2's byte-to-unicode alphabet ("Ġthe").
  std::string piece(int id) const;
  int token_id(std::string_view piece) const;  // -1 when unknown
  bool is_special(int id) const;
  const std::string& source() const { return spec_.source; }
  // The tokenizer as a Hugging Face tokenizer.json (model BPE with ignore_merges as tiktoken, a Split
  // regex then ByteLevel, every special token in added_tokens): what transformers' TikTokenConverter
  // makes of a tiktoken file, so AutoTokenizer loads an exported model.
  std::string hf_tokenizer_json() const;
  const std::string& pattern() const { return spec_.pattern; }

 private:
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;

  BpeModelSpec spec_;
  std::vector<bool> special_;           // (V,)
  bool special_first_byte_[256] = {};   // some special token starts with this byte
  std::unique_ptr<BpeTables> tables_;
  std::unique_ptr<BpeRegex> regex_;
};

// GPT-2's byte ↔ printable code point mapping (bytes_to_unicode in GPT-2's encoder.py): the code
// point byte b is shown as, UTF-8 encoded.
std::string byte_to_unicode(unsigned char b);
// The inverse over a whole string; false when a code point is not in the mapping.
bool unicode_to_bytes(std::string_view text, std::string& bytes);

}  // namespace iris::io
