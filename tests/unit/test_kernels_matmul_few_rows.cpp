// matmul_forward_few_rows (the decode step's dense layers) against a double-precision product and against the
// OpenBLAS matmul_forward, for N = 1..16 and odd sizes. Tolerance kFp32 (atol 1e-5 + rtol 1e-4·|ref|).
#include <gtest/gtest.h>

#include "src/kernels/cpu/matmul_few_rows.h"
#include "src/kernels/cpu/ops.h"
#include "tests/unit/kernels_test_util.h"

namespace iris::cpu {
namespace {

TEST(MatmulFewRows, EqualsTheGemm) {
  for (const int N : {1, 3, 16})
    for (const auto [IC, OC] : {std::pair{7, 5}, std::pair{64, 96}, std::pair{130, 33}}) {
      const auto x = test::random_floats(size_t(N) * IC, 1 + N), w = test::random_floats(size_t(OC) * IC, 2 + IC);
      std::vector<float> got(size_t(N) * OC), blas(got.size());
      std::vector<double> ref(got.size(), 0.0);
      for (int n = 0; n < N; ++n)
        for (int o = 0; o < OC; ++o)
          for (int i = 0; i < IC; ++i) ref[size_t(n) * OC + o] += double(x[size_t(n) * IC + i]) * w[size_t(o) * IC + i];
      matmul_forward_few_rows(got.data(), x.data(), w.data(), N, IC, OC);
      matmul_forward(blas.data(), x.data(), w.data(), N, IC, OC);
      EXPECT_TRUE(test::all_close(got, ref, test::kFp32)) << "N=" << N << " IC=" << IC << " OC=" << OC;
      EXPECT_TRUE(test::all_close(got, test::to_double(blas), test::kFp32)) << "N=" << N;
    }
}

}  // namespace
}  // namespace iris::cpu
