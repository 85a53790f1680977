#include "io/tokenize/record_sources.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "io/tokenize/compressed_input.h"
#include "io/csv_parser.h"
#include "src/core/check.h"

namespace iris::io {
namespace {

bool is_blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

class JsonLinesSource final : public RecordSource {
 public:
  JsonLinesSource(std::unique_ptr<LineReader> lines, std::string path, std::string first_line, uint64_t first_line_no)
      : lines_(std::move(lines)), path_(std::move(path)), pending_(std::move(first_line)), line_(first_line_no),
        has_pending_(first_line_no > 0) {}
  bool next(InputRecord& record) override {
    for (;;) {
      if (has_pending_) {
        record.data = std::move(pending_);
        has_pending_ = false;
      } else {
        if (!lines_->next(record.data)) return false;
        ++line_;
      }
      if (is_blank(record.data)) continue;
      record.file = path_;
      record.line = line_;
      record.index = 0;
      record.format = InputFormat::JsonLines;
      record.columns.reset();
      return true;
    }
  }
  uint64_t raw_bytes_read() const override { return lines_->raw_bytes_read(); }

 private:
  std::unique_ptr<LineReader> lines_;
  std::string path_, pending_;
  uint64_t line_ = 0;
  bool has_pending_ = false;
};

// Splits "[ {...}, {...} ]" into elements by tracking strings and nesting; the elements' JSON is
// parsed later, by a worker. Newlines between lines are kept (JSON whitespace).
class JsonArraySource final : public RecordSource {
 public:
  JsonArraySource(std::unique_ptr<LineReader> lines, std::string path, std::string first_line, uint64_t line_no)
      : lines_(std::move(lines)), path_(std::move(path)), buffer_(std::move(first_line)), line_(line_no) {
    skip_space();
    IRIS_USER_CHECK(have() && buffer_[pos_] == '[', "{}:{}: expected a JSON array", path_, line_);
    ++pos_;
  }

  bool next(InputRecord& record) override {
    if (done_) return false;
    skip_space();
    IRIS_USER_CHECK(have(), "{}:{}: the JSON array is not closed (a truncated file?)", path_, line_);
    if (buffer_[pos_] == ']' && count_ == 0) return finish();
    record.data.clear();
    record.line = line_;
    int depth = 0;
    bool in_string = false, escape = false;
    for (;;) {
      if (!have()) {
        IRIS_USER_CHECK(refill(), "{}:{}: the JSON array is not closed (a truncated file?)", path_, line_);
        record.data += '\n';
        continue;
      }
      const char c = buffer_[pos_];
      if (in_string) {
        if (escape) escape = false;
        else if (c == '\\') escape = true;
        else if (c == '"') in_string = false;
      } else if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (depth == 0) break;  // the array's own ']'
        --depth;
      } else if (c == ',' && depth == 0) {
        break;
      }
      record.data += c;
      ++pos_;
    }
    const char end = buffer_[pos_++];
    if (end == ']') done_after_this_ = true;
    ++count_;
    record.file = path_;
    record.index = count_;
    record.format = InputFormat::JsonArray;
    record.columns.reset();
    if (done_after_this_) finish();
    return true;
  }
  uint64_t raw_bytes_read() const override { return lines_->raw_bytes_read(); }

 private:
  bool have() const { return pos_ < buffer_.size(); }
  bool refill() {
    if (!lines_->next(buffer_)) return false;
    ++line_;
    pos_ = 0;
    return true;
  }
  void skip_space() {
    for (;;) {
      while (have() && std::isspace(static_cast<unsigned char>(buffer_[pos_]))) ++pos_;
      if (have() || !refill()) return;
    }
  }
  bool finish() {
    if (!done_after_this_) ++pos_;  // the ']' of an empty array
    done_ = true;
    skip_space();
    IRIS_USER_CHECK(!have(), "{}:{}: text after the end of the JSON array (one array per .json file)", path_, line_);
    return false;
  }

  std::unique_ptr<LineReader> lines_;
  std::string path_, buffer_;
  size_t pos_ = 0;
  uint64_t line_ = 0, count_ = 0;
  bool done_ = false, done_after_this_ = false;
};

class CsvSource final : public RecordSource {
 public:
  CsvSource(const std::string& path) : lines_(path), path_(path) {
    std::vector<std::string> header;
    uint64_t start = 0;
    while (read_record(header, start) && header.empty()) {
    }
    IRIS_USER_CHECK(!header.empty(), "{}: empty CSV file (expected a header row naming the columns)", path_);
    std::set<std::string> seen;
    for (const std::string& name : header)
      IRIS_USER_CHECK(seen.insert(name).second, "{}:{}: the CSV header names column \"{}\" twice", path_, start, name);
    columns_ = std::make_shared<const std::vector<std::string>>(std::move(header));
  }

  bool next(InputRecord& record) override {
    std::vector<std::string> fields;
    uint64_t start = 0;
    for (;;) {
      record.data.clear();
      if (!read_record(fields, start, &record.data)) return false;
      if (!fields.empty()) break;  // blank lines are no records (Python's DictReader skips them)
    }
    record.file = path_;
    record.line = start;
    record.index = ++count_;
    record.format = InputFormat::Csv;
    record.columns = columns_;
    return true;
  }
  uint64_t raw_bytes_read() const override { return lines_.raw_bytes_read(); }

 private:
  // One record (possibly several lines); `raw` gets its text, lines joined by '\n'.
  bool read_record(std::vector<std::string>& fields, uint64_t& start, std::string* raw = nullptr) {
    std::string line;
    bool first = true;
    for (;;) {
      if (!lines_.next(line)) {
        IRIS_USER_CHECK(first, "{}:{}: a quoted CSV field opened on line {} is not closed at the end of the file",
                        path_, line_, start);
        return false;
      }
      ++line_;
      if (first) start = line_;
      if (raw) {
        if (!first) *raw += '\n';
        *raw += line;
      }
      first = false;
      try {
        if (parser_.feed_line(line, true, fields)) return true;
      } catch (const CsvError& e) {
        IRIS_USER_CHECK(false, "{}:{}: malformed CSV: {}", path_, line_, e.what());
      }
    }
  }

  LineReader lines_;
  std::string path_;
  CsvParser parser_;
  std::shared_ptr<const std::vector<std::string>> columns_;
  uint64_t line_ = 0, count_ = 0;
};

}  // namespace

std::unique_ptr<RecordSource> open_record_source(const std::string& path, InputFormat format, bool may_be_array) {
  if (format == InputFormat::Csv) return std::make_unique<CsvSource>(path);
  auto lines = std::make_unique<LineReader>(path);
  // A .json file holds JSON Lines or one array: the first non-blank character decides.
  std::string line;
  uint64_t line_no = 0;
  while (lines->next(line)) {
    ++line_no;
    if (is_blank(line)) continue;
    const size_t first = line.find_first_not_of(" \t\r\n\f\v");
    if (may_be_array && line[first] == '[') return std::make_unique<JsonArraySource>(std::move(lines), path, std::move(line), line_no);
    return std::make_unique<JsonLinesSource>(std::move(lines), path, std::move(line), line_no);
  }
  return std::make_unique<JsonLinesSource>(std::move(lines), path, "", 0);
}

}  // namespace iris::io
