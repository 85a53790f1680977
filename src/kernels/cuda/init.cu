// Device weight initialisation (init.cuh). The arithmetic mirrors src/core/rng.h operation by operation
// with explicitly rounded double operations (__dadd_rn, __dmul_rn: no fused multiply-add, which the host
// does not do either). Only log and cos can differ from glibc's (CUDA documents 1 and 2 ulp in double); a
// difference of that size reaches the fp32 result only when it straddles a float rounding boundary.
#include "src/kernels/cuda/init.cuh"

#include <algorithm>

namespace iris::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

__device__ __forceinline__ double uniform(uint64_t key, uint64_t index) {
  const uint64_t bits = mix64(key + index) >> 11;
  return __dmul_rn(__dadd_rn(static_cast<double>(bits), 0.5), 1.0 / 9007199254740992.0);
}

static __global__ void init_weights_kernel(float* out, int64_t first, int64_t n, InitIndexMap map, double init_std,
                                           uint64_t key) {
  for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < n;
       k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = first + k, r = i / map.local_cols, c = i % map.local_cols;
    if (r >= map.valid_rows) {
      out[k] = 0.0f;  // vocab padding rows stay zero
      continue;
    }
    if (init_std == 0.0) {
      out[k] = 1.0f;
      continue;
    }
    const uint64_t g = static_cast<uint64_t>((map.row_offset + r) * map.global_cols + map.col_offset + c);
    const double u1 = uniform(key, 2 * g), u2 = uniform(key, 2 * g + 1);
    const double z = __dmul_rn(sqrt(__dmul_rn(-2.0, log(u1))), cos(__dmul_rn(2.0 * M_PI, u2)));
    out[k] = static_cast<float>(__dmul_rn(init_std, z));
  }
}

}  // namespace

void init_weights(float* out, int64_t first, int64_t n, const InitIndexMap& map, double init_std, uint64_t seed,
                  uint64_t stream_id, cudaStream_t stream) {
  if (n <= 0) return;
  // random_u64(seed, stream, index) = mix64(mix64(seed ^ mix64(stream + golden)) + index): the key is per tensor.
  const auto host_mix = [](uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  const uint64_t key = host_mix(seed ^ host_mix(stream_id + 0x9e3779b97f4a7c15ull));
  const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, 65535);
  init_weights_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(out, first, n, map, init_std, key);
  IRIS_CUDA_CHECK_LAUNCH();
}

}  // namespace iris::cuda
