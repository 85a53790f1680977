// The whole GPU model stage (CudaLlamaStage, bf16) against the CPU stage (LlamaStage, fp32, the reference)
// on a tiny Llama: C 128, 2 query heads / 1 KV head of HS 64 (the tensor-core attention path, GQA ratio 2),
// F 256, 2 layers, V 256, untied head; micro-batch B 2, T 32. Same initial weights (ParamTable::initialize,
// the CPU fed the bf16-rounded copy the GPU reads), same batch, skipped without a GPU.
// Stated tolerances (bf16 weights/activations: 2^-8 ≈ 4e-3 relative per rounding, compounded over layers):
//   loss                                 relative 2e-2; per-token losses atol 5e-2 + rtol 2e-2
//   each parameter gradient              ‖g_gpu − g_cpu‖₂ ≤ 5e-2 · ‖g_cpu‖₂
//   5 AdamW steps (fp32 master weights)  every step's loss relative 2e-2
//   two GPU runs                         bit-identical losses, weights and gradients
//   recompute selective / full vs none   bit-identical losses and gradients (deterministic kernels re-run
//                                        on the same inputs)
//   bf16 gradients vs fp32 gradients     two micro-batches: each parameter's ‖g_bf16 − g_fp32‖₂ ≤ 1e-2 ·
//                                        ‖g_fp32‖₂ (every kernel rounds its fp32 contribution into the bf16
//                                        gradient once per micro-batch, ≤ 2^-9 relative each; two of them
//                                        stay below 4e-3), losses bit-identical (forward is unchanged)
// Host C++ (not nvcc) because it includes the model headers.
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "src/core/rng.h"
#include "src/kernels/cpu/ops.h"
#include "src/kernels/cuda/adamw.cuh"
#include "src/kernels/cuda/elementwise.cuh"
#include "src/model/cuda/llama_stage.h"
#include "src/model/llama.h"
#include "tests/gpu/gpu_model_test_util.h"
#include "tests/gpu/gpu_test_util.h"

namespace iris::test {
namespace {

constexpr double kLossRtol = 2e-2;
constexpr double kGradRelL2 = 5e-2;
constexpr double kBf16GradRelL2 = 1e-2;

LlamaConfig tiny_config() {  // C 128, 2 query heads over 1 KV head of 64, F 256
  return tiny_gpu_config(128, 256, 2, 1, "tiny-gpu");
}

// The model, its table and initial fp32 weights (norm weights moved away from 1 so their paths count).
struct Model {
  LlamaConfig config = tiny_config();
  Topology topo = Topology::make(1, 0, 1, 1);
  StageLayers layers = stage_layers(config.num_hidden_layers, 1, 0);
  ParamTable table = ParamTable::build(config, topo, layers);
  std::vector<float> init;
  Model() : init(table.total_numel()) {
    table.initialize(init.data(), 7);
    for (const auto& e : table.entries())
      if (e.init_std == 0.0)
        for (size_t i = 0; i < e.numel; ++i)
          init[e.offset + i] = 1.0f + 0.2f * static_cast<float>(random_normal(3, 9, e.offset + i));
  }
};

// AdamW hyperparameters (the trainer's defaults); weight decay only on the tensors the table marks.
struct AdamwSettings {
  float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0.1f;
  float decay(const ParamEntry& e) const { return e.weight_decay ? weight_decay : 0.0f; }
};

// One GPU training state: fp32 master weights, their bf16 copy, fp32 gradients and Adam moments.
struct GpuRun {
  const Model& model;
  CudaLlamaStage stage;
  std::unique_ptr<CudaStageActivations> acts;
  DeviceBuffer<float> master, grads, m, v;
  DeviceBuffer<bf16> weights;
  explicit GpuRun(const Model& md, Recompute recompute = Recompute::None)
      : model(md), stage(md.config, md.topo, md.table, md.layers, B, T, nullptr, nullptr, recompute),
        acts(stage.make_activations()),
        master(md.init), grads(md.init.size()), m(md.init.size()), v(md.init.size()), weights(md.init.size()) {
    const size_t n = md.init.size();
    cuda::cast_f32_to_bf16(weights.get(), master.get(), n, nullptr);
    for (DeviceBuffer<float>* b : {&grads, &m, &v}) IRIS_CUDA_CHECK(cudaMemset(b->get(), 0, n * sizeof(float)));
  }
  double forward_backward(const Batch& batch) {
    const MicroBatch mb = batch.view();
    const double loss = stage.forward(*acts, weights.get(), mb, nullptr);
    stage.backward(*acts, weights.get(), grads.get(), mb, nullptr, nullptr);
    IRIS_CUDA_CHECK(cudaDeviceSynchronize());
    return loss;
  }
  // What the trainer's AdamW::update does per tensor, on the device (writes the bf16 copy the next
  // forward reads).
  void adamw(const AdamwSettings& c, float lr, int step) {
    for (const auto& e : model.table.entries())
      cuda::adamw_update(master.get() + e.offset, weights.get() + e.offset, m.get() + e.offset, v.get() + e.offset,
                         grads.get() + e.offset, e.numel, lr, c.beta1, c.beta2, c.eps, c.decay(e), step, 1.0f,
                         nullptr);
    IRIS_CUDA_CHECK(cudaMemset(grads.get(), 0, grads.size() * sizeof(float)));
  }
};

struct CpuRun {
  LlamaStage stage;
  std::unique_ptr<StageActivations> acts;
  std::vector<float> params, grads, m, v;
  // bf16_weights: start from the weights rounded to bf16, exactly what the GPU's first forward reads.
  CpuRun(const Model& md, bool bf16_weights)
      : stage(md.config, md.topo, md.table, md.layers, B, T, nullptr), acts(stage.make_activations()),
        params(bf16_weights ? round_bf16(md.init) : md.init), grads(md.init.size(), 0.0f),
        m(md.init.size(), 0.0f), v(md.init.size(), 0.0f) {}
  double forward_backward(const Batch& batch) {
    const MicroBatch mb = batch.view();
    const double loss = stage.forward(*acts, params.data(), mb, nullptr);
    stage.backward(*acts, params.data(), grads.data(), mb, nullptr, nullptr);
    return loss;
  }
  void adamw(const ParamTable& table, const AdamwSettings& c, float lr, int step) {
    for (const auto& e : table.entries())
      cpu::adamw_update(params.data() + e.offset, m.data() + e.offset, v.data() + e.offset, grads.data() + e.offset,
                        e.numel, lr, c.beta1, c.beta2, c.eps, c.decay(e), step, 1.0f);
    std::fill(grads.begin(), grads.end(), 0.0f);
  }
};

double relative_l2(const float* got, const float* ref, size_t n, double* ref_norm = nullptr) {
  double d2 = 0, r2 = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(got[i]) - ref[i];
    d2 += d * d;
    r2 += static_cast<double>(ref[i]) * ref[i];
  }
  if (ref_norm) *ref_norm = std::sqrt(r2);
  return r2 > 0 ? std::sqrt(d2 / r2) : std::sqrt(d2);
}

// Forward loss, per-token losses and every parameter's gradient, GPU vs CPU.
void compare_one_step(bool packed) {
  const Model model;
  const Batch batch = make_batch(model.config.vocab_size, packed);
  CpuRun cpu(model, /*bf16_weights=*/true);
  GpuRun gpu(model);
  const double cpu_loss = cpu.forward_backward(batch);
  const double gpu_loss = gpu.forward_backward(batch);
  std::printf("  loss: cpu %.6f gpu %.6f rel %.3e (tol %.1e)\n", cpu_loss, gpu_loss,
              std::fabs(gpu_loss - cpu_loss) / std::fabs(cpu_loss), kLossRtol);
  EXPECT_NEAR(gpu_loss, cpu_loss, kLossRtol * std::fabs(cpu_loss));
  EXPECT_GT(std::fabs(cpu_loss - std::log(256.0)), 0.05) << "the model is too close to uniform to test anything";
  EXPECT_TRUE(all_close("per-token losses", gpu.acts->host_losses,
                        std::vector<float>(cpu.acts->losses, cpu.acts->losses + N), 5e-2, 2e-2));

  const std::vector<float> gpu_grads = gpu.grads.download();
  for (const auto& e : model.table.entries()) {
    double ref_norm = 0;
    const double rel = relative_l2(gpu_grads.data() + e.offset, cpu.grads.data() + e.offset, e.numel, &ref_norm);
    std::printf("  grad %-48s |ref| %.3e rel_l2 %.3e\n", e.name.c_str(), ref_norm, rel);
    EXPECT_GT(ref_norm, 0.0) << e.name << ": zero reference gradient";
    EXPECT_LE(rel, kGradRelL2) << e.name;
  }
}

TEST(GpuModel, OneStepLossAndEveryGradientMatchCpu) {
  IRIS_REQUIRE_GPU();
  compare_one_step(/*packed=*/false);
}

TEST(GpuModel, PackedDocumentsWithRestartedPositionsMatchCpu) {
  IRIS_REQUIRE_GPU();
  compare_one_step(/*packed=*/true);
}

// train.grad_dtype = bf16: the same stage accumulating into a bf16 buffer, two micro-batches (so bf16 +=
// is exercised), against the fp32-gradient stage on the same bf16 weights (header: tolerance).
TEST(GpuModel, Bf16GradientsMatchFp32Gradients) {
  IRIS_REQUIRE_GPU();
  const Model model;
  const Batch plain = make_batch(model.config.vocab_size, false), packed = make_batch(model.config.vocab_size, true);
  GpuRun fp32(model);
  CudaLlamaStage stage(model.config, model.topo, model.table, model.layers, B, T, nullptr, nullptr, Recompute::None,
                       DType::BF16);
  EXPECT_EQ(stage.grad_dtype(), DType::BF16);
  auto acts = stage.make_activations();
  DeviceBuffer<bf16> grads(to_bf16(std::vector<float>(model.init.size(), 0.0f)));
  for (const Batch* batch : {&plain, &packed}) {
    const double ref_loss = fp32.forward_backward(*batch);
    const MicroBatch mb = batch->view();
    const double loss = stage.forward(*acts, fp32.weights.get(), mb, nullptr);
    stage.backward(*acts, fp32.weights.get(), grads.get(), mb, nullptr, nullptr);
    IRIS_CUDA_CHECK(cudaDeviceSynchronize());
    EXPECT_EQ(loss, ref_loss);
  }
  const std::vector<float> got = download_as_float(grads), ref = fp32.grads.download();
  for (const auto& e : model.table.entries()) {
    double ref_norm = 0;
    const double rel = relative_l2(got.data() + e.offset, ref.data() + e.offset, e.numel, &ref_norm);
    std::printf("  bf16 grad %-43s |ref| %.3e rel_l2 %.3e\n", e.name.c_str(), ref_norm, rel);
    EXPECT_GT(ref_norm, 0.0) << e.name << ": zero reference gradient";
    EXPECT_LE(rel, kBf16GradRelL2) << e.name;
  }
}

// Parameter gradients accumulate (+=) over micro-batches: two identical passes give twice one pass. The
// kernels are deterministic and g + g is exact in fp32, but a split-K GEMM may add its partial sums into
// the gradient one at a time, so allow fp32 rounding (rtol 1e-5); writing (=) instead would be off by 50%.
TEST(GpuModel, GradientsAccumulateAcrossMicroBatches) {
  IRIS_REQUIRE_GPU();
  const Model model;
  const Batch batch = make_batch(model.config.vocab_size, true);
  GpuRun gpu(model);
  gpu.forward_backward(batch);
  std::vector<float> twice = gpu.grads.download();
  for (float& g : twice) g *= 2.0f;
  gpu.forward_backward(batch);
  EXPECT_TRUE(all_close("grads after two micro-batches", gpu.grads.download(), twice, 1e-9, 1e-5));
}

constexpr int kSteps = 5;
constexpr float kLr = 3e-4f;  // the CPU loss falls 5.91 → 3.75 over the 5 steps (packed batch)

// kSteps AdamW steps on the same batch; returns the loss before each step.
std::vector<double> train_gpu(GpuRun& gpu, const Batch& batch) {
  std::vector<double> losses;
  for (int step = 1; step <= kSteps; ++step) {
    losses.push_back(gpu.forward_backward(batch));
    gpu.adamw(AdamwSettings{}, kLr, step);
  }
  IRIS_CUDA_CHECK(cudaDeviceSynchronize());
  return losses;
}

TEST(GpuModel, FiveAdamwStepsMatchCpuLosses) {
  IRIS_REQUIRE_GPU();
  const Model model;
  const Batch batch = make_batch(model.config.vocab_size, true);
  CpuRun cpu(model, /*bf16_weights=*/false);  // fp32 master weights on both sides
  std::vector<double> cpu_losses;
  for (int step = 1; step <= kSteps; ++step) {
    cpu_losses.push_back(cpu.forward_backward(batch));
    cpu.adamw(model.table, AdamwSettings{}, kLr, step);
  }
  GpuRun gpu(model);
  const std::vector<double> gpu_losses = train_gpu(gpu, batch);
  for (int s = 0; s < kSteps; ++s) {
    std::printf("  step %d loss: cpu %.6f gpu %.6f rel %.3e (tol %.1e)\n", s + 1, cpu_losses[s], gpu_losses[s],
                std::fabs(gpu_losses[s] - cpu_losses[s]) / std::fabs(cpu_losses[s]), kLossRtol);
    EXPECT_NEAR(gpu_losses[s], cpu_losses[s], kLossRtol * std::fabs(cpu_losses[s])) << "step " << s + 1;
  }
  // Training has to move the loss, or the comparison above says nothing about the optimizer.
  EXPECT_LT(cpu_losses.back(), cpu_losses.front() - 0.05);
  EXPECT_LT(gpu_losses.back(), gpu_losses.front() - 0.05);
  // The weight updates agree in direction and size; elements whose gradient is near zero may take Adam's
  // ±lr step with opposite signs (bf16 noise decides), hence the loose bound.
  const std::vector<float> gpu_master = gpu.master.download();
  std::vector<float> gpu_update(model.init.size()), cpu_update(model.init.size());
  for (size_t i = 0; i < model.init.size(); ++i) {
    gpu_update[i] = gpu_master[i] - model.init[i];
    cpu_update[i] = cpu.params[i] - model.init[i];
  }
  const double rel = relative_l2(gpu_update.data(), cpu_update.data(), cpu_update.size());
  std::printf("  weight update after %d steps: rel_l2 %.3e (tol 2.5e-1)\n", kSteps, rel);
  EXPECT_LE(rel, 0.25);
}

TEST(GpuModel, TwoRunsAreBitIdentical) {
  IRIS_REQUIRE_GPU();
  const Model model;
  const Batch batch = make_batch(model.config.vocab_size, true);
  GpuRun first(model), second(model);
  const std::vector<double> a = train_gpu(first, batch), b = train_gpu(second, batch);
  for (int s = 0; s < kSteps; ++s) {
    std::printf("  step %d loss: run 1 %.9f run 2 %.9f\n", s + 1, a[s], b[s]);
    EXPECT_EQ(a[s], b[s]) << "step " << s + 1;
  }
  EXPECT_TRUE(all_close("master weights of two runs", second.master.download(), first.master.download(), 0.0, 0.0));
}

// Recomputation changes what a micro-batch keeps, not the math: two micro-batches in flight (F0 F1 B0 B1,
// so the stage's shared recompute set is overwritten between a forward and its backward), packed and not.
TEST(GpuModel, RecomputeModesAreBitIdenticalToNone) {
  IRIS_REQUIRE_GPU();
  const Model model;
  const Batch first = make_batch(model.config.vocab_size, true), second = make_batch(model.config.vocab_size, false);
  struct Result {
    double loss[2];
    std::vector<float> grads;
  };
  auto run = [&](Recompute mode) {
    GpuRun gpu(model, mode);
    auto other = gpu.stage.make_activations();
    Result r;
    r.loss[0] = gpu.stage.forward(*gpu.acts, gpu.weights.get(), first.view(), nullptr);
    r.loss[1] = gpu.stage.forward(*other, gpu.weights.get(), second.view(), nullptr);
    gpu.stage.backward(*gpu.acts, gpu.weights.get(), gpu.grads.get(), first.view(), nullptr, nullptr);
    gpu.stage.backward(*other, gpu.weights.get(), gpu.grads.get(), second.view(), nullptr, nullptr);
    r.grads = gpu.grads.download();
    std::printf("  recompute %-9s activations %zu bytes per micro-batch, stage scratch %zu bytes\n", to_string(mode),
                gpu.acts->arena.capacity_bytes(), gpu.stage.scratch_bytes());
    return r;
  };
  const Result none = run(Recompute::None);
  for (Recompute mode : {Recompute::Selective, Recompute::Full}) {
    const Result r = run(mode);
    EXPECT_EQ(r.loss[0], none.loss[0]) << to_string(mode);
    EXPECT_EQ(r.loss[1], none.loss[1]) << to_string(mode);
    EXPECT_TRUE(all_close(std::string("gradients, recompute ") + to_string(mode), r.grads, none.grads, 0.0, 0.0));
  }
}

// The overlapped ZeRO-1 reduction's promise (GradsReady, src/model/llama.h): once the stage reports an
// offset, the gradients from there to the end never change in that backward, and the reports go norm,
// then each layer's first tensor, downwards. Each report waits for the stream and snapshots what the
// stage had queued so far; the second micro-batch accumulates onto the first's gradients.
TEST(GpuModel, GradientsReportedReadyAreFinal) {
  IRIS_REQUIRE_GPU();
  const Model model;
  const Batch batch = make_batch(model.config.vocab_size, true);
  GpuRun gpu(model);
  gpu.forward_backward(batch);
  const size_t n = model.init.size();
  std::vector<size_t> offsets;
  std::vector<std::vector<float>> snapshots;
  const MicroBatch mb = batch.view();
  gpu.stage.forward(*gpu.acts, gpu.weights.get(), mb, nullptr);
  gpu.stage.backward(*gpu.acts, gpu.weights.get(), gpu.grads.get(), mb, nullptr, nullptr, [&](size_t offset) {
    IRIS_CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<float> now = gpu.grads.download();
    offsets.push_back(offset);
    snapshots.emplace_back(now.begin() + offset, now.end());
  });
  IRIS_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> final_grads = gpu.grads.download();
  const StageOffsets o = stage_offsets(model.config, model.topo, model.table, model.layers);
  std::vector<size_t> want = {o.norm};
  for (size_t l = o.layers.size(); l-- > 0;) want.push_back(o.layers[l].ln1);
  EXPECT_EQ(offsets, want);
  for (size_t i = 0; i < offsets.size(); ++i) {
    const std::vector<float> tail(final_grads.begin() + offsets[i], final_grads.begin() + n);
    EXPECT_TRUE(all_close("gradients from " + std::to_string(offsets[i]) + " after their report", tail, snapshots[i],
                          0.0, 0.0));
  }
}

}  // namespace
}  // namespace iris::test
