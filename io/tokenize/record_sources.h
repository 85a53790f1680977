// The structured input files RecordReader pulls records from, one record at a time, never the whole
// file: JSON Lines (one object per line), a JSON array of objects (a .json file whose first
// non-blank character is '['; each element becomes one record, its text handed on unparsed), and
// CSV with a header row (each row one record: its raw text, re-parsed into a JSON object of column →
// string by the worker; io/csv_parser.h). A structural error (an array that is not closed, a CSV
// quote left open at the end of the file) is a UserError naming FILE:LINE; a bad record is left for
// the worker to report, so --skip-bad-lines can skip it.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "io/tokenize/text_input.h"

namespace iris::io {

class RecordSource {
 public:
  virtual ~RecordSource() = default;
  virtual bool next(InputRecord& record) = 0;  // false after the last record
  virtual uint64_t raw_bytes_read() const = 0;
};

// Opens `path` for `format` (JsonLines or Csv); with may_be_array, a JsonLines file whose first
// non-blank character is '[' is read as one JSON array.
std::unique_ptr<RecordSource> open_record_source(const std::string& path, InputFormat format, bool may_be_array);

}  // namespace iris::io
