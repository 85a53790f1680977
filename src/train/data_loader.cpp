#include "src/train/data_loader.h"

#include <algorithm>
#include <numeric>

#include <fmt/format.h>

#include "src/core/check.h"
#include "src/core/rng.h"

namespace iris {

uint64_t micro_batch_first_sample(uint64_t consumed, int micro_batch, int grad_accum, int dp_rank, int m) {
  const uint64_t per_rank = static_cast<uint64_t>(micro_batch) * grad_accum;
  return consumed + static_cast<uint64_t>(dp_rank) * per_rank + static_cast<uint64_t>(m) * micro_batch;
}

uint64_t DocSelection::count(uint64_t n) const {
  uint64_t total = 0;
  for (const DocRange& r : runs) total += std::min(r.end, n) - std::min(r.begin, n);
  return total;
}

std::string DocSelection::describe(uint64_t n) const {
  if (runs.size() == 1) return fmt::format("documents {}..{}", runs[0].begin, std::min(runs[0].end, n));
  return fmt::format("{} of {} documents", count(n), n);
}

PretrainLoader::PretrainLoader(const std::string& prefix, int seq_len, uint64_t seed, int vocab_size, DocSelection docs)
    : prefix_(prefix), dataset_(io::IndexedDataset::open(prefix)), T_(seq_len), seed_(seed), vocab_size_(vocab_size) {
  const uint64_t n_docs = dataset_.num_documents();
  auto doc_token = [&](uint64_t d) {
    const uint64_t seq = dataset_.document_index(d);
    return seq < dataset_.num_sequences() ? dataset_.sequence_offset(seq) : dataset_.num_tokens();
  };
  selection_ = docs.describe(n_docs);
  for (const DocRange& r : docs.runs) {
    const uint64_t end = std::min(r.end, n_docs);
    IRIS_CHECK(r.begin <= end, "document range [{}, {}) of {}", r.begin, end, prefix);
    const uint64_t t0 = doc_token(r.begin), t1 = doc_token(end);
    if (t0 == t1) continue;
    IRIS_CHECK(run_end_.empty() || t0 >= run_end_.back(), "document ranges of {} out of order", prefix);
    if (!run_end_.empty() && run_end_.back() == t0) {
      run_end_.back() = t1;  // adjacent documents: one range
    } else {
      run_begin_.push_back(t0);
      run_end_.push_back(t1);
      run_stream_.push_back(stream_tokens_);
    }
    stream_tokens_ += t1 - t0;
  }
  num_samples_ = stream_tokens_ > 0 ? (stream_tokens_ - 1) / static_cast<uint64_t>(seq_len) : 0;
  IRIS_USER_CHECK(num_samples_ > 0,
                  "dataset {}: {} tokens ({}) is too few for one sample of train.seq_len + 1 = {} tokens; use more "
                  "data, a shorter train.seq_len or another data.split / data.val_fraction",
                  prefix, stream_tokens_, selection_, seq_len + 1);
  IRIS_USER_CHECK(num_samples_ <= UINT32_MAX, "dataset {}: more than 2^32 samples; use a longer train.seq_len", prefix);
}

std::string PretrainLoader::describe() const {
  return fmt::format("{}: {} tokens, {} samples of {} tokens", prefix_, num_tokens(), num_samples_, T_);
}

const std::vector<uint32_t>& PretrainLoader::epoch_order(uint64_t epoch) const {
  if (epoch != cached_epoch_) {
    order_.resize(num_samples_);
    std::iota(order_.begin(), order_.end(), 0u);
    // Fisher-Yates with a platform-independent generator, keyed by (seed, epoch).
    SplitMix64 rng(mix64(seed_ ^ mix64(epoch + 0x5851f42d4c957f2dull)));
    for (uint64_t i = num_samples_ - 1; i > 0; --i) std::swap(order_[i], order_[rng.below(i + 1)]);
    cached_epoch_ = epoch;
  }
  return order_;
}

uint64_t PretrainLoader::stream_offset(uint64_t global_sample) const {
  const auto& order = epoch_order(global_sample / num_samples_);
  return static_cast<uint64_t>(order[global_sample % num_samples_]) * T_;
}

uint64_t PretrainLoader::dataset_position(uint64_t stream_pos) const {
  const size_t k = std::upper_bound(run_stream_.begin(), run_stream_.end(), stream_pos) - run_stream_.begin() - 1;
  return run_begin_[k] + (stream_pos - run_stream_[k]);
}

uint64_t PretrainLoader::sample_start(uint64_t global_sample) const { return dataset_position(stream_offset(global_sample)); }

// Tokens [stream_pos, stream_pos + count) of the selection's stream, crossing from one range to the next.
void PretrainLoader::read_stream(uint64_t stream_pos, int count, int32_t* out) const {
  size_t k = std::upper_bound(run_stream_.begin(), run_stream_.end(), stream_pos) - run_stream_.begin() - 1;
  while (count > 0) {
    const uint64_t at = run_begin_[k] + (stream_pos - run_stream_[k]);
    const int n = static_cast<int>(std::min<uint64_t>(count, run_end_[k] - at));
    dataset_.read_tokens(at, n, out);
    out += n, count -= n, stream_pos += n, ++k;
  }
}

void PretrainLoader::fill(uint64_t first, int count, Batch& out) const {
  out.B = count;
  out.T = T_;
  out.tokens.resize(static_cast<size_t>(count) * T_);
  out.targets.resize(out.tokens.size());
  out.loss_mask.assign(out.tokens.size(), 1.0f);
  out.positions.clear();
  out.doc.clear();
  std::vector<int32_t> window(T_ + 1);
  for (int b = 0; b < count; ++b) {
    read_stream(stream_offset(first + b), T_ + 1, window.data());
    for (int t = 0; t <= T_; ++t)
      IRIS_USER_CHECK(window[t] >= 0 && window[t] < vocab_size_,
                      "dataset {}: token {} is outside the model's vocabulary of {} (was the data tokenized with "
                      "another tokenizer?)",
                      prefix_, window[t], vocab_size_);
    std::copy(window.begin(), window.end() - 1, out.tokens.begin() + static_cast<size_t>(b) * T_);
    std::copy(window.begin() + 1, window.end(), out.targets.begin() + static_cast<size_t>(b) * T_);
  }
}

void copy_row(const Batch& from, int row, Batch& to, int to_row) {
  const size_t T = static_cast<size_t>(from.T), s = row * T, d = to_row * T;
  std::copy_n(from.tokens.begin() + s, T, to.tokens.begin() + d);
  std::copy_n(from.targets.begin() + s, T, to.targets.begin() + d);
  std::copy_n(from.loss_mask.begin() + s, T, to.loss_mask.begin() + d);
  if (!from.positions.empty()) std::copy_n(from.positions.begin() + s, T, to.positions.begin() + d);
  if (!from.doc.empty()) std::copy_n(from.doc.begin() + s, T, to.doc.begin() + d);
}

}  // namespace iris
