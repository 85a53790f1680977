#include "io/input_record.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include <fmt/format.h>

#include "io/csv_parser.h"

namespace iris::io {
namespace {

// nlohmann's message repeats "line 1, column N" of the single line it parsed; keep only the reason.
std::string parse_error_reason(const nlohmann::json::parse_error& e) {
  const std::string what = e.what();
  const size_t column = what.find("column ");
  const size_t colon = column == std::string::npos ? std::string::npos : what.find(": ", column);
  return colon == std::string::npos ? what : what.substr(colon + 2);
}

std::string key_list(const nlohmann::json& object) {
  std::string keys;
  for (auto it = object.begin(); it != object.end(); ++it) keys += (keys.empty() ? "" : ", ") + it.key();
  return keys.empty() ? "none" : keys;
}

}  // namespace

std::string InputRecord::where() const {
  if (line == 0) return file;
  return index == 0 ? fmt::format("{}:{}", file, line) : fmt::format("{}:{} (record {})", file, line, index);
}

nlohmann::json parse_json_record(const InputRecord& record) {
  nlohmann::json value;
  if (record.format == InputFormat::Csv) {
    std::vector<std::vector<std::string>> rows;
    try {
      rows = parse_csv(record.data);
    } catch (const CsvError& e) {
      throw BadRecordError("malformed CSV", fmt::format("{}: malformed CSV: {}", record.where(), e.what()));
    }
    const std::vector<std::string>& columns = *record.columns;
    if (rows.size() != 1 || rows[0].size() != columns.size()) {
      throw BadRecordError("wrong CSV field count",
                           fmt::format("{}: {} fields, but the header has {} columns (quote fields that hold commas)",
                                       record.where(), rows.empty() ? 0 : rows[0].size(), columns.size()));
    }
    value = nlohmann::json::object();
    for (size_t i = 0; i < columns.size(); ++i) value[columns[i]] = std::move(rows[0][i]);
    return value;
  }
  try {
    value = nlohmann::json::parse(record.data);
  } catch (const nlohmann::json::parse_error& e) {
    if (record.format == InputFormat::JsonArray) {
      throw BadRecordError("malformed JSON", fmt::format("{}: malformed JSON array element ({})", record.where(),
                                                         parse_error_reason(e)));
    }
    throw BadRecordError("malformed JSON", fmt::format("{}: malformed JSON line ({}); JSONL input needs one JSON "
                                                       "object per line", record.where(), parse_error_reason(e)));
  }
  if (!value.is_object()) {
    throw BadRecordError("not a JSON object", fmt::format("{}: expected a JSON object, got a JSON {}",
                                                          record.where(), value.type_name()));
  }
  return value;
}

const nlohmann::json* find_field(const nlohmann::json& object, const std::string& path) {
  auto it = object.find(path);
  if (it != object.end()) return &*it;
  const nlohmann::json* at = &object;
  size_t start = 0;
  for (;;) {
    const size_t dot = path.find('.', start);
    if (!at->is_object()) return nullptr;
    auto next = at->find(path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (next == at->end()) return nullptr;
    at = &*next;
    if (dot == std::string::npos) return at;
    start = dot + 1;
  }
}

std::string text_field_value(const nlohmann::json& object, const std::string& path, const InputRecord& record,
                             const std::string& flag) {
  const nlohmann::json* field = find_field(object, path);
  const char* what = record.format == InputFormat::Csv ? "column" : "field";
  if (field == nullptr) {
    std::string keys;
    if (record.columns) {
      for (const std::string& c : *record.columns) keys += (keys.empty() ? "" : ", ") + c;
    } else {
      keys = key_list(object);
    }
    throw BadRecordError(fmt::format("no \"{}\" {}", path, what),
                         fmt::format("{}: no \"{}\" {} ({}s: {}; choose the {} with {})", record.where(), path, what,
                                     what, keys, what, flag));
  }
  if (field->is_string()) return field->get<std::string>();
  if (field->is_array() && std::all_of(field->begin(), field->end(), [](const auto& v) { return v.is_string(); })) {
    std::string joined;
    for (const auto& v : *field) joined += (joined.empty() ? "" : "\n\n") + v.get<std::string>();
    return joined;
  }
  throw BadRecordError(fmt::format("\"{}\" not a string", path),
                       fmt::format("{}: field \"{}\" is a JSON {}, expected a string (or an array of strings)",
                                   record.where(), path, field->type_name()));
}

}  // namespace iris::io
