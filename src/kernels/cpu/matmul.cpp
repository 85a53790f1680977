// Dense layers without bias in HF nn.Linear layout: out = inp · weight^T, weight (OC, IC).
// Every product is one OpenBLAS sgemm (row-major). Called outside our OpenMP loops, so OpenBLAS
// threads it over all cores itself.
#include <cblas.h>

#include "src/kernels/cpu/ops.h"

namespace iris::cpu {

void matmul_forward(float* out, const float* inp, const float* weight, int N, int IC, int OC) {
  // out (N, OC) = inp (N, IC) · weight (OC, IC)^T
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, IC, 1.0f, inp, IC, weight, IC, 0.0f, out, OC);
}

void matmul_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                     int N, int IC, int OC, bool accumulate_dinp) {
  if (dinp != nullptr) {
    // dinp (N, IC) (+)= dout (N, OC) · weight (OC, IC)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IC, OC, 1.0f, dout, OC, weight, IC,
                accumulate_dinp ? 1.0f : 0.0f, dinp, IC);
  }
  // dweight (OC, IC) += dout (N, OC)^T · inp (N, IC)
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dweight, IC);
}

}  // namespace iris::cpu
