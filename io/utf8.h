// UTF-8 checks for tokenizer input. Byte-level BPE tokenizers (and the JSON parser) need valid
// UTF-8; a bad byte is reported with its position so iris-tokenize can name FILE:LINE, or replaced
// by U+FFFD the way Python's bytes.decode("utf-8", errors="replace") does (one U+FFFD per maximal
// ill-formed subsequence, Unicode 15 section 3.9 "U+FFFD Substitution of Maximal Subparts").
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace iris::io {

// Offset of the first byte that does not start a well-formed UTF-8 sequence, or npos when `text` is
// valid UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
size_t find_invalid_utf8(std::string_view text);

// `text` with every maximal ill-formed subsequence replaced by U+FFFD (EF BF BD).
std::string replace_invalid_utf8(std::string_view text);

// 1-based line of byte `offset` in `text` (counting '\n').
size_t line_of_offset(std::string_view text, size_t offset);

}  // namespace iris::io
