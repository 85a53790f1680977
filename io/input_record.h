// One input record of a JSONL/JSON/CSV/text file and how its fields are read: shared by iris-tokenize
// (io/tokenize/, which finds and reads the files), SFT formatting (io/sft_format.h), iris-generate's prompts
// and iris-eval's items, so that every tool names a bad record the same way (FILE:LINE, record N).
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "src/core/error.h"

namespace iris::io {

enum class InputFormat { Text, JsonLines, JsonArray, Csv };

// A raw input record, not yet parsed: one JSONL line, one JSON array element, one CSV row (its
// text), or the whole text of a text file.
struct InputRecord {
  std::string data;
  std::string file;
  uint64_t line = 0;   // 1-based line where the record starts; 0 for a whole text file
  InputFormat format = InputFormat::Text;
  uint64_t index = 0;  // 1-based element of a JSON array / row of a CSV file; 0 otherwise
  std::shared_ptr<const std::vector<std::string>> columns;  // the CSV header
  std::string where() const;  // "FILE", "FILE:LINE" or "FILE:LINE (record N)", for messages
};

// A record that cannot be used: the message names FILE:LINE; `reason` is a short category for
// the summary of --skip-bad-lines ("malformed JSON", "missing field \"text\"", ...).
class BadRecordError : public UserError {
 public:
  BadRecordError(std::string reason, const std::string& message) : UserError(message), reason_(std::move(reason)) {}
  const std::string& reason() const { return reason_; }

 private:
  std::string reason_;
};

// Parses a JSONL line, JSON array element or CSV row into a JSON object; BadRecordError for
// malformed JSON, a non-object, or a CSV row whose field count differs from the header's.
nlohmann::json parse_json_record(const InputRecord& record);
// The field at `path` ("name", or "a.b.c" into nested objects; a key holding the dots itself wins),
// or nullptr.
const nlohmann::json* find_field(const nlohmann::json& object, const std::string& path);
// The text of a field: a string, or an array of strings joined with "\n\n". BadRecordError naming
// record.where() and `flag` (the option that chooses the field) when missing or of another type.
std::string text_field_value(const nlohmann::json& object, const std::string& path, const InputRecord& record,
                             const std::string& flag);
}  // namespace iris::io
