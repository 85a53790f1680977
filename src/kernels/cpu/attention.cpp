// Causal grouped-query attention (Ainslie et al. 2023) by query blocks: S = QK^T/sqrt(HS), P = softmax(S), O = PV,
// saving lse = max + log Σ exp so backward rebuilds P from q, k, lse (FlashAttention-2, Dao 2023, alg. 2). Backward
// owns one KV head per task, so its query heads' dk/dv add up in a fixed order, without atomics.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "src/kernels/cpu/ops.h"
#include "src/kernels/cpu/vec_math.h"

namespace iris::cpu {
namespace {

constexpr int kQueryBlock = 64;  // query rows per GEMM: keys beyond the block's last row are skipped

// Keys [begin, end) that some query row of a block can see: end = the block's last row + 1 (causal);
// begin = the first key sharing a document with a row of the block (0 without a doc mask), so the GEMMs of
// a block late in a packed sequence skip the earlier documents. One begin per (sequence, block): (B, blocks).
std::vector<int> block_key_begins(const int32_t* doc, int B, int T, int blocks) {
  std::vector<int> begins(static_cast<size_t>(B) * blocks, 0);
  if (doc == nullptr) return begins;
  std::unordered_map<int32_t, int> first;  // document id -> its first position in the sequence
  for (int b = 0; b < B; ++b) {
    const int32_t* d = doc + static_cast<size_t>(b) * T;
    first.clear();
    for (int t = 0; t < T; ++t) first.try_emplace(d[t], t);
    for (int blk = 0; blk < blocks; ++blk) {
      const int i0 = blk * kQueryBlock, i1 = std::min(T, i0 + kQueryBlock);
      int begin = i0;
      for (int i = i0; i < i1; ++i) begin = std::min(begin, first[d[i]]);
      begins[static_cast<size_t>(b) * blocks + blk] = begin;
    }
  }
  return begins;
}

// One query row i of a block: s (width,) holds its scores for the block's keys from key_begin on. Column jj
// is key j = key_begin + jj; columns from `visible` = i + 1 − key_begin on are future keys. With a doc mask,
// d (visible,) are the keys' document ids and keys outside document di are hidden as well.

// Softmax of one row in place, hidden keys getting probability 0; returns lse = max + log Σ exp.
float softmax_row(float* s, int visible, int width, const int32_t* d, int32_t di) {
  if (d != nullptr) {
#pragma omp simd
    for (int jj = 0; jj < visible; ++jj) s[jj] = d[jj] == di ? s[jj] : -INFINITY;
  }
  float m = -INFINITY;
#pragma omp simd reduction(max : m)
  for (int jj = 0; jj < visible; ++jj) m = s[jj] > m ? s[jj] : m;
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int jj = 0; jj < visible; ++jj) {
    s[jj] = detail::fast_exp(s[jj] - m);
    sum += s[jj];
  }
  const float inv = 1.0f / sum;
#pragma omp simd
  for (int jj = 0; jj < visible; ++jj) s[jj] *= inv;
  std::fill(s + visible, s + width, 0.0f);
  return m + std::log(sum);
}

// The probabilities of one row rebuilt from its scores and saved lse: p = exp(s − lse), 0 where hidden.
void probs_from_lse(float* s, int visible, int width, const int32_t* d, int32_t di, float lse) {
  if (d != nullptr) {
#pragma omp simd
    for (int jj = 0; jj < visible; ++jj) s[jj] = detail::select(d[jj] == di, detail::fast_exp(s[jj] - lse), 0.0f);
  } else {
#pragma omp simd
    for (int jj = 0; jj < visible; ++jj) s[jj] = detail::fast_exp(s[jj] - lse);
  }
  std::fill(s + visible, s + width, 0.0f);
}

}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, const int32_t* doc,
                       int B, int T, int NH, int NKV, int HS) {
  // out (B, T, NH, HS), lse (B, NH, T), q (B, T, NH, HS), k, v (B, T, NKV, HS), doc (B, T) or nullptr
  const int group = NH / NKV;
  const int q_stride = NH * HS, kv_stride = NKV * HS;  // floats between consecutive positions
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  const int blocks = (T + kQueryBlock - 1) / kQueryBlock;
  const int tasks = B * NH * blocks;
  const std::vector<int> key_begins = block_key_begins(doc, B, T, blocks);  // (B, blocks)
#pragma omp parallel
  {
    std::vector<float> scores(static_cast<size_t>(kQueryBlock) * T);  // (rows, keys) of one block
#pragma omp for schedule(dynamic)
    for (int task = 0; task < tasks; ++task) {
      const int bh = task / blocks, b = bh / NH, h = bh % NH, kvh = h / group;
      const int blk = blocks - 1 - task % blocks;  // the longest blocks first, for load balance
      const int i0 = blk * kQueryBlock, rows = std::min(kQueryBlock, T - i0);
      const int32_t* d = doc ? doc + static_cast<size_t>(b) * T : nullptr;  // (T,)
      const int key_begin = key_begins[static_cast<size_t>(b) * blocks + blk], nk = i0 + rows - key_begin;
      const float* Q = q + (static_cast<size_t>(b) * T + i0) * q_stride + h * HS;                // (rows, HS)
      const float* K = k + (static_cast<size_t>(b) * T + key_begin) * kv_stride + kvh * HS;  // (nk, HS)
      const float* V = v + (static_cast<size_t>(b) * T + key_begin) * kv_stride + kvh * HS;  // (nk, HS)
      float* O = out + (static_cast<size_t>(b) * T + i0) * q_stride + h * HS;                    // (rows, HS)
      float* S = scores.data();                                                                   // (rows, nk)

      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, nk, HS, scale, Q, q_stride, K, kv_stride, 0.0f,
                  S, nk);
      for (int r = 0; r < rows; ++r) {
        const int i = i0 + r;
        lse[(static_cast<size_t>(b) * NH + h) * T + i] =
            softmax_row(S + static_cast<size_t>(r) * nk, i + 1 - key_begin, nk, d ? d + key_begin : nullptr,
                        d ? d[i] : 0);
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, HS, nk, 1.0f, S, nk, V, kv_stride, 0.0f, O,
                  q_stride);
    }
  }
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, const int32_t* doc,
                        int B, int T, int NH, int NKV, int HS) {
  // dq (B, T, NH, HS), dk, dv (B, T, NKV, HS) written; dout, q, out (B, T, NH, HS); k, v (B, T, NKV, HS);
  // lse (B, NH, T); doc (B, T) or nullptr
  const int group = NH / NKV;
  const int q_stride = NH * HS, kv_stride = NKV * HS;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  const int blocks = (T + kQueryBlock - 1) / kQueryBlock;
  const std::vector<int> key_begins = block_key_begins(doc, B, T, blocks);  // (B, blocks)
#pragma omp parallel
  {
    std::vector<float> probs(static_cast<size_t>(kQueryBlock) * T);   // P (rows, nk)
    std::vector<float> dprobs(static_cast<size_t>(kQueryBlock) * T);  // dP, then dS (rows, nk)
#pragma omp for schedule(dynamic)
    for (int task = 0; task < B * NKV; ++task) {
      const int b = task / NKV, kvh = task % NKV;
      const int32_t* d = doc ? doc + static_cast<size_t>(b) * T : nullptr;
      const size_t seq = static_cast<size_t>(b) * T;
      for (int t = 0; t < T; ++t) {
        std::memset(dk + (seq + t) * kv_stride + kvh * HS, 0, sizeof(float) * HS);
        std::memset(dv + (seq + t) * kv_stride + kvh * HS, 0, sizeof(float) * HS);
      }
      // The query heads of this KV head, one after another: their dk/dv contributions add in this order.
      for (int h = kvh * group; h < (kvh + 1) * group; ++h) {
        for (int blk = 0; blk < blocks; ++blk) {
          const int i0 = blk * kQueryBlock, rows = std::min(kQueryBlock, T - i0);
          const int key_begin = key_begins[static_cast<size_t>(b) * blocks + blk], nk = i0 + rows - key_begin;
          const size_t q_off = (seq + i0) * q_stride + h * HS, kv_off = (seq + key_begin) * kv_stride + kvh * HS;
          const float* Q = q + q_off;        // (rows, HS)
          const float* O = out + q_off;      // (rows, HS)
          const float* dO = dout + q_off;    // (rows, HS)
          float* dQ = dq + q_off;            // (rows, HS)
          const float* K = k + kv_off;       // (nk, HS)
          const float* V = v + kv_off;       // (nk, HS)
          float* dK = dk + kv_off;           // (nk, HS)
          float* dV = dv + kv_off;           // (nk, HS)
          float* P = probs.data();           // (rows, nk)
          float* dS = dprobs.data();         // (rows, nk)

          // Rebuild P = exp(S − lse) exactly as the forward computed S.
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, nk, HS, scale, Q, q_stride, K, kv_stride, 0.0f,
                      P, nk);
          // dP = dO V^T
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, nk, HS, 1.0f, dO, q_stride, V, kv_stride, 0.0f,
                      dS, nk);
          for (int r = 0; r < rows; ++r) {
            const int i = i0 + r, visible = i + 1 - key_begin;
            float* p = P + static_cast<size_t>(r) * nk;
            float* ds = dS + static_cast<size_t>(r) * nk;
            probs_from_lse(p, visible, nk, d ? d + key_begin : nullptr, d ? d[i] : 0,
                           lse[(static_cast<size_t>(b) * NH + h) * T + i]);
            const float* o_r = O + static_cast<size_t>(r) * q_stride;
            const float* do_r = dO + static_cast<size_t>(r) * q_stride;
            float D = 0.0f;  // D_i = dO_i · O_i = Σ_j P_ij dP_ij
#pragma omp simd reduction(+ : D)
            for (int c = 0; c < HS; ++c) D += do_r[c] * o_r[c];
            // dS = P ⊙ (dP − D_i) · scale: softmax backward, then the 1/sqrt(HS) inside S
#pragma omp simd
            for (int jj = 0; jj < visible; ++jj) ds[jj] = p[jj] * (ds[jj] - D) * scale;
            std::fill(ds + visible, ds + nk, 0.0f);
          }
          // dQ = dS K;  dK += dS^T Q;  dV += P^T dO
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, HS, nk, 1.0f, dS, nk, K, kv_stride, 0.0f, dQ,
                      q_stride);
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, HS, rows, 1.0f, dS, nk, Q, q_stride, 1.0f, dK,
                      kv_stride);
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, HS, rows, 1.0f, P, nk, dO, q_stride, 1.0f, dV,
                      kv_stride);
        }
      }
    }
  }
}

}  // namespace iris::cpu
