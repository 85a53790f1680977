// Causal GQA attention of the CPU op set against a naive double-precision reference: out and lse of the
// forward, dq/dk/dv of the backward against central finite differences of L = Σ w ⊙ out (tolerances and
// why: kernels_test_util.h). Shapes sweep odd T, T across several 64-row query blocks, HS 16/32/64,
// GQA ratios 1/2/4, no doc mask, packed documents and non-contiguous document ids.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <vector>

#include "src/kernels/cpu/ops.h"
#include "tests/unit/kernels_test_util.h"

namespace iris::cpu {
namespace {

using test::all_close;
using test::kFp32;
using test::random_floats;
using test::to_double;

enum class Docs { None, Packed, Interleaved };

struct AttnShape {
  int B, T, NH, NKV, HS;
  Docs docs;
  size_t fd_samples;  // finite differences on at most this many elements of each of q, k, v
};

std::ostream& operator<<(std::ostream& os, const AttnShape& s) {
  const char* docs[] = {"none", "packed", "interleaved"};
  return os << "B" << s.B << "_T" << s.T << "_NH" << s.NH << "_NKV" << s.NKV << "_HS" << s.HS << "_docs_"
            << docs[static_cast<int>(s.docs)];
}

// doc (B, T). Packed: contiguous documents whose lengths cycle through kDocLengths (a one-token document,
// and one crossing the 64-row query block boundary); interleaved: ids that come back later.
constexpr int kDocLengths[] = {3, 1, 29, 40, 7, 90};
std::vector<int32_t> make_docs(const AttnShape& s) {
  std::vector<int32_t> doc(static_cast<size_t>(s.B) * s.T, 0);
  for (int b = 0; b < s.B; ++b) {
    int id = 0, left = kDocLengths[b % 6];
    for (int t = 0; t < s.T; ++t) {
      if (left == 0) left = kDocLengths[(b + ++id) % 6];
      --left;
      doc[static_cast<size_t>(b) * s.T + t] = s.docs == Docs::Packed ? id : (t / 2) % 3;
    }
  }
  return doc;
}

// out (B, T, NH, HS), lse (B, NH, T) in double.
void attention_ref(std::vector<double>& out, std::vector<double>* lse, const std::vector<double>& q,
                   const std::vector<double>& k, const std::vector<double>& v, const int32_t* doc, const AttnShape& s) {
  const auto [B, T, NH, NKV, HS, docs, fd] = s;
  out.assign(static_cast<size_t>(B) * T * NH * HS, 0.0);
  if (lse) lse->assign(static_cast<size_t>(B) * NH * T, 0.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(HS));
  std::vector<double> p(T);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h) {
      const int kvh = h / (NH / NKV);
      for (int i = 0; i < T; ++i) {
        const double* qi = &q[((static_cast<size_t>(b) * T + i) * NH + h) * HS];
        double m = -INFINITY;
        for (int j = 0; j <= i; ++j) {
          p[j] = -INFINITY;
          if (doc && doc[b * T + j] != doc[b * T + i]) continue;
          const double* kj = &k[((static_cast<size_t>(b) * T + j) * NKV + kvh) * HS];
          double dot = 0.0;
          for (int c = 0; c < HS; ++c) dot += qi[c] * kj[c];
          p[j] = dot * scale;
          m = std::max(m, p[j]);
        }
        double sum = 0.0;
        for (int j = 0; j <= i; ++j) sum += p[j] = std::exp(p[j] - m);
        if (lse) (*lse)[(static_cast<size_t>(b) * NH + h) * T + i] = m + std::log(sum);
        double* oi = &out[((static_cast<size_t>(b) * T + i) * NH + h) * HS];
        for (int j = 0; j <= i; ++j) {
          const double* vj = &v[((static_cast<size_t>(b) * T + j) * NKV + kvh) * HS];
          for (int c = 0; c < HS; ++c) oi[c] += p[j] / sum * vj[c];
        }
      }
    }
}

class Attention : public ::testing::TestWithParam<AttnShape> {
 protected:
  void SetUp() override {
    s = GetParam();
    const size_t nq = static_cast<size_t>(s.B) * s.T * s.NH * s.HS, nkv = static_cast<size_t>(s.B) * s.T * s.NKV * s.HS;
    q = random_floats(nq, 1, -2, 2);  // wider than k so that some rows of P are peaked
    k = random_floats(nkv, 2);
    v = random_floats(nkv, 3);
    wout = random_floats(nq, 4);
    docs = make_docs(s);
    doc = s.docs == Docs::None ? nullptr : docs.data();
    out.assign(nq, std::numeric_limits<float>::quiet_NaN());
    lse.assign(static_cast<size_t>(s.B) * s.NH * s.T, std::numeric_limits<float>::quiet_NaN());
    attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), doc, s.B, s.T, s.NH, s.NKV, s.HS);
  }
  // dq, dk, dv from the kernel; outputs prefilled with NaN so anything not written shows.
  void backward(std::vector<float>& dq, std::vector<float>& dk, std::vector<float>& dv) const {
    dq.assign(q.size(), std::numeric_limits<float>::quiet_NaN());
    dk.assign(k.size(), std::numeric_limits<float>::quiet_NaN());
    dv.assign(v.size(), std::numeric_limits<float>::quiet_NaN());
    attention_backward(dq.data(), dk.data(), dv.data(), wout.data(), q.data(), k.data(), v.data(), out.data(),
                       lse.data(), doc, s.B, s.T, s.NH, s.NKV, s.HS);
  }

  AttnShape s{};
  std::vector<float> q, k, v, wout, out, lse;
  std::vector<int32_t> docs;
  const int32_t* doc = nullptr;
};

TEST_P(Attention, ForwardMatchesDouble) {
  std::vector<double> out_ref, lse_ref;
  attention_ref(out_ref, &lse_ref, to_double(q), to_double(k), to_double(v), doc, s);
  EXPECT_TRUE(all_close(out, out_ref, kFp32)) << "out";
  EXPECT_TRUE(all_close(lse, lse_ref, kFp32)) << "lse";
}

TEST_P(Attention, BackwardMatchesFiniteDifferences) {
  std::vector<float> dq, dk, dv;
  backward(dq, dk, dv);
  std::vector<double> qd = to_double(q), kd = to_double(k), vd = to_double(v), o;
  const std::vector<double> wo = to_double(wout);
  const auto loss = [&] {
    attention_ref(o, nullptr, qd, kd, vd, doc, s);
    return test::weighted_sum(wo, o);
  };
  EXPECT_TRUE(test::gradient_matches(dq, qd, loss, test::some_indices(q.size(), s.fd_samples, 5))) << "dq";
  EXPECT_TRUE(test::gradient_matches(dk, kd, loss, test::some_indices(k.size(), s.fd_samples, 6))) << "dk";
  EXPECT_TRUE(test::gradient_matches(dv, vd, loss, test::some_indices(v.size(), s.fd_samples, 7))) << "dv";
}

TEST_P(Attention, BackwardIsBitIdenticalForAnyThreadCount) {
  const int threads = omp_get_max_threads();
  std::vector<float> dq1, dk1, dv1, dq3, dk3, dv3;
  omp_set_num_threads(1);
  backward(dq1, dk1, dv1);
  omp_set_num_threads(3);
  backward(dq3, dk3, dv3);
  omp_set_num_threads(threads);
  EXPECT_EQ(0, std::memcmp(dq1.data(), dq3.data(), sizeof(float) * dq1.size()));
  EXPECT_EQ(0, std::memcmp(dk1.data(), dk3.data(), sizeof(float) * dk1.size()));
  EXPECT_EQ(0, std::memcmp(dv1.data(), dv3.data(), sizeof(float) * dv1.size()));
}

INSTANTIATE_TEST_SUITE_P(Shapes, Attention,
                         ::testing::Values(AttnShape{1, 1, 1, 1, 16, Docs::None, 100},
                                           AttnShape{2, 7, 2, 2, 16, Docs::None, 1000},
                                           AttnShape{1, 13, 4, 2, 16, Docs::Packed, 1000},
                                           AttnShape{2, 9, 4, 1, 64, Docs::Packed, 150},
                                           AttnShape{1, 11, 4, 4, 64, Docs::Interleaved, 150},
                                           AttnShape{2, 67, 4, 2, 16, Docs::None, 80},
                                           AttnShape{1, 70, 2, 1, 16, Docs::Packed, 80},
                                           AttnShape{1, 130, 4, 1, 32, Docs::Interleaved, 40}),
                         [](const auto& info) {
                           std::ostringstream os;
                           os << info.param;
                           return os.str();
                         });

}  // namespace
}  // namespace iris::cpu
