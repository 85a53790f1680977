#include "src/train/sft_loader.h"

#include <algorithm>
#include <numeric>

#include <fmt/format.h>

#include "src/core/check.h"
#include "src/core/rng.h"

namespace iris {

SftLoader::SftLoader(const std::string& prefix, int seq_len, uint64_t seed, int vocab_size, bool packing, DocSelection docs)
    : prefix_(prefix), data_(io::open_sft_dataset(prefix)), T_(seq_len), seed_(seed), vocab_size_(vocab_size),
      packing_(packing) {
  const uint64_t n = data_.tokens.num_sequences();
  for (const DocRange& r : docs.runs)
    for (uint64_t i = r.begin; i < std::min(r.end, n); ++i) samples_.push_back(i);
  IRIS_USER_CHECK(!samples_.empty(), "SFT dataset {}: no samples ({} of {}); use more data or another data.split / "
                  "data.val_fraction", prefix, docs.describe(n), n);
  IRIS_USER_CHECK(samples_.size() <= UINT32_MAX, "SFT dataset {}: more than 2^32 samples", prefix);
  lengths_.resize(samples_.size());
  for (size_t i = 0; i < lengths_.size(); ++i)
    lengths_[i] = static_cast<uint32_t>(
        std::min<size_t>(data_.tokens.sequence_length(samples_[i]), static_cast<size_t>(T_) + 1));
  plan_epoch(0);
  rows_per_epoch_ = rows_.size();
}

// Every epoch packs the same samples, but in another order; the row count can differ by a few rows
// between epochs, so rows are addressed within the epoch and epochs are taken to have the row count
// of epoch 0 (a later epoch's extra rows are dropped, a shorter one's last rows repeat its first).
void SftLoader::plan_epoch(uint64_t epoch) const {
  if (epoch == planned_epoch_) return;
  std::vector<uint32_t> order(lengths_.size());
  std::iota(order.begin(), order.end(), 0u);
  SplitMix64 rng(mix64(seed_ ^ mix64(epoch + 0x5851f42d4c957f2dull)));
  for (uint64_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
  rows_.clear();
  const uint32_t capacity = static_cast<uint32_t>(T_) + 1;
  for (uint32_t s : order) {
    const uint32_t len = lengths_[s];
    if (!packing_ || rows_.empty()) {
      rows_.push_back({{s, len}});
      continue;
    }
    uint32_t used = 0;
    for (const auto& p : rows_.back()) used += p.length;
    if (used + len <= capacity) rows_.back().push_back({s, len});
    else rows_.push_back({{s, len}});
  }
  planned_epoch_ = epoch;
}

std::string SftLoader::describe() const {
  return fmt::format("{}: {} SFT samples in {} rows of {} tokens (packing {})", prefix_, lengths_.size(),
                     rows_per_epoch_, T_, packing_ ? "on" : "off");
}

void SftLoader::fill(uint64_t first_row, int count, Batch& out) const {
  out.B = count;
  out.T = T_;
  const size_t BT = static_cast<size_t>(count) * T_;
  out.tokens.assign(BT, 0);
  out.targets.assign(BT, 0);
  out.loss_mask.assign(BT, 0.0f);
  out.positions.assign(BT, 0);
  out.doc.assign(BT, 0);
  std::vector<int32_t> row(T_ + 1), ids;
  std::vector<uint8_t> mask(T_ + 1);
  std::vector<int32_t> pos(T_ + 1), doc(T_ + 1);
  std::vector<int32_t> sample_mask;
  for (int b = 0; b < count; ++b) {
    const uint64_t global_row = first_row + b;
    plan_epoch(global_row / rows_per_epoch_);
    const auto& pieces = rows_[std::min<uint64_t>(global_row % rows_per_epoch_, rows_.size() - 1)];
    std::fill(row.begin(), row.end(), 0);
    std::fill(mask.begin(), mask.end(), 0);
    std::fill(pos.begin(), pos.end(), 0);
    std::fill(doc.begin(), doc.end(), static_cast<int32_t>(pieces.size()));  // padding: a document of its own
    size_t at = 0;
    for (size_t d = 0; d < pieces.size(); ++d) {
      const auto& p = pieces[d];
      data_.tokens.read_sequence(samples_[p.sample], ids);
      data_.loss_mask.read_sequence(samples_[p.sample], sample_mask);
      for (uint32_t i = 0; i < p.length; ++i, ++at) {
        IRIS_USER_CHECK(ids[i] >= 0 && ids[i] < vocab_size_,
                        "SFT dataset {}, sample {}: token {} is outside the model's vocabulary of {}", prefix_,
                        samples_[p.sample], ids[i], vocab_size_);
        row[at] = ids[i];
        mask[at] = static_cast<uint8_t>(sample_mask[i]);
        pos[at] = static_cast<int32_t>(i);
        doc[at] = static_cast<int32_t>(d);
      }
    }
    const size_t o = static_cast<size_t>(b) * T_;
    for (int t = 0; t < T_; ++t) {
      out.tokens[o + t] = row[t];
      out.targets[o + t] = row[t + 1];
      // The target must belong to the same sample as the input (mask 0 on padding and on the next BOS).
      out.loss_mask[o + t] = (doc[t + 1] == doc[t] && mask[t + 1]) ? 1.0f : 0.0f;
      out.positions[o + t] = pos[t];
      out.doc[o + t] = doc[t];
    }
  }
}

}  // namespace iris
