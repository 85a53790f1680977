// Causal grouped-query flash attention forward with the scores kept in registers (FlashAttention-2's
// forward, Dao 2023, alg. 1) on raw mma.sync m16n8k16 bf16 tensor-core instructions, whose fragment
// layouts the PTX ISA documents (unlike wmma's), so the online softmax can work on the accumulators
// directly: S = Q·K^T stays in registers, is rescaled, exponentiated and re-packed as the A operand of
// P·V without passing through shared memory, and O accumulates in registers for the whole key loop.
// K and V tiles are double-buffered with cp.async so the next tile loads while this one is used.
//
// Same contract and results (up to summation order) as attention.cu's forward; it is the fast path
// being proven: attention_forward uses it only when IRIS_ATTENTION_FORWARD=mma (attention.cuh), until a
// GPU run shows it matches the CPU reference (test_gpu_attention) and is faster.
//
// Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16", bf16), lane = 4·g + t:
//   A (16×16, row-major): a0 (g, 2t..2t+1), a1 (g+8, 2t..), a2 (g, 2t+8..), a3 (g+8, 2t+8..)
//   B (16×8, k×n):        b0 (k 2t..2t+1, n g), b1 (k 2t+8.., n g)
//   C (16×8 fp32):        c0, c1 (g, 2t..2t+1), c2, c3 (g+8, 2t..2t+1)
// ldmatrix.x4 gives lane l the pair (row l/4, cols 2(l%4)..) of each of four 8×8 bf16 matrices whose row
// addresses lanes 8m..8m+7 supply (.trans: the pair (rows 2(l%4)..+1, col l/4)).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>

#include "src/kernels/cuda/attention_detail.cuh"
#include "src/kernels/cuda/common.cuh"

namespace iris::cuda::detail {
namespace {

using bf16 = __nv_bfloat16;

constexpr int kTile = 64;  // query rows per block (16 per warp) = keys per key tile
constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;

template <int HS>
struct MmaSmem {
  static constexpr int kLd = HS + 8;  // bf16 row pitch: 16-byte aligned rows, ldmatrix without bank conflicts
  static constexpr size_t kTileBytes = sizeof(bf16) * kTile * kLd;
  static constexpr size_t q = 0, k = q + kTileBytes, v = k + 2 * kTileBytes, doc_q = v + 2 * kTileBytes,
                          doc_k = doc_q + sizeof(int32_t) * kTile, bytes = doc_k + 2 * sizeof(int32_t) * kTile;
};

__device__ __forceinline__ unsigned smem_address(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

// 16 bytes global → shared, asynchronously; zero-filled when !valid (src is then not read).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_address(dst)), "l"(src),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address(row)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address(row)));
}

// c (16×8 fp32) += a (16×16 bf16) · b (16×8 bf16).
__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x (the lower column) in the low half
  return *reinterpret_cast<const uint32_t*>(&v);
}

// Max and sum over the 4 lanes of a quad (the lanes holding one row's columns in a C fragment).
__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// Rows [row0, row0 + 64) of a (T, stride) bf16 matrix, HS columns, into dst (64, kLd) by cp.async; rows
// past T are zero.
template <int HS>
__device__ void load_tile_async(bf16* dst, const bf16* src, size_t stride, int row0, int T) {
  constexpr int kChunks = HS / 8;
  for (int c = threadIdx.x; c < kTile * kChunks; c += kThreads) {
    const int r = c / kChunks, col = (c % kChunks) * 8;
    const bool valid = row0 + r < T;
    cp_async16(dst + r * MmaSmem<HS>::kLd + col, valid ? src + static_cast<size_t>(row0 + r) * stride + col : src,
               valid);
  }
}

__device__ void load_doc_ids(int32_t* dst, const int32_t* doc, int row0, int T) {
  for (int r = threadIdx.x; r < kTile; r += kThreads) dst[r] = (doc != nullptr && row0 + r < T) ? doc[row0 + r] : 0;
}

// grid (query tiles, NH, B), the longest query tiles first. Warp w owns query rows i0 + 16w .. + 15; lane
// 4g + t holds rows g and g + 8 of them.
template <int HS>
__global__ void __launch_bounds__(kThreads) attention_forward_mma_kernel(
    bf16* __restrict__ out, float* __restrict__ lse, const bf16* __restrict__ q, const bf16* __restrict__ k,
    const bf16* __restrict__ v, const int32_t* __restrict__ doc, int T, int NH, int NKV, float scale) {
  using S = MmaSmem<HS>;
  constexpr int kLd = S::kLd;
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
  load_doc_ids(sDocQ, D, i0, T);
  load_doc_ids(sDocK, D, 0, T);
  cp_async_wait_all();
  __syncthreads();

  // Q of this warp's rows as A fragments, one per 16 columns of the head.
  uint32_t qa[HS / 16][4];
#pragma unroll
  for (int kc = 0; kc < HS / 16; ++kc) {
    const int m = lane / 8;
    ldmatrix_x4(qa[kc], sQ + (warp * 16 + (m % 2) * 8 + lane % 8) * kLd + kc * 16 + (m / 2) * 8);
  }

  const int row[2] = {i0 + warp * 16 + g, i0 + warp * 16 + g + 8};  // this lane's two query rows
  const int doc_row[2] = {sDocQ[warp * 16 + g], sDocQ[warp * 16 + g + 8]};
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
      load_doc_ids(sDocK + nb * kTile, D, j0 + kTile, T);
    }

    // S = Q·K^T: 8 C fragments of 16 rows × 8 keys. ldmatrix.x4 on K rows (non-transposed: K row-major is
    // B = K^T column-major) gives b0, b1 of key block 2p and of key block 2p + 1.
    float s[kTile / 8][4];
#pragma unroll
    for (int n = 0; n < kTile / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
    for (int kc = 0; kc < HS / 16; ++kc) {
#pragma unroll
      for (int p = 0; p < kTile / 16; ++p) {
        const int m = lane / 8;
        uint32_t kb[4];
        ldmatrix_x4(kb, tK + (p * 16 + (m / 2) * 8 + lane % 8) * kLd + kc * 16 + (m % 2) * 8);
        mma_bf16(s[2 * p], qa[kc], kb[0], kb[1]);
        mma_bf16(s[2 * p + 1], qa[kc], kb[2], kb[3]);
      }
    }

    // Online softmax on the registers: mask, scale, new running max, P = exp(s − m), rescale of O and l.
    float m_new[2], alpha[2], m_use[2];
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float mx = -INFINITY;
#pragma unroll
      for (int n = 0; n < kTile / 8; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int c = n * 8 + 2 * t + e, j = j0 + c;
          const bool seen = j <= row[half] && j < T && (D == nullptr || tDoc[c] == doc_row[half]);
          float& x = s[n][2 * half + e];
          x = seen ? x * scale : -INFINITY;
          mx = fmaxf(mx, x);
        }
      m_new[half] = fmaxf(m_run[half], quad_max(mx));
      m_use[half] = m_new[half] == -INFINITY ? 0.0f : m_new[half];  // nothing visible yet: p = 0 below
      alpha[half] = m_run[half] == -INFINITY ? 0.0f : __expf(m_run[half] - m_use[half]);
    }
    float row_sum[2] = {0.0f, 0.0f};
#pragma unroll
    for (int n = 0; n < kTile / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[n][e] = __expf(s[n][e] - m_use[e / 2]);  // exp(−inf) = 0 for the masked
        row_sum[e / 2] += s[n][e];
      }
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      l_run[half] = l_run[half] * alpha[half] + quad_sum(row_sum[half]);
      m_run[half] = m_new[half];
    }
#pragma unroll
    for (int n = 0; n < HS / 8; ++n) {
      o[n][0] *= alpha[0], o[n][1] *= alpha[0];
      o[n][2] *= alpha[1], o[n][3] *= alpha[1];
    }

    // O += P·V. P's C fragments of key blocks 2kc and 2kc + 1 are the A fragment of keys 16kc..16kc + 15;
    // ldmatrix.x4.trans on V rows (keys) gives b0, b1 of head columns 16d..+7 and 16d + 8..+15.
#pragma unroll
    for (int kc = 0; kc < kTile / 16; ++kc) {
      const uint32_t pa[4] = {pack_bf16(s[2 * kc][0], s[2 * kc][1]), pack_bf16(s[2 * kc][2], s[2 * kc][3]),
                              pack_bf16(s[2 * kc + 1][0], s[2 * kc + 1][1]),
                              pack_bf16(s[2 * kc + 1][2], s[2 * kc + 1][3])};
#pragma unroll
      for (int d = 0; d < HS / 16; ++d) {
        const int m = lane / 8;
        uint32_t vb[4];
        ldmatrix_x4_trans(vb, tV + (kc * 16 + (m % 2) * 8 + lane % 8) * kLd + d * 16 + (m / 2) * 8);
        mma_bf16(o[2 * d], pa, vb[0], vb[1]);
        mma_bf16(o[2 * d + 1], pa, vb[2], vb[3]);
      }
    }

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

template <int HS>
void launch_forward_mma(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const int32_t* doc,
                        int B, int T, int NH, int NKV, cudaStream_t stream) {
  constexpr size_t bytes = MmaSmem<HS>::bytes;
  IRIS_CUDA_CHECK(cudaFuncSetAttribute(attention_forward_mma_kernel<HS>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(bytes)));
  IRIS_CUDA_CHECK(cudaFuncSetAttribute(attention_forward_mma_kernel<HS>, cudaFuncAttributePreferredSharedMemoryCarveout,
                                       cudaSharedmemCarveoutMaxShared));
  const dim3 grid((T + kTile - 1) / kTile, NH, B);
  attention_forward_mma_kernel<HS><<<grid, kThreads, bytes, stream>>>(out, lse, q, k, v, doc, T, NH, NKV,
                                                                      attention_softmax_scale(HS));
  IRIS_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

bool attention_forward_mma_supports(int HS, std::initializer_list<const void*> pointers) {
  return (HS == 64 || HS == 128) && aligned16(pointers);
}

void attention_forward_mma(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const int32_t* doc,
                           int B, int T, int NH, int NKV, int HS, cudaStream_t stream) {
  check_attention_shapes(B, T, NH, NKV, HS, /*simt=*/false);
  if (!attention_forward_mma_supports(HS, {out, q, k, v}))
    throw std::invalid_argument("attention_forward_mma: head size 64 or 128 and 16-byte aligned buffers only");
  if (B == 0 || T == 0) return;
  if (HS == 64) return launch_forward_mma<64>(out, lse, q, k, v, doc, B, T, NH, NKV, stream);
  launch_forward_mma<128>(out, lse, q, k, v, doc, B, T, NH, NKV, stream);
}

}  // namespace iris::cuda::detail
