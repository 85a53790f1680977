#include "io/tokenize/tokenize_pipeline.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "src/core/check.h"
#include "src/core/log.h"

namespace iris::io {

namespace {

struct Batch {
  uint64_t index = 0;
  std::vector<InputRecord> records;
  std::vector<TokenizedRecord> results;
  std::vector<std::exception_ptr> errors;  // per record; null when fine
  std::exception_ptr read_error;           // the reader failed after these records
  bool last = false;                       // no batch follows
};

// Shared state of the three stages. `in_flight` bounds the batches read but not yet written.
struct Stages {
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<Batch> to_transform;
  std::map<uint64_t, Batch> transformed;
  size_t in_flight = 0, max_in_flight = 0;
  bool stop = false;
  std::atomic<uint64_t> raw_bytes{0};
};

void read_stage(RecordReader& reader, Stages& s, size_t batch_records) {
  for (uint64_t index = 0;; ++index) {
    Batch batch;
    batch.index = index;
    try {
      InputRecord record;
      while (batch.records.size() < batch_records && reader.next(record)) batch.records.push_back(std::move(record));
      batch.last = batch.records.size() < batch_records;
    } catch (...) {
      batch.read_error = std::current_exception();
      batch.last = true;
    }
    s.raw_bytes = reader.raw_bytes_read();
    std::unique_lock lock(s.mutex);
    s.changed.wait(lock, [&] { return s.stop || s.in_flight < s.max_in_flight; });
    if (s.stop) return;
    ++s.in_flight;
    const bool last = batch.last;
    s.to_transform.push_back(std::move(batch));
    s.changed.notify_all();
    if (last) return;
  }
}

void transform_stage(const RecordTransform& transform, Stages& s) {
  for (;;) {
    Batch batch;
    {
      std::unique_lock lock(s.mutex);
      s.changed.wait(lock, [&] { return s.stop || !s.to_transform.empty(); });
      if (s.stop) return;
      batch = std::move(s.to_transform.front());
      s.to_transform.pop_front();
    }
    batch.results.resize(batch.records.size());
    batch.errors.resize(batch.records.size());
    for (size_t i = 0; i < batch.records.size(); ++i) {
      try {
        transform(batch.records[i], batch.results[i]);
      } catch (...) {
        batch.errors[i] = std::current_exception();
      }
    }
    std::lock_guard lock(s.mutex);
    const uint64_t index = batch.index;
    s.transformed.emplace(index, std::move(batch));
    s.changed.notify_all();
  }
}

std::string format_duration(double seconds) {
  const auto s = static_cast<long long>(seconds + 0.5);
  return s >= 3600 ? fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60) : fmt::format("{}m{:02}s", s / 60, s % 60);
}

}  // namespace

PipelineSummary run_tokenize_pipeline(RecordReader& reader, uint64_t total_input_bytes,
                                      const RecordTransform& transform, const RecordSink& sink,
                                      const PipelineOptions& options) {
  IRIS_USER_CHECK(options.workers >= 1, "--workers must be at least 1 (got {})", options.workers);
  IRIS_CHECK(options.batch_records > 0, "batch_records must be positive");
  const auto start = std::chrono::steady_clock::now();
  Stages s;
  s.max_in_flight = 4 * static_cast<size_t>(options.workers);
  std::vector<std::thread> threads;
  auto stop_all = [&] {
    {
      std::lock_guard lock(s.mutex);
      s.stop = true;
    }
    s.changed.notify_all();
    for (auto& t : threads) t.join();
    threads.clear();
  };
  threads.emplace_back(read_stage, std::ref(reader), std::ref(s), options.batch_records);
  for (int w = 0; w < options.workers; ++w) threads.emplace_back(transform_stage, std::cref(transform), std::ref(s));

  PipelineSummary summary;
  auto last_report = start;
  try {
    for (uint64_t next = 0;; ++next) {
      Batch batch;
      {
        std::unique_lock lock(s.mutex);
        s.changed.wait(lock, [&] { return s.transformed.count(next) > 0; });
        batch = std::move(s.transformed.at(next));
        s.transformed.erase(next);
        --s.in_flight;
        s.changed.notify_all();
      }
      for (size_t i = 0; i < batch.records.size(); ++i) {
        ++summary.records;
        if (batch.errors[i]) {
          try {
            std::rethrow_exception(batch.errors[i]);
          } catch (const BadRecordError& e) {
            if (!options.skip_bad_lines) throw;
            ++summary.bad_lines[e.reason()];
            if (summary.first_bad_line.empty()) summary.first_bad_line = e.what();
            continue;
          }
        }
        const TokenizedRecord& r = batch.results[i];
        if (!r.skip_reason.empty()) {
          ++summary.skipped[r.skip_reason];
          continue;
        }
        sink(batch.records[i], r);
        if (!r.kept_note.empty()) ++summary.notes[r.kept_note];
        ++summary.kept;
        summary.tokens += r.tokens.size();
      }
      if (batch.read_error) std::rethrow_exception(batch.read_error);
      const auto now = std::chrono::steady_clock::now();
      if (options.progress_seconds > 0 &&
          std::chrono::duration<double>(now - last_report).count() >= options.progress_seconds) {
        last_report = now;
        const double elapsed = std::chrono::duration<double>(now - start).count();
        std::string eta;
        const uint64_t done = s.raw_bytes.load();
        if (total_input_bytes > 0 && done > 0) {
          const double fraction = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_input_bytes));
          eta = fmt::format(", {:.1f}% of input, ETA {}", 100 * fraction, format_duration(elapsed * (1 - fraction) /
                                                                                          fraction));
        }
        spdlog::info("{} documents ({:.0f}/s), {} tokens ({:.0f}/s){}", summary.kept, summary.kept / elapsed,
                     summary.tokens, summary.tokens / elapsed, eta);
      }
      if (batch.last) break;
    }
  } catch (...) {
    stop_all();
    throw;
  }
  stop_all();
  summary.files = reader.files_opened();
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace iris::io
