// cuBLASLt GEMMs for nn.Linear (no bias), row-major like cpu::matmul_forward / matmul_backward:
//   forward   out  (N, OC) = inp (N, IC) · weight (OC, IC)^T
//   backward  dinp (N, IC) = dout (N, OC) · weight (OC, IC)      (= or += )
//             dweight (OC, IC) += dout^T · inp                    (parameter gradients accumulate)
// bf16 inputs, fp32 accumulation (CUBLAS_COMPUTE_32F), bf16 or fp32 outputs. One Matmul object per
// stream: it owns the cuBLASLt handle, one workspace and the per-shape algorithm cache.
#pragma once
#include <cstddef>
#include <cstdint>
#include <unordered_map>

#include "src/core/device_buffer.h"
#include "src/kernels/cuda/common.cuh"

namespace iris::cuda {

class Matmul {
 public:
  static constexpr size_t kDefaultWorkspaceBytes = size_t{32} << 20;  // what cuBLAS recommends on Hopper
  explicit Matmul(size_t workspace_bytes = kDefaultWorkspaceBytes);
  ~Matmul();
  Matmul(const Matmul&) = delete;
  Matmul& operator=(const Matmul&) = delete;

  // out (N, OC) = inp (N, IC) · weight (OC, IC)^T; out bf16 or fp32.
  void forward(bf16* out, const bf16* inp, const bf16* weight, int N, int IC, int OC, cudaStream_t stream);
  void forward(float* out, const bf16* inp, const bf16* weight, int N, int IC, int OC, cudaStream_t stream);
  // dinp (N, IC) = dout (N, OC) · weight (OC, IC)   [+= when accumulate_dinp]
  void backward_input(bf16* dinp, const bf16* dout, const bf16* weight, int N, int IC, int OC,
                      bool accumulate_dinp, cudaStream_t stream);
  // dweight (OC, IC) += dout (N, OC)^T · inp (N, IC); fp32 (default) or bf16 gradient buffer.
  void backward_weight(float* dweight, const bf16* dout, const bf16* inp, int N, int IC, int OC, cudaStream_t stream);
  void backward_weight(bf16* dweight, const bf16* dout, const bf16* inp, int N, int IC, int OC, cudaStream_t stream);

  // Both backward products, with the argument order of cpu::matmul_backward (stream last).
  // dinp may be nullptr (not needed).
  template <typename GradT>
  void backward(bf16* dinp, GradT* dweight, const bf16* dout, const bf16* inp, const bf16* weight, int N, int IC,
                int OC, bool accumulate_dinp, cudaStream_t stream) {
    if (dinp != nullptr) backward_input(dinp, dout, weight, N, IC, OC, accumulate_dinp, stream);
    backward_weight(dweight, dout, inp, N, IC, OC, stream);
  }

  size_t cached_plans() const { return plans_.size(); }

  struct PlanKey {
    int m, n, k;
    bool transa, transb;
    bool out_f32, accumulate;
    uint16_t align_a, align_b, align_d;  // pointer alignment in bytes (≤ 256): some algorithms need more
    bool operator==(const PlanKey&) const = default;
  };
  struct PlanKeyHash {
    size_t operator()(const PlanKey& k) const;
  };
  struct Plan;

 private:
  // D (m×n, column-major, ld m) = alpha·op(A)·op(B) + beta·D with op(A) m×k, op(B) k×n.
  void gemm(void* d, bool out_f32, const bf16* a, bool transa, const bf16* b, bool transb, int m, int n, int k,
            bool accumulate, cudaStream_t stream);

  cublasLtHandle_t handle_ = nullptr;
  DeviceBuffer<std::byte> workspace_;
  std::unordered_map<PlanKey, Plan*, PlanKeyHash> plans_;
};

}  // namespace iris::cuda
