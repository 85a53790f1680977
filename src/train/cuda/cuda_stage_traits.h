// The pipeline executor's view of the CUDA stage (src/train/pipeline_executor.h): bf16 activations in
// device transfer buffers, sent through a DeviceComm as raw bytes counted in floats; the gradient buffer
// is untyped, fp32 or bf16 as the stage was constructed (train.grad_dtype).
#pragma once
#include "src/model/cuda/llama_stage.h"
#include "src/core/device_buffer.h"
#include "src/train/pipeline_executor.h"

namespace iris {

template <>
struct StageTraits<CudaLlamaStage> {
  using Activations = CudaStageActivations;
  using Element = bf16;
  using Buffer = DeviceBuffer<bf16>;
  using Grad = void;  // CudaLlamaStage::grad_dtype()
};

using CudaPipelineExecutor = PipelineExecutorT<CudaLlamaStage>;

}  // namespace iris
