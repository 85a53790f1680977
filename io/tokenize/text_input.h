// Input documents for tokenization. Paths name files or directories; a directory is searched
// recursively, in sorted path order, for .txt/.md (one document per file) and .jsonl/.json (JSON
// Lines: one document per non-blank line; a .json file whose first non-blank character is '[' is one
// JSON array, one document per element, streamed), each optionally compressed (.gz, .zst; see
// compressed_input.h). Hidden entries (names starting with '.') are skipped. A file named directly
// is read by its extension (after any .gz/.zst): .jsonl and .json as above, .csv as CSV with a header
// row (one record per row, columns as string fields; io/csv_parser.h), anything else as text.
// Fields are found by name, or by a dotted path into nested objects ("context.contexts"); an array of
// strings is joined with blank lines. Errors name the file, and the line (and record) for JSON/CSV.
// Reading (RecordReader, one thread) is split from parsing (parse_*_record, any thread) so that
// iris-tokenize can parse and tokenize in parallel while reading stays in order.
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "io/input_record.h"
#include "src/core/error.h"

namespace iris::io {

class LineReader;    // compressed_input.h
class RecordSource;  // record_sources.h

struct InputFile {
  std::filesystem::path path;
  InputFormat format = InputFormat::Text;
};

struct TextDocument {
  std::string text;
  std::string file;   // the file it came from
  uint64_t line = 0;  // 1-based JSONL line; 0 for a whole text file
  std::string where() const;  // "FILE" or "FILE:LINE", for messages
};

// The record itself when its data is valid UTF-8. Otherwise, with replace_invalid, `scratch` holding
// a copy with U+FFFD for each ill-formed sequence (io/utf8.h); without, BadRecordError "invalid UTF-8"
// naming FILE:LINE (the line inside a text file too) and the flag that replaces instead.
const InputRecord& valid_utf8_record(const InputRecord& record, bool replace_invalid, InputRecord& scratch);

// The document text of a record: a text file's contents, or the string under `text_field` of a
// JSONL object. BadRecordError when the field is missing or not a string.
std::string parse_text_record(const InputRecord& record, const std::string& text_field);

// Total size on disk of `files` (compressed sizes for .gz/.zst), for progress and ETA.
uint64_t total_input_bytes(const std::vector<InputFile>& files);

// Pulls raw records one at a time from a list of files, in order. Single pass, one thread.
class RecordReader {
 public:
  explicit RecordReader(std::vector<InputFile> files);
  ~RecordReader();
  // Skips blank JSONL lines. Throws UserError for an unreadable or corrupt (compressed) file.
  bool next(InputRecord& record);
  size_t files_opened() const { return files_opened_; }
  // Bytes on disk consumed so far over all files (compressed bytes for .gz/.zst).
  uint64_t raw_bytes_read() const;

 private:
  std::vector<InputFile> files_;
  size_t next_file_ = 0, files_opened_ = 0;
  std::unique_ptr<RecordSource> source_;  // the open JSON/CSV file, if any
  uint64_t finished_bytes_ = 0;  // raw bytes of files already closed
};

// Expands `paths` in the order given (each directory's files sorted). UserError when a path does
// not exist or when no input file is found at all.
std::vector<InputFile> list_input_files(const std::vector<std::string>& paths);

// Pulls documents one at a time from a list of files, in order: RecordReader + parse_text_record.
class DocumentReader {
 public:
  DocumentReader(std::vector<InputFile> files, std::string text_field);

  // Fills `doc` with the next document and returns true; false after the last one. Throws
  // UserError naming FILE:LINE for an unreadable file, malformed JSON, or a missing/non-string field.
  bool next(TextDocument& doc);
  size_t files_opened() const { return records_.files_opened(); }

 private:
  RecordReader records_;
  std::string text_field_;
  InputRecord record_;
};

}  // namespace iris::io
