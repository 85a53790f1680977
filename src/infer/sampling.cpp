// HF's warpers (transformers 4.44 generation/logits_process.py), restated: temperature divides the logits;
// top-k sets every logit below the k-th largest to −inf; top-p sorts ascending, takes the cumulative softmax
// and removes the tokens whose cumulative probability is ≤ 1 − top_p, always keeping the most likely one.
#include "src/infer/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "src/core/rng.h"

namespace iris::infer {

int32_t argmax_token(const float* logits, int V) {
  int32_t best = 0;
  for (int i = 1; i < V; ++i)
    if (logits[i] > logits[best]) best = i;
  return best;
}

namespace {

constexpr double kRemoved = -std::numeric_limits<double>::infinity();

// x (V,) in place: entries below the k-th largest become −inf (entries equal to it stay).
void apply_top_k(std::vector<double>& x, int k) {
  const int V = static_cast<int>(x.size());
  if (k <= 0 || k >= V) return;
  std::vector<double> sorted(x);
  std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end(), std::greater<double>());
  const double kth = sorted[k - 1];
  for (double& v : x)
    if (v < kth) v = kRemoved;
}

// x (V,) in place, as TopPLogitsWarper: ascending stable sort, cumulative softmax, remove where ≤ 1 − p,
// the last (largest) entry always kept.
void apply_top_p(std::vector<double>& x, double p) {
  if (p >= 1.0) return;
  const int V = static_cast<int>(x.size());
  std::vector<int> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return x[a] < x[b]; });
  const double m = x[order.back()];
  double total = 0.0;
  for (int i : order) total += x[i] == kRemoved ? 0.0 : std::exp(x[i] - m);
  double cumulative = 0.0;
  std::vector<int> removed;
  for (int r = 0; r < V - 1; ++r) {
    const int i = order[r];
    cumulative += x[i] == kRemoved ? 0.0 : std::exp(x[i] - m) / total;
    if (cumulative <= 1.0 - p) removed.push_back(i);
  }
  for (int i : removed) x[i] = kRemoved;
}

}  // namespace

void sampling_probabilities(float* probs, const float* logits, int V, const SamplingSettings& s,
                            std::vector<double>& scratch) {
  scratch.assign(logits, logits + V);
  if (s.temperature != 1.0f)
    for (double& v : scratch) v /= static_cast<double>(s.temperature);
  apply_top_k(scratch, s.top_k);
  apply_top_p(scratch, static_cast<double>(s.top_p));
  const double m = *std::max_element(scratch.begin(), scratch.end());
  double sum = 0.0;
  for (double& v : scratch) {
    v = v == kRemoved ? 0.0 : std::exp(v - m);
    sum += v;
  }
  for (int i = 0; i < V; ++i) probs[i] = static_cast<float>(scratch[i] / sum);
}

int32_t token_at_quantile(const float* probs, int V, double u) {
  double cumulative = 0.0;
  int32_t last_possible = 0;
  for (int i = 0; i < V; ++i) {
    if (probs[i] <= 0.0f) continue;
    cumulative += probs[i];
    last_possible = i;
    if (u < cumulative) return i;
  }
  return last_possible;  // u beyond the float sum's rounding: the last token that can be chosen
}

uint64_t prompt_stream(std::string_view prompt_id) { return name_hash(prompt_id); }

int32_t choose_token(const float* logits, int V, const SamplingSettings& s, uint64_t stream, int64_t position,
                     std::vector<double>& scratch, std::vector<float>& probs) {
  if (s.greedy) return argmax_token(logits, V);
  probs.resize(static_cast<size_t>(V));
  sampling_probabilities(probs.data(), logits, V, s, scratch);
  return token_at_quantile(probs.data(), V, random_uniform(s.seed, stream, static_cast<uint64_t>(position)));
}

}  // namespace iris::infer
