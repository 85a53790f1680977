// The GPU model stage at tp = 2 (CudaLlamaStage, bf16): two MPI ranks sharing one GPU, its TP all-reduces
// through StagedComm (make_device_communicators with CommKind::Mpi, i.e. parallel.comm mpi), against the CPU
// stage (LlamaStage, fp32, the reference) at tp = 2 over MpiComm on the same two ranks. Same sharded initial
// weights (ParamTable::initialize is keyed by global element, docs/design.md decision 11; the CPU fed the bf16-rounded
// copy the GPU reads), same packed batch. Each rank compares its own shard of every parameter gradient.
// Run by CTest under mpirun -np 2 (test gpu_model_tp2, label gpu); every test skips without a GPU
// (IRIS_EXPECT_GPU=1 makes that a failure). Tolerances, as in test_gpu_model.cpp (bf16 roundings):
//   loss relative 2e-2; per-token losses atol 5e-2 + rtol 2e-2; each gradient shard rel L2 5e-2.
// Recompute selective and full on the GPU at tp = 2 give bit-identical losses and gradients to none: the
// kernels are deterministic, the recomputed o_proj all-reduce sums the same bits in the same order (MPI on
// the host), so only the memory differs.
// Host C++ (not nvcc) because it includes the model headers.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "parallel/device_comm.h"
#include "parallel/topology.h"
#include "src/core/rng.h"
#include "src/kernels/cuda/elementwise.cuh"
#include "src/model/cuda/llama_stage.h"
#include "src/model/llama.h"
#include "tests/gpu/gpu_model_test_util.h"
#include "tests/gpu/gpu_test_util.h"

namespace iris::test {
namespace {

constexpr double kLossRtol = 2e-2, kGradRelL2 = 5e-2, kTimeoutS = 120;

// A tiny GQA Llama that tp = 2 divides: 4 query heads over 2 KV heads of HS 64 (tensor-core attention),
// C 256, F 512, 2 layers, V 256 (128 rows per rank), untied head.
LlamaConfig tiny_config() { return tiny_gpu_config(256, 512, 4, 2, "tiny-gpu-tp2"); }

int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

// This rank's shard of the model at tp = 2, its initial weights (norm weights away from 1, the same on
// both ranks: keyed by the element of the replicated tensor) and its communicators.
struct Shard {
  LlamaConfig config = tiny_config();
  Topology topo = Topology::make(2, world_rank(), 2, 1);
  StageLayers layers = stage_layers(config.num_hidden_layers, 1, 0);
  ParamTable table = ParamTable::build(config, topo, layers);
  std::vector<float> init;
  Shard() : init(table.total_numel()) {
    table.initialize(init.data(), 7);
    for (const auto& e : table.entries())
      if (e.init_std == 0.0)
        for (size_t i = 0; i < e.numel; ++i) init[e.offset + i] = 1.0f + 0.2f * static_cast<float>(random_normal(3, 9, i));
  }
};

struct GpuResult {
  double loss = 0;
  std::vector<float> losses, grads;
};

GpuResult run_gpu(const Shard& s, Comm* tp, Recompute mode) {
  CudaLlamaStage stage(s.config, s.topo, s.table, s.layers, B, T, tp, nullptr, mode);
  auto acts = stage.make_activations();
  DeviceBuffer<float> master(s.init), grads(s.init.size());
  DeviceBuffer<bf16> weights(s.init.size());
  cuda::cast_f32_to_bf16(weights.get(), master.get(), s.init.size(), nullptr);
  IRIS_CUDA_CHECK(cudaMemset(grads.get(), 0, s.init.size() * sizeof(float)));
  const Batch batch = make_batch(256, /*packed=*/true);
  GpuResult r;
  r.loss = stage.forward(*acts, weights.get(), batch.view(), nullptr);
  stage.backward(*acts, weights.get(), grads.get(), batch.view(), nullptr, nullptr);
  IRIS_CUDA_CHECK(cudaDeviceSynchronize());
  r.losses = acts->host_losses;
  r.grads = grads.download();
  if (world_rank() == 0)
    std::printf("  tp 2 recompute %-9s activations %zu bytes per micro-batch, stage scratch %zu bytes\n",
                to_string(mode), acts->arena.capacity_bytes(), stage.scratch_bytes());
  return r;
}

double relative_l2(const float* got, const float* ref, size_t n, double* ref_norm) {
  double d2 = 0, r2 = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(got[i]) - ref[i];
    d2 += d * d;
    r2 += static_cast<double>(ref[i]) * ref[i];
  }
  *ref_norm = std::sqrt(r2);
  return r2 > 0 ? std::sqrt(d2 / r2) : std::sqrt(d2);
}

TEST(GpuModelTp2, LossAndEveryGradientShardMatchCpuTp2) {
  IRIS_REQUIRE_GPU();
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  ASSERT_EQ(size, 2) << "run under mpirun -np 2";
  const Shard s;
  Communicators host = make_mpi_communicators(s.topo, false, kTimeoutS);
  Communicators device = make_device_communicators(s.topo, false, kTimeoutS, CommKind::Mpi);

  LlamaStage cpu(s.config, s.topo, s.table, s.layers, B, T, host.tp.get());
  auto cpu_acts = cpu.make_activations();
  std::vector<float> cpu_params = round_bf16(s.init), cpu_grads(s.init.size(), 0.0f);
  const Batch batch = make_batch(256, /*packed=*/true);
  const double cpu_loss = cpu.forward(*cpu_acts, cpu_params.data(), batch.view(), nullptr);
  cpu.backward(*cpu_acts, cpu_params.data(), cpu_grads.data(), batch.view(), nullptr, nullptr);

  const GpuResult gpu = run_gpu(s, device.tp.get(), Recompute::None);
  std::printf("  rank %d loss: cpu %.6f gpu %.6f rel %.3e (tol %.1e)\n", s.topo.rank, cpu_loss, gpu.loss,
              std::fabs(gpu.loss - cpu_loss) / std::fabs(cpu_loss), kLossRtol);
  EXPECT_NEAR(gpu.loss, cpu_loss, kLossRtol * std::fabs(cpu_loss));
  EXPECT_GT(std::fabs(cpu_loss - std::log(256.0)), 0.05) << "the model is too close to uniform to test anything";
  EXPECT_TRUE(all_close("per-token losses", gpu.losses, std::vector<float>(cpu_acts->losses, cpu_acts->losses + N),
                        5e-2, 2e-2));
  for (const auto& e : s.table.entries()) {
    double ref_norm = 0;
    const double rel = relative_l2(gpu.grads.data() + e.offset, cpu_grads.data() + e.offset, e.numel, &ref_norm);
    std::printf("  rank %d grad %-44s |ref| %.3e rel_l2 %.3e\n", s.topo.rank, e.name.c_str(), ref_norm, rel);
    EXPECT_GT(ref_norm, 0.0) << e.name << ": zero reference gradient";
    EXPECT_LE(rel, kGradRelL2) << e.name;
  }
}

TEST(GpuModelTp2, RecomputeModesAreBitIdenticalToNone) {
  IRIS_REQUIRE_GPU();
  const Shard s;
  Communicators device = make_device_communicators(s.topo, false, kTimeoutS, CommKind::Mpi);
  const GpuResult none = run_gpu(s, device.tp.get(), Recompute::None);
  for (Recompute mode : {Recompute::Selective, Recompute::Full}) {
    const GpuResult r = run_gpu(s, device.tp.get(), mode);
    EXPECT_EQ(r.loss, none.loss) << to_string(mode);
    EXPECT_TRUE(all_close(std::string("gradients, recompute ") + to_string(mode), r.grads, none.grads, 0.0, 0.0));
  }
}

}  // namespace
}  // namespace iris::test

// MPI around GoogleTest: every rank runs the tests; only rank 0 prints gtest's report; the exit status
// is the worst of the ranks'.
int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  if (iris::test::world_rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int status = RUN_ALL_TESTS(), worst = 0;
  MPI_Allreduce(&status, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return worst;
}
