// cuBLASLt wrapper for the three products of nn.Linear. cuBLAS is column-major; our tensors are
// row-major. A row-major R×C matrix X (leading dimension C) is, byte for byte, the column-major C×R
// matrix Xᵀ with leading dimension C. So each row-major product is computed as its transpose:
//
//   forward   out = inp·Wᵀ        ⇔  outᵀ (OC×N) = W·inpᵀ
//             memory of W is the col-major IC×OC matrix Wᵀ → op(A) = T on A = W   (k×m = IC×OC, ld IC)
//             memory of inp is col-major inpᵀ (IC×N)        → op(B) = N on B = inp (k×n = IC×N,  ld IC)
//             m = OC, n = N, k = IC, D = out as col-major OC×N, ld OC
//   dinp      dinp = dout·W       ⇔  dinpᵀ (IC×N) = Wᵀ·doutᵀ
//             A = W memory = Wᵀ (IC×OC, ld IC), op N;  B = dout memory = doutᵀ (OC×N, ld OC), op N
//             m = IC, n = N, k = OC, D = dinp as col-major IC×N, ld IC
//   dweight   dW += doutᵀ·inp     ⇔  dWᵀ (IC×OC) += inpᵀ·dout
//             A = inp memory = inpᵀ (IC×N, ld IC), op N;  B = dout memory = doutᵀ (OC×N, ld OC), op T
//             m = IC, n = OC, k = N, D = dW as col-major IC×OC, ld IC, beta = 1
//
// Every product: bf16 A and B, fp32 compute and scale (alpha, beta fp32), D bf16 or fp32, C = D.
#include <cstdio>
#include <string>

#include "src/kernels/cuda/matmul.cuh"

namespace iris::cuda {

struct Matmul::Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

namespace {

uint16_t alignment_of(const void* p) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  uint32_t align = 256;
  while (align > 1 && address % align != 0) align /= 2;
  return static_cast<uint16_t>(align);
}

std::string describe(const Matmul::PlanKey& key) {
  char text[256];
  std::snprintf(text, sizeof text, "m=%d n=%d k=%d transa=%d transb=%d out=%s accumulate=%d align(A,B,D)=(%u,%u,%u)",
                key.m, key.n, key.k, key.transa, key.transb, key.out_f32 ? "fp32" : "bf16", key.accumulate,
                key.align_a, key.align_b, key.align_d);
  return text;
}

}  // namespace

size_t Matmul::PlanKeyHash::operator()(const PlanKey& k) const {
  size_t h = 1469598103934665603ull;  // FNV-1a over the fields
  auto mix = [&h](uint64_t v) { h = (h ^ v) * 1099511628211ull; };
  mix(static_cast<uint32_t>(k.m));
  mix(static_cast<uint32_t>(k.n));
  mix(static_cast<uint32_t>(k.k));
  mix((k.transa ? 1u : 0u) | (k.transb ? 2u : 0u) | (k.out_f32 ? 4u : 0u) | (k.accumulate ? 8u : 0u));
  mix((uint64_t{k.align_a} << 32) | (uint64_t{k.align_b} << 16) | k.align_d);
  return h;
}

Matmul::Matmul(size_t workspace_bytes) : workspace_(workspace_bytes) {
  IRIS_CUBLAS_CHECK(cublasLtCreate(&handle_));
}

Matmul::~Matmul() {
  for (auto& [key, plan] : plans_) {
    cublasLtMatrixLayoutDestroy(plan->a);
    cublasLtMatrixLayoutDestroy(plan->b);
    cublasLtMatrixLayoutDestroy(plan->d);
    cublasLtMatmulDescDestroy(plan->op);
    delete plan;
  }
  cublasLtDestroy(handle_);
}

void Matmul::gemm(void* d, bool out_f32, const bf16* a, bool transa, const bf16* b, bool transb, int m, int n, int k,
                  bool accumulate, cudaStream_t stream) {
  IRIS_CUDA_REQUIRE(m > 0 && n > 0 && k > 0, "matmul dimensions must be positive");
  const PlanKey key{m, n, k, transa, transb, out_f32, accumulate, alignment_of(a), alignment_of(b), alignment_of(d)};
  auto it = plans_.find(key);
  if (it == plans_.end()) {
    auto plan = new Plan;
    const cublasOperation_t op_a = transa ? CUBLAS_OP_T : CUBLAS_OP_N, op_b = transb ? CUBLAS_OP_T : CUBLAS_OP_N;
    IRIS_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    IRIS_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof op_a));
    IRIS_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof op_b));
    // Stored shapes (before op): op(A) is m×k, so A is k×m when transposed; likewise B.
    const int a_rows = transa ? k : m, a_cols = transa ? m : k;
    const int b_rows = transb ? n : k, b_cols = transb ? k : n;
    IRIS_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->a, CUDA_R_16BF, a_rows, a_cols, a_rows));
    IRIS_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->b, CUDA_R_16BF, b_rows, b_cols, b_rows));
    IRIS_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->d, out_f32 ? CUDA_R_32F : CUDA_R_16BF, m, n, m));

    cublasLtMatmulPreference_t pref = nullptr;
    IRIS_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    const uint64_t max_workspace = workspace_.size();
    IRIS_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                           &max_workspace, sizeof max_workspace));
    // Tell the heuristic how aligned the pointers really are (views into flat buffers may be less than
    // cudaMalloc's 256 bytes); it then only returns algorithms that can run on them.
    const uint32_t align_a = key.align_a, align_b = key.align_b, align_d = key.align_d;
    IRIS_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                           &align_a, sizeof align_a));
    IRIS_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                           &align_b, sizeof align_b));
    IRIS_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                                           &align_d, sizeof align_d));
    IRIS_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                                           &align_d, sizeof align_d));
    if (!out_f32 && accumulate) {
      // Adding into a bf16 output (a bf16 gradient, train.grad_dtype = bf16): split-K's in-place reduction
      // adds the partial products in the output type, rounding to bf16 once per split; the other schemes
      // reduce in fp32 and round once, as the callers promise.
      const uint32_t schemes =
          CUBLASLT_REDUCTION_SCHEME_MASK & ~static_cast<uint32_t>(CUBLASLT_REDUCTION_SCHEME_INPLACE);
      IRIS_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
                                                             &schemes, sizeof schemes));
    }
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(handle_, plan->op, plan->a, plan->b, plan->d,
                                                                 plan->d, pref, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (status != CUBLAS_STATUS_SUCCESS || found == 0) {
      cublasLtMatrixLayoutDestroy(plan->a);
      cublasLtMatrixLayoutDestroy(plan->b);
      cublasLtMatrixLayoutDestroy(plan->d);
      cublasLtMatmulDescDestroy(plan->op);
      delete plan;
      throw_cuda_failure("cublasLtMatmulAlgoGetHeuristic", __FILE__, __LINE__,
                         ("no cuBLASLt algorithm for " + describe(key) + ": " + cublasLtGetStatusString(status))
                             .c_str());
    }
    plan->algo = result.algo;
    it = plans_.emplace(key, plan).first;
  }

  const Plan& plan = *it->second;
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  IRIS_CUBLAS_CHECK(cublasLtMatmul(handle_, plan.op, &alpha, a, plan.a, b, plan.b, &beta, d, plan.d, d, plan.d,
                                   &plan.algo, workspace_.data(), workspace_.size(), stream));
}

void Matmul::forward(bf16* out, const bf16* inp, const bf16* weight, int N, int IC, int OC, cudaStream_t stream) {
  gemm(out, false, weight, true, inp, false, OC, N, IC, false, stream);
}
void Matmul::forward(float* out, const bf16* inp, const bf16* weight, int N, int IC, int OC, cudaStream_t stream) {
  gemm(out, true, weight, true, inp, false, OC, N, IC, false, stream);
}

void Matmul::backward_input(bf16* dinp, const bf16* dout, const bf16* weight, int N, int IC, int OC,
                            bool accumulate_dinp, cudaStream_t stream) {
  gemm(dinp, false, weight, false, dout, false, IC, N, OC, accumulate_dinp, stream);
}

void Matmul::backward_weight(float* dweight, const bf16* dout, const bf16* inp, int N, int IC, int OC,
                             cudaStream_t stream) {
  gemm(dweight, true, inp, false, dout, true, IC, OC, N, true, stream);
}
void Matmul::backward_weight(bf16* dweight, const bf16* dout, const bf16* inp, int N, int IC, int OC,
                             cudaStream_t stream) {
  gemm(dweight, false, inp, false, dout, true, IC, OC, N, true, stream);
}

}  // namespace iris::cuda
