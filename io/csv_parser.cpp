#include "io/csv_parser.h"

namespace iris::io {

void CsvParser::save_field(std::vector<std::string>& fields) {
  fields.push_back(std::move(field_));
  field_.clear();
}

// One character of CPython's parse_process_char (Modules/_csv.c), excel dialect, strict=False.
void CsvParser::process(int c, std::vector<std::string>& fields) {
  const bool eol = c < 0;
  const bool crnl = c == '\n' || c == '\r';
  switch (state_) {
    case State::StartRecord:
      if (eol) {  // an empty line
        record_done_ = true;
        return;
      }
      if (crnl) {
        state_ = State::EatCrnl;
        return;
      }
      state_ = State::StartField;
      [[fallthrough]];
    case State::StartField:
      if (eol || crnl) {
        save_field(fields);
        state_ = eol ? State::StartRecord : State::EatCrnl;
        if (eol) record_done_ = true;
      } else if (c == '"') {
        state_ = State::InQuotedField;
      } else if (c == ',') {
        save_field(fields);
      } else {
        field_ += static_cast<char>(c);
        state_ = State::InField;
      }
      return;
    case State::InField:
      if (eol || crnl) {
        save_field(fields);
        state_ = eol ? State::StartRecord : State::EatCrnl;
        if (eol) record_done_ = true;
      } else if (c == ',') {
        save_field(fields);
        state_ = State::StartField;
      } else {
        field_ += static_cast<char>(c);
      }
      return;
    case State::InQuotedField:
      if (eol) return;  // the line break itself was fed as '\n'
      if (c == '"') {
        state_ = State::QuoteInQuotedField;
      } else {
        field_ += static_cast<char>(c);
      }
      return;
    case State::QuoteInQuotedField:
      if (c == '"') {
        field_ += '"';
        state_ = State::InQuotedField;
      } else if (c == ',') {
        save_field(fields);
        state_ = State::StartField;
      } else if (eol || crnl) {
        save_field(fields);
        state_ = eol ? State::StartRecord : State::EatCrnl;
        if (eol) record_done_ = true;
      } else {
        field_ += static_cast<char>(c);
        state_ = State::InField;
      }
      return;
    case State::EatCrnl:
      if (crnl) return;
      if (eol) {
        state_ = State::StartRecord;
        record_done_ = true;
        return;
      }
      throw CsvError("new-line character seen in unquoted field");
  }
}

bool CsvParser::feed_line(std::string_view line, bool newline, std::vector<std::string>& fields) {
  if (state_ == State::StartRecord) fields.clear();
  record_done_ = false;
  for (char ch : line) process(static_cast<unsigned char>(ch), fields);
  if (newline) process('\n', fields);
  process(-1, fields);
  return record_done_;
}

std::vector<std::vector<std::string>> parse_csv(std::string_view text) {
  std::vector<std::vector<std::string>> records;
  CsvParser parser;
  std::vector<std::string> fields;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    const bool newline = end != std::string_view::npos;
    if (!newline) end = text.size();
    if (parser.feed_line(text.substr(start, end - start), newline, fields)) records.push_back(fields);
    start = end + 1;
  }
  if (parser.inside_record()) throw CsvError("a quoted field is not closed at the end of the data");
  return records;
}

}  // namespace iris::io
