#include "src/train/data_loader.h"

#include <numeric>

#include "src/core/check.h"
#include "src/core/rng.h"

namespace iris {

PretrainLoader::PretrainLoader(const std::string& prefix, int seq_len, uint64_t seed, int vocab_size)
    : dataset_(io::IndexedDataset::open(prefix)), T_(seq_len), seed_(seed), vocab_size_(vocab_size) {
  const uint64_t tokens = dataset_.num_tokens();
  num_samples_ = tokens > 0 ? (tokens - 1) / static_cast<uint64_t>(seq_len) : 0;
  IRIS_USER_CHECK(num_samples_ > 0,
                  "dataset {}: {} tokens is too few for one sample of train.seq_len + 1 = {} tokens; use more data or "
                  "a shorter train.seq_len",
                  prefix, tokens, seq_len + 1);
  IRIS_USER_CHECK(num_samples_ <= UINT32_MAX, "dataset {}: more than 2^32 samples; use a longer train.seq_len", prefix);
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

uint64_t PretrainLoader::sample_start(uint64_t global_sample) const {
  const auto& order = epoch_order(global_sample / num_samples_);
  return static_cast<uint64_t>(order[global_sample % num_samples_]) * T_;
}

void PretrainLoader::fill(uint64_t first, int count, Batch& out) const {
  out.B = count;
  out.T = T_;
  out.tokens.resize(static_cast<size_t>(count) * T_);
  out.targets.resize(out.tokens.size());
  out.loss_mask.assign(out.tokens.size(), 1.0f);
  std::vector<int32_t> window(T_ + 1);
  for (int b = 0; b < count; ++b) {
    dataset_.read_tokens(sample_start(first + b), T_ + 1, window.data());
    for (int t = 0; t <= T_; ++t)
      IRIS_USER_CHECK(window[t] >= 0 && window[t] < vocab_size_,
                      "dataset token {} is outside the model's vocabulary of {} (was the data tokenized with another "
                      "tokenizer?)",
                      window[t], vocab_size_);
    std::copy(window.begin(), window.end() - 1, out.tokens.begin() + static_cast<size_t>(b) * T_);
    std::copy(window.begin() + 1, window.end(), out.targets.begin() + static_cast<size_t>(b) * T_);
  }
}

}  // namespace iris
