// Readers for the two byte-level BPE file formats (docs/tokenizers.md):
//   Meta's tiktoken tokenizer.model — one "BASE64-BYTES RANK" per line, ranks 0..N-1; Llama 3's 256
//     special tokens (<|begin_of_text|> = N, ...; Meta's llama3/tokenizer.py) follow the ranks, and
//     Llama 3's pre-tokenizer regex is used;
//   Hugging Face tokenizer.json — model.type "BPE" with a ByteLevel pre-tokenizer (GPT-2's regex) or a
//     Split regex followed by ByteLevel(use_regex=false) (Llama 3), vocab, merges and added_tokens.
// Every error is a UserError naming the file and the line (tiktoken) or JSON key (tokenizer.json).
#pragma once
#include <string>

#include "io/bpe_tokenizer.h"

namespace iris::io {

// Llama 3's pre-tokenizer (Meta's llama3/tokenizer.py pat_str).
extern const char* const kLlama3Pattern;
// GPT-2's (HF ByteLevel pre-tokenizer with use_regex=true).
extern const char* const kGpt2Pattern;

enum class TokenizerFileKind { SentencePiece, Tiktoken, HfJson };
// Decided by the first bytes of the file, not its name.
TokenizerFileKind detect_tokenizer_file(const std::string& path);

BpeModelSpec read_tiktoken_file(const std::string& path);
BpeModelSpec read_hf_tokenizer_json(const std::string& path);

}  // namespace iris::io
