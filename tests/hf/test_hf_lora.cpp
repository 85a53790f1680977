// The CPU LoRA ops (src/kernels/cpu/lora.h) against Hugging Face PEFT on one nn.Linear with random
// non-zero adapters (make_lora_reference.py): output, dA, dB and dx for L = Σ out ⊙ G, plain and rsLoRA
// scaling. Tolerance (fp32, different GEMM orders): 1e-5 abs + 1e-5 rel on the output, 1e-4 relative
// (+ 1e-5 abs) on the gradients.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "src/kernels/cpu/lora.h"

namespace iris {
namespace {
namespace fs = std::filesystem;

void expect_close(const std::vector<float>& got, const std::vector<float>& want, double atol, double rtol,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]), bound = atol + rtol * std::fabs(want[i]);
    EXPECT_LE(err, bound) << what << "[" << i << "]: iris " << got[i] << " peft " << want[i];
    worst = std::max(worst, err / bound);
  }
  std::printf("%-12s max error / tolerance %.3f\n", what.c_str(), worst);
}

TEST(HuggingFaceLora, OneLinearLayerMatchesPeft) {
  const fs::path file = fs::path(IRIS_HF_LORA_DIR) / "lora_reference.safetensors";
  ASSERT_TRUE(fs::exists(file)) << file << " missing: hf_lora_reference must run first";
  const io::SafetensorsModel ref = io::SafetensorsModel::open(file);
  for (const std::string name : {"plain", "rslora", "rank1"}) {
    SCOPED_TRACE(name);
    const auto& x_shape = ref.info(name + ".x").shape;
    const auto& A_shape = ref.info(name + ".A").shape;
    const int N = static_cast<int>(x_shape[0]), IC = static_cast<int>(x_shape[1]), R = static_cast<int>(A_shape[0]);
    const int OC = static_cast<int>(ref.info(name + ".W0").shape[0]);
    const std::vector<float> hp = ref.read_f32(name + ".hparams");  // r, alpha, rslora, PEFT's scaling
    const float scale = cpu::lora_scale(hp[1], R, hp[2] != 0.0f);
    EXPECT_NEAR(scale, hp[3], 1e-6 * hp[3]);
    const std::vector<float> x = ref.read_f32(name + ".x"), W0 = ref.read_f32(name + ".W0"),
                             A = ref.read_f32(name + ".A"), B = ref.read_f32(name + ".B"),
                             G = ref.read_f32(name + ".G");
    std::vector<float> out(N * OC), xa(N * R), scratch(N * R), dx(N * IC), dA(A.size(), 0.0f), dB(B.size(), 0.0f);
    cpu::lora_linear_forward(out.data(), xa.data(), x.data(), x.data(), W0.data(), A.data(), B.data(), scale, N, IC,
                             OC, R);
    cpu::lora_linear_backward(dx.data(), dA.data(), dB.data(), scratch.data(), G.data(), x.data(), xa.data(),
                              W0.data(), A.data(), B.data(), scale, cpu::LoraDropout{}, N, IC, OC, R);
    expect_close(out, ref.read_f32(name + ".out"), 1e-5, 1e-5, name + ".out");
    expect_close(dA, ref.read_f32(name + ".dA"), 1e-5, 1e-4, name + ".dA");
    expect_close(dB, ref.read_f32(name + ".dB"), 1e-5, 1e-4, name + ".dB");
    expect_close(dx, ref.read_f32(name + ".dx"), 1e-5, 1e-4, name + ".dx");
  }
}

}  // namespace
}  // namespace iris
