// Element-wise kernels (grid-stride loops) and a two-pass deterministic sum of squares: pass 1 has
// kSumSquaresPartials blocks, each summing a fixed strided subset into one double; pass 2 is one
// block adding those partials. Neither the grid nor the trees depend on the device, so the same input
// gives the same bits on any GPU.
#include "src/kernels/cuda/elementwise.cuh"

namespace iris::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ double block_sum_double(double x, double* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) x += __shfl_xor_sync(0xffffffffu, x, offset);
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  double total = 0.0;
  for (int w = 0; w < kThreads / 32; ++w) total += scratch[w];
  return total;
}

template <typename T>
static __global__ void sum_squares_partial_kernel(double* partials, const T* x, size_t n) {
  __shared__ double scratch[kThreads / 32];
  double acc = 0.0;
  for (size_t i = blockIdx.x * static_cast<size_t>(kThreads) + threadIdx.x; i < n;
       i += static_cast<size_t>(kSumSquaresPartials) * kThreads) {
    const double v = to_float(x[i]);
    acc += v * v;
  }
  acc = block_sum_double(acc, scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

static __global__ void sum_squares_final_kernel(double* out, const double* partials) {
  __shared__ double scratch[kThreads / 32];
  double acc = 0.0;
  for (int i = threadIdx.x; i < kSumSquaresPartials; i += kThreads) acc += partials[i];
  acc = block_sum_double(acc, scratch);
  if (threadIdx.x == 0) *out = acc;
}

template <typename T>
void sum_squares_impl(double* out, double* partials, const T* x, size_t n, cudaStream_t stream) {
  sum_squares_partial_kernel<<<kSumSquaresPartials, kThreads, 0, stream>>>(partials, x, n);
  IRIS_CUDA_CHECK_LAUNCH();
  sum_squares_final_kernel<<<1, kThreads, 0, stream>>>(out, partials);
  IRIS_CUDA_CHECK_LAUNCH();
}

static __global__ void cast_f32_to_bf16_kernel(bf16* out, const float* inp, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    out[i] = __float2bfloat16_rn(inp[i]);
}

static __global__ void cast_bf16_to_f32_kernel(float* out, const bf16* inp, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    out[i] = __bfloat162float(inp[i]);
}

static __global__ void add_inplace_kernel(float* a, const float* b, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    a[i] += b[i];
}

// Sum in fp32, one rounding to bf16 (out may alias a or b: each element is read, then written, by one thread).
static __global__ void add_bf16_kernel(bf16* out, const bf16* a, const bf16* b, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    out[i] = __float2bfloat16_rn(__bfloat162float(a[i]) + __bfloat162float(b[i]));
}

// The same, 8 elements (16 bytes) per load and store; each thread reads a whole vector before writing it,
// so out may still alias a or b.
static __global__ void add_bf16_x8_kernel(Bf16x8* out, const Bf16x8* a, const Bf16x8* b, size_t vecs) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < vecs;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const Bf16x8 x = a[i], y = b[i];
    Bf16x8 z;
#pragma unroll
    for (int e = 0; e < 8; ++e) z.v[e] = __float2bfloat16_rn(__bfloat162float(x.v[e]) + __bfloat162float(y.v[e]));
    out[i] = z;
  }
}

static __global__ void scale_inplace_kernel(float* x, float s, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    x[i] *= s;
}

}  // namespace

void sum_squares(double* out, double* partials, const float* x, size_t n, cudaStream_t stream) {
  sum_squares_impl(out, partials, x, n, stream);
}
void sum_squares(double* out, double* partials, const bf16* x, size_t n, cudaStream_t stream) {
  sum_squares_impl(out, partials, x, n, stream);
}

void cast_f32_to_bf16(bf16* out, const float* inp, size_t n, cudaStream_t stream) {
  if (n == 0) return;
  cast_f32_to_bf16_kernel<<<elementwise_blocks(n, kThreads), kThreads, 0, stream>>>(out, inp, n);
  IRIS_CUDA_CHECK_LAUNCH();
}

void cast_bf16_to_f32(float* out, const bf16* inp, size_t n, cudaStream_t stream) {
  if (n == 0) return;
  cast_bf16_to_f32_kernel<<<elementwise_blocks(n, kThreads), kThreads, 0, stream>>>(out, inp, n);
  IRIS_CUDA_CHECK_LAUNCH();
}

void add_inplace(float* a, const float* b, size_t n, cudaStream_t stream) {
  if (n == 0) return;
  add_inplace_kernel<<<elementwise_blocks(n, kThreads), kThreads, 0, stream>>>(a, b, n);
  IRIS_CUDA_CHECK_LAUNCH();
}

void add_bf16(bf16* out, const bf16* a, const bf16* b, size_t n, cudaStream_t stream) {
  if (n == 0) return;
  const size_t vecs = aligned16({out, a, b}) ? n / 8 : 0, done = 8 * vecs;
  if (vecs > 0) {
    add_bf16_x8_kernel<<<elementwise_blocks(vecs, kThreads), kThreads, 0, stream>>>(
        reinterpret_cast<Bf16x8*>(out), reinterpret_cast<const Bf16x8*>(a), reinterpret_cast<const Bf16x8*>(b), vecs);
    IRIS_CUDA_CHECK_LAUNCH();
  }
  if (done < n) {
    add_bf16_kernel<<<elementwise_blocks(n - done, kThreads), kThreads, 0, stream>>>(out + done, a + done, b + done,
                                                                                     n - done);
    IRIS_CUDA_CHECK_LAUNCH();
  }
}

void scale_inplace(float* x, float s, size_t n, cudaStream_t stream) {
  if (n == 0) return;
  scale_inplace_kernel<<<elementwise_blocks(n, kThreads), kThreads, 0, stream>>>(x, s, n);
  IRIS_CUDA_CHECK_LAUNCH();
}

}  // namespace iris::cuda
