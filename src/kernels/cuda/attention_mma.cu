// Causal grouped-query flash attention with the score tiles kept in registers (FlashAttention-2, Dao
// 2023, alg. 1 forward and the two-kernel deterministic form of alg. 2 backward) on raw mma.sync
// m16n8k16 bf16 tensor-core instructions, whose fragment layouts the PTX ISA documents (unlike wmma's):
// scores, probabilities and their gradients live in C fragments, are masked, exponentiated and
// re-packed as A operands without passing through shared memory, and the outputs accumulate in
// registers for a whole loop. The tiles each loop walks (K/V forward and for dq, Q/dO for dk/dv) are
// double-buffered with cp.async, so the next tile loads while this one is used.
//
// Same contracts and results (up to summation order) as attention.cu's kernels; they are the fast path
// being proven: attention_forward/backward use them only when IRIS_ATTENTION=mma (attention.cuh), until
// a GPU run shows they match the CPU reference (test_gpu_attention) and are faster.
//
// The tile and fragment primitives they are built from are in attention_mma_tiles.cuh.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "src/kernels/cuda/attention_detail.cuh"
#include "src/kernels/cuda/attention_mma_tiles.cuh"
#include "src/kernels/cuda/common.cuh"

namespace iris::cuda::detail {
namespace {

using namespace mma_tiles;

// ---- forward -------------------------------------------------------------------------------------------
template <int HS>
struct ForwardLayout {
  static constexpr size_t kT = TileShape<HS>::kBytes;
  static constexpr size_t q = 0, k = q + kT, v = k + 2 * kT, doc_q = v + 2 * kT, doc_k = doc_q + 4 * kTile,
                          bytes = doc_k + 2 * 4 * kTile;
};

// grid (query tiles, NH, B), the longest query tiles first. Warp w owns query rows i0 + 16w .. + 15; lane
// 4g + t holds rows g and g + 8 of them.
template <int HS>
__global__ void __launch_bounds__(kThreads) attention_forward_mma_kernel(
    bf16* __restrict__ out, float* __restrict__ lse, const bf16* __restrict__ q, const bf16* __restrict__ k,
    const bf16* __restrict__ v, const int32_t* __restrict__ doc, int T, int NH, int NKV, float scale) {
  using S = ForwardLayout<HS>;
  constexpr int kLd = TileShape<HS>::kLd;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* sQ = reinterpret_cast<bf16*>(smem + S::q);
  bf16* sK = reinterpret_cast<bf16*>(smem + S::k);  // two (64, kLd) buffers
  bf16* sV = reinterpret_cast<bf16*>(smem + S::v);  // two (64, kLd) buffers
  int32_t* sDocQ = reinterpret_cast<int32_t*>(smem + S::doc_q);
  int32_t* sDocK = reinterpret_cast<int32_t*>(smem + S::doc_k);  // two (64,) buffers

  const int n_tiles = (T + kTile - 1) / kTile;
  const int qt = n_tiles - 1 - static_cast<int>(blockIdx.x);
  const int h = blockIdx.y, b = blockIdx.z, kvh = h / (NH / NKV);
  const int i0 = qt * kTile;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const size_t q_stride = static_cast<size_t>(NH) * HS, kv_stride = static_cast<size_t>(NKV) * HS;
  const bf16* Qg = q + static_cast<size_t>(b) * T * q_stride + h * HS;
  const bf16* Kg = k + static_cast<size_t>(b) * T * kv_stride + kvh * HS;
  const bf16* Vg = v + static_cast<size_t>(b) * T * kv_stride + kvh * HS;
  const int32_t* D = doc != nullptr ? doc + static_cast<size_t>(b) * T : nullptr;

  load_tile_async<HS>(sQ, Qg, q_stride, i0, T);
  load_tile_async<HS>(sK, Kg, kv_stride, 0, T);
  load_tile_async<HS>(sV, Vg, kv_stride, 0, T);
  cp_async_commit();
  load_rows(sDocQ, D, nullptr, nullptr, nullptr, nullptr, i0, T);
  load_rows(sDocK, D, nullptr, nullptr, nullptr, nullptr, 0, T);
  cp_async_wait_all();
  __syncthreads();

  const int row[2] = {i0 + warp * 16 + g, i0 + warp * 16 + g + 8};  // this lane's two query rows
  const int doc_row[2] = {sDocQ[warp * 16 + g], sDocQ[warp * 16 + g + 8]};
  uint32_t qa[HS / 16][4];  // Q rows of this warp, for every key tile
  load_a_rows<HS>(qa, sQ, warp * 16);
  float o[HS / 8][4];  // O rows (g, g + 8) × columns 8n + 2t, +1 of this warp, unnormalised
#pragma unroll
  for (int n = 0; n < HS / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};

  for (int kt = 0; kt <= qt; ++kt) {
    const int buf = kt % 2, j0 = kt * kTile;
    const bf16* tK = sK + buf * kTile * kLd;
    const bf16* tV = sV + buf * kTile * kLd;
    const int32_t* tDoc = sDocK + buf * kTile;
    if (kt + 1 <= qt) {  // the next key tile loads while this one is used (its buffer was freed last iteration)
      const int nb = 1 - buf;
      load_tile_async<HS>(sK + nb * kTile * kLd, Kg, kv_stride, j0 + kTile, T);
      load_tile_async<HS>(sV + nb * kTile * kLd, Vg, kv_stride, j0 + kTile, T);
      cp_async_commit();
      load_rows(sDocK + nb * kTile, D, nullptr, nullptr, nullptr, nullptr, j0 + kTile, T);
    }

    float s[kN8][4] = {};  // S = Q·K^T, 16 rows × 64 keys
    mma_abt<HS>(s, qa, tK);

    // Online softmax on the registers: mask, scale, new running max, P = exp(s − m), rescale of O and l.
    float m_use[2], alpha[2];
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float mx = -INFINITY;
#pragma unroll
      for (int n = 0; n < kN8; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int c = n * 8 + 2 * t + e, j = j0 + c;
          const bool seen = j <= row[half] && j < T && (D == nullptr || tDoc[c] == doc_row[half]);
          float& x = s[n][2 * half + e];
          x = seen ? x * scale : -INFINITY;
          mx = fmaxf(mx, x);
        }
      const float m_new = fmaxf(m_run[half], quad_max(mx));
      m_use[half] = m_new == -INFINITY ? 0.0f : m_new;  // nothing visible yet: every p below is 0
      alpha[half] = m_run[half] == -INFINITY ? 0.0f : __expf(m_run[half] - m_use[half]);
      m_run[half] = m_new;
    }
    float row_sum[2] = {0.0f, 0.0f};
#pragma unroll
    for (int n = 0; n < kN8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[n][e] = __expf(s[n][e] - m_use[e / 2]);  // exp(−inf) = 0 for the masked
        row_sum[e / 2] += s[n][e];
      }
#pragma unroll
    for (int half = 0; half < 2; ++half) l_run[half] = l_run[half] * alpha[half] + quad_sum(row_sum[half]);
#pragma unroll
    for (int n = 0; n < HS / 8; ++n) {
      o[n][0] *= alpha[0], o[n][1] *= alpha[0];
      o[n][2] *= alpha[1], o[n][3] *= alpha[1];
    }
    mma_pb<HS>(o, s, tV);  // O += P·V

    cp_async_wait_all();  // the next tile has landed
    __syncthreads();      // ... for every warp, and every warp is done with this tile's buffer
  }

  // Every valid row saw at least its own key, so l > 0.
  const size_t out_base = static_cast<size_t>(b) * T * q_stride + h * HS;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int i = row[half];
    if (i >= T) continue;
    const float inv_l = 1.0f / l_run[half];
    if (t == 0) lse[(static_cast<size_t>(b) * NH + h) * T + i] = m_run[half] + logf(l_run[half]);
    bf16* dst = out + out_base + static_cast<size_t>(i) * q_stride + 2 * t;
#pragma unroll
    for (int n = 0; n < HS / 8; ++n)
      *reinterpret_cast<__nv_bfloat162*>(dst + n * 8) =
          __floats2bfloat162_rn(o[n][2 * half] * inv_l, o[n][2 * half + 1] * inv_l);
  }
}

// ---- backward: dq (and D) ----------------------------------------------------------------------------
template <int HS>
struct DqLayout {
  static constexpr size_t kT = TileShape<HS>::kBytes;
  static constexpr size_t q = 0, dout = q + kT, k = dout + kT, v = k + 2 * kT, doc_q = v + 2 * kT,
                          doc_k = doc_q + 4 * kTile, bytes = doc_k + 2 * 4 * kTile;
};

// grid (query tiles, NH, B). D_i = dout_i · out_i for the tile's rows (written to delta for dk/dv), then
// over the key tiles at or before it: S = q·k^T, dP = dout·v^T (registers), dS = P ⊙ (dP − D) · scale with
// P = exp(S·scale − lse), dq += dS·k.
template <int HS>
__global__ void __launch_bounds__(kThreads) attention_backward_dq_mma_kernel(
    bf16* __restrict__ dq, float* __restrict__ delta, const bf16* __restrict__ dout, const bf16* __restrict__ q,
    const bf16* __restrict__ k, const bf16* __restrict__ v, const bf16* __restrict__ out,
    const float* __restrict__ lse, const int32_t* __restrict__ doc, int T, int NH, int NKV, float scale) {
  using S = DqLayout<HS>;
  constexpr int kLd = TileShape<HS>::kLd;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* sQ = reinterpret_cast<bf16*>(smem + S::q);
  bf16* sdO = reinterpret_cast<bf16*>(smem + S::dout);
  bf16* sK = reinterpret_cast<bf16*>(smem + S::k);  // two buffers
  bf16* sV = reinterpret_cast<bf16*>(smem + S::v);  // two buffers
  int32_t* sDocQ = reinterpret_cast<int32_t*>(smem + S::doc_q);
  int32_t* sDocK = reinterpret_cast<int32_t*>(smem + S::doc_k);  // two buffers

  const int n_tiles = (T + kTile - 1) / kTile;
  const int qt = n_tiles - 1 - static_cast<int>(blockIdx.x);
  const int h = blockIdx.y, b = blockIdx.z, kvh = h / (NH / NKV);
  const int i0 = qt * kTile;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const size_t q_stride = static_cast<size_t>(NH) * HS, kv_stride = static_cast<size_t>(NKV) * HS;
  const size_t q_base = static_cast<size_t>(b) * T * q_stride + h * HS;
  const bf16* Kg = k + static_cast<size_t>(b) * T * kv_stride + kvh * HS;
  const bf16* Vg = v + static_cast<size_t>(b) * T * kv_stride + kvh * HS;
  const int32_t* D = doc != nullptr ? doc + static_cast<size_t>(b) * T : nullptr;
  const size_t row_base = (static_cast<size_t>(b) * NH + h) * T;

  load_tile_async<HS>(sQ, q + q_base, q_stride, i0, T);
  load_tile_async<HS>(sdO, dout + q_base, q_stride, i0, T);
  load_tile_async<HS>(sK, Kg, kv_stride, 0, T);
  load_tile_async<HS>(sV, Vg, kv_stride, 0, T);
  cp_async_commit();
  load_rows(sDocQ, D, nullptr, nullptr, nullptr, nullptr, i0, T);
  load_rows(sDocK, D, nullptr, nullptr, nullptr, nullptr, 0, T);

  // D and lse of this lane's two rows. D: a dot product of two global rows per row, once per query tile.
  const int row[2] = {i0 + warp * 16 + g, i0 + warp * 16 + g + 8};
  float d_row[2], lse_row[2];
  for (int r = warp * 16; r < warp * 16 + 16; ++r) {  // the warp's rows, one dot product each
    const int i = i0 + r;
    float dot = 0.0f;
    if (i < T) {
      const bf16* a = dout + q_base + static_cast<size_t>(i) * q_stride;
      const bf16* c = out + q_base + static_cast<size_t>(i) * q_stride;
      for (int col = 2 * lane; col < HS; col += 64) {
        const float2 x = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(a + col));
        const float2 y = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(c + col));
        dot += x.x * y.x + x.y * y.y;
      }
    }
    dot = warp_sum(dot);
    if (lane == 0 && i < T) delta[row_base + i] = dot;
    if (r - warp * 16 == g) d_row[0] = dot;
    if (r - warp * 16 == g + 8) d_row[1] = dot;
  }
#pragma unroll
  for (int half = 0; half < 2; ++half) lse_row[half] = row[half] < T ? lse[row_base + row[half]] : 0.0f;
  cp_async_wait_all();
  __syncthreads();
  const int doc_row[2] = {sDocQ[warp * 16 + g], sDocQ[warp * 16 + g + 8]};
  uint32_t qa[HS / 16][4], doa[HS / 16][4];  // q and dout rows of this warp, for every key tile
  load_a_rows<HS>(qa, sQ, warp * 16);
  load_a_rows<HS>(doa, sdO, warp * 16);

  float acc[HS / 8][4];  // dq rows (g, g + 8) of this warp
#pragma unroll
  for (int n = 0; n < HS / 8; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;

  for (int kt = 0; kt <= qt; ++kt) {
    const int buf = kt % 2, j0 = kt * kTile;
    const bf16* tK = sK + buf * kTile * kLd;
    const bf16* tV = sV + buf * kTile * kLd;
    const int32_t* tDoc = sDocK + buf * kTile;
    if (kt + 1 <= qt) {
      const int nb = 1 - buf;
      load_tile_async<HS>(sK + nb * kTile * kLd, Kg, kv_stride, j0 + kTile, T);
      load_tile_async<HS>(sV + nb * kTile * kLd, Vg, kv_stride, j0 + kTile, T);
      cp_async_commit();
      load_rows(sDocK + nb * kTile, D, nullptr, nullptr, nullptr, nullptr, j0 + kTile, T);
    }

    float s[kN8][4] = {}, dp[kN8][4] = {};
    mma_abt<HS>(s, qa, tK);    // S = q·k^T
    mma_abt<HS>(dp, doa, tV);  // dP = dout·v^T
#pragma unroll
    for (int n = 0; n < kN8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int half = e / 2, c = n * 8 + 2 * t + e % 2, j = j0 + c;
        const bool seen = j <= row[half] && j < T && row[half] < T && (D == nullptr || tDoc[c] == doc_row[half]);
        const float p = seen ? __expf(s[n][e] * scale - lse_row[half]) : 0.0f;
        s[n][e] = p * (dp[n][e] - d_row[half]) * scale;  // dS, in place of S
      }
    mma_pb<HS>(acc, s, tK);  // dq += dS·k

    cp_async_wait_all();
    __syncthreads();
  }
  store_rows<HS>(dq + q_base, q_stride, acc, i0 + warp * 16, T);
}

// ---- backward: dk, dv --------------------------------------------------------------------------------
template <int HS>
struct DkdvLayout {
  static constexpr size_t kT = TileShape<HS>::kBytes;
  static constexpr size_t k = 0, v = k + kT, q = v + kT, dout = q + 2 * kT, doc_k = dout + 2 * kT,
                          doc_q = doc_k + 4 * kTile, lse = doc_q + 2 * 4 * kTile, delta = lse + 2 * 4 * kTile,
                          bytes = delta + 2 * 4 * kTile;
};

// grid (key tiles, NKV, B). On transposed tiles (keys as rows): S^T = k·q^T, dP^T = v·dout^T (registers),
// P^T = exp(S^T·scale − lse), dS^T = P^T ⊙ (dP^T − D) · scale, then dv += P^T·dout and dk += dS^T·q, over
// the query heads of this KV head in order and, for each, the query tiles at or after this key tile.
// Fixed order, no atomics: bit-identical across runs. D comes from the dq kernel (delta).
template <int HS>
__global__ void __launch_bounds__(kThreads) attention_backward_dkdv_mma_kernel(
    bf16* __restrict__ dk, bf16* __restrict__ dv, const bf16* __restrict__ dout, const bf16* __restrict__ q,
    const bf16* __restrict__ k, const bf16* __restrict__ v, const float* __restrict__ lse,
    const float* __restrict__ delta, const int32_t* __restrict__ doc, int T, int NH, int NKV, float scale) {
  using S = DkdvLayout<HS>;
  constexpr int kLd = TileShape<HS>::kLd;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* sK = reinterpret_cast<bf16*>(smem + S::k);
  bf16* sV = reinterpret_cast<bf16*>(smem + S::v);
  bf16* sQ = reinterpret_cast<bf16*>(smem + S::q);      // two buffers
  bf16* sdO = reinterpret_cast<bf16*>(smem + S::dout);  // two buffers
  int32_t* sDocK = reinterpret_cast<int32_t*>(smem + S::doc_k);
  int32_t* sDocQ = reinterpret_cast<int32_t*>(smem + S::doc_q);  // two buffers
  float* sLse = reinterpret_cast<float*>(smem + S::lse);         // two buffers
  float* sD = reinterpret_cast<float*>(smem + S::delta);         // two buffers

  const int n_tiles = (T + kTile - 1) / kTile;
  const int kt = blockIdx.x;  // the earliest key tiles have the most work and start first
  const int kvh = blockIdx.y, b = blockIdx.z, group = NH / NKV;
  const int j0 = kt * kTile;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const size_t q_stride = static_cast<size_t>(NH) * HS, kv_stride = static_cast<size_t>(NKV) * HS;
  const size_t kv_base = static_cast<size_t>(b) * T * kv_stride + kvh * HS;
  const int32_t* D = doc != nullptr ? doc + static_cast<size_t>(b) * T : nullptr;

  // The (head, query tile) pairs this block walks, in order: heads of the group, query tiles kt..n − 1.
  const int per_head = n_tiles - kt, steps = group * per_head;
  // A step's Q and dout tiles go by cp.async; its per-row doc ids, lse and D by plain loads, which the loop
  // issues after the step before's math so their latency hides behind it.
  auto issue_tiles = [&](int step, int buffer) {
    const int h = kvh * group + step / per_head, i0 = (kt + step % per_head) * kTile;
    const size_t q_base = static_cast<size_t>(b) * T * q_stride + h * HS;
    load_tile_async<HS>(sQ + buffer * kTile * kLd, q + q_base, q_stride, i0, T);
    load_tile_async<HS>(sdO + buffer * kTile * kLd, dout + q_base, q_stride, i0, T);
    cp_async_commit();
  };
  auto load_step_rows = [&](int step, int buffer) {
    const int h = kvh * group + step / per_head, i0 = (kt + step % per_head) * kTile;
    const size_t row_base = (static_cast<size_t>(b) * NH + h) * T;
    load_rows(sDocQ + buffer * kTile, D, sLse + buffer * kTile, lse + row_base, sD + buffer * kTile,
              delta + row_base, i0, T);
  };

  load_tile_async<HS>(sK, k + kv_base, kv_stride, j0, T);
  load_tile_async<HS>(sV, v + kv_base, kv_stride, j0, T);
  load_rows(sDocK, D, nullptr, nullptr, nullptr, nullptr, j0, T);
  issue_tiles(0, 0);  // commits the K/V loads with the first Q/dO tile
  load_step_rows(0, 0);
  cp_async_wait_all();
  __syncthreads();
  const int key[2] = {j0 + warp * 16 + g, j0 + warp * 16 + g + 8};  // this lane's two key rows
  const int doc_key[2] = {sDocK[warp * 16 + g], sDocK[warp * 16 + g + 8]};

  float dk_acc[HS / 8][4], dv_acc[HS / 8][4];
#pragma unroll
  for (int n = 0; n < HS / 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk_acc[n][e] = dv_acc[n][e] = 0.0f;

  for (int step = 0; step < steps; ++step) {
    const int buf = step % 2, i0 = (kt + step % per_head) * kTile;
    const bf16* tQ = sQ + buf * kTile * kLd;
    const bf16* tdO = sdO + buf * kTile * kLd;
    const int32_t* tDoc = sDocQ + buf * kTile;
    const float* tLse = sLse + buf * kTile;
    const float* tD = sD + buf * kTile;
    if (step + 1 < steps) issue_tiles(step + 1, 1 - buf);  // its buffer was freed at the last barrier

    float st[kN8][4] = {}, dpt[kN8][4] = {};
    mma_abt<HS>(st, sK, warp * 16, tQ);    // S^T = k·q^T
    mma_abt<HS>(dpt, sV, warp * 16, tdO);  // dP^T = v·dout^T
#pragma unroll
    for (int n = 0; n < kN8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int half = e / 2, c = n * 8 + 2 * t + e % 2, i = i0 + c;
        const bool seen = key[half] <= i && i < T && key[half] < T && (D == nullptr || tDoc[c] == doc_key[half]);
        const float p = seen ? __expf(st[n][e] * scale - tLse[c]) : 0.0f;
        dpt[n][e] = p * (dpt[n][e] - tD[c]) * scale;  // dS^T, in place of dP^T
        st[n][e] = p;                                 // P^T, in place of S^T
      }
    mma_pb<HS>(dv_acc, st, tdO);  // dv += P^T·dout
    mma_pb<HS>(dk_acc, dpt, tQ);  // dk += dS^T·q
    if (step + 1 < steps) load_step_rows(step + 1, 1 - buf);

    cp_async_wait_all();
    __syncthreads();
  }
  store_rows<HS>(dk + kv_base, kv_stride, dk_acc, j0 + warp * 16, T);
  store_rows<HS>(dv + kv_base, kv_stride, dv_acc, j0 + warp * 16, T);
}

template <int HS>
void launch_forward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const int32_t* doc, int B,
                    int T, int NH, int NKV, cudaStream_t stream) {
  constexpr size_t bytes = ForwardLayout<HS>::bytes;
  allow_shared_memory(attention_forward_mma_kernel<HS>, bytes);
  const dim3 grid((T + kTile - 1) / kTile, NH, B);
  attention_forward_mma_kernel<HS><<<grid, kThreads, bytes, stream>>>(out, lse, q, k, v, doc, T, NH, NKV,
                                                                      attention_softmax_scale(HS));
  IRIS_CUDA_CHECK(cudaGetLastError());
}

template <int HS>
void launch_backward(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k, const bf16* v,
                     const bf16* out, const float* lse, float* delta, const int32_t* doc, int B, int T, int NH,
                     int NKV, cudaStream_t stream) {
  const int tiles = (T + kTile - 1) / kTile;
  constexpr size_t dq_bytes = DqLayout<HS>::bytes, dkdv_bytes = DkdvLayout<HS>::bytes;
  allow_shared_memory(attention_backward_dq_mma_kernel<HS>, dq_bytes);
  allow_shared_memory(attention_backward_dkdv_mma_kernel<HS>, dkdv_bytes);
  attention_backward_dq_mma_kernel<HS><<<dim3(tiles, NH, B), kThreads, dq_bytes, stream>>>(
      dq, delta, dout, q, k, v, out, lse, doc, T, NH, NKV, attention_softmax_scale(HS));
  IRIS_CUDA_CHECK(cudaGetLastError());
  attention_backward_dkdv_mma_kernel<HS><<<dim3(tiles, NKV, B), kThreads, dkdv_bytes, stream>>>(
      dk, dv, dout, q, k, v, lse, delta, doc, T, NH, NKV, attention_softmax_scale(HS));
  IRIS_CUDA_CHECK(cudaGetLastError());
}

// Two blocks per SM on sm_90 (228 KiB, 1 KiB reserved per block) for every kernel at HS 128.
static_assert(2 * (ForwardLayout<128>::bytes + 1024) <= 228 * 1024 && 2 * (DqLayout<128>::bytes + 1024) <= 228 * 1024 &&
                  2 * (DkdvLayout<128>::bytes + 1024) <= 228 * 1024,
              "mma attention kernels: two blocks per SM on sm_90");

void require_supported(const char* what, int HS, std::initializer_list<const void*> pointers) {
  if (!attention_mma_supports(HS, pointers))
    throw std::invalid_argument(std::string(what) + ": head size 64 or 128 and 16-byte aligned buffers only");
}

}  // namespace

bool attention_mma_selected() {
  static const bool selected = [] {
    const char* choice = std::getenv("IRIS_ATTENTION");
    return choice != nullptr && std::string(choice) == "mma";
  }();
  return selected;
}

bool attention_mma_supports(int HS, std::initializer_list<const void*> pointers) {
  return (HS == 64 || HS == 128) && aligned16(pointers);
}

bool attention_mma_fits(int HS, bool backward) {
  if (HS != 64 && HS != 128) return false;
  const size_t bytes = HS == 64 ? (backward ? std::max(DqLayout<64>::bytes, DkdvLayout<64>::bytes)
                                            : ForwardLayout<64>::bytes)
                                : (backward ? std::max(DqLayout<128>::bytes, DkdvLayout<128>::bytes)
                                            : ForwardLayout<128>::bytes);
  return shared_memory_fits(bytes);
}

void attention_forward_mma(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const int32_t* doc,
                           int B, int T, int NH, int NKV, int HS, cudaStream_t stream) {
  check_attention_shapes(B, T, NH, NKV, HS, /*simt=*/false);
  require_supported("attention_forward_mma", HS, {out, q, k, v});
  if (B == 0 || T == 0) return;
  if (HS == 64) return launch_forward<64>(out, lse, q, k, v, doc, B, T, NH, NKV, stream);
  launch_forward<128>(out, lse, q, k, v, doc, B, T, NH, NKV, stream);
}

void attention_backward_mma(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k,
                            const bf16* v, const bf16* out, const float* lse, float* delta, const int32_t* doc, int B,
                            int T, int NH, int NKV, int HS, cudaStream_t stream) {
  check_attention_shapes(B, T, NH, NKV, HS, /*simt=*/false);
  require_supported("attention_backward_mma", HS, {dq, dk, dv, dout, q, k, v, out});
  if (B == 0 || T == 0) return;
  if (HS == 64) return launch_backward<64>(dq, dk, dv, dout, q, k, v, out, lse, delta, doc, B, T, NH, NKV, stream);
  launch_backward<128>(dq, dk, dv, dout, q, k, v, out, lse, delta, doc, B, T, NH, NKV, stream);
}

}  // namespace iris::cuda::detail
