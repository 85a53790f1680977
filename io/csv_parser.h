// CSV records as Python's csv module reads them (the default "excel" dialect: ',' delimiter, '"'
// quotes doubled inside quoted fields, quoted fields may hold commas, quotes and line breaks, CRLF or
// LF line ends; a quote inside an unquoted field is an ordinary character). The state machine follows
// CPython's Modules/_csv.c with strict=False, except that a quoted field still open at the end of the
// file is an error here (Python returns it silently).
#pragma once
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace iris::io {

class CsvParser {
 public:
  // Feeds one line without its '\n' (a '\r' before it is part of `line`), followed by that '\n' when
  // `newline`. Returns true when the line completed a record, whose fields are then in `fields`
  // (an empty line completes a record with no fields). Returns false when the record goes on to
  // the next line (inside a quoted field). Throws CsvError for a line break in an unquoted field
  // after a '\r' (what Python calls "new-line character seen in unquoted field").
  bool feed_line(std::string_view line, bool newline, std::vector<std::string>& fields);
  bool inside_record() const { return state_ != State::StartRecord; }

 private:
  enum class State { StartRecord, StartField, InField, InQuotedField, QuoteInQuotedField, EatCrnl };
  void process(int c, std::vector<std::string>& fields);  // c = -1: end of line
  void save_field(std::vector<std::string>& fields);

  State state_ = State::StartRecord;
  std::string field_;
  bool record_done_ = false;
};

class CsvError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// All records of `text` (lines split at '\n'), for tests and for re-parsing one record's text.
std::vector<std::vector<std::string>> parse_csv(std::string_view text);

}  // namespace iris::io
