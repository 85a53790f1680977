// Frozen-base weight quantization for QLoRA: NF4 as bitsandbytes defines it (quantize_4bit with
// blocksize 64, quant_type "nf4", compress_statistics = True) and per-row absmax int8, with their
// dequantization to fp32. Layouts follow bitsandbytes so `*-bnb-4bit` checkpoints map onto them as stored.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace iris::cpu {

enum class Quantize { None, Nf4, Int8 };
// "none" | "nf4" | "int8"; anything else is a UserError naming `where` (a config key or CLI flag).
Quantize parse_quantize(const std::string& text, const std::string& where);
const char* to_string(Quantize q);

constexpr int kNf4Block = 64;         // weights per absmax
constexpr int kNf4NestedBlock = 256;  // absmaxes per nested (double-quantization) absmax

// The 16 NormalFloat values (Dettmers et al. 2023, app. E), index = the 4-bit code.
const std::array<float, 16>& nf4_code();
// bitsandbytes' signed dynamic-exponent map (create_dynamic_map(signed=True)): 256 sorted values in
// [-1, 1], the code book of the nested 8-bit quantization of the absmaxes.
const std::array<float, 256>& dynamic_map_code();

// One NF4 tensor of n elements. packed[i] holds element 2i in its high nibble and 2i + 1 in its low
// nibble (bitsandbytes' order). Block b's absmax is dynamic_map_code()[absmax_code[b]] ·
// nested_absmax[b / 256] + offset (rounded after the product, as bitsandbytes does). An all-zero block
// codes as 0 (−1.0) like on the GPU, so it dequantizes to −(its reconstructed absmax), not to 0.
struct Nf4Tensor {
  size_t n = 0;
  std::vector<uint8_t> packed;         // ceil(n / 2)
  std::vector<uint8_t> absmax_code;    // ceil(n / 64)
  std::vector<float> nested_absmax;    // ceil(absmax_code.size() / 256)
  float offset = 0;                    // mean of the fp32 absmaxes, subtracted before nesting
  size_t bytes() const;                // as bitsandbytes stores it, code books included
};

Nf4Tensor nf4_quantize(const float* x, size_t n);
// out (n) = nf4_code()[code] · absmax of its block
void nf4_dequantize(float* out, const Nf4Tensor& q);
// The fp32 absmax of every block, as the nested quantization reconstructs it.
std::vector<float> nf4_absmax(const Nf4Tensor& q);
// Bytes of an NF4 tensor of n elements (packed codes, 8-bit absmaxes, fp32 nested absmaxes, the
// offset and both code books): 4.13 bits per element for large n.
size_t nf4_bytes(size_t n);

// Per-row absmax int8: w[r][c] ≈ q[r][c] · scale[r], scale = absmax / 127, q = round(w / scale).
struct Int8Tensor {
  int rows = 0, cols = 0;
  std::vector<int8_t> q;       // (rows, cols)
  std::vector<float> scale;    // (rows,)
};
Int8Tensor int8_quantize(const float* w, int rows, int cols);
void int8_dequantize(float* out, const Int8Tensor& q);
size_t int8_bytes(int rows, int cols);

}  // namespace iris::cpu
