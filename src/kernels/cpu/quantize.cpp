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
  // midpoints of torch.linspace(0.1, 1, 2^i + 1) times ±10^(i-6), plus 0 and 1, sorted. bitsandbytes
  // builds it with torch at run time, and torch's float32 linspace is not correctly rounded (on AVX2 CPUs
  // the scalar tail uses fused multiply-adds, the 8-lane body does not), so a formula here would differ
  // from it in the last bit of 44 values. These are the bits torch 1.13 gives on x86-64 (AVX2), checked by
  // tests/hf/make_nf4_reference.py, which rebuilds the map with torch.
  static const std::array<float, 256> code = {
      -0x1.fc6666p-1f, -0x1.f53332p-1f, -0x1.eep-1f, -0x1.e6ccccp-1f, -0x1.df9998p-1f, -0x1.d86666p-1f,
      -0x1.d13334p-1f, -0x1.cap-1f, -0x1.c2ccccp-1f, -0x1.bb9998p-1f, -0x1.b46666p-1f, -0x1.ad3332p-1f,
      -0x1.a6p-1f, -0x1.9eccccp-1f, -0x1.979998p-1f, -0x1.906666p-1f, -0x1.893334p-1f, -0x1.82p-1f,
      -0x1.7acccep-1f, -0x1.73999ap-1f, -0x1.6c6668p-1f, -0x1.653334p-1f, -0x1.5ep-1f, -0x1.56cccep-1f,
      -0x1.4f999ap-1f, -0x1.486666p-1f, -0x1.413334p-1f, -0x1.3ap-1f, -0x1.32ccccp-1f, -0x1.2b999ap-1f,
      -0x1.246668p-1f, -0x1.1d3334p-1f, -0x1.16p-1f, -0x1.0eccccp-1f, -0x1.07999ap-1f, -0x1.006666p-1f,
      -0x1.f26668p-2f, -0x1.e4p-2f, -0x1.d59998p-2f, -0x1.c73334p-2f, -0x1.b8ccccp-2f, -0x1.aa6664p-2f,
      -0x1.9cp-2f, -0x1.8d9998p-2f, -0x1.7f3334p-2f, -0x1.70ccccp-2f, -0x1.626664p-2f, -0x1.54p-2f,
      -0x1.459998p-2f, -0x1.373334p-2f, -0x1.28ccccp-2f, -0x1.1a6668p-2f, -0x1.0cp-2f, -0x1.fb3334p-3f,
      -0x1.de6668p-3f, -0x1.c1999ap-3f, -0x1.a4ccccp-3f, -0x1.88p-3f, -0x1.6b3332p-3f, -0x1.4e6666p-3f,
      -0x1.31999ap-3f, -0x1.14ccccp-3f, -0x1.fp-4f, -0x1.b66668p-4f, -0x1.93d70ap-4f, -0x1.8851eap-4f,
      -0x1.7ccccep-4f, -0x1.7147aep-4f, -0x1.65c29p-4f, -0x1.5a3d7p-4f, -0x1.4eb85p-4f, -0x1.433334p-4f,
      -0x1.37ae14p-4f, -0x1.2c28f6p-4f, -0x1.20a3d6p-4f, -0x1.151ebap-4f, -0x1.09999ap-4f, -0x1.fc28f4p-5f,
      -0x1.e51ebap-5f, -0x1.ce147ap-5f, -0x1.b70a3ep-5f, -0x1.ap-5f, -0x1.88f5c2p-5f, -0x1.71eb86p-5f,
      -0x1.5ae146p-5f, -0x1.43d70ap-5f, -0x1.2ccccep-5f, -0x1.15c28ep-5f, -0x1.fd70a4p-6f, -0x1.cf5c26p-6f,
      -0x1.a147aep-6f, -0x1.733334p-6f, -0x1.451eb8p-6f, -0x1.170a3ep-6f, -0x1.d1eb86p-7f, -0x1.75c29p-7f,
      -0x1.3e76c8p-7f, -0x1.2c083p-7f, -0x1.19999ap-7f, -0x1.072b02p-7f, -0x1.e978d4p-8f, -0x1.c49ba6p-8f,
      -0x1.9fbe76p-8f, -0x1.7ae148p-8f, -0x1.56041ap-8f, -0x1.3126e8p-8f, -0x1.0c49bap-8f, -0x1.ced914p-9f,
      -0x1.851eb8p-9f, -0x1.3b645ap-9f, -0x1.e353f8p-10f, -0x1.4fdf3ap-10f, -0x1.eecbfep-11f, -0x1.b3d07cp-11f,
      -0x1.78d5p-11f, -0x1.3dd982p-11f, -0x1.02de02p-11f, -0x1.8fc506p-12f, -0x1.19ce0ap-12f, -0x1.47ae16p-13f,
      -0x1.743e96p-14f, -0x1.15df66p-14f, -0x1.6f0068p-15f, -0x1.64840cp-16f, -0x1.040bfep-17f, -0x1.b43528p-19f,
      -0x1.27476ep-21f, 0.0f, 0x1.27476ep-21f, 0x1.b43528p-19f, 0x1.040bfep-17f, 0x1.64840cp-16f,
      0x1.6f0068p-15f, 0x1.15df66p-14f, 0x1.743e96p-14f, 0x1.47ae16p-13f, 0x1.19ce0ap-12f, 0x1.8fc506p-12f,
      0x1.02de02p-11f, 0x1.3dd982p-11f, 0x1.78d5p-11f, 0x1.b3d07cp-11f, 0x1.eecbfep-11f, 0x1.4fdf3ap-10f,
      0x1.e353f8p-10f, 0x1.3b645ap-9f, 0x1.851eb8p-9f, 0x1.ced914p-9f, 0x1.0c49bap-8f, 0x1.3126e8p-8f,
      0x1.56041ap-8f, 0x1.7ae148p-8f, 0x1.9fbe76p-8f, 0x1.c49ba6p-8f, 0x1.e978d4p-8f, 0x1.072b02p-7f,
      0x1.19999ap-7f, 0x1.2c083p-7f, 0x1.3e76c8p-7f, 0x1.75c29p-7f, 0x1.d1eb86p-7f, 0x1.170a3ep-6f,
      0x1.451eb8p-6f, 0x1.733334p-6f, 0x1.a147aep-6f, 0x1.cf5c26p-6f, 0x1.fd70a4p-6f, 0x1.15c28ep-5f,
      0x1.2ccccep-5f, 0x1.43d70ap-5f, 0x1.5ae146p-5f, 0x1.71eb86p-5f, 0x1.88f5c2p-5f, 0x1.ap-5f,
      0x1.b70a3ep-5f, 0x1.ce147ap-5f, 0x1.e51ebap-5f, 0x1.fc28f4p-5f, 0x1.09999ap-4f, 0x1.151ebap-4f,
      0x1.20a3d6p-4f, 0x1.2c28f6p-4f, 0x1.37ae14p-4f, 0x1.433334p-4f, 0x1.4eb85p-4f, 0x1.5a3d7p-4f,
      0x1.65c29p-4f, 0x1.7147aep-4f, 0x1.7ccccep-4f, 0x1.8851eap-4f, 0x1.93d70ap-4f, 0x1.b66668p-4f,
      0x1.fp-4f, 0x1.14ccccp-3f, 0x1.31999ap-3f, 0x1.4e6666p-3f, 0x1.6b3332p-3f, 0x1.88p-3f,
      0x1.a4ccccp-3f, 0x1.c1999ap-3f, 0x1.de6668p-3f, 0x1.fb3334p-3f, 0x1.0cp-2f, 0x1.1a6668p-2f,
      0x1.28ccccp-2f, 0x1.373334p-2f, 0x1.459998p-2f, 0x1.54p-2f, 0x1.626664p-2f, 0x1.70ccccp-2f,
      0x1.7f3334p-2f, 0x1.8d9998p-2f, 0x1.9cp-2f, 0x1.aa6664p-2f, 0x1.b8ccccp-2f, 0x1.c73334p-2f,
      0x1.d59998p-2f, 0x1.e4p-2f, 0x1.f26668p-2f, 0x1.006666p-1f, 0x1.07999ap-1f, 0x1.0eccccp-1f,
      0x1.16p-1f, 0x1.1d3334p-1f, 0x1.246668p-1f, 0x1.2b999ap-1f, 0x1.32ccccp-1f, 0x1.3ap-1f,
      0x1.413334p-1f, 0x1.486666p-1f, 0x1.4f999ap-1f, 0x1.56cccep-1f, 0x1.5ep-1f, 0x1.653334p-1f,
      0x1.6c6668p-1f, 0x1.73999ap-1f, 0x1.7acccep-1f, 0x1.82p-1f, 0x1.893334p-1f, 0x1.906666p-1f,
      0x1.979998p-1f, 0x1.9eccccp-1f, 0x1.a6p-1f, 0x1.ad3332p-1f, 0x1.b46666p-1f, 0x1.bb9998p-1f,
      0x1.c2ccccp-1f, 0x1.cap-1f, 0x1.d13334p-1f, 0x1.d86666p-1f, 0x1.df9998p-1f, 0x1.e6ccccp-1f,
      0x1.eep-1f, 0x1.f53332p-1f, 0x1.fc6666p-1f, 0x1p+0f};
  return code;
}

namespace {

// The NF4 code of x ∈ [-1, 1]: the nearest code value, a tie going to the lower code (the kernel's
// decision tree compares x > midpoint, so NaN fails every test and codes as 0).
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

// The 8-bit code of x on the dynamic map, as bitsandbytes' dQuantize<0> finds it: a 7-step binary
// search from pivot 127, then x against the fp32 midpoint between the final pivot and the neighbour
// last visited on x's side (a tie stays on the pivot). This is not always the nearest value, hence the copy.
uint8_t dynamic_encode(float x) {
  const auto& c = dynamic_map_code();
  int pivot = 127, upper_pivot = 255, lower_pivot = 0;
  float lower = -1.0f, upper = 1.0f, val = c[pivot];
  for (int step = 64; step > 0; step >>= 1) {
    if (x > val) {
      lower_pivot = pivot;
      lower = val;
      pivot += step;
    } else {
      upper_pivot = pivot;
      upper = val;
      pivot -= step;
    }
    val = c[pivot];
  }
  if (upper_pivot == 255) upper = c[255];
  if (lower_pivot == 0) lower = c[0];
  if (x > val) return static_cast<uint8_t>(x > (upper + val) * 0.5f ? upper_pivot : pivot);
  return static_cast<uint8_t>(x < (lower + val) * 0.5f ? lower_pivot : pivot);
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
    // As on the GPU: an all-zero block has 1/absmax = inf and 0·inf = NaN, which codes as 0 (−1.0 · 0).
    const float inv = 1.0f / absmax[b];
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
    const float inv = 1.0f / q.nested_absmax[g];  // inf when all absmaxes equal the mean: NaN codes as 0
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
