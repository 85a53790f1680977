#include "src/train/data_sources.h"

#include <cmath>
#include <numeric>
#include <sstream>

#include <fmt/format.h>

#include "io/indexed_dataset.h"
#include "src/core/check.h"
#include "src/core/rng.h"
#include "src/train/sft_loader.h"

namespace iris {

std::vector<BlendEntry> parse_blend(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> items;
  for (std::string item; in >> item;) items.push_back(item);
  IRIS_USER_CHECK(!items.empty() && items.size() % 2 == 0,
                  "data.paths \"{}\": expected pairs \"WEIGHT PREFIX\" (e.g. \"0.7 /data/a 0.3 /data/b\"), got {} "
                  "item(s); is a weight or a prefix missing?",
                  text, items.size());
  std::vector<BlendEntry> blend;
  double total = 0;
  for (size_t i = 0; i < items.size(); i += 2) {
    double w = 0;
    size_t used = 0;
    try {
      w = std::stod(items[i], &used);
    } catch (const std::exception&) {
      used = 0;
    }
    IRIS_USER_CHECK(used == items[i].size() && std::isfinite(w) && w > 0,
                    "data.paths \"{}\": item {} \"{}\" should be a positive weight (pairs are \"WEIGHT PREFIX\")", text,
                    i + 1, items[i]);
    // A prefix that parses as a number means the pairs are out of step (a prefix is missing).
    size_t num_len = 0;
    try {
      std::stod(items[i + 1], &num_len);
    } catch (const std::exception&) {
      num_len = 0;
    }
    IRIS_USER_CHECK(num_len != items[i + 1].size(),
                    "data.paths \"{}\": item {} \"{}\" should be a dataset prefix, not a number (is a prefix missing?)",
                    text, i + 2, items[i + 1]);
    blend.push_back({w, items[i + 1]});
    total += w;
  }
  IRIS_USER_CHECK(blend.size() <= 255, "data.paths: {} datasets; at most 255 can be blended", blend.size());
  for (auto& e : blend) e.weight /= total;
  return blend;
}

std::pair<double, double> parse_split(const std::string& text) {
  if (text.empty()) return {1.0, 0.0};
  double train = -1, valid = -1;
  char comma = 0, extra = 0;
  std::istringstream in(text);
  const bool ok = (in >> train >> comma >> valid) && comma == ',' && !(in >> extra) && train >= 0 && valid >= 0 &&
                  train + valid > 0;
  IRIS_USER_CHECK(ok, "data.split \"{}\": expected two non-negative shares \"TRAIN,VALID\", e.g. \"98,2\"", text);
  return {train / (train + valid), valid / (train + valid)};
}

DocRange split_documents(uint64_t n, std::pair<double, double> split, bool valid) {
  const uint64_t boundary = std::min<uint64_t>(n, static_cast<uint64_t>(std::llround(split.first * n)));
  return valid ? DocRange{boundary, n} : DocRange{0, boundary};
}

DocSelection shuffled_documents(uint64_t n, double fraction, uint64_t seed, bool valid, const std::string& dataset) {
  // As run_plan: round the product to 1e-6 first so that 0.1 × 1000 is 100, not 101.
  const uint64_t n_valid = static_cast<uint64_t>(std::ceil(std::round(fraction * static_cast<double>(n) * 1e6) / 1e6));
  IRIS_USER_CHECK(n_valid > 0 && n_valid < n,
                  "data.val_fraction={} of the {} documents of {} leaves {} for validation and {} for training; both "
                  "need at least one", fraction, n, dataset, n_valid, n - std::min(n_valid, n));
  std::vector<uint64_t> order(n);
  std::iota(order.begin(), order.end(), uint64_t{0});
  SplitMix64 rng(mix64(seed ^ 0x76616c5f66726163ull));  // "val_frac": another stream than the epoch shuffles
  for (uint64_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
  std::vector<uint8_t> in_valid(n, 0);
  for (uint64_t i = 0; i < n_valid; ++i) in_valid[order[i]] = 1;
  std::vector<DocRange> runs;
  for (uint64_t d = 0; d < n; ++d) {
    if (in_valid[d] != static_cast<uint8_t>(valid)) continue;
    if (!runs.empty() && runs.back().end == d) ++runs.back().end;
    else runs.push_back({d, d + 1});
  }
  return DocSelection(std::move(runs));
}

BlendedSource::BlendedSource(std::vector<double> weights, std::vector<std::unique_ptr<SampleSource>> sources)
    : weights_(std::move(weights)), sources_(std::move(sources)) {
  const size_t K = sources_.size();
  IRIS_CHECK(K == weights_.size() && K > 0 && K <= 255, "blend of {} sources with {} weights", K, weights_.size());
  dataset_.resize(kBlendPeriod);
  within_.resize(kBlendPeriod);
  per_period_.assign(K, 0);
  for (uint64_t i = 0; i < kBlendPeriod; ++i) {
    const double n = std::max<double>(static_cast<double>(i), 1.0);
    size_t best = 0;
    double best_error = -1e300;
    for (size_t k = 0; k < K; ++k) {
      const double error = weights_[k] * n - static_cast<double>(per_period_[k]);
      if (error > best_error) best_error = error, best = k;
    }
    dataset_[i] = static_cast<uint8_t>(best);
    within_[i] = static_cast<uint32_t>(per_period_[best]++);
  }
}

std::pair<int, uint64_t> BlendedSource::locate(uint64_t i) const {
  const uint64_t period = i / kBlendPeriod, r = i % kBlendPeriod;
  const int k = dataset_[r];
  return {k, period * per_period_[k] + within_[r]};
}

uint64_t BlendedSource::num_samples() const {
  uint64_t n = 0;
  for (const auto& s : sources_) n += s->num_samples();
  return n;
}

void BlendedSource::fill(uint64_t first, int count, Batch& out) const {
  Batch row;
  for (int b = 0; b < count; ++b) {
    const auto [k, within] = locate(first + b);
    sources_[k]->fill(within, 1, row);
    if (b == 0) {
      const size_t BT = static_cast<size_t>(count) * row.T;
      out.B = count;
      out.T = row.T;
      out.tokens.resize(BT);
      out.targets.resize(BT);
      out.loss_mask.resize(BT);
      out.positions.resize(row.positions.empty() ? 0 : BT);
      out.doc.resize(row.doc.empty() ? 0 : BT);
    }
    copy_row(row, 0, out, b);
  }
}

std::string BlendedSource::describe() const {
  std::string s = fmt::format("blend of {} datasets:", sources_.size());
  for (size_t k = 0; k < sources_.size(); ++k) s += fmt::format("\n  {:.4f} × {}", weights_[k], sources_[k]->describe());
  return s;
}

namespace {

std::unique_ptr<SampleSource> open_source(const RunConfig& c, const std::string& prefix, int vocab_size,
                                          DocSelection docs) {
  if (c.train.task == Task::Sft)
    return std::make_unique<SftLoader>(prefix, c.train.seq_len, c.train.seed, vocab_size, c.sft.packing, docs);
  return std::make_unique<PretrainLoader>(prefix, c.train.seq_len, c.train.seed, vocab_size, docs);
}

// Documents of a dataset: SFT samples are sequences; pretraining counts Megatron documents.
uint64_t count_documents(const RunConfig& c, const std::string& prefix) {
  const io::IndexedDataset d = io::IndexedDataset::open(prefix);
  return c.train.task == Task::Sft ? d.num_sequences() : d.num_documents();
}

}  // namespace

DataSources make_data_sources(const RunConfig& c, int vocab_size) {
  const std::vector<BlendEntry> blend = c.data.paths.empty() ? std::vector<BlendEntry>{{1.0, c.data.path}}
                                                             : parse_blend(c.data.paths);
  const auto split = parse_split(c.data.split);
  DataSources out;
  for (const bool valid : {false, true}) {
    if (valid && split.second == 0 && c.data.val_fraction == 0) break;
    std::vector<double> weights;
    std::vector<std::unique_ptr<SampleSource>> parts;
    for (const BlendEntry& e : blend) {
      const uint64_t n = count_documents(c, e.prefix);
      const DocSelection docs = c.data.val_fraction > 0
                                    ? shuffled_documents(n, c.data.val_fraction, c.train.seed, valid, e.prefix)
                                    : DocSelection(split_documents(n, split, valid));
      IRIS_USER_CHECK(docs.count(n) > 0,
                      "data.split \"{}\" leaves no {} documents in {} ({} documents); change data.split", c.data.split,
                      valid ? "validation" : "training", e.prefix, n);
      weights.push_back(e.weight);
      parts.push_back(open_source(c, e.prefix, vocab_size, docs));
    }
    std::unique_ptr<SampleSource> source =
        parts.size() == 1 ? std::move(parts[0]) : std::make_unique<BlendedSource>(weights, std::move(parts));
    (valid ? out.valid : out.train) = std::move(source);
  }
  return out;
}

}  // namespace iris
