#include "src/eval/records.h"

#include <fstream>

#include "io/input_record.h"
#include "src/core/check.h"

namespace iris::eval {

void bad_record(const std::string& where, const std::string& reason, const std::string& detail) {
  throw io::BadRecordError(reason, where + ": " + detail);
}

void for_each_record(const std::string& path, const std::string& expected,
                     const std::function<void(const nlohmann::json&, const std::string&, uint64_t)>& record) {
  std::ifstream in(path);
  IRIS_USER_CHECK(in.good(), "--input {}: cannot be read", path);
  std::string line;
  uint64_t records = 0;
  for (uint64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(n);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      bad_record(where, "malformed JSON", std::string("malformed JSON: ") + e.what());
    }
    if (!j.is_object()) bad_record(where, "not an object", "expected " + expected);
    record(j, where, n);
    ++records;
  }
  IRIS_USER_CHECK(records > 0, "--input {}: no records", path);
}

std::string record_id(const nlohmann::json& j, uint64_t line) {
  if (!j.contains("id")) return std::to_string(line);
  return j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump();
}

}  // namespace iris::eval
