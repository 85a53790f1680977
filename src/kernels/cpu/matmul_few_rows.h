// Dense layer for a few rows (decode: one row per sequence), where a GEMM library's blocking does not pay and
// the cost is reading the weight once: same result as matmul_forward (ops.h), up to fp32 summation order.
#pragma once

namespace iris::cpu {

// out (N, OC) = inp (N, IC) · weight (OC, IC)^T, each weight row read once for all N rows; OpenMP over
// output features. Meant for N ≤ 16 (kFewRows); any N is correct.
inline constexpr int kFewRows = 16;
void matmul_forward_few_rows(float* out, const float* inp, const float* weight, int N, int IC, int OC);

}  // namespace iris::cpu
