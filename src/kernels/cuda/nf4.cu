// NF4 dequantization kernel: one thread per packed byte (two weights), code books in the kernel's
// parameter space (1 KiB, broadcast to every thread without a copy to constant memory). Products and sums
// use __fmul_rn/__fadd_rn so nvcc cannot fuse them: the fp32 result must equal the CPU's bits.
#include <cstring>

#include "src/kernels/cuda/nf4.cuh"

namespace iris::cuda {
namespace {

constexpr int kThreads = 256;

struct CodeBooks {
  float nf4[16];
  float dynamic[256];
};

template <typename T>
static __global__ void nf4_dequantize_kernel(T* out, const uint8_t* packed, const uint8_t* absmax_code,
                                             const float* nested_absmax, float offset, const CodeBooks books,
                                             size_t n) {
  const size_t bytes = (n + 1) / 2;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < bytes;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t first = 2 * i, block = first / 64;  // both weights of a byte share a 64-block
    const float absmax = __fadd_rn(__fmul_rn(books.dynamic[absmax_code[block]], nested_absmax[block / 256]), offset);
    const uint8_t byte = packed[i];
    out[first] = from_float<T>(__fmul_rn(books.nf4[byte >> 4], absmax));
    if (first + 1 < n) out[first + 1] = from_float<T>(__fmul_rn(books.nf4[byte & 0x0F], absmax));
  }
}

template <typename T>
void launch(T* out, const uint8_t* packed, const uint8_t* absmax_code, const float* nested_absmax, float offset,
            const float* nf4_code, const float* dynamic_map, size_t n, cudaStream_t stream) {
  if (n == 0) return;
  CodeBooks books;
  std::memcpy(books.nf4, nf4_code, sizeof(books.nf4));
  std::memcpy(books.dynamic, dynamic_map, sizeof(books.dynamic));
  const size_t bytes = (n + 1) / 2;
  nf4_dequantize_kernel<T><<<elementwise_blocks(bytes, kThreads), kThreads, 0, stream>>>(
      out, packed, absmax_code, nested_absmax, offset, books, n);
  IRIS_CUDA_CHECK_LAUNCH();
}

}  // namespace

void nf4_dequantize(float* out, const uint8_t* packed, const uint8_t* absmax_code, const float* nested_absmax,
                    float offset, const float* nf4_code, const float* dynamic_map, size_t n, cudaStream_t stream) {
  launch(out, packed, absmax_code, nested_absmax, offset, nf4_code, dynamic_map, n, stream);
}

void nf4_dequantize(bf16* out, const uint8_t* packed, const uint8_t* absmax_code, const float* nested_absmax,
                    float offset, const float* nf4_code, const float* dynamic_map, size_t n, cudaStream_t stream) {
  launch(out, packed, absmax_code, nested_absmax, offset, nf4_code, dynamic_map, n, stream);
}

}  // namespace iris::cuda
