// CPU op set (src/kernels/cpu/ops.h), dense and elementwise ops: matmul, add/scale/sum_squares, RMSNorm,
// RoPE, SwiGLU, embedding and AdamW. Forward against double references, backward against central finite
// differences of L = Σ w ⊙ out in double (tolerances and why: kernels_test_util.h). Parameter gradients
// are checked to accumulate by calling backward twice. Attention and cross-entropy have their own files.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "src/kernels/cpu/ops.h"
#include "tests/unit/kernels_test_util.h"

namespace iris::cpu {
namespace {

using test::all_close;
using test::finite_difference;
using test::kFp32;
using test::random_floats;
using test::some_indices;
using test::to_double;
using test::weighted_sum;

constexpr size_t kFdSamples = 300;  // finite differences on at most this many elements per tensor
const float kGarbage = std::numeric_limits<float>::quiet_NaN();  // prefill of outputs that must be overwritten

// base + k·grad, the value a += gradient holds after k calls
std::vector<double> plus_times(const std::vector<float>& base, const std::vector<double>& grad, double k) {
  std::vector<double> r(base.size());
  for (size_t i = 0; i < base.size(); ++i) r[i] = base[i] + k * grad[i];
  return r;
}

std::vector<double> full_fd(std::vector<double>& x, const std::function<double()>& loss) {
  return finite_difference(x, loss, test::all_indices(x.size()));
}

// ---- matmul --------------------------------------------------------------------------------

struct MatmulShape {
  int N, IC, OC;
};

std::vector<double> matmul_ref(const std::vector<double>& inp, const std::vector<double>& w, int N, int IC, int OC) {
  std::vector<double> out(static_cast<size_t>(N) * OC, 0.0);
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < OC; ++o)
      for (int i = 0; i < IC; ++i) out[n * OC + o] += inp[n * IC + i] * w[o * IC + i];
  return out;
}

class Matmul : public ::testing::TestWithParam<MatmulShape> {};

TEST_P(Matmul, ForwardMatchesDouble) {
  const auto [N, IC, OC] = GetParam();
  const auto inp = random_floats(N * IC, 1), w = random_floats(OC * IC, 2);
  std::vector<float> out(N * OC, kGarbage);
  matmul_forward(out.data(), inp.data(), w.data(), N, IC, OC);
  EXPECT_TRUE(all_close(out, matmul_ref(to_double(inp), to_double(w), N, IC, OC), kFp32));
}

TEST_P(Matmul, BackwardMatchesFiniteDifferencesAndAccumulates) {
  const auto [N, IC, OC] = GetParam();
  const auto inp = random_floats(N * IC, 3), w = random_floats(OC * IC, 4), wout = random_floats(N * OC, 5);
  const auto dweight0 = random_floats(OC * IC, 6), dinp0 = random_floats(N * IC, 7);
  std::vector<double> x = to_double(inp), wd = to_double(w);
  const std::vector<double> wo = to_double(wout);
  const auto loss = [&] { return weighted_sum(wo, matmul_ref(x, wd, N, IC, OC)); };
  const std::vector<double> fd_inp = full_fd(x, loss), fd_w = full_fd(wd, loss);

  std::vector<float> dinp(N * IC, kGarbage), dweight = dweight0;
  matmul_backward(dinp.data(), dweight.data(), wout.data(), inp.data(), w.data(), N, IC, OC);
  EXPECT_TRUE(all_close(dinp, fd_inp, kFp32)) << "dinp";
  EXPECT_TRUE(all_close(dweight, plus_times(dweight0, fd_w, 1), kFp32)) << "dweight after one call";

  // dinp = nullptr skips the input gradient; dweight keeps accumulating.
  matmul_backward(nullptr, dweight.data(), wout.data(), inp.data(), w.data(), N, IC, OC);
  EXPECT_TRUE(all_close(dweight, plus_times(dweight0, fd_w, 2), kFp32)) << "dweight after two calls";

  std::vector<float> dinp_acc = dinp0;
  matmul_backward(dinp_acc.data(), dweight.data(), wout.data(), inp.data(), w.data(), N, IC, OC,
                  /*accumulate_dinp=*/true);
  EXPECT_TRUE(all_close(dinp_acc, plus_times(dinp0, fd_inp, 1), kFp32)) << "accumulate_dinp";
}

INSTANTIATE_TEST_SUITE_P(Shapes, Matmul,
                         ::testing::Values(MatmulShape{1, 1, 1}, MatmulShape{7, 13, 5}, MatmulShape{20, 3, 40},
                                           MatmulShape{33, 64, 17}));

// ---- elementwise ---------------------------------------------------------------------------

TEST(Elementwise, AddScaleAndSumSquares) {
  const size_t n = 100003;  // above the parallel threshold, not a multiple of the vector width
  const auto a0 = random_floats(n, 8), b = random_floats(n, 9);
  std::vector<float> a = a0;
  add_inplace(a.data(), b.data(), n);
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(a[i], a0[i] + b[i]) << i;
  scale_inplace(a.data(), 0.37f, n);
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(a[i], (a0[i] + b[i]) * 0.37f) << i;

  // Every float square is exact in double, so the only error is the double summation (~n·1e-16).
  double ref = 0.0;
  for (float v : b) ref += static_cast<double>(v) * v;
  EXPECT_NEAR(sum_squares(b.data(), n), ref, 1e-10 * ref);
  EXPECT_EQ(sum_squares(b.data(), 0), 0.0);
  EXPECT_NEAR(sum_squares(b.data(), 5), [&] {
    double s = 0;
    for (int i = 0; i < 5; ++i) s += static_cast<double>(b[i]) * b[i];
    return s;
  }(), 1e-15);

  // The grad norm must not depend on the thread count (bit-exact resume across machines).
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const double one = sum_squares(b.data(), n);
  omp_set_num_threads(3);
  const double three = sum_squares(b.data(), n);
  omp_set_num_threads(threads);
  EXPECT_EQ(one, three);
}

// ---- RMSNorm -------------------------------------------------------------------------------

struct RowShape {
  int N, C;
};
constexpr float kRmsEps = 1e-5f;

std::vector<double> rmsnorm_ref(const std::vector<double>& x, const std::vector<double>& w, int N, int C,
                                std::vector<double>* rstd = nullptr) {
  std::vector<double> out(x.size());
  for (int n = 0; n < N; ++n) {
    double ss = 0.0;
    for (int c = 0; c < C; ++c) ss += x[n * C + c] * x[n * C + c];
    const double r = 1.0 / std::sqrt(ss / C + kRmsEps);
    if (rstd) rstd->push_back(r);
    for (int c = 0; c < C; ++c) out[n * C + c] = x[n * C + c] * r * w[c];
  }
  return out;
}

class RmsNorm : public ::testing::TestWithParam<RowShape> {};

TEST_P(RmsNorm, ForwardMatchesDouble) {
  const auto [N, C] = GetParam();
  const auto x = random_floats(N * C, 10, -2, 2), w = random_floats(C, 11, 0.5, 1.5);
  std::vector<float> out(N * C, kGarbage), rstd(N, kGarbage);
  rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, kRmsEps);
  std::vector<double> rstd_ref;
  const auto out_ref = rmsnorm_ref(to_double(x), to_double(w), N, C, &rstd_ref);
  EXPECT_TRUE(all_close(out, out_ref, kFp32));
  EXPECT_TRUE(all_close(rstd, rstd_ref, kFp32));
}

TEST_P(RmsNorm, BackwardMatchesFiniteDifferencesAndAccumulates) {
  const auto [N, C] = GetParam();
  const auto x = random_floats(N * C, 12, -2, 2), w = random_floats(C, 13, 0.5, 1.5);
  const auto wout = random_floats(N * C, 14), dweight0 = random_floats(C, 15);
  std::vector<float> out(N * C), rstd(N);
  rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, kRmsEps);

  std::vector<double> xd = to_double(x), wd = to_double(w);
  const std::vector<double> wo = to_double(wout);
  const auto loss = [&] { return weighted_sum(wo, rmsnorm_ref(xd, wd, N, C)); };
  const auto fd_x = full_fd(xd, loss), fd_w = full_fd(wd, loss);

  std::vector<float> dx(N * C, kGarbage), dweight = dweight0;
  rmsnorm_backward(dx.data(), dweight.data(), wout.data(), x.data(), w.data(), rstd.data(), N, C);
  EXPECT_TRUE(all_close(dx, fd_x, kFp32)) << "dinp";
  EXPECT_TRUE(all_close(dweight, plus_times(dweight0, fd_w, 1), kFp32)) << "dweight after one call";
  rmsnorm_backward(dx.data(), dweight.data(), wout.data(), x.data(), w.data(), rstd.data(), N, C);
  EXPECT_TRUE(all_close(dx, fd_x, kFp32)) << "dinp is written, not accumulated";
  EXPECT_TRUE(all_close(dweight, plus_times(dweight0, fd_w, 2), kFp32)) << "dweight after two calls";
}

INSTANTIATE_TEST_SUITE_P(Shapes, RmsNorm,
                         ::testing::Values(RowShape{1, 1}, RowShape{3, 7}, RowShape{5, 64}, RowShape{4, 37},
                                           RowShape{2, 100}));

// ---- RoPE ----------------------------------------------------------------------------------

struct RopeShape {
  int N, H, HS;
};

class Rope : public ::testing::TestWithParam<RopeShape> {};

// HF's tables: inv_freq = 10000^(−2i/HS) in fp32, angle = pos · inv_freq rounded to fp32 (HF multiplies
// fp32 tensors), then cos/sin. The kernel's only error is the final rounding to fp32 (≤ 6e-8).
TEST_P(Rope, TablesMatchHfAngles) {
  const auto [N, H, HS] = GetParam();
  std::vector<int32_t> pos(N);
  for (int n = 0; n < N; ++n) pos[n] = (n * 977 + 13) % 8192;
  std::vector<float> inv_freq(HS / 2);
  for (int i = 0; i < HS / 2; ++i) inv_freq[i] = static_cast<float>(std::pow(10000.0, -2.0 * i / HS));
  std::vector<float> cos(N * HS / 2, kGarbage), sin(N * HS / 2, kGarbage);
  rope_tables(cos.data(), sin.data(), pos.data(), inv_freq.data(), N, HS);
  std::vector<double> cos_ref, sin_ref;
  for (int n = 0; n < N; ++n)
    for (int i = 0; i < HS / 2; ++i) {
      const float angle = static_cast<float>(pos[n]) * inv_freq[i];
      cos_ref.push_back(std::cos(static_cast<double>(angle)));
      sin_ref.push_back(std::sin(static_cast<double>(angle)));
    }
  EXPECT_TRUE(all_close(cos, cos_ref, {1e-7, 0}));
  EXPECT_TRUE(all_close(sin, sin_ref, {1e-7, 0}));
}

std::vector<double> rope_ref(const std::vector<double>& x, const std::vector<float>& cos,
                             const std::vector<float>& sin, int N, int H, int HS) {
  std::vector<double> out(x.size());
  const int half = HS / 2;
  for (int n = 0; n < N; ++n)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < half; ++i) {
        const size_t base = (static_cast<size_t>(n) * H + h) * HS;
        const double c = cos[n * half + i], s = sin[n * half + i];
        out[base + i] = x[base + i] * c - x[base + i + half] * s;
        out[base + i + half] = x[base + i + half] * c + x[base + i] * s;
      }
  return out;
}

TEST_P(Rope, ForwardMatchesDoubleAndBackwardMatchesFiniteDifferences) {
  const auto [N, H, HS] = GetParam();
  const auto angles = random_floats(N * HS / 2, 16, -3.2f, 3.2f);
  std::vector<float> cos(angles.size()), sin(angles.size());
  for (size_t i = 0; i < angles.size(); ++i) cos[i] = std::cos(angles[i]), sin[i] = std::sin(angles[i]);
  const auto x = random_floats(N * H * HS, 17), wout = random_floats(N * H * HS, 18);

  std::vector<float> rotated = x;
  rope_forward(rotated.data(), cos.data(), sin.data(), N, H, HS);
  EXPECT_TRUE(all_close(rotated, rope_ref(to_double(x), cos, sin, N, H, HS), kFp32));

  std::vector<double> xd = to_double(x);
  const std::vector<double> wo = to_double(wout);
  const auto fd = full_fd(xd, [&] { return weighted_sum(wo, rope_ref(xd, cos, sin, N, H, HS)); });
  std::vector<float> dx = wout;
  rope_backward(dx.data(), cos.data(), sin.data(), N, H, HS);
  EXPECT_TRUE(all_close(dx, fd, kFp32));
}

INSTANTIATE_TEST_SUITE_P(Shapes, Rope,
                         ::testing::Values(RopeShape{7, 1, 2}, RopeShape{5, 3, 16}, RopeShape{3, 2, 64}));

// ---- SwiGLU --------------------------------------------------------------------------------

std::vector<double> swiglu_ref(const std::vector<double>& gate, const std::vector<double>& up) {
  std::vector<double> out(gate.size());
  for (size_t i = 0; i < gate.size(); ++i) out[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i];
  return out;
}

class SwiGlu : public ::testing::TestWithParam<RowShape> {};

TEST_P(SwiGlu, ForwardMatchesDoubleAndBackwardMatchesFiniteDifferences) {
  const auto [N, F] = GetParam();
  const auto gate = random_floats(N * F, 19, -8, 8), up = random_floats(N * F, 20, -2, 2);
  const auto wout = random_floats(N * F, 21);
  std::vector<float> out(N * F, kGarbage);
  swiglu_forward(out.data(), gate.data(), up.data(), N, F);
  EXPECT_TRUE(all_close(out, swiglu_ref(to_double(gate), to_double(up)), kFp32));

  std::vector<double> gd = to_double(gate), ud = to_double(up);
  const std::vector<double> wo = to_double(wout);
  const auto loss = [&] { return weighted_sum(wo, swiglu_ref(gd, ud)); };
  const auto fd_gate = full_fd(gd, loss), fd_up = full_fd(ud, loss);
  std::vector<float> dgate(N * F, kGarbage), dup(N * F, kGarbage);
  swiglu_backward(dgate.data(), dup.data(), wout.data(), gate.data(), up.data(), N, F);
  EXPECT_TRUE(all_close(dgate, fd_gate, kFp32)) << "dgate";
  EXPECT_TRUE(all_close(dup, fd_up, kFp32)) << "dup";
}

INSTANTIATE_TEST_SUITE_P(Shapes, SwiGlu, ::testing::Values(RowShape{1, 1}, RowShape{3, 17}, RowShape{4, 64}));

TEST(SwiGlu, SaturatesWithoutOverflow) {
  // silu(x) → 0 for x ≪ 0 and → x for x ≫ 0; exp(±100) must not turn into inf/NaN.
  const std::vector<float> gate = {-1000.f, -100.f, -90.f, -20.f, 20.f, 90.f, 100.f, 1000.f};
  const std::vector<float> up(gate.size(), 1.0f), dout(gate.size(), 1.0f);
  std::vector<float> out(gate.size()), dgate(gate.size()), dup(gate.size());
  swiglu_forward(out.data(), gate.data(), up.data(), 1, static_cast<int>(gate.size()));
  swiglu_backward(dgate.data(), dup.data(), dout.data(), gate.data(), up.data(), 1, static_cast<int>(gate.size()));
  for (size_t i = 0; i < gate.size(); ++i) {
    const double g = gate[i], sig = 1.0 / (1.0 + std::exp(-g));
    EXPECT_NEAR(out[i], g * sig, 1e-5 * std::fabs(g)) << g;
    EXPECT_NEAR(dgate[i], sig * (1.0 + g * (1.0 - sig)), 1e-5) << g;
  }
}

// ---- embedding -----------------------------------------------------------------------------

TEST(Embedding, ShardRowsForwardAndDeterministicBackward) {
  const int N = 40, C = 70, vocab_start = 3, V_local = 5;  // this shard holds tokens 3..7
  std::vector<int32_t> tokens(N);
  for (int n = 0; n < N; ++n) tokens[n] = (n * 7 + 2) % 12;  // repeats, in and out of the shard
  const auto wte = random_floats(V_local * C, 22), dout = random_floats(N * C, 23);
  const auto dwte0 = random_floats(V_local * C, 24);

  std::vector<float> out(N * C, kGarbage);
  embedding_forward(out.data(), tokens.data(), wte.data(), N, C, vocab_start, V_local);
  for (int n = 0; n < N; ++n) {
    const int row = tokens[n] - vocab_start;
    const bool here = row >= 0 && row < V_local;
    for (int c = 0; c < C; ++c) ASSERT_EQ(out[n * C + c], here ? wte[row * C + c] : 0.0f) << n << "," << c;
  }

  // dwte = ∂/∂wte Σ dout ⊙ out, by finite differences of the (linear) lookup.
  std::vector<double> wd = to_double(wte);
  const std::vector<double> wo = to_double(dout);
  const auto fd = full_fd(wd, [&] {
    std::vector<double> o(N * C, 0.0);
    for (int n = 0; n < N; ++n)
      if (tokens[n] >= vocab_start && tokens[n] < vocab_start + V_local)
        for (int c = 0; c < C; ++c) o[n * C + c] = wd[(tokens[n] - vocab_start) * C + c];
    return weighted_sum(wo, o);
  });
  std::vector<float> dwte = dwte0;
  embedding_backward(dwte.data(), dout.data(), tokens.data(), N, C, vocab_start, V_local);
  EXPECT_TRUE(all_close(dwte, plus_times(dwte0, fd, 1), kFp32));
  embedding_backward(dwte.data(), dout.data(), tokens.data(), N, C, vocab_start, V_local);
  EXPECT_TRUE(all_close(dwte, plus_times(dwte0, fd, 2), kFp32));

  // Bit-identical for any thread count and on every run.
  const int threads = omp_get_max_threads();
  std::vector<std::vector<float>> results;
  for (int t : {1, 2, 3, 1}) {
    omp_set_num_threads(t);
    std::vector<float> d = dwte0;
    embedding_backward(d.data(), dout.data(), tokens.data(), N, C, vocab_start, V_local);
    results.push_back(d);
  }
  omp_set_num_threads(threads);
  for (size_t r = 1; r < results.size(); ++r)
    EXPECT_EQ(0, std::memcmp(results[0].data(), results[r].data(), sizeof(float) * results[0].size())) << r;
}

// ---- AdamW ---------------------------------------------------------------------------------

TEST(AdamW, MatchesTorchFormulaOverSeveralSteps) {
  const size_t n = 40001;  // above the parallel threshold, odd
  const float lr = 1e-2f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, wd = 0.1f, grad_scale = 0.7f;
  std::vector<float> p = random_floats(n, 25), m(n, 0.0f), v(n, 0.0f);
  std::vector<double> pr = to_double(p), mr(n, 0.0), vr(n, 0.0);
  for (int step = 1; step <= 5; ++step) {
    const auto g = random_floats(n, 100 + step, -2, 2);
    adamw_update(p.data(), m.data(), v.data(), g.data(), n, lr, beta1, beta2, eps, wd, step, grad_scale);
    // torch.optim.AdamW (single-tensor path): decay, moments, bias-corrected step.
    const double bc1 = 1.0 - std::pow(double(beta1), step), bc2 = 1.0 - std::pow(double(beta2), step);
    for (size_t i = 0; i < n; ++i) {
      const double gi = double(g[i]) * grad_scale;
      pr[i] *= 1.0 - double(lr) * wd;
      mr[i] = beta1 * mr[i] + (1.0 - beta1) * gi;
      vr[i] = beta2 * vr[i] + (1.0 - beta2) * gi * gi;
      pr[i] -= lr / bc1 * mr[i] / (std::sqrt(vr[i]) / std::sqrt(bc2) + eps);
    }
    // Each step moves p by ~lr; fp32 rounding adds ~1e-7 per step.
    EXPECT_TRUE(all_close(p, pr, {1e-6, 1e-6})) << "params, step " << step;
    EXPECT_TRUE(all_close(m, mr, {1e-7, 1e-5})) << "m, step " << step;
    EXPECT_TRUE(all_close(v, vr, {1e-8, 1e-5})) << "v, step " << step;
  }
}

}  // namespace
}  // namespace iris::cpu
