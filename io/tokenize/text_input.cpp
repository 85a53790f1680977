#include "io/tokenize/text_input.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "io/tokenize/compressed_input.h"
#include "io/tokenize/record_sources.h"
#include "io/utf8.h"

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
  const std::string ext = lower_extension(fs::path(strip_compression_suffix(p.string())));
  if (ext == ".csv") return InputFormat::Csv;
  return ext == ".jsonl" || ext == ".json" ? InputFormat::JsonLines : InputFormat::Text;
}

bool is_searched_extension(const fs::path& p) {
  const std::string ext = lower_extension(fs::path(strip_compression_suffix(p.string())));
  return ext == ".txt" || ext == ".md" || ext == ".jsonl" || ext == ".json";
}

bool is_hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}


}  // namespace

std::string TextDocument::where() const { return line == 0 ? file : fmt::format("{}:{}", file, line); }
const InputRecord& valid_utf8_record(const InputRecord& record, bool replace_invalid, InputRecord& scratch) {
  const size_t bad = find_invalid_utf8(record.data);
  if (bad == std::string::npos) return record;
  if (!replace_invalid) {
    const size_t line = std::max<uint64_t>(record.line, 1) + line_of_offset(record.data, bad) - 1;
    const size_t line_start = record.data.rfind('\n', bad == 0 ? 0 : bad - 1);
    const size_t column = line_start == std::string::npos || bad == 0 ? bad + 1 : bad - line_start;
    throw BadRecordError("invalid UTF-8",
                         fmt::format("{}:{}{}: invalid UTF-8 (byte 0x{:02x} at column {}); convert the file to UTF-8 "
                                     "or pass --replace-invalid to read such bytes as U+FFFD", record.file, line,
                                     record.index ? fmt::format(" (record {})", record.index) : "",
                                     static_cast<unsigned char>(record.data[bad]), column));
  }
  scratch = record;
  scratch.data = replace_invalid_utf8(record.data);
  return scratch;
}

std::string parse_text_record(const InputRecord& record, const std::string& text_field) {
  if (record.format == InputFormat::Text) return record.data;
  return text_field_value(parse_json_record(record), text_field, record, "--text-field");
}

uint64_t total_input_bytes(const std::vector<InputFile>& files) {
  uint64_t total = 0;
  for (const InputFile& f : files) {
    std::error_code ec;
    const auto size = fs::file_size(f.path, ec);
    if (!ec) total += size;
  }
  return total;
}

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

RecordReader::RecordReader(std::vector<InputFile> files) : files_(std::move(files)) {}
RecordReader::~RecordReader() = default;

uint64_t RecordReader::raw_bytes_read() const { return finished_bytes_ + (source_ ? source_->raw_bytes_read() : 0); }

bool RecordReader::next(InputRecord& record) {
  for (;;) {
    if (source_) {
      if (source_->next(record)) return true;
      finished_bytes_ += source_->raw_bytes_read();
      source_.reset();
    }
    if (next_file_ >= files_.size()) return false;
    const InputFile& file = files_[next_file_++];
    ++files_opened_;
    const std::string path = file.path.string();
    if (file.format != InputFormat::Text) {
      const bool may_be_array = lower_extension(fs::path(strip_compression_suffix(path))) == ".json";
      source_ = open_record_source(path, file.format, may_be_array);
      continue;
    }
    LineReader text(path);
    record.data = text.read_all();
    finished_bytes_ += text.raw_bytes_read();
    record.file = path;
    record.line = 0;
    record.index = 0;
    record.format = InputFormat::Text;
    record.columns.reset();
    return true;
  }
}

DocumentReader::DocumentReader(std::vector<InputFile> files, std::string text_field)
    : records_(std::move(files)), text_field_(std::move(text_field)) {
  IRIS_USER_CHECK(!text_field_.empty(), "the JSONL text field name must not be empty");
}

bool DocumentReader::next(TextDocument& doc) {
  if (!records_.next(record_)) return false;
  doc.text = parse_text_record(record_, text_field_);
  doc.file = record_.file;
  doc.line = record_.line;
  return true;
}

}  // namespace iris::io
