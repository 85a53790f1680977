// Which rows the trainer reads: one dataset (data.path) or a blend (data.paths, Megatron's
// "W1 PREFIX1 W2 PREFIX2" syntax), each cut by data.split into training and validation documents,
// served as pretraining windows or SFT rows (train.task). A blend maps global sample i to
// (dataset, sample within dataset) by Megatron's greedy rule (megatron/core/datasets/helpers.cpp,
// build_blending_indices): sample i goes to the dataset furthest below its share, w_k·i − n_k. The
// rule runs once over a period of kBlendPeriod samples that then repeats, so the mapping is a pure
// function of i with O(1) random access (resume at any sample) and shares exact to 1/kBlendPeriod.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "src/train/config.h"
#include "src/train/data_loader.h"

namespace iris {

struct BlendEntry {
  double weight = 0;   // normalised: the weights of a blend sum to 1
  std::string prefix;
};

// Parses data.paths; UserError naming the key and the value on an odd item count, a weight that is
// not a positive number, or a missing prefix.
std::vector<BlendEntry> parse_blend(const std::string& text);

// Parses data.split "TRAIN,VALID" into normalised shares; "" = {1, 0}. UserError naming the key.
std::pair<double, double> parse_split(const std::string& text);

// The training or validation documents of a dataset with n documents under a split (Megatron rounds
// the boundary to the nearest document).
DocRange split_documents(uint64_t n, std::pair<double, double> split, bool valid);

// data.val_fraction: ceil(fraction × n) of n documents (HF train_test_split's test size) drawn by a
// Fisher-Yates shuffle keyed by `seed`, as sorted ranges; valid = false gives the other documents. The
// two are disjoint and cover every document, whatever the layout. UserError naming data.val_fraction when
// either side would be empty.
DocSelection shuffled_documents(uint64_t n, double fraction, uint64_t seed, bool valid, const std::string& dataset);

class BlendedSource : public SampleSource {
 public:
  static constexpr uint64_t kBlendPeriod = 1u << 16;
  // weights: normalised, one per source.
  BlendedSource(std::vector<double> weights, std::vector<std::unique_ptr<SampleSource>> sources);

  // Global sample i → (dataset, sample index within that dataset's own order).
  std::pair<int, uint64_t> locate(uint64_t i) const;
  uint64_t num_samples() const override;
  void fill(uint64_t first, int count, Batch& out) const override;
  std::string describe() const override;

 private:
  std::vector<double> weights_;
  std::vector<std::unique_ptr<SampleSource>> sources_;
  std::vector<uint8_t> dataset_;      // (kBlendPeriod,) dataset of each sample of a period
  std::vector<uint32_t> within_;      // (kBlendPeriod,) its index among that dataset's samples of the period
  std::vector<uint64_t> per_period_;  // samples of each dataset in one period
};

struct DataSources {
  std::unique_ptr<SampleSource> train;
  std::unique_ptr<SampleSource> valid;  // null without a validation share in data.split
};

// Opens every dataset of the run config, each cut into training and validation documents by data.split
// or data.val_fraction (RunConfig::validate must have passed).
DataSources make_data_sources(const RunConfig& config, int vocab_size);

}  // namespace iris
