// Peak host memory (RSS) of rank 0 of the CPU trainer as it exists today (src/train/trainer.cpp): fp32
// weights and gradients, the ZeRO-1 shard's Adam m, v (the fp32 weight buffer is the master copy), the
// StageActivations of src/model/llama.h times the activation sets 1F1B keeps alive on stage 0, the
// backward scratch, pipeline and DP staging buffers, batches, and a measured process baseline
// (MPI, OpenBLAS, OpenMP and the C++ runtime; how it was measured: docs/planning.md). Rank 0 is the
// first pipeline stage, TP rank 0, DP rank 0, and is the rank whose peak RSS metrics.jsonl reports.
#pragma once
#include <cstddef>

#include "src/model/llama.h"  // Recompute
#include "src/model/llama_config.h"

namespace iris::plan {

struct CpuRun {
  int world = 1, tp = 1, pp = 1;
  int micro_batch = 8, grad_accum = 1, seq_len = 128;
  double bucket_mb = 16;  // parallel.bucket_mb
  Recompute recompute = Recompute::None;  // train.recompute
};

struct CpuMemory {  // bytes
  double weights = 0, gradients = 0, adam = 0, norm_mask = 0, dp_staging = 0;  // dp_staging: ours + MPI's
  double activations = 0, pipeline_buffers = 0, backward_scratch = 0, batches = 0, baseline = 0;
  int activation_sets = 0;
  double total() const {
    return weights + gradients + adam + norm_mask + dp_staging + activations + pipeline_buffers + backward_scratch +
           batches + baseline;
  }
};

// Floats in one StageActivations of the given stage (mirrors LlamaStage::make_activations; a unit
// test holds the two together).
size_t stage_activation_floats(const LlamaConfig& config, int tp, int pp, int stage, int B, int T,
                               Recompute recompute = Recompute::None);
// Floats of the stage's recompute set (LlamaStage's scratch besides the backward scratch): one layer's
// worth of what `recompute` drops; 0 for none.
size_t recompute_set_floats(const LlamaConfig& config, int tp, int B, int T, Recompute recompute);

// Rank 0's peak RSS; baseline_mib is the process baseline for `world` ranks on one host
// (cpu_process_baseline_mib gives the documented measured value).
CpuMemory cpu_rank0_memory(const LlamaConfig& config, const CpuRun& run, double baseline_mib);
double cpu_process_baseline_mib(int world);

}  // namespace iris::plan
