// Causal grouped-query flash attention (FlashAttention-2, Dao 2023, alg. 1 and 2) on bf16 tensor cores.
// One block = one 64-row tile and 4 warps, each warp owning 16 rows of every tile for the whole kernel, so
// only the shared k/v (or q/dout) tiles need block barriers. Scores live in shared memory one 64×64 tile at
// a time; the T×T matrix never exists. Backward is two kernels, so nothing needs atomics: dq walks key tiles
// for one query tile, dk/dv walk the query tiles of every query head sharing one KV tile, in head order.
#include <mma.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "src/kernels/cuda/attention.cuh"
#include "src/kernels/cuda/common.cuh"
#include "src/kernels/cuda/attention_detail.cuh"

namespace iris::cuda {
namespace {


using bf16 = __nv_bfloat16;
namespace wmma = nvcuda::wmma;
using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major>;
using FragBCol = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major>;
using FragBRow = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major>;
using FragC = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;

constexpr int kTile = 64;             // rows of a query tile = keys of a key tile
constexpr int kWarps = 4;             // each warp owns kTile / kWarps = 16 rows
constexpr int kThreads = 32 * kWarps;
constexpr int kWarpRows = kTile / kWarps;
constexpr int kLdS = kTile + 4;       // fp32 64×64 tiles: row pitch padded against bank conflicts
constexpr int kLdP = kTile + 8;       // bf16 64×64 tiles


constexpr size_t align128(size_t bytes) { return (bytes + 127) / 128 * 128; }

// Shared-memory carving. Every region starts 128-byte aligned; wmma needs 32-byte aligned tile pointers, and
// every 16-row or 16-column step below moves by a multiple of 32 bytes.
template <int HS>
struct Tiles {
  static constexpr int kLdH = HS + 8;  // bf16 (64, HS) tiles of q, k, v, dout
  static constexpr int kLdO = HS + 4;  // fp32 (64, HS) accumulator staging
  static constexpr size_t kHead = align128(sizeof(bf16) * kTile * kLdH);
  static constexpr size_t kScore = align128(sizeof(float) * kTile * kLdS);
  static constexpr size_t kProb = align128(sizeof(bf16) * kTile * kLdP);
  static constexpr size_t kAcc = align128(sizeof(float) * kTile * kLdO);
  static constexpr size_t kRow = align128(sizeof(float) * kTile);  // one value per tile row (also int32)
  // An fp32 (64, HS) staging tile fits in two bf16 head tiles: 4·(HS+4) ≤ 4·(HS+8).
  static_assert(kAcc <= 2 * kHead, "accumulator staging must fit in two head tiles");
};

// rows [row0, row0 + 64) of a (T, row_stride) bf16 matrix whose row r starts at src + r·row_stride, HS
// columns, into dst (64, kLdH); rows ≥ T become 0. 16-byte loads: HS·2 bytes and row_stride·2 bytes are
// multiples of 16.
template <int HS>
__device__ void load_tile(bf16* dst, const bf16* src, size_t row_stride, int row0, int T) {
  constexpr int kChunks = HS / 8;  // 8 bf16 = 16 bytes
  for (int c = threadIdx.x; c < kTile * kChunks; c += kThreads) {
    const int r = c / kChunks, col = (c % kChunks) * 8;
    uint4 value = make_uint4(0, 0, 0, 0);
    if (row0 + r < T) value = *reinterpret_cast<const uint4*>(src + static_cast<size_t>(row0 + r) * row_stride + col);
    *reinterpret_cast<uint4*>(dst + r * Tiles<HS>::kLdH + col) = value;
  }
}

// doc ids of tile rows [row0, row0 + 64) into dst (64,); 0 past T or without doc ids.
__device__ void load_doc(int32_t* dst, const int32_t* doc, int row0, int T) {
  for (int r = threadIdx.x; r < kTile; r += kThreads) dst[r] = (doc != nullptr && row0 + r < T) ? doc[row0 + r] : 0;
}

// a · b for two bf16 vectors of HS elements in global memory, by one warp.
template <int HS>
__device__ float warp_dot(const bf16* a, const bf16* b) {
  float acc = 0.0f;
  for (int d = 2 * (threadIdx.x % 32); d < HS; d += 64) {
    const float2 x = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(a + d));
    const float2 y = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(b + d));
    acc += x.x * y.x + x.y * y.y;
  }
  return warp_sum(acc);
}

// C (16, 64) fp32 = A (16, KD) · B^T, B (64, KD); A and B row-major bf16 in shared memory. One warp.
template <int KD>
__device__ void warp_gemm_abt(float* c, int ldc, const bf16* a, int lda, const bf16* b, int ldb) {
  FragA fa[KD / 16];
#pragma unroll
  for (int kk = 0; kk < KD / 16; ++kk) wmma::load_matrix_sync(fa[kk], a + kk * 16, lda);
#pragma unroll
  for (int n = 0; n < kTile / 16; ++n) {
    FragC acc;
    wmma::fill_fragment(acc, 0.0f);
#pragma unroll
    for (int kk = 0; kk < KD / 16; ++kk) {
      FragBCol fb;  // B^T (KD, 64) column-major is B (64, KD) row-major
      wmma::load_matrix_sync(fb, b + n * 16 * ldb + kk * 16, ldb);
      wmma::mma_sync(acc, fa[kk], fb, acc);
    }
    wmma::store_matrix_sync(c + n * 16, acc, ldc, wmma::mem_row_major);
  }
}

// acc (16, N) += A (16, 64) · B (64, N); A, B row-major bf16 in shared memory; acc as N/16 fragments.
template <int N>
__device__ void warp_gemm_ab_acc(FragC (&acc)[N / 16], const bf16* a, int lda, const bf16* b, int ldb) {
#pragma unroll
  for (int kk = 0; kk < kTile / 16; ++kk) {
    FragA fa;
    wmma::load_matrix_sync(fa, a + kk * 16, lda);
#pragma unroll
    for (int n = 0; n < N / 16; ++n) {
      FragBRow fb;
      wmma::load_matrix_sync(fb, b + kk * 16 * ldb + n * 16, ldb);
      wmma::mma_sync(acc[n], fa, fb, acc[n]);
    }
  }
}

// Writes rows [16·warp, 16·warp + 16) of an fp32 staging tile (64, kLdO) as bf16 to global rows row0 + r < T.
template <int HS>
__device__ void store_warp_rows(bf16* dst, size_t row_stride, const float* staging, int row0, int T,
                                const float* row_scale) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int r = warp * kWarpRows; r < (warp + 1) * kWarpRows; ++r) {
    if (row0 + r >= T) break;
    const float s = row_scale != nullptr ? row_scale[r] : 1.0f;
    for (int d = 2 * lane; d < HS; d += 64) {
      const float* x = staging + r * Tiles<HS>::kLdO + d;
      *reinterpret_cast<__nv_bfloat162*>(dst + static_cast<size_t>(row0 + r) * row_stride + d) =
          __floats2bfloat162_rn(x[0] * s, x[1] * s);
    }
  }
}

// ---- forward -----------------------------------------------------------------------------------------------
template <int HS>
struct ForwardSmem {
  using L = Tiles<HS>;
  static constexpr size_t q = 0, k = q + L::kHead, v = k + L::kHead, s = v + L::kHead, p = s + L::kScore,
                          o = p + L::kProb, m = o + L::kAcc, l = m + L::kRow, doc_q = l + L::kRow,
                          doc_k = doc_q + L::kRow, bytes = doc_k + L::kRow;
};

// grid (query tiles, NH, B). Online softmax per row: m = running max, l = running Σ exp(s − m), O rescaled by
// exp(m_old − m_new) before P·V is added (FlashAttention-2 alg. 1; O is divided by l once at the end).
template <int HS>
__global__ void __launch_bounds__(kThreads) attention_forward_kernel(
    bf16* __restrict__ out, float* __restrict__ lse, const bf16* __restrict__ q, const bf16* __restrict__ k,
    const bf16* __restrict__ v, const int32_t* __restrict__ doc, int T, int NH, int NKV, float scale) {
  using L = Tiles<HS>;
  using S = ForwardSmem<HS>;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* sQ = reinterpret_cast<bf16*>(smem + S::q);        // (64, kLdH)
  bf16* sK = reinterpret_cast<bf16*>(smem + S::k);        // (64, kLdH)
  bf16* sV = reinterpret_cast<bf16*>(smem + S::v);        // (64, kLdH)
  float* sS = reinterpret_cast<float*>(smem + S::s);      // (64, kLdS) scores, raw q·k
  bf16* sP = reinterpret_cast<bf16*>(smem + S::p);        // (64, kLdP) exp(s − m)
  float* sO = reinterpret_cast<float*>(smem + S::o);      // (64, kLdO) unnormalised output
  float* sM = reinterpret_cast<float*>(smem + S::m);      // (64,) running max
  float* sL = reinterpret_cast<float*>(smem + S::l);      // (64,) running Σ exp
  int32_t* sDocQ = reinterpret_cast<int32_t*>(smem + S::doc_q);
  int32_t* sDocK = reinterpret_cast<int32_t*>(smem + S::doc_k);

  const int n_tiles = (T + kTile - 1) / kTile;
  const int qt = n_tiles - 1 - static_cast<int>(blockIdx.x);  // the longest tiles start first
  const int h = blockIdx.y, b = blockIdx.z, kvh = h / (NH / NKV);
  const int i0 = qt * kTile;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, row_begin = warp * kWarpRows;
  const size_t q_stride = static_cast<size_t>(NH) * HS, kv_stride = static_cast<size_t>(NKV) * HS;
  const bf16* Qg = q + static_cast<size_t>(b) * T * q_stride + h * HS;     // (T, q_stride)
  const bf16* Kg = k + static_cast<size_t>(b) * T * kv_stride + kvh * HS;  // (T, kv_stride)
  const bf16* Vg = v + static_cast<size_t>(b) * T * kv_stride + kvh * HS;
  const int32_t* D = doc != nullptr ? doc + static_cast<size_t>(b) * T : nullptr;

  load_tile<HS>(sQ, Qg, q_stride, i0, T);
  load_doc(sDocQ, D, i0, T);
  for (int r = row_begin; r < row_begin + kWarpRows; ++r) {
    for (int d = lane; d < HS; d += 32) sO[r * L::kLdO + d] = 0.0f;
    if (lane == 0) sM[r] = -INFINITY, sL[r] = 0.0f;
  }

  for (int kt = 0; kt <= qt; ++kt) {  // key tiles past the query tile are all in the future
    const int j0 = kt * kTile;
    __syncthreads();  // every warp is done with the previous k/v tiles
    load_tile<HS>(sK, Kg, kv_stride, j0, T);
    load_tile<HS>(sV, Vg, kv_stride, j0, T);
    load_doc(sDocK, D, j0, T);
    __syncthreads();

    warp_gemm_abt<HS>(sS + row_begin * kLdS, kLdS, sQ + row_begin * L::kLdH, L::kLdH, sK, L::kLdH);
    __syncwarp();
    for (int r = row_begin; r < row_begin + kWarpRows; ++r) {
      const int i = i0 + r;
      float s[2];
      bool seen[2];
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int c = lane + 32 * half, j = j0 + c;
        seen[half] = j <= i && j < T && (D == nullptr || sDocK[c] == sDocQ[r]);
        s[half] = seen[half] ? sS[r * kLdS + c] * scale : -INFINITY;
      }
      const float m_old = sM[r];
      const float m_new = fmaxf(m_old, warp_max(fmaxf(s[0], s[1])));
      const float m_use = m_new == -INFINITY ? 0.0f : m_new;  // a row with nothing visible yet stays at 0
      float row_sum = 0.0f;
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const float p = seen[half] ? __expf(s[half] - m_use) : 0.0f;
        sP[r * kLdP + lane + 32 * half] = __float2bfloat16(p);
        row_sum += p;
      }
      row_sum = warp_sum(row_sum);
      const float alpha = m_old == -INFINITY ? 0.0f : __expf(m_old - m_use);
      for (int d = lane; d < HS; d += 32) sO[r * L::kLdO + d] *= alpha;
      __syncwarp();  // all lanes have read sM[r] before lane 0 replaces it
      if (lane == 0) sM[r] = m_new, sL[r] = sL[r] * alpha + row_sum;
    }
    __syncwarp();

    FragC acc[HS / 16];  // O rows of this warp, reloaded after the rescale above
#pragma unroll
    for (int n = 0; n < HS / 16; ++n)
      wmma::load_matrix_sync(acc[n], sO + row_begin * L::kLdO + n * 16, L::kLdO, wmma::mem_row_major);
    warp_gemm_ab_acc<HS>(acc, sP + row_begin * kLdP, kLdP, sV, L::kLdH);
#pragma unroll
    for (int n = 0; n < HS / 16; ++n)
      wmma::store_matrix_sync(sO + row_begin * L::kLdO + n * 16, acc[n], L::kLdO, wmma::mem_row_major);
    __syncwarp();
  }

  // Every valid row saw at least its own key, so l > 0. sL becomes 1 / l for the store.
  for (int r = row_begin; r < row_begin + kWarpRows; ++r) {
    const int i = i0 + r;
    if (lane == 0 && i < T) {
      lse[(static_cast<size_t>(b) * NH + h) * T + i] = sM[r] + logf(sL[r]);
      sL[r] = 1.0f / sL[r];
    }
  }
  __syncwarp();
  store_warp_rows<HS>(out + static_cast<size_t>(b) * T * q_stride + h * HS, q_stride, sO, i0, T, sL);
}

// ---- backward: dq ------------------------------------------------------------------------------------------
template <int HS>
struct BackwardQuerySmem {
  using L = Tiles<HS>;
  static constexpr size_t q = 0, dout = q + L::kHead, k = dout + L::kHead, v = k + L::kHead,
                          s = v + L::kHead, dp = s + L::kScore, ds = dp + L::kScore, lse = ds + L::kProb,
                          delta = lse + L::kRow, doc_q = delta + L::kRow, doc_k = doc_q + L::kRow,
                          bytes = doc_k + L::kRow;
};

// Rows of D_i = dout_i · out_i (FlashAttention-2 alg. 2, line 4) and lse_i for query rows [i0, i0 + 64) into
// sD and sLse, each warp its own rows; 0 past T.
template <int HS>
__device__ void load_row_stats(float* sD, float* sLse, const bf16* dout_g, const bf16* out_g, size_t q_stride,
                               const float* lse_g, int i0, int T) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int r = warp * kWarpRows; r < (warp + 1) * kWarpRows; ++r) {
    const int i = i0 + r;
    float dot = 0.0f, l = 0.0f;
    if (i < T) {
      dot = warp_dot<HS>(dout_g + static_cast<size_t>(i) * q_stride, out_g + static_cast<size_t>(i) * q_stride);
      l = lse_g[i];
    }
    if (lane == 0) sD[r] = dot, sLse[r] = l;
  }
}

// grid (query tiles, NH, B). dS = P ⊙ (dP − D) · scale with P = exp(s·scale − lse), dP = dout·v^T; dq = dS·k.
template <int HS>
__global__ void __launch_bounds__(kThreads) attention_backward_dq_kernel(
    bf16* __restrict__ dq, const bf16* __restrict__ dout, const bf16* __restrict__ q, const bf16* __restrict__ k,
    const bf16* __restrict__ v, const bf16* __restrict__ out, const float* __restrict__ lse,
    float* __restrict__ delta, const int32_t* __restrict__ doc, int T, int NH, int NKV, float scale) {
  using L = Tiles<HS>;
  using S = BackwardQuerySmem<HS>;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* sQ = reinterpret_cast<bf16*>(smem + S::q);         // (64, kLdH)
  bf16* sdO = reinterpret_cast<bf16*>(smem + S::dout);     // (64, kLdH)
  bf16* sK = reinterpret_cast<bf16*>(smem + S::k);         // (64, kLdH), followed by sV
  bf16* sV = reinterpret_cast<bf16*>(smem + S::v);         // (64, kLdH)
  float* sS = reinterpret_cast<float*>(smem + S::s);       // (64, kLdS) q·k
  float* sdP = reinterpret_cast<float*>(smem + S::dp);     // (64, kLdS) dout·v
  bf16* sdS = reinterpret_cast<bf16*>(smem + S::ds);       // (64, kLdP)
  float* sLse = reinterpret_cast<float*>(smem + S::lse);   // (64,)
  float* sD = reinterpret_cast<float*>(smem + S::delta);   // (64,)
  int32_t* sDocQ = reinterpret_cast<int32_t*>(smem + S::doc_q);
  int32_t* sDocK = reinterpret_cast<int32_t*>(smem + S::doc_k);

  const int n_tiles = (T + kTile - 1) / kTile;
  const int qt = n_tiles - 1 - static_cast<int>(blockIdx.x);
  const int h = blockIdx.y, b = blockIdx.z, kvh = h / (NH / NKV);
  const int i0 = qt * kTile;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, row_begin = warp * kWarpRows;
  const size_t q_stride = static_cast<size_t>(NH) * HS, kv_stride = static_cast<size_t>(NKV) * HS;
  const size_t q_base = static_cast<size_t>(b) * T * q_stride + h * HS;
  const bf16* Kg = k + static_cast<size_t>(b) * T * kv_stride + kvh * HS;
  const bf16* Vg = v + static_cast<size_t>(b) * T * kv_stride + kvh * HS;
  const int32_t* D = doc != nullptr ? doc + static_cast<size_t>(b) * T : nullptr;

  load_tile<HS>(sQ, q + q_base, q_stride, i0, T);
  load_tile<HS>(sdO, dout + q_base, q_stride, i0, T);
  load_doc(sDocQ, D, i0, T);
  load_row_stats<HS>(sD, sLse, dout + q_base, out + q_base, q_stride, lse + (static_cast<size_t>(b) * NH + h) * T,
                     i0, T);
  __syncthreads();
  // D of these rows for the dk/dv kernel (next on the stream), which would otherwise recompute it for
  // every key tile at or before this query tile.
  if (threadIdx.x < kTile && i0 + static_cast<int>(threadIdx.x) < T)
    delta[(static_cast<size_t>(b) * NH + h) * T + i0 + threadIdx.x] = sD[threadIdx.x];

  FragC acc[HS / 16];  // dq rows of this warp
#pragma unroll
  for (int n = 0; n < HS / 16; ++n) wmma::fill_fragment(acc[n], 0.0f);

  for (int kt = 0; kt <= qt; ++kt) {
    const int j0 = kt * kTile;
    __syncthreads();
    load_tile<HS>(sK, Kg, kv_stride, j0, T);
    load_tile<HS>(sV, Vg, kv_stride, j0, T);
    load_doc(sDocK, D, j0, T);
    __syncthreads();

    warp_gemm_abt<HS>(sS + row_begin * kLdS, kLdS, sQ + row_begin * L::kLdH, L::kLdH, sK, L::kLdH);
    warp_gemm_abt<HS>(sdP + row_begin * kLdS, kLdS, sdO + row_begin * L::kLdH, L::kLdH, sV, L::kLdH);
    __syncwarp();
    for (int r = row_begin; r < row_begin + kWarpRows; ++r) {
      const int i = i0 + r;
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int c = lane + 32 * half, j = j0 + c;
        const bool seen = j <= i && i < T && j < T && (D == nullptr || sDocK[c] == sDocQ[r]);
        const float p = seen ? __expf(sS[r * kLdS + c] * scale - sLse[r]) : 0.0f;
        sdS[r * kLdP + c] = __float2bfloat16(p * (sdP[r * kLdS + c] - sD[r]) * scale);
      }
    }
    __syncwarp();
    warp_gemm_ab_acc<HS>(acc, sdS + row_begin * kLdP, kLdP, sK, L::kLdH);
  }

  __syncthreads();  // sK/sV become the fp32 staging tile
  float* staging = reinterpret_cast<float*>(sK);  // (64, kLdO)
#pragma unroll
  for (int n = 0; n < HS / 16; ++n)
    wmma::store_matrix_sync(staging + row_begin * L::kLdO + n * 16, acc[n], L::kLdO, wmma::mem_row_major);
  __syncwarp();
  store_warp_rows<HS>(dq + q_base, q_stride, staging, i0, T, nullptr);
}

// ---- backward: dk, dv --------------------------------------------------------------------------------------
// P^T has no region of its own: each warp writes its bf16 P rows over its own fp32 S^T rows (same row pitch
// in bytes: kLdS floats = kLdPInS bf16), which keeps the block at 112 KiB, small enough for two blocks per
// SM on sm_90 (228 KiB) so one block's tile loads overlap the other's math.
constexpr int kLdPInS = 2 * kLdS;
template <int HS>
struct BackwardKeySmem {
  using L = Tiles<HS>;
  static constexpr size_t k = 0, v = k + L::kHead, q = v + L::kHead, dout = q + L::kHead, s = dout + L::kHead,
                          dp = s + L::kScore, ds = dp + L::kScore, lse = ds + L::kProb,
                          delta = lse + L::kRow, doc_q = delta + L::kRow, doc_k = doc_q + L::kRow,
                          bytes = doc_k + L::kRow;
};
// Two blocks per SM on sm_90: 228 KiB per SM, 1 KiB of it reserved per block.
static_assert(2 * (BackwardKeySmem<128>::bytes + 1024) <= 228 * 1024, "dk/dv: two blocks per SM on sm_90");

// grid (key tiles, NKV, B). Works on transposed tiles (keys as rows): S^T = k·q^T, dP^T = v·dout^T, then
// dv += P^T·dout and dk += dS^T·q, over the query heads h of this KV head in increasing order and, for each,
// the query tiles at or after this key tile. Fixed order, no atomics: bit-identical across runs.
template <int HS>
__global__ void __launch_bounds__(kThreads, 2) attention_backward_dkdv_kernel(
    bf16* __restrict__ dk, bf16* __restrict__ dv, const bf16* __restrict__ dout, const bf16* __restrict__ q,
    const bf16* __restrict__ k, const bf16* __restrict__ v, const float* __restrict__ lse,
    const float* __restrict__ delta, const int32_t* __restrict__ doc, int T, int NH, int NKV, float scale) {
  using L = Tiles<HS>;
  using S = BackwardKeySmem<HS>;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* sK = reinterpret_cast<bf16*>(smem + S::k);         // (64, kLdH)
  bf16* sV = reinterpret_cast<bf16*>(smem + S::v);         // (64, kLdH)
  bf16* sQ = reinterpret_cast<bf16*>(smem + S::q);         // (64, kLdH), followed by sdO
  bf16* sdO = reinterpret_cast<bf16*>(smem + S::dout);     // (64, kLdH)
  float* sS = reinterpret_cast<float*>(smem + S::s);       // (64, kLdS) S^T: rows keys, columns queries
  bf16* sP = reinterpret_cast<bf16*>(smem + S::s);         // (64, kLdPInS) P^T, row r over S^T's row r
  float* sdP = reinterpret_cast<float*>(smem + S::dp);     // (64, kLdS) dP^T
  bf16* sdS = reinterpret_cast<bf16*>(smem + S::ds);       // (64, kLdP) dS^T
  float* sLse = reinterpret_cast<float*>(smem + S::lse);   // (64,) per query column
  float* sD = reinterpret_cast<float*>(smem + S::delta);   // (64,) per query column
  int32_t* sDocQ = reinterpret_cast<int32_t*>(smem + S::doc_q);
  int32_t* sDocK = reinterpret_cast<int32_t*>(smem + S::doc_k);

  const int n_tiles = (T + kTile - 1) / kTile;
  const int kt = blockIdx.x;  // the earliest key tiles have the most work and start first
  const int kvh = blockIdx.y, b = blockIdx.z, group = NH / NKV;
  const int j0 = kt * kTile;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, row_begin = warp * kWarpRows;
  const size_t q_stride = static_cast<size_t>(NH) * HS, kv_stride = static_cast<size_t>(NKV) * HS;
  const size_t kv_base = static_cast<size_t>(b) * T * kv_stride + kvh * HS;
  const int32_t* D = doc != nullptr ? doc + static_cast<size_t>(b) * T : nullptr;

  load_tile<HS>(sK, k + kv_base, kv_stride, j0, T);
  load_tile<HS>(sV, v + kv_base, kv_stride, j0, T);
  load_doc(sDocK, D, j0, T);

  FragC dk_acc[HS / 16], dv_acc[HS / 16];  // rows of this warp's 16 keys
#pragma unroll
  for (int n = 0; n < HS / 16; ++n) {
    wmma::fill_fragment(dk_acc[n], 0.0f);
    wmma::fill_fragment(dv_acc[n], 0.0f);
  }

  for (int h = kvh * group; h < (kvh + 1) * group; ++h) {
    const size_t q_base = static_cast<size_t>(b) * T * q_stride + h * HS;
    for (int qt = kt; qt < n_tiles; ++qt) {  // query tiles before the key tile see none of its keys
      const int i0 = qt * kTile;
      __syncthreads();
      load_tile<HS>(sQ, q + q_base, q_stride, i0, T);
      load_tile<HS>(sdO, dout + q_base, q_stride, i0, T);
      load_doc(sDocQ, D, i0, T);
      static_assert(kThreads >= 2 * kTile, "a thread per query row for D and another for lse");
      {  // D (the dq kernel's) and lse of the tile's 64 query rows: one coalesced read each, 0 past T
        const size_t row_base = (static_cast<size_t>(b) * NH + h) * T;
        const int r = threadIdx.x % kTile, i = i0 + r;
        if (threadIdx.x < kTile)
          sD[r] = i < T ? delta[row_base + i] : 0.0f;
        else if (threadIdx.x < 2 * kTile)
          sLse[r] = i < T ? lse[row_base + i] : 0.0f;
      }
      __syncthreads();

      warp_gemm_abt<HS>(sS + row_begin * kLdS, kLdS, sK + row_begin * L::kLdH, L::kLdH, sQ, L::kLdH);
      warp_gemm_abt<HS>(sdP + row_begin * kLdS, kLdS, sV + row_begin * L::kLdH, L::kLdH, sdO, L::kLdH);
      __syncwarp();
      for (int r = row_begin; r < row_begin + kWarpRows; ++r) {
        const int j = j0 + r;
        float p[2];
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int c = lane + 32 * half, i = i0 + c;
          const bool seen = j <= i && i < T && j < T && (D == nullptr || sDocQ[c] == sDocK[r]);
          p[half] = seen ? __expf(sS[r * kLdS + c] * scale - sLse[c]) : 0.0f;
          sdS[r * kLdP + c] = __float2bfloat16(p[half] * (sdP[r * kLdS + c] - sD[c]) * scale);
        }
        __syncwarp();  // the whole S^T row is read before P overwrites its first half
#pragma unroll
        for (int half = 0; half < 2; ++half) sP[r * kLdPInS + lane + 32 * half] = __float2bfloat16(p[half]);
      }
      __syncwarp();
      warp_gemm_ab_acc<HS>(dv_acc, sP + row_begin * kLdPInS, kLdPInS, sdO, L::kLdH);
      warp_gemm_ab_acc<HS>(dk_acc, sdS + row_begin * kLdP, kLdP, sQ, L::kLdH);
    }
  }

  __syncthreads();  // sQ/sdO become the fp32 staging tile, used for dk then dv (each warp its own rows)
  float* staging = reinterpret_cast<float*>(sQ);  // (64, kLdO)
#pragma unroll
  for (int n = 0; n < HS / 16; ++n)
    wmma::store_matrix_sync(staging + row_begin * L::kLdO + n * 16, dk_acc[n], L::kLdO, wmma::mem_row_major);
  __syncwarp();
  store_warp_rows<HS>(dk + kv_base, kv_stride, staging, j0, T, nullptr);
  __syncwarp();
#pragma unroll
  for (int n = 0; n < HS / 16; ++n)
    wmma::store_matrix_sync(staging + row_begin * L::kLdO + n * 16, dv_acc[n], L::kLdO, wmma::mem_row_major);
  __syncwarp();
  store_warp_rows<HS>(dv + kv_base, kv_stride, staging, j0, T, nullptr);
}

// sm_80 (A100) allows 163 KiB of dynamic shared memory per block; sm_90 allows 227 KiB.
constexpr size_t kMaxSmemSm80 = 163 * 1024;
static_assert(ForwardSmem<128>::bytes <= kMaxSmemSm80 && BackwardQuerySmem<128>::bytes <= kMaxSmemSm80 &&
                  BackwardKeySmem<128>::bytes <= kMaxSmemSm80,
              "attention tiles must fit an A100's shared memory");

// ---- launchers -------------------------------------------------------------------------------------------
// The tile loads read 16 bytes at a time (aligned16, common.cuh); buffers from cudaMalloc (and whole-row
// offsets into them) qualify.


template <int HS>
void forward_tensor_cores(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const int32_t* doc,
                          int B, int T, int NH, int NKV, cudaStream_t stream) {
  constexpr size_t bytes = ForwardSmem<HS>::bytes;
  allow_shared_memory(attention_forward_kernel<HS>, bytes);
  const dim3 grid((T + kTile - 1) / kTile, NH, B);
  attention_forward_kernel<HS><<<grid, kThreads, bytes, stream>>>(out, lse, q, k, v, doc, T, NH, NKV,
                                                                   detail::attention_softmax_scale(HS));
  IRIS_CUDA_CHECK(cudaGetLastError());
}

template <int HS>
void backward_tensor_cores(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k,
                           const bf16* v, const bf16* out, const float* lse, float* delta, const int32_t* doc,
                           int B, int T, int NH, int NKV, cudaStream_t stream) {
  const int tiles = (T + kTile - 1) / kTile;
  constexpr size_t dq_bytes = BackwardQuerySmem<HS>::bytes, dkdv_bytes = BackwardKeySmem<HS>::bytes;
  allow_shared_memory(attention_backward_dq_kernel<HS>, dq_bytes);
  allow_shared_memory(attention_backward_dkdv_kernel<HS>, dkdv_bytes);
  attention_backward_dq_kernel<HS><<<dim3(tiles, NH, B), kThreads, dq_bytes, stream>>>(
      dq, dout, q, k, v, out, lse, delta, doc, T, NH, NKV, detail::attention_softmax_scale(HS));
  IRIS_CUDA_CHECK(cudaGetLastError());
  attention_backward_dkdv_kernel<HS><<<dim3(tiles, NKV, B), kThreads, dkdv_bytes, stream>>>(
      dk, dv, dout, q, k, v, lse, delta, doc, T, NH, NKV, detail::attention_softmax_scale(HS));
  IRIS_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void attention_forward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const int32_t* doc,
                       int B, int T, int NH, int NKV, int HS, cudaStream_t stream) {
  detail::check_attention_shapes(B, T, NH, NKV, HS, /*simt=*/false);
  if (B == 0 || T == 0) return;
  // The register-resident kernels, opt-in until a GPU run has proven them (docs/gpu-validation.md).
  if (detail::attention_mma_selected() && detail::attention_mma_supports(HS, {out, q, k, v}) &&
      detail::attention_mma_fits(HS, /*backward=*/false))
    return detail::attention_forward_mma(out, lse, q, k, v, doc, B, T, NH, NKV, HS, stream);
  if (!aligned16({out, q, k, v}))
    return detail::attention_forward_simt(out, lse, q, k, v, doc, B, T, NH, NKV, HS, stream);
  // The tile kernels need more shared memory than sm_86/89 give a block: the SIMT kernel serves them.
  if (HS == 64 && shared_memory_fits(ForwardSmem<64>::bytes))
    return forward_tensor_cores<64>(out, lse, q, k, v, doc, B, T, NH, NKV, stream);
  if (HS == 128 && shared_memory_fits(ForwardSmem<128>::bytes))
    return forward_tensor_cores<128>(out, lse, q, k, v, doc, B, T, NH, NKV, stream);
  detail::attention_forward_simt(out, lse, q, k, v, doc, B, T, NH, NKV, HS, stream);
}

void attention_backward(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k,
                        const bf16* v, const bf16* out, const float* lse, float* delta, const int32_t* doc, int B,
                        int T, int NH, int NKV, int HS, cudaStream_t stream) {
  detail::check_attention_shapes(B, T, NH, NKV, HS, /*simt=*/false);
  if (B == 0 || T == 0) return;
  if (detail::attention_mma_selected() && detail::attention_mma_supports(HS, {dq, dk, dv, dout, q, k, v, out}) &&
      detail::attention_mma_fits(HS, /*backward=*/true))
    return detail::attention_backward_mma(dq, dk, dv, dout, q, k, v, out, lse, delta, doc, B, T, NH, NKV, HS, stream);
  if (!aligned16({dq, dk, dv, dout, q, k, v, out}))
    return detail::attention_backward_simt(dq, dk, dv, dout, q, k, v, out, lse, doc, B, T, NH, NKV, HS, stream);
  if (HS == 64 && shared_memory_fits(std::max(BackwardQuerySmem<64>::bytes, BackwardKeySmem<64>::bytes)))
    return backward_tensor_cores<64>(dq, dk, dv, dout, q, k, v, out, lse, delta, doc, B, T, NH, NKV, stream);
  if (HS == 128 && shared_memory_fits(std::max(BackwardQuerySmem<128>::bytes, BackwardKeySmem<128>::bytes)))
    return backward_tensor_cores<128>(dq, dk, dv, dout, q, k, v, out, lse, delta, doc, B, T, NH, NKV, stream);
  detail::attention_backward_simt(dq, dk, dv, dout, q, k, v, out, lse, doc, B, T, NH, NKV, HS, stream);
}

}  // namespace iris::cuda
