// Embedding gather, and a deterministic scatter-add for its backward. The backward gives each thread
// block a fixed range of vocab rows; the block scans all N tokens in order, compacts the ones that fall
// in its range (ballot + prefix count, so order is kept), and adds their dout rows one after another.
// A row is only ever written by one block and its tokens are added in token order: no float atomics,
// and the same sum order as cpu::embedding_backward.
// The bf16-gradient backward cannot add token by token (each add would round the bf16 row): it sorts the
// tokens by row instead, so each row's tokens are one run, summed in fp32 and added once.
#include "src/kernels/cuda/embedding.cuh"

#include <cub/device/device_radix_sort.cuh>

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

// keys[n] = the token's row in this shard, or V_local (sorts last, skipped) outside it; token_index[n] = n.
static __global__ void embedding_sort_keys_kernel(uint32_t* keys, int32_t* token_index, const int32_t* tokens, int N,
                                                  int vocab_start, int V_local) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  const int row = tokens[n] - vocab_start;
  keys[n] = row >= 0 && row < V_local ? static_cast<uint32_t>(row) : static_cast<uint32_t>(V_local);
  token_index[n] = n;
}

// One block per position i of the sorted keys; the block at the start of a run of equal in-shard keys
// sums that run (token order: the radix sort is stable) in fp32, each thread over its own columns, and
// adds the sum to the bf16 row once. The other blocks return at once.
static __global__ void embedding_backward_runs_kernel(bf16* dwte, const bf16* dout, const uint32_t* keys,
                                                      const int32_t* token_index, int N, int C, int V_local) {
  const int i = blockIdx.x;
  const uint32_t key = keys[i];
  if (key == static_cast<uint32_t>(V_local) || (i > 0 && keys[i - 1] == key)) return;
  int end = i + 1;
  while (end < N && keys[end] == key) ++end;
  bf16* dst = dwte + static_cast<size_t>(key) * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float sum = 0.0f;
    for (int j = i; j < end; ++j) sum += __bfloat162float(dout[static_cast<size_t>(token_index[j]) * C + c]);
    dst[c] = __float2bfloat16_rn(__bfloat162float(dst[c]) + sum);
  }
}

// The bf16 backward's workspace: sort keys and token indices in and out, then CUB's temporary storage.
struct SortWorkspace {
  uint32_t *keys_in, *keys_out;
  int32_t *index_in, *index_out;
  void* temp;
  size_t temp_bytes;
};

size_t aligned(size_t bytes) { return (bytes + 255) / 256 * 256; }

// Keys lie in [0, V_local]: sorting only their low bits is enough and faster.
int key_bits(int V_local) {
  int bits = 1;
  while ((uint64_t{1} << bits) <= static_cast<uint64_t>(V_local)) ++bits;
  return bits;
}

size_t sort_temp_bytes(int N, int V_local) {
  size_t bytes = 0;
  IRIS_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, bytes, static_cast<const uint32_t*>(nullptr),
                                                  static_cast<uint32_t*>(nullptr), static_cast<const int32_t*>(nullptr),
                                                  static_cast<int32_t*>(nullptr), N, 0, key_bits(V_local)));
  return bytes;
}

SortWorkspace carve_sort_workspace(void* workspace, int N, int V_local) {
  char* p = static_cast<char*>(workspace);
  const size_t list = aligned(static_cast<size_t>(N) * 4);
  SortWorkspace w;
  w.keys_in = reinterpret_cast<uint32_t*>(p);
  w.keys_out = reinterpret_cast<uint32_t*>(p + list);
  w.index_in = reinterpret_cast<int32_t*>(p + 2 * list);
  w.index_out = reinterpret_cast<int32_t*>(p + 3 * list);
  w.temp = p + 4 * list;
  w.temp_bytes = sort_temp_bytes(N, V_local);
  return w;
}

}  // namespace

size_t embedding_backward_workspace_bytes(int N, int V_local) {
  if (N == 0 || V_local == 0) return 0;
  return 4 * aligned(static_cast<size_t>(N) * 4) + aligned(sort_temp_bytes(N, V_local));
}

void embedding_backward(bf16* dwte, const bf16* dout, const int32_t* tokens, int N, int C, int vocab_start,
                        int V_local, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  if (N == 0 || V_local == 0) return;
  IRIS_CUDA_REQUIRE(workspace != nullptr && workspace_bytes >= embedding_backward_workspace_bytes(N, V_local),
                    "embedding_backward (bf16 gradient): workspace smaller than embedding_backward_workspace_bytes");
  SortWorkspace w = carve_sort_workspace(workspace, N, V_local);
  embedding_sort_keys_kernel<<<ceil_div(N, kThreads), kThreads, 0, stream>>>(w.keys_in, w.index_in, tokens, N,
                                                                             vocab_start, V_local);
  IRIS_CUDA_CHECK_LAUNCH();
  IRIS_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(w.temp, w.temp_bytes, w.keys_in, w.keys_out, w.index_in,
                                                  w.index_out, N, 0, key_bits(V_local), stream));
  embedding_backward_runs_kernel<<<N, kThreads, 0, stream>>>(dwte, dout, w.keys_out, w.index_out, N, C, V_local);
  IRIS_CUDA_CHECK_LAUNCH();
}

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
