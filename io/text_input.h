// Input documents for tokenization. Paths name files or directories; a directory is searched
// recursively, in sorted path order, for .txt/.md (one document per file) and .jsonl/.json (JSON
// Lines: one document per non-blank line, its text under a configurable field). Hidden entries
// (names starting with '.') are skipped. A file named directly is read by its extension: .jsonl
// and .json as JSON Lines, anything else as text. Errors name the file, and the line for JSONL.
#pragma once
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace iris::io {

enum class InputFormat { Text, JsonLines };

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

// Expands `paths` in the order given (each directory's files sorted). UserError when a path does
// not exist or when no input file is found at all.
std::vector<InputFile> list_input_files(const std::vector<std::string>& paths);

// Pulls documents one at a time from a list of files, in order. Single pass.
class DocumentReader {
 public:
  DocumentReader(std::vector<InputFile> files, std::string text_field);

  // Fills `doc` with the next document and returns true; false after the last one. Throws
  // UserError naming FILE:LINE for an unreadable file, malformed JSON, or a missing/non-string field.
  bool next(TextDocument& doc);
  size_t files_opened() const { return files_opened_; }

 private:
  bool open_next_file();

  std::vector<InputFile> files_;
  std::string text_field_;
  size_t next_file_ = 0, files_opened_ = 0;
  std::ifstream jsonl_;  // the open JSON Lines file, if any
  std::string jsonl_path_;
  uint64_t jsonl_line_ = 0;
};

}  // namespace iris::io
