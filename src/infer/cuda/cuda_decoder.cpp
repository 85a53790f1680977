// CudaDecoder (src/infer/cuda_decoder.h): the CpuDecoder's forward with the CUDA kernels, on one stream. Host
// compiled (it includes only the host-clean kernel headers). Buffers: the bf16 weights (ParamTable layout),
// the bf16 KV cache (L, slots, NKV, T_max, HS) ×2, and one scratch arena sized for a T_max-row prefill.
#include <algorithm>
#include <vector>

#include "src/core/check.h"
#include "src/core/dtype.h"
#include "src/infer/cuda_decoder.h"
#include "src/kernels/cuda/attention.cuh"
#include "src/kernels/cuda/decode_attention.cuh"
#include "src/kernels/cuda/elementwise.cuh"
#include "src/kernels/cuda/embedding.cuh"
#include "src/kernels/cuda/matmul.cuh"
#include "src/kernels/cuda/rmsnorm.cuh"
#include "src/kernels/cuda/rope.cuh"
#include "src/kernels/cuda/swiglu.cuh"
#include "src/model/cuda/device_arena.h"
#include "src/model/param_table.h"

namespace iris::infer {
namespace {

using cuda::bf16;

class CudaDecoder : public Decoder {
 public:
  CudaDecoder(const LlamaConfig& config, const float* params, int slots, int T_max);
  ~CudaDecoder() override {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  void prefill(float* logits, int slot, const int32_t* tokens, int T) override;
  void decode(float* logits, const int32_t* slot, const int32_t* tokens, int B) override;
  int length(int slot) const override { return lengths_[slot]; }
  int slots() const override { return slots_; }
  int max_positions() const override { return T_max_; }

 private:
  // Uploads tokens, slot and pos (N,) and runs the embedding and every layer; leaves the final norm in ln_.
  void forward_rows(const int32_t* tokens, const int32_t* slot, const int32_t* pos, int N, bool prefill);
  // logits (N, V) host = rows [first, first + N) of ln_ through the LM head.
  void head(float* logits, int first, int N);
  template <typename T>
  void upload(T* dst, const T* src, size_t n) {
    IRIS_CUDA_CHECK(cudaMemcpyAsync(dst, src, n * sizeof(T), cudaMemcpyHostToDevice, stream_));
  }

  LlamaConfig config_;
  StageOffsets offsets_;
  int slots_, T_max_, C_, HS_, NH_, NKV_, F_, V_;
  cudaStream_t stream_ = nullptr;
  cuda::Matmul matmul_;
  DeviceArena weights_arena_, cache_arena_, scratch_arena_;
  bf16* weights_ = nullptr;
  std::vector<bf16*> k_cache_, v_cache_;     // (L,) of (slots, NKV, T_max, HS)
  bf16 *resid_, *ln_, *tmp_, *q_, *k_, *v_, *att_, *gate_, *up_;  // (T_max, width)
  float *rstd_, *lse_, *cos_, *sin_, *inv_freq_, *logits_;       // logits (max(slots, 1), V)
  int32_t *tokens_, *slot_, *pos_, *len_;                        // (T_max,)
  std::vector<int32_t> lengths_;                                 // host (slots,)
};

CudaDecoder::CudaDecoder(const LlamaConfig& config, const float* params, int slots, int T_max)
    : config_(config), slots_(slots), T_max_(T_max), lengths_(static_cast<size_t>(slots), 0) {
  const Topology topo;
  const StageLayers layers{0, config.num_hidden_layers};
  const ParamTable table = ParamTable::build(config, topo, layers);
  offsets_ = stage_offsets(config, topo, table, layers);
  C_ = config.hidden_size, HS_ = config.head_dim, NH_ = config.num_attention_heads;
  NKV_ = config.num_key_value_heads, F_ = config.intermediate_size, V_ = config.vocab_size;
  IRIS_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));

  const size_t numel = table.total_numel();
  for (int pass = 0; pass < 2; ++pass) {  // size, then allocate and hand out (DeviceArena)
    if (pass == 1) weights_arena_.allocate(), cache_arena_.allocate(), scratch_arena_.allocate();
    weights_ = weights_arena_.take<bf16>(numel);
    k_cache_.clear(), v_cache_.clear();
    const size_t cache = static_cast<size_t>(slots) * NKV_ * T_max * HS_;
    for (int l = 0; l < config.num_hidden_layers; ++l)
      k_cache_.push_back(cache_arena_.take<bf16>(cache)), v_cache_.push_back(cache_arena_.take<bf16>(cache));
    const size_t N = static_cast<size_t>(T_max);
    auto& a = scratch_arena_;
    resid_ = a.take<bf16>(N * C_), ln_ = a.take<bf16>(N * C_), tmp_ = a.take<bf16>(N * C_);
    q_ = a.take<bf16>(N * NH_ * HS_), att_ = a.take<bf16>(N * NH_ * HS_);
    k_ = a.take<bf16>(N * NKV_ * HS_), v_ = a.take<bf16>(N * NKV_ * HS_);
    gate_ = a.take<bf16>(N * F_), up_ = a.take<bf16>(N * F_);
    rstd_ = a.take<float>(N), lse_ = a.take<float>(N * NH_), cos_ = a.take<float>(N * HS_ / 2);
    sin_ = a.take<float>(N * HS_ / 2), inv_freq_ = a.take<float>(HS_ / 2);
    logits_ = a.take<float>(static_cast<size_t>(std::max(slots, 1)) * offsets_.V_local);
    tokens_ = a.take<int32_t>(N), slot_ = a.take<int32_t>(N), pos_ = a.take<int32_t>(N), len_ = a.take<int32_t>(N);
  }
  // bf16 weights, converted on the host a chunk at a time (round to nearest even, as __float2bfloat16_rn).
  std::vector<uint16_t> chunk;
  constexpr size_t kChunk = size_t{1} << 22;
  for (size_t begin = 0; begin < numel; begin += kChunk) {
    const size_t n = std::min(kChunk, numel - begin);
    chunk.resize(n);
    for (size_t i = 0; i < n; ++i) chunk[i] = float_to_bf16(params[begin + i]);
    IRIS_CUDA_CHECK(cudaMemcpy(weights_ + begin, chunk.data(), n * 2, cudaMemcpyHostToDevice));
  }
  const std::vector<float> inv_freq = config.rope_inv_freq();
  IRIS_CUDA_CHECK(cudaMemcpy(inv_freq_, inv_freq.data(), inv_freq.size() * 4, cudaMemcpyHostToDevice));
}

void CudaDecoder::forward_rows(const int32_t* tokens, const int32_t* slot, const int32_t* pos, int N, bool prefill) {
  const size_t NC = static_cast<size_t>(N) * C_;
  const int QW = NH_ * HS_, KW = NKV_ * HS_;
  const float eps = static_cast<float>(config_.rms_norm_eps);
  const bf16* W = weights_;
  upload(tokens_, tokens, N), upload(slot_, slot, N), upload(pos_, pos, N);
  cuda::rope_tables(cos_, sin_, pos_, inv_freq_, N, HS_, stream_);
  cuda::embedding_forward(resid_, tokens_, W + offsets_.embed, N, C_, 0, static_cast<int>(offsets_.V_local), stream_);
  if (!prefill) {  // each row attends to its cache up to and including the position written below
    std::vector<int32_t> len(static_cast<size_t>(N));
    for (int n = 0; n < N; ++n) len[n] = pos[n] + 1;
    upload(len_, len.data(), N);
  }
  for (size_t l = 0; l < offsets_.layers.size(); ++l) {
    const auto& w = offsets_.layers[l];
    cuda::rmsnorm_forward(ln_, rstd_, resid_, W + w.ln1, N, C_, eps, stream_);
    matmul_.forward(q_, ln_, W + w.q, N, C_, QW, stream_);
    matmul_.forward(k_, ln_, W + w.k, N, C_, KW, stream_);
    matmul_.forward(v_, ln_, W + w.v, N, C_, KW, stream_);
    cuda::rope_forward(q_, cos_, sin_, N, NH_, HS_, stream_);
    cuda::rope_forward(k_, cos_, sin_, N, NKV_, HS_, stream_);
    cuda::kv_cache_write(k_cache_[l], v_cache_[l], k_, v_, slot_, pos_, N, NKV_, HS_, T_max_, stream_);
    if (prefill)
      cuda::attention_forward(att_, lse_, q_, k_, v_, nullptr, 1, N, NH_, NKV_, HS_, stream_);
    else
      cuda::decode_attention_forward(att_, q_, k_cache_[l], v_cache_[l], slot_, len_, N, NH_, NKV_, HS_, T_max_,
                                     stream_);
    matmul_.forward(tmp_, att_, W + w.o, N, QW, C_, stream_);
    cuda::add_bf16(resid_, resid_, tmp_, NC, stream_);
    cuda::rmsnorm_forward(ln_, rstd_, resid_, W + w.ln2, N, C_, eps, stream_);
    matmul_.forward(gate_, ln_, W + w.gate, N, C_, F_, stream_);
    matmul_.forward(up_, ln_, W + w.up, N, C_, F_, stream_);
    cuda::swiglu_forward(gate_, gate_, up_, N, F_, stream_);
    matmul_.forward(tmp_, gate_, W + w.down, N, F_, C_, stream_);
    cuda::add_bf16(resid_, resid_, tmp_, NC, stream_);
  }
  cuda::rmsnorm_forward(ln_, rstd_, resid_, W + offsets_.norm, N, C_, eps, stream_);
}

void CudaDecoder::head(float* logits, int first, int N) {
  const int VL = static_cast<int>(offsets_.V_local);
  matmul_.forward(logits_, ln_ + static_cast<size_t>(first) * C_, weights_ + offsets_.head, N, C_, VL, stream_);
  // fp32 logits, the valid vocabulary of each row (tp = 1: V_local is V).
  IRIS_CUDA_CHECK(cudaMemcpy2DAsync(logits, V_ * sizeof(float), logits_, VL * sizeof(float), V_ * sizeof(float), N,
                                    cudaMemcpyDeviceToHost, stream_));
  IRIS_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaDecoder::prefill(float* logits, int slot, const int32_t* tokens, int T) {
  IRIS_CHECK(T >= 1 && T <= T_max_, "prefill of {} tokens into a cache of {} positions", T, T_max_);
  std::vector<int32_t> pos(static_cast<size_t>(T)), slots(static_cast<size_t>(T), slot);
  for (int t = 0; t < T; ++t) pos[t] = t;
  forward_rows(tokens, slots.data(), pos.data(), T, /*prefill=*/true);
  lengths_[slot] = T;
  head(logits, T - 1, 1);
}

void CudaDecoder::decode(float* logits, const int32_t* slot, const int32_t* tokens, int B) {
  std::vector<int32_t> pos(static_cast<size_t>(B));
  for (int b = 0; b < B; ++b) {
    pos[b] = lengths_[slot[b]];
    IRIS_CHECK(pos[b] < T_max_, "decode past the cache's {} positions", T_max_);
  }
  forward_rows(tokens, slot, pos.data(), B, /*prefill=*/false);
  for (int b = 0; b < B; ++b) lengths_[slot[b]] += 1;
  head(logits, 0, B);
}

}  // namespace

std::unique_ptr<Decoder> make_cuda_decoder(const LlamaConfig& config, const float* params, int slots, int T_max) {
  int devices = 0;
  const cudaError_t rc = cudaGetDeviceCount(&devices);
  IRIS_USER_CHECK(rc == cudaSuccess && devices > 0, "--device cuda: no usable CUDA device ({})",
                  rc == cudaSuccess ? "none found" : cudaGetErrorString(rc));
  return std::make_unique<CudaDecoder>(config, params, slots, T_max);
}

}  // namespace iris::infer
