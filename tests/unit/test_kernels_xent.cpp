// Vocab-parallel cross-entropy of the CPU op set: the phases composed on one shard and on a vocab split
// over two simulated TP shards (MAX and SUM all-reduces done by hand), each with padding columns that
// hold huge logits. Losses against log-softmax in double; dlogits against central finite differences of
// Σ dloss · loss (tolerances and why: kernels_test_util.h); padding gradients exactly 0; in-place
// backward (dlogits aliasing logits) bit-identical to out-of-place.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "src/kernels/cpu/ops.h"
#include "tests/unit/kernels_test_util.h"

namespace iris::cpu {
namespace {

using test::all_close;
using test::kFp32;

constexpr int N = 6, V = 37;           // rows, real vocabulary
constexpr float kPadLogit = 1e4f;      // padding columns: would dominate max and Σ exp if they leaked in
const std::vector<int32_t> kTargets = {0, 19, 20, 36, 5, 33};  // both shards, first and last ids

struct Shard {
  int vocab_start, V_local, V_valid;
  std::vector<float> logits;  // (N, V_local): the shard's slice of the vocabulary, then padding
};

// The full logits (N, V) cut into shards of V_local columns; ids past V are padding.
std::vector<Shard> split(const std::vector<float>& logits, int shards, int V_local) {
  std::vector<Shard> result;
  for (int s = 0; s < shards; ++s) {
    Shard sh{s * V_local, V_local, std::clamp(V - s * V_local, 0, V_local), {}};
    sh.logits.assign(static_cast<size_t>(N) * V_local, kPadLogit);
    for (int n = 0; n < N; ++n)
      for (int v = 0; v < sh.V_valid; ++v) sh.logits[n * V_local + v] = logits[n * V + sh.vocab_start + v];
    result.push_back(std::move(sh));
  }
  return result;
}

// Phases 1–3 on every shard with the all-reduces done here; returns the losses, fills dlogits per shard.
std::vector<float> run_xent(const std::vector<Shard>& shards, const std::vector<float>& dloss,
                            std::vector<std::vector<float>>& dlogits) {
  std::vector<float> max(N, -INFINITY), sumexp(N, 0.0f), target(N, 0.0f), part(N), part2(N);
  for (const Shard& sh : shards) {
    xent_local_max(part.data(), sh.logits.data(), N, sh.V_local, sh.V_valid);
    for (int n = 0; n < N; ++n) max[n] = std::max(max[n], part[n]);  // all-reduce MAX
  }
  for (const Shard& sh : shards) {
    xent_local_sumexp(part.data(), part2.data(), sh.logits.data(), max.data(), kTargets.data(), N, sh.V_local,
                      sh.V_valid, sh.vocab_start);
    for (int n = 0; n < N; ++n) sumexp[n] += part[n], target[n] += part2[n];  // all-reduce SUM
  }
  std::vector<float> losses(N);
  xent_losses(losses.data(), max.data(), sumexp.data(), target.data(), N);
  dlogits.clear();
  for (const Shard& sh : shards) {
    std::vector<float> d(sh.logits.size(), std::numeric_limits<float>::quiet_NaN());
    xent_backward(d.data(), sh.logits.data(), max.data(), sumexp.data(), kTargets.data(), dloss.data(), N,
                  sh.V_local, sh.V_valid, sh.vocab_start);
    // In place, as the model calls it: must give the same bits.
    std::vector<float> in_place = sh.logits;
    xent_backward(in_place.data(), in_place.data(), max.data(), sumexp.data(), kTargets.data(), dloss.data(), N,
                  sh.V_local, sh.V_valid, sh.vocab_start);
    EXPECT_EQ(0, std::memcmp(d.data(), in_place.data(), sizeof(float) * d.size())) << "aliased dlogits differ";
    dlogits.push_back(std::move(d));
  }
  return losses;
}

std::vector<double> losses_ref(const std::vector<double>& logits) {  // (N,) from logits (N, V)
  std::vector<double> losses(N);
  for (int n = 0; n < N; ++n) {
    const double* l = &logits[n * V];
    const double m = *std::max_element(l, l + V);
    double sum = 0.0;
    for (int v = 0; v < V; ++v) sum += std::exp(l[v] - m);
    losses[n] = std::log(sum) + m - l[kTargets[n]];
  }
  return losses;
}

class CrossEntropy : public ::testing::TestWithParam<int> {};  // number of TP shards

TEST_P(CrossEntropy, LossesAndGradientsMatchDoubleLogSoftmax) {
  const int shards = GetParam(), V_local = 20 * 2 / shards;  // 40 columns in all: 3 of padding
  std::vector<float> logits = test::random_floats(N * V, 1, -5, 5);
  for (int v = 0; v < V; ++v) logits[2 * V + v] += 60.0f;  // a row far from 0: needs the max shift
  std::vector<float> dloss = test::random_floats(N, 2, 0.1f, 1.0f);
  dloss[3] = 0.0f;  // a masked token

  std::vector<std::vector<float>> dlogits;
  const std::vector<float> losses = run_xent(split(logits, shards, V_local), dloss, dlogits);
  std::vector<double> ld = test::to_double(logits);
  EXPECT_TRUE(all_close(losses, losses_ref(ld), kFp32)) << "losses";

  const std::vector<double> dl = test::to_double(dloss);
  const auto fd = test::finite_difference(ld, [&] { return test::weighted_sum(dl, losses_ref(ld)); },
                                          test::all_indices(ld.size()));
  for (int s = 0; s < shards; ++s) {
    const Shard sh = split(logits, shards, V_local)[s];
    std::vector<float> got;
    std::vector<double> want;
    for (int n = 0; n < N; ++n) {
      for (int v = 0; v < sh.V_valid; ++v) {
        got.push_back(dlogits[s][n * V_local + v]);
        want.push_back(fd[n * V + sh.vocab_start + v]);
      }
      for (int v = sh.V_valid; v < V_local; ++v) EXPECT_EQ(dlogits[s][n * V_local + v], 0.0f) << "padding " << n;
    }
    EXPECT_TRUE(all_close(got, want, kFp32)) << "dlogits of shard " << s;
  }
}

INSTANTIATE_TEST_SUITE_P(Shards, CrossEntropy, ::testing::Values(1, 2));

}  // namespace
}  // namespace iris::cpu
