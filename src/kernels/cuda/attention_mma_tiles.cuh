// Tile and fragment primitives of the register-resident attention kernels (attention_mma.cu): cp.async
// tile loads, ldmatrix, mma.sync m16n8k16 bf16, and the three matrix products every kernel is built from.
// Device code only; include from .cu files.
//
// Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16", bf16), lane = 4·g + t:
//   A (16×16, row-major): a0 (g, 2t..2t+1), a1 (g+8, 2t..), a2 (g, 2t+8..), a3 (g+8, 2t+8..)
//   B (16×8, k×n):        b0 (k 2t..2t+1, n g), b1 (k 2t+8.., n g)
//   C (16×8 fp32):        c0, c1 (g, 2t..2t+1), c2, c3 (g+8, 2t..2t+1)
// ldmatrix.x4 gives lane l the pair (row l/4, cols 2(l%4)..) of each of four 8×8 bf16 matrices whose row
// addresses lanes 8m..8m+7 supply (.trans: the pair (rows 2(l%4)..+1, col l/4)).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "src/kernels/cuda/common.cuh"

namespace iris::cuda::detail::mma_tiles {

using bf16 = __nv_bfloat16;

constexpr int kTile = 64;  // rows of a tile (16 per warp) = columns of a score tile
constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kN8 = kTile / 8;  // 8-column C fragments across a score tile

// A (64, HS) bf16 tile in shared memory: 16-byte aligned rows, padded so ldmatrix's 8 row reads hit
// distinct banks (pitch HS + 8 elements = 4 words more than a multiple of 32 words).
template <int HS>
struct TileShape {
  static constexpr int kLd = HS + 8;
  static constexpr size_t kBytes = sizeof(bf16) * kTile * kLd;
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

// The A fragment of rows [row0, row0 + 16), columns [col0, col0 + 16) of a (64, kLd) tile.
template <int HS>
__device__ __forceinline__ void load_a(uint32_t (&a)[4], const bf16* tile, int row0, int col0) {
  const int lane = threadIdx.x % 32, m = lane / 8;
  ldmatrix_x4(a, tile + (row0 + (m % 2) * 8 + lane % 8) * TileShape<HS>::kLd + col0 + (m / 2) * 8);
}

// c (16×64) += A (16×HS) · B^T, B a (64, HS) tile (row-major: B^T column-major, ldmatrix as is). A comes
// from a_tile's rows [a_row0, a_row0 + 16) (a (64, kLd) tile), 16 columns at a time.
template <int HS>
__device__ __forceinline__ void mma_abt(float (&c)[kN8][4], const bf16* a_tile, int a_row0, const bf16* b_tile) {
  const int lane = threadIdx.x % 32, m = lane / 8;
#pragma unroll
  for (int kc = 0; kc < HS / 16; ++kc) {
    uint32_t a[4];
    load_a<HS>(a, a_tile, a_row0, kc * 16);
#pragma unroll
    for (int p = 0; p < kTile / 16; ++p) {  // B rows 16p..16p + 15: b0, b1 of blocks 2p and 2p + 1
      uint32_t b[4];
      ldmatrix_x4(b, b_tile + (p * 16 + (m / 2) * 8 + lane % 8) * TileShape<HS>::kLd + kc * 16 + (m % 2) * 8);
      mma_bf16(c[2 * p], a, b[0], b[1]);
      mma_bf16(c[2 * p + 1], a, b[2], b[3]);
    }
  }
}

// The same with A already in registers (one fragment per 16 columns), for the operand a kernel reuses
// against every tile it walks (Q in the forward, Q and dout in dq).
template <int HS>
__device__ __forceinline__ void mma_abt(float (&c)[kN8][4], const uint32_t (&a)[HS / 16][4], const bf16* b_tile) {
  const int lane = threadIdx.x % 32, m = lane / 8;
#pragma unroll
  for (int kc = 0; kc < HS / 16; ++kc) {
#pragma unroll
    for (int p = 0; p < kTile / 16; ++p) {
      uint32_t b[4];
      ldmatrix_x4(b, b_tile + (p * 16 + (m / 2) * 8 + lane % 8) * TileShape<HS>::kLd + kc * 16 + (m % 2) * 8);
      mma_bf16(c[2 * p], a[kc], b[0], b[1]);
      mma_bf16(c[2 * p + 1], a[kc], b[2], b[3]);
    }
  }
}

// Rows [row0, row0 + 16) of a (64, kLd) tile as A fragments, one per 16 columns.
template <int HS>
__device__ __forceinline__ void load_a_rows(uint32_t (&a)[HS / 16][4], const bf16* tile, int row0) {
#pragma unroll
  for (int kc = 0; kc < HS / 16; ++kc) load_a<HS>(a[kc], tile, row0, kc * 16);
}

// acc (16×HS) += P (16×64, as C fragments, rounded to bf16) · B, B a (64, HS) tile (row-major: k × n,
// ldmatrix .trans). P's blocks 2kc and 2kc + 1 are the A fragment of B rows 16kc..16kc + 15.
template <int HS>
__device__ __forceinline__ void mma_pb(float (&acc)[HS / 8][4], const float (&p)[kN8][4], const bf16* b_tile) {
  const int lane = threadIdx.x % 32, m = lane / 8;
#pragma unroll
  for (int kc = 0; kc < kTile / 16; ++kc) {
    const uint32_t a[4] = {pack_bf16(p[2 * kc][0], p[2 * kc][1]), pack_bf16(p[2 * kc][2], p[2 * kc][3]),
                           pack_bf16(p[2 * kc + 1][0], p[2 * kc + 1][1]),
                           pack_bf16(p[2 * kc + 1][2], p[2 * kc + 1][3])};
#pragma unroll
    for (int d = 0; d < HS / 16; ++d) {  // B columns 16d..16d + 15: b0, b1 of blocks 2d and 2d + 1
      uint32_t b[4];
      ldmatrix_x4_trans(b, b_tile + (kc * 16 + (m % 2) * 8 + lane % 8) * TileShape<HS>::kLd + d * 16 + (m / 2) * 8);
      mma_bf16(acc[2 * d], a, b[0], b[1]);
      mma_bf16(acc[2 * d + 1], a, b[2], b[3]);
    }
  }
}

// Rows [row0, row0 + 64) of a (T, stride) bf16 matrix, HS columns, into dst (64, kLd) by cp.async; rows
// past T are zero.
template <int HS>
__device__ void load_tile_async(bf16* dst, const bf16* src, size_t stride, int row0, int T) {
  constexpr int kChunks = HS / 8;
  for (int c = threadIdx.x; c < kTile * kChunks; c += kThreads) {
    const int r = c / kChunks, col = (c % kChunks) * 8;
    const bool valid = row0 + r < T;
    cp_async16(dst + r * TileShape<HS>::kLd + col, valid ? src + static_cast<size_t>(row0 + r) * stride + col : src,
               valid);
  }
}

// doc ids (0 without them or past T) and, when given, per-row values of rows [row0, row0 + 64).
__device__ inline void load_rows(int32_t* doc_dst, const int32_t* doc, float* a_dst, const float* a, float* b_dst,
                          const float* b, int row0, int T) {
  for (int r = threadIdx.x; r < kTile; r += kThreads) {
    const bool in = row0 + r < T;
    doc_dst[r] = (doc != nullptr && in) ? doc[row0 + r] : 0;
    if (a_dst != nullptr) a_dst[r] = in ? a[row0 + r] : 0.0f;
    if (b_dst != nullptr) b_dst[r] = in ? b[row0 + r] : 0.0f;
  }
}

// Stores a warp's (16, HS) fp32 accumulator rows [row0, row0 + 16) as bf16 to dst rows < T.
template <int HS>
__device__ void store_rows(bf16* dst, size_t stride, const float (&acc)[HS / 8][4], int row0, int T) {
  const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int r = row0 + g + 8 * half;
    if (r >= T) continue;
#pragma unroll
    for (int n = 0; n < HS / 8; ++n)
      *reinterpret_cast<__nv_bfloat162*>(dst + static_cast<size_t>(r) * stride + n * 8 + 2 * t) =
          __floats2bfloat162_rn(acc[n][2 * half], acc[n][2 * half + 1]);
  }
}

}  // namespace iris::cuda::detail::mma_tiles
