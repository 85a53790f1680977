// The JSONL input of iris-eval's tasks: one JSON object per non-blank line, each bad one named by FILE:LINE.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>

namespace iris::eval {

// io::BadRecordError "WHERE: DETAIL" with `reason` as its category.
[[noreturn]] void bad_record(const std::string& where, const std::string& reason, const std::string& detail);

// Calls `record(object, where, line)` for every non-blank line of `path` ("FILE:LINE" as `where`).
// UserError when the file cannot be read or holds no record; BadRecordError on malformed JSON or a line
// that is not an object (`expected` says what it should be, e.g. "a JSON object {question, reference}").
void for_each_record(const std::string& path, const std::string& expected,
                     const std::function<void(const nlohmann::json&, const std::string&, uint64_t)>& record);

// The record's "id" (a string as is, anything else as its JSON text), else its line number.
std::string record_id(const nlohmann::json& j, uint64_t line);

}  // namespace iris::eval
