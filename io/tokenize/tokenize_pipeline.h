// Parallel tokenization with ordered output. One thread reads raw records (RecordReader), N worker
// threads turn batches of them into token sequences (a RecordTransform: JSON parsing, templates,
// sentencepiece), and the calling thread hands results to the writer strictly in input order, so
// the output is byte-identical for any number of workers. Progress goes to the log (stderr).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "io/tokenize/text_input.h"

namespace iris::io {

struct TokenizedRecord {
  std::vector<int32_t> tokens;     // (T,)
  std::vector<uint8_t> loss_mask;  // (T,) for SFT; empty for pretraining
  std::string skip_reason;         // set by the transform for a record to leave out (empty text, too long)
  std::string kept_note;           // counted for a kept record (e.g. "truncated")
};

// Called from worker threads (must be thread-safe). Throws BadRecordError for a bad record, which
// is an error or, with skip_bad_lines, counted under its reason.
using RecordTransform = std::function<void(const InputRecord&, TokenizedRecord&)>;
// Called on the calling thread, in input order, for every record kept.
using RecordSink = std::function<void(const InputRecord&, const TokenizedRecord&)>;

struct PipelineOptions {
  int workers = 1;
  bool skip_bad_lines = false;
  size_t batch_records = 256;
  double progress_seconds = 5.0;  // <= 0: no progress lines
};

struct PipelineSummary {
  uint64_t records = 0;  // read
  uint64_t kept = 0;     // handed to the sink
  uint64_t tokens = 0;   // in kept records
  std::map<std::string, uint64_t> skipped;    // reason → count (from skip_reason)
  std::map<std::string, uint64_t> notes;      // kept_note → count
  std::map<std::string, uint64_t> bad_lines;  // reason → count (with skip_bad_lines)
  std::string first_bad_line;                 // FILE:LINE message of the first bad record skipped
  size_t files = 0;
  double seconds = 0;
};

// Runs the whole input through `transform` into `sink`. Rethrows, in input order, the first error
// (a bad record without skip_bad_lines, an unreadable file); workers are stopped and joined first.
PipelineSummary run_tokenize_pipeline(RecordReader& reader, uint64_t total_input_bytes,
                                      const RecordTransform& transform, const RecordSink& sink,
                                      const PipelineOptions& options);

}  // namespace iris::io
