// Element types and conversions. Model math is fp32 on the CPU backend; bf16/fp16 exist for files
// (safetensors, checkpoints) and the CUDA backend. float->bf16/fp16 rounds to nearest even.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace iris {

enum class DType : uint8_t { F32, BF16, F16, I32, I64, U16, U8 };

size_t dtype_size(DType t);
std::string_view dtype_name(DType t);  // "F32", "BF16", ... (safetensors spelling)
// Parses a safetensors/CLI spelling ("F32"/"fp32"/"float32", "BF16"/"bf16", "F16"/"fp16"...);
// throws UserError naming `what` when unknown.
DType parse_dtype(std::string_view s, std::string_view what = "dtype");

inline float bf16_to_float(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
inline uint16_t float_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu)) return static_cast<uint16_t>((bits >> 16) | 0x40);  // NaN stays NaN
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}
float f16_to_float(uint16_t h);
uint16_t float_to_f16(float f);

// Converts n elements of `src` (type t) to fp32, and back.
void convert_to_f32(float* dst, const void* src, DType t, size_t n);
void convert_from_f32(void* dst, DType t, const float* src, size_t n);

}  // namespace iris
