// The generation forward on one GPU: bf16 weights, activations and KV cache, fp32 statistics and logits, the
// training CUDA kernels (cuBLASLt GEMMs, RMSNorm, RoPE, SwiGLU, embedding, flash attention for the prefill)
// plus decode attention and the cache append (src/kernels/cuda/decode_attention.cuh). Same contract as
// CpuDecoder, which is its reference (tests/gpu/test_gpu_generate.cpp). tp = 1 only so far.
#pragma once
#include <memory>

#include "src/infer/decoder.h"
#include "src/model/llama_config.h"

namespace iris::infer {

// A CudaDecoder, or UserError saying why not (a build without CUDA, no device, tp > 1).
// params: the fp32 flat buffer of ParamTable::build(config, tp = 1 topology, every layer), copied to the GPU
// as bf16.
std::unique_ptr<Decoder> make_cuda_decoder(const LlamaConfig& config, const float* params, int slots, int T_max);

}  // namespace iris::infer
