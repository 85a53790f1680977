// iris-attention-bench: times the GPU attention kernels at one shape (default llama2-7b's: B 1, T 4096,
// 32 query and 32 KV heads of 128) with CUDA events and prints ms and TFLOP/s per kernel side by side:
// the forward (wmma: attention.cu; mma: attention_mma.cu, the opt-in register-resident kernels; simt)
// and the backward (dq + dk/dv; wmma and mma). FLOPs: causal, 4·B·NH·HS·T(T+1)/2 forward (two matmuls
// of the visible half), 2.5× that backward (five). Random bf16 inputs; nothing is asserted here (test_gpu_attention checks
// the kernels against the CPU), but the largest difference between the mma and wmma results is printed.
//   iris-attention-bench [B T NH NKV HS [REPEATS]]
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <functional>
#include <random>
#include <vector>

#include "src/kernels/cuda/attention.cuh"
#include "src/kernels/cuda/attention_detail.cuh"
#include "src/kernels/cuda/common.cuh"

namespace {

using bf16 = __nv_bfloat16;

bf16* random_device(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<bf16> host(n);
  for (auto& x : host) x = __float2bfloat16(normal(rng));
  bf16* dev = nullptr;
  IRIS_CUDA_CHECK(cudaMalloc(&dev, n * sizeof(bf16)));
  IRIS_CUDA_CHECK(cudaMemcpy(dev, host.data(), n * sizeof(bf16), cudaMemcpyHostToDevice));
  return dev;
}

std::vector<bf16> download(const bf16* dev, size_t n) {
  std::vector<bf16> host(n);
  IRIS_CUDA_CHECK(cudaMemcpy(host.data(), dev, n * sizeof(bf16), cudaMemcpyDeviceToHost));
  return host;
}
double max_abs(const std::vector<bf16>& a) {
  double m = 0;
  for (bf16 x : a) m = std::max(m, std::fabs(static_cast<double>(__bfloat162float(x))));
  return m;
}
// A GPU-vs-GPU look at the two kernel families at this shape (test_gpu_attention checks each against the CPU).
double max_abs_diff(const std::vector<bf16>& a, const std::vector<bf16>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i)
    m = std::max(m, std::fabs(static_cast<double>(__bfloat162float(a[i])) - __bfloat162float(b[i])));
  return m;
}

// Median milliseconds of `repeats` runs of f after two warm-up runs.
double time_ms(int repeats, const std::function<void()>& f) {
  cudaEvent_t start, stop;
  IRIS_CUDA_CHECK(cudaEventCreate(&start));
  IRIS_CUDA_CHECK(cudaEventCreate(&stop));
  for (int i = 0; i < 2; ++i) f();
  std::vector<float> ms(repeats);
  for (int i = 0; i < repeats; ++i) {
    IRIS_CUDA_CHECK(cudaEventRecord(start));
    f();
    IRIS_CUDA_CHECK(cudaEventRecord(stop));
    IRIS_CUDA_CHECK(cudaEventSynchronize(stop));
    IRIS_CUDA_CHECK(cudaEventElapsedTime(&ms[i], start, stop));
  }
  std::sort(ms.begin(), ms.end());
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms[repeats / 2];
}

}  // namespace

int main(int argc, char** argv) {
  // attention_forward/backward pick the mma kernels when IRIS_ATTENTION=mma; the "default dispatch" rows
  // time what they pick without it: the wmma tile kernels (SIMT on GPUs whose shared memory per block is too
  // small for them, sm_86/89, where the label would be wrong).
  unsetenv("IRIS_ATTENTION");
  int B = 1, T = 4096, NH = 32, NKV = 32, HS = 128, repeats = 10;
  if (argc >= 6) B = std::atoi(argv[1]), T = std::atoi(argv[2]), NH = std::atoi(argv[3]), NKV = std::atoi(argv[4]),
                 HS = std::atoi(argv[5]);
  if (argc >= 7) repeats = std::atoi(argv[6]);
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("iris-attention-bench: no CUDA device\n");
    return 77;
  }
  cudaDeviceProp prop{};
  IRIS_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  const size_t q_elems = static_cast<size_t>(B) * T * NH * HS, kv_elems = static_cast<size_t>(B) * T * NKV * HS;
  const size_t rows = static_cast<size_t>(B) * NH * T;
  bf16 *q = random_device(q_elems, 1), *k = random_device(kv_elems, 2), *v = random_device(kv_elems, 3);
  bf16 *dout = random_device(q_elems, 4), *out = nullptr, *dq = nullptr, *dk = nullptr, *dv = nullptr;
  float *lse = nullptr, *delta = nullptr;
  IRIS_CUDA_CHECK(cudaMalloc(&out, q_elems * sizeof(bf16)));
  IRIS_CUDA_CHECK(cudaMalloc(&dq, q_elems * sizeof(bf16)));
  IRIS_CUDA_CHECK(cudaMalloc(&dk, kv_elems * sizeof(bf16)));
  IRIS_CUDA_CHECK(cudaMalloc(&dv, kv_elems * sizeof(bf16)));
  IRIS_CUDA_CHECK(cudaMalloc(&lse, rows * sizeof(float)));
  IRIS_CUDA_CHECK(cudaMalloc(&delta, rows * sizeof(float)));

  const double fwd_flop = 4.0 * B * NH * HS * (static_cast<double>(T) * (T + 1) / 2);
  std::printf("%s: attention B=%d T=%d NH=%d NKV=%d HS=%d, median of %d runs\n", prop.name, B, T, NH, NKV, HS, repeats);
  auto report = [&](const char* what, double ms, double flop) {
    std::printf("  %-34s %9.3f ms  %7.1f TFLOP/s\n", what, ms, flop / (ms * 1e-3) / 1e12);
  };
  // attention_forward/backward are the wmma kernels unless IRIS_ATTENTION=mma is set: run this without it.
  const double wmma = time_ms(repeats, [&] {
    iris::cuda::attention_forward(out, lse, q, k, v, nullptr, B, T, NH, NKV, HS, nullptr);
  });
  report("forward, default dispatch (wmma)", wmma, fwd_flop);
  namespace detail = iris::cuda::detail;
  const bool mma = detail::attention_mma_supports(HS, {out, q, k, v}) && detail::attention_mma_fits(HS, false) &&
                   detail::attention_mma_fits(HS, true);
  if (mma) {
    const std::vector<bf16> wmma_out = download(out, q_elems);
    const double ms = time_ms(repeats, [&] {
      iris::cuda::detail::attention_forward_mma(out, lse, q, k, v, nullptr, B, T, NH, NKV, HS, nullptr);
    });
    report("forward, mma (IRIS_ATTENTION=mma)", ms, fwd_flop);
    std::printf("  mma / wmma forward time: %.3f; outputs differ by at most %.3g (max |wmma|: %.3g)\n", ms / wmma,
                max_abs_diff(download(out, q_elems), wmma_out), max_abs(wmma_out));
  }
  const double simt = time_ms(std::max(1, repeats / 5), [&] {
    iris::cuda::detail::attention_forward_simt(out, lse, q, k, v, nullptr, B, T, NH, NKV, HS, nullptr);
  });
  report("forward, simt", simt, fwd_flop);
  // The backward reads the forward's out and lse: run the default forward once more first.
  iris::cuda::attention_forward(out, lse, q, k, v, nullptr, B, T, NH, NKV, HS, nullptr);
  const double bwd = time_ms(repeats, [&] {
    iris::cuda::attention_backward(dq, dk, dv, dout, q, k, v, out, lse, delta, nullptr, B, T, NH, NKV, HS, nullptr);
  });
  report("backward (dq + dk/dv), default dispatch (wmma)", bwd, 2.5 * fwd_flop);
  const std::vector<bf16> wmma_grads[3] = {download(dq, q_elems), download(dk, kv_elems), download(dv, kv_elems)};
  if (mma) {
    const double ms = time_ms(repeats, [&] {
      iris::cuda::detail::attention_backward_mma(dq, dk, dv, dout, q, k, v, out, lse, delta, nullptr, B, T, NH, NKV,
                                                 HS, nullptr);
    });
    report("backward, mma (IRIS_ATTENTION=mma)", ms, 2.5 * fwd_flop);
    std::printf("  mma / wmma backward time: %.3f; dq, dk, dv differ by at most %.3g, %.3g, %.3g\n", ms / bwd,
                max_abs_diff(download(dq, q_elems), wmma_grads[0]), max_abs_diff(download(dk, kv_elems), wmma_grads[1]),
                max_abs_diff(download(dv, kv_elems), wmma_grads[2]));
  }
  IRIS_CUDA_CHECK(cudaDeviceSynchronize());
  return 0;
}
