// NF4 (bitsandbytes' quantize_4bit / dequantize_4bit, blocksize 64, double-quantized statistics) and
// per-row int8 on the CPU. The arithmetic mirrors bitsandbytes' kernels operation by operation (scale
// by the reciprocal of the absmax, NF4 thresholds at the float midpoints of the code book) so the codes
// come out bit-identical, not merely close.
#include "src/kernels/cpu/quantize.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "src/core/check.h"

namespace iris::cpu {

Quantize parse_quantize(const std::string& text, const std::string& where) {
  if (text == "none") return Quantize::None;
  if (text == "nf4") return Quantize::Nf4;
  if (text == "int8") return Quantize::Int8;
  IRIS_USER_CHECK(false, "{} must be none, nf4 or int8, got \"{}\"", where, text);
  return Quantize::None;
}

const char* to_string(Quantize q) {
  return q == Quantize::Nf4 ? "nf4" : q == Quantize::Int8 ? "int8" : "none";
}

const std::array<float, 16>& nf4_code() {
  // bitsandbytes functional.get_4bit_type("nf4"): quantiles of N(0, 1) normalised to [-1, 1].
  static const std::array<float, 16> code = {
      -1.0f,          -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
      -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
      0.07958029955625534f,  0.16093020141124725f,  0.24611230194568634f,  0.33791524171829224f,
      0.44070982933044434f,  0.5626170039176941f,   0.7229568362236023f,   1.0f};
  return code;
}

const std::array<float, 256>& dynamic_map_code() {
  // create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): for exponent i = 0..6, the
  // midpoints of linspace(0.1, 1, 2^i + 1) (float32, torch's two-sided linspace) times ±10^(i-6), plus
  // 0 and 1, sorted.
  static const std::array<float, 256> code = [] {
    std::vector<float> data;
    for (int i = 0; i < 7; ++i) {
      const int n = (1 << i) + 1;
      const float start = 0.1f, end = 1.0f, step = (end - start) / static_cast<float>(n - 1);
      std::vector<float> b(n);
      for (int k = 0; k < n; ++k) b[k] = k < n / 2 ? start + step * k : end - step * (n - 1 - k);
      const float scale = static_cast<float>(std::pow(10.0, i - 6));
      for (int k = 0; k + 1 < n; ++k) data.push_back(scale * ((b[k] + b[k + 1]) / 2.0f));
      for (int k = 0; k + 1 < n; ++k) data.push_back(-scale * ((b[k] + b[k + 1]) / 2.0f));
    }
    data.push_back(0.0f);
    data.push_back(1.0f);
    IRIS_CHECK(data.size() == 256, "dynamic map has {} values", data.size());
    std::sort(data.begin(), data.end());
    std::array<float, 256> out;
    std::copy(data.begin(), data.end(), out.begin());
    return out;
  }();
  return code;
}

namespace {

// The NF4 code of x ∈ [-1, 1]: the nearest code value, a tie going to the lower code (the kernel's
// decision tree compares x > midpoint).
uint8_t nf4_encode(float x) {
  static const std::array<float, 15> midpoints = [] {
    std::array<float, 15> m;
    const auto& c = nf4_code();
    for (int i = 0; i < 15; ++i) m[i] = static_cast<float>((static_cast<double>(c[i]) + c[i + 1]) / 2.0);
    return m;
  }();
  uint8_t code = 0;
  while (code < 15 && x > midpoints[code]) ++code;
  return code;
}

// The 8-bit code of x ∈ [-1, 1] in the dynamic map: the nearest value (ties to the upper one).
uint8_t dynamic_encode(float x) {
  const auto& c = dynamic_map_code();
  const auto it = std::lower_bound(c.begin(), c.end(), x);
  if (it == c.begin()) return 0;
  if (it == c.end()) return 255;
  const auto lo = it - 1;
  return static_cast<uint8_t>((x - *lo < *it - x ? lo : it) - c.begin());
}

float block_absmax(const float* x, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

}  // namespace

Nf4Tensor nf4_quantize(const float* x, size_t n) {
  Nf4Tensor q;
  q.n = n;
  const size_t blocks = (n + kNf4Block - 1) / kNf4Block;
  q.packed.assign((n + 1) / 2, 0);
  std::vector<float> absmax(blocks);
  for (size_t b = 0; b < blocks; ++b) {
    const size_t begin = b * kNf4Block, len = std::min<size_t>(kNf4Block, n - begin);
    absmax[b] = block_absmax(x + begin, len);
    const float inv = absmax[b] > 0 ? 1.0f / absmax[b] : 0.0f;  // an all-zero block codes as 0.0
    for (size_t i = begin; i < begin + len; ++i) {
      const uint8_t code = nf4_encode(x[i] * inv);
      q.packed[i / 2] |= (i % 2 == 0) ? static_cast<uint8_t>(code << 4) : code;
    }
  }
  // Double quantization: subtract the mean, then 8-bit blockwise in blocks of 256 on the dynamic map.
  const double sum = std::accumulate(absmax.begin(), absmax.end(), 0.0);
  q.offset = blocks ? static_cast<float>(sum / static_cast<double>(blocks)) : 0.0f;
  for (float& a : absmax) a -= q.offset;
  const size_t nested = (blocks + kNf4NestedBlock - 1) / kNf4NestedBlock;
  q.absmax_code.resize(blocks);
  q.nested_absmax.resize(nested);
  for (size_t g = 0; g < nested; ++g) {
    const size_t begin = g * kNf4NestedBlock, len = std::min<size_t>(kNf4NestedBlock, blocks - begin);
    q.nested_absmax[g] = block_absmax(absmax.data() + begin, len);
    const float inv = q.nested_absmax[g] > 0 ? 1.0f / q.nested_absmax[g] : 0.0f;
    for (size_t i = begin; i < begin + len; ++i) q.absmax_code[i] = dynamic_encode(absmax[i] * inv);
  }
  return q;
}

std::vector<float> nf4_absmax(const Nf4Tensor& q) {
  const auto& c = dynamic_map_code();
  std::vector<float> absmax(q.absmax_code.size());
  for (size_t b = 0; b < absmax.size(); ++b)
    absmax[b] = c[q.absmax_code[b]] * q.nested_absmax[b / kNf4NestedBlock] + q.offset;
  return absmax;
}

void nf4_dequantize(float* out, const Nf4Tensor& q) {
  const std::vector<float> absmax = nf4_absmax(q);
  const auto& c = nf4_code();
  for (size_t i = 0; i < q.n; ++i) {
    const uint8_t code = (i % 2 == 0) ? q.packed[i / 2] >> 4 : q.packed[i / 2] & 0x0F;
    out[i] = c[code] * absmax[i / kNf4Block];
  }
}

size_t nf4_bytes(size_t n) {
  const size_t blocks = (n + kNf4Block - 1) / kNf4Block, nested = (blocks + kNf4NestedBlock - 1) / kNf4NestedBlock;
  return (n + 1) / 2 + blocks + 4 * nested + 4 + 4 * (16 + 256);
}

size_t Nf4Tensor::bytes() const { return nf4_bytes(n); }

Int8Tensor int8_quantize(const float* w, int rows, int cols) {
  Int8Tensor q;
  q.rows = rows;
  q.cols = cols;
  q.q.resize(static_cast<size_t>(rows) * cols);
  q.scale.resize(rows);
  for (int r = 0; r < rows; ++r) {
    const float* row = w + static_cast<size_t>(r) * cols;
    const float absmax = block_absmax(row, cols);
    q.scale[r] = absmax / 127.0f;
    const float inv = absmax > 0 ? 127.0f / absmax : 0.0f;
    for (int c = 0; c < cols; ++c)
      q.q[static_cast<size_t>(r) * cols + c] = static_cast<int8_t>(std::nearbyint(row[c] * inv));
  }
  return q;
}

void int8_dequantize(float* out, const Int8Tensor& q) {
  for (int r = 0; r < q.rows; ++r)
    for (int c = 0; c < q.cols; ++c) {
      const size_t i = static_cast<size_t>(r) * q.cols + c;
      out[i] = q.q[i] * q.scale[r];
    }
}

size_t int8_bytes(int rows, int cols) { return static_cast<size_t>(rows) * cols + 4 * static_cast<size_t>(rows); }

}  // namespace iris::cpu
