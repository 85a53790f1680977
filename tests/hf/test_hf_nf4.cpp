// Iris's NF4 quantizer against the reference implementation of bitsandbytes' quantize_4bit (blocksize
// 64, nf4, compressed statistics) in make_nf4_reference.py: code books, packed codes, 8-bit absmax
// codes, nested absmaxes and offset bit-identical; dequantization equal to dequantize_4bit (exact, fp32).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "src/kernels/cpu/quantize.h"

namespace iris {
namespace {
namespace fs = std::filesystem;

io::SafetensorsModel open_reference() {
  const fs::path file = fs::path(IRIS_HF_NF4_DIR) / "nf4_reference.safetensors";
  if (!fs::exists(file)) throw std::runtime_error(file.string() + " missing: hf_nf4_reference must run first");
  return io::SafetensorsModel::open(file);
}

std::vector<uint8_t> read_u8(const io::SafetensorsModel& ref, const std::string& name) {
  const std::span<const std::byte> raw = ref.raw(name);
  std::vector<uint8_t> out(raw.size());
  std::memcpy(out.data(), raw.data(), raw.size());
  return out;
}

// Bitwise float equality (so -0 vs +0 or NaN payloads would show).
void expect_bits_equal(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0 && bad++ < 5)
      ADD_FAILURE() << what << "[" << i << "]: iris " << got[i] << " reference " << want[i];
  EXPECT_EQ(bad, 0u) << what;
}

TEST(HuggingFaceNf4, CodeBooksEqualTheLibrarysDocumentedOnes) {
  const io::SafetensorsModel ref = open_reference();
  const auto& nf4 = cpu::nf4_code();
  const auto& dyn = cpu::dynamic_map_code();
  expect_bits_equal(std::vector<float>(nf4.begin(), nf4.end()), ref.read_f32("nf4_code"), "nf4_code");
  expect_bits_equal(std::vector<float>(dyn.begin(), dyn.end()), ref.read_f32("dynamic_map"), "dynamic_map");
}

TEST(HuggingFaceNf4, QuantizationIsBitIdenticalAndDequantizationEqual) {
  const io::SafetensorsModel ref = open_reference();
  for (const std::string name : {"normal", "odd", "zeros", "heavy"}) {
    SCOPED_TRACE(name);
    const std::vector<float> x = ref.read_f32(name + ".x");
    const cpu::Nf4Tensor q = cpu::nf4_quantize(x.data(), x.size());
    EXPECT_EQ(q.packed, read_u8(ref, name + ".packed"));
    EXPECT_EQ(q.absmax_code, read_u8(ref, name + ".absmax_code"));
    expect_bits_equal(q.nested_absmax, ref.read_f32(name + ".nested_absmax"), name + ".nested_absmax");
    expect_bits_equal({q.offset}, ref.read_f32(name + ".offset"), name + ".offset");
    std::vector<float> back(x.size());
    cpu::nf4_dequantize(back.data(), q);
    expect_bits_equal(back, ref.read_f32(name + ".dequant"), name + ".dequant");
  }
}

}  // namespace
}  // namespace iris
