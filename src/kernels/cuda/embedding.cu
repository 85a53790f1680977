// Embedding gather, and a deterministic scatter-add for its backward. The backward gives each thread
// block a fixed range of vocab rows; the block scans all N tokens in order, compacts the ones that fall
// in its range (ballot + prefix count, so order is kept), and adds their dout rows one after another.
// A row is only ever written by one block and its tokens are added in token order: no float atomics,
// and the same sum order as cpu::embedding_backward.
#include "src/kernels/cuda/embedding.cuh"

namespace iris::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxBackwardBlocks = 2048;  // each block reads all N token ids; more blocks, more re-reads

static __global__ void embedding_forward_kernel(bf16* out, const int32_t* tokens, const bf16* wte, int C,
                                                int vocab_start, int V_local) {
  // one block per token row n
  const int n = blockIdx.x;
  const int row = tokens[n] - vocab_start;
  bf16* o = out + static_cast<size_t>(n) * C;
  if (row >= 0 && row < V_local) {
    const bf16* w = wte + static_cast<size_t>(row) * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) o[c] = w[c];
  } else {
    for (int c = threadIdx.x; c < C; c += blockDim.x) o[c] = __float2bfloat16_rn(0.0f);
  }
}

static __global__ void embedding_backward_kernel(float* dwte, const bf16* dout, const int32_t* tokens, int N,
                                                 int C, int vocab_start, int rows_per_block, int V_local) {
  __shared__ int hit_token[kThreads];   // tokens of this chunk that fall in the block's rows, in order
  __shared__ int warp_hits[kWarps];
  const int row_begin = blockIdx.x * rows_per_block;
  const int row_end = min(V_local, row_begin + rows_per_block);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;

  for (int base = 0; base < N; base += kThreads) {
    const int n = base + threadIdx.x;
    const int row = n < N ? tokens[n] - vocab_start : -1;
    const bool hit = row >= row_begin && row < row_end;
    const unsigned mask = __ballot_sync(0xffffffffu, hit);
    if (lane == 0) warp_hits[warp] = __popc(mask);
    __syncthreads();
    int before = 0, total = 0;  // hits in earlier warps of this chunk, and in the whole chunk
    for (int w = 0; w < kWarps; ++w) {
      before += w < warp ? warp_hits[w] : 0;
      total += warp_hits[w];
    }
    if (hit) hit_token[before + __popc(mask & ((1u << lane) - 1u))] = n;
    __syncthreads();
    for (int i = 0; i < total; ++i) {  // in token order; each thread owns the same columns throughout
      const int t = hit_token[i];
      float* dst = dwte + static_cast<size_t>(tokens[t] - vocab_start) * C;
      const bf16* src = dout + static_cast<size_t>(t) * C;
      for (int c = threadIdx.x; c < C; c += kThreads) dst[c] += __bfloat162float(src[c]);
    }
    __syncthreads();  // hit_token and warp_hits are rewritten by the next chunk
  }
}

}  // namespace

void embedding_forward(bf16* out, const int32_t* tokens, const bf16* wte, int N, int C, int vocab_start, int V_local,
                       cudaStream_t stream) {
  if (N == 0) return;
  embedding_forward_kernel<<<N, kThreads, 0, stream>>>(out, tokens, wte, C, vocab_start, V_local);
  IRIS_CUDA_CHECK_LAUNCH();
}

void embedding_backward(float* dwte, const bf16* dout, const int32_t* tokens, int N, int C, int vocab_start,
                        int V_local, cudaStream_t stream) {
  if (N == 0 || V_local == 0) return;
  const int blocks = V_local < kMaxBackwardBlocks ? V_local : kMaxBackwardBlocks;
  const int rows_per_block = static_cast<int>(ceil_div(V_local, blocks));
  embedding_backward_kernel<<<ceil_div(V_local, rows_per_block), kThreads, 0, stream>>>(
      dwte, dout, tokens, N, C, vocab_start, rows_per_block, V_local);
  IRIS_CUDA_CHECK_LAUNCH();
}

}  // namespace iris::cuda
