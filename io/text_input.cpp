#include "io/text_input.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "src/core/check.h"
#include "src/core/log.h"

namespace iris::io {
namespace fs = std::filesystem;

namespace {

std::string lower_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

InputFormat format_for(const fs::path& p) {
  const std::string ext = lower_extension(p);
  return ext == ".jsonl" || ext == ".json" ? InputFormat::JsonLines : InputFormat::Text;
}

bool is_searched_extension(const fs::path& p) {
  const std::string ext = lower_extension(p);
  return ext == ".txt" || ext == ".md" || ext == ".jsonl" || ext == ".json";
}

bool is_hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

bool is_blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

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

std::string TextDocument::where() const { return line == 0 ? file : fmt::format("{}:{}", file, line); }

std::vector<InputFile> list_input_files(const std::vector<std::string>& paths) {
  IRIS_USER_CHECK(!paths.empty(), "no input given: name at least one file or directory");
  std::vector<InputFile> files;
  for (const std::string& path : paths) {
    std::error_code ec;
    const fs::file_status status = fs::status(path, ec);
    IRIS_USER_CHECK(fs::exists(status), "input path {} does not exist", path);
    if (fs::is_directory(status)) {
      std::vector<fs::path> found;
      fs::recursive_directory_iterator it(path, fs::directory_options::skip_permission_denied, ec);
      IRIS_USER_CHECK(!ec, "cannot list input directory {}: {}", path, ec.message());
      for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
        IRIS_USER_CHECK(!ec, "cannot list input directory {}: {}", path, ec.message());
        if (is_hidden(it->path())) {
          if (it->is_directory(ec)) it.disable_recursion_pending();
          continue;
        }
        if (it->is_regular_file(ec) && is_searched_extension(it->path())) found.push_back(it->path());
      }
      std::sort(found.begin(), found.end());
      if (found.empty()) spdlog::warn("input directory {} has no .txt, .md, .jsonl or .json files", path);
      for (const fs::path& p : found) files.push_back({p, format_for(p)});
    } else {
      files.push_back({fs::path(path), format_for(path)});
    }
  }
  std::string joined;
  for (const std::string& p : paths) joined += (joined.empty() ? "" : ", ") + p;
  IRIS_USER_CHECK(!files.empty(), "no input files found in {} (directories are searched for .txt, .md, .jsonl and "
                  ".json files)", joined);
  return files;
}

DocumentReader::DocumentReader(std::vector<InputFile> files, std::string text_field)
    : files_(std::move(files)), text_field_(std::move(text_field)) {
  IRIS_USER_CHECK(!text_field_.empty(), "the JSONL text field name must not be empty");
}

bool DocumentReader::open_next_file() {
  jsonl_.close();
  jsonl_.clear();
  jsonl_path_.clear();
  return next_file_ < files_.size();
}

bool DocumentReader::next(TextDocument& doc) {
  for (;;) {
    if (!jsonl_path_.empty()) {
      std::string line;
      while (std::getline(jsonl_, line)) {
        ++jsonl_line_;
        if (is_blank(line)) continue;
        nlohmann::json value;
        try {
          value = nlohmann::json::parse(line);
        } catch (const nlohmann::json::parse_error& e) {
          IRIS_USER_CHECK(false, "{}:{}: malformed JSON line ({}); JSONL input needs one JSON object per line",
                          jsonl_path_, jsonl_line_, parse_error_reason(e));
        }
        IRIS_USER_CHECK(value.is_object(), "{}:{}: expected a JSON object, got a JSON {}", jsonl_path_, jsonl_line_,
                        value.type_name());
        auto field = value.find(text_field_);
        IRIS_USER_CHECK(field != value.end(), "{}:{}: no \"{}\" field (keys on this line: {}; choose the field "
                        "with --text-field)", jsonl_path_, jsonl_line_, text_field_, key_list(value));
        IRIS_USER_CHECK(field->is_string(), "{}:{}: field \"{}\" is a JSON {}, expected a string", jsonl_path_,
                        jsonl_line_, text_field_, field->type_name());
        doc.text = field->get<std::string>();
        doc.file = jsonl_path_;
        doc.line = jsonl_line_;
        return true;
      }
      IRIS_USER_CHECK(jsonl_.eof(), "{}:{}: read error: {}", jsonl_path_, jsonl_line_ + 1, std::strerror(errno));
    }
    if (!open_next_file()) return false;
    const InputFile& file = files_[next_file_++];
    ++files_opened_;
    const std::string path = file.path.string();
    if (file.format == InputFormat::JsonLines) {
      jsonl_.open(file.path, std::ios::binary);
      IRIS_USER_CHECK(jsonl_.is_open(), "cannot read {}: {}", path, std::strerror(errno));
      jsonl_path_ = path;
      jsonl_line_ = 0;
      continue;
    }
    std::ifstream in(file.path, std::ios::binary);
    IRIS_USER_CHECK(in.is_open(), "cannot read {}: {}", path, std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    IRIS_USER_CHECK(!in.bad(), "cannot read {}: {}", path, std::strerror(errno));
    doc.text = std::move(text).str();
    doc.file = path;
    doc.line = 0;
    return true;
  }
}

}  // namespace iris::io
