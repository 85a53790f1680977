// The progress line's ETA: the time per step of this run times the steps left, also for a run
// resumed from a checkpoint (whose elapsed time covers only the steps it did itself).
#include <gtest/gtest.h>

#include "src/train/metrics.h"

namespace iris {
namespace {

TEST(ProgressLine, EtaFromThisRunsSteps) {
  StepMetrics m;
  m.step = 10;
  m.elapsed_s = 100;  // 10 s per step
  EXPECT_NE(progress_line(m, 20).find("ETA 0:01:40"), std::string::npos) << progress_line(m, 20);
  // Resumed after step 8: 2 steps took the 100 s, so 10 steps left take 500 s.
  EXPECT_NE(progress_line(m, 20, 8).find("ETA 0:08:20"), std::string::npos) << progress_line(m, 20, 8);
  EXPECT_NE(progress_line(m, 20, 8).find("step 10/20"), std::string::npos);
}

TEST(ProgressLine, MfuAndValidationLossWhenKnown) {
  StepMetrics m;
  m.step = 1;
  EXPECT_EQ(progress_line(m, 5).find("MFU"), std::string::npos);
  m.mfu = 0.4567;
  m.val_loss = 2.5;
  const std::string line = progress_line(m, 5);
  EXPECT_NE(line.find("MFU 45.7%"), std::string::npos) << line;
  EXPECT_NE(line.find("val loss 2.5000"), std::string::npos) << line;
}

// MFU's peak on cuda: the dense bf16 table by CUDA device name; anything else is unknown, never a guess.
TEST(DevicePeakTable, KnownNamesAndUnknownOnes) {
  EXPECT_EQ(dense_bf16_peak_tflops("NVIDIA A100-SXM4-80GB"), 312.0);
  EXPECT_EQ(dense_bf16_peak_tflops("NVIDIA A100-SXM4-40GB"), 312.0);
  EXPECT_EQ(dense_bf16_peak_tflops("NVIDIA A100 80GB PCIe"), 312.0);
  EXPECT_EQ(dense_bf16_peak_tflops("NVIDIA H100 80GB HBM3"), 989.0);
  EXPECT_EQ(dense_bf16_peak_tflops("NVIDIA H100 PCIe"), 756.0);
  EXPECT_EQ(dense_bf16_peak_tflops("NVIDIA H200"), 989.0);
  EXPECT_FALSE(dense_bf16_peak_tflops("NVIDIA H100 NVL"));
  EXPECT_FALSE(dense_bf16_peak_tflops("NVIDIA H200 NVL"));
  EXPECT_FALSE(dense_bf16_peak_tflops("NVIDIA GeForce RTX 4090"));
  EXPECT_FALSE(dense_bf16_peak_tflops("Tesla V100-SXM2-32GB"));
  EXPECT_FALSE(dense_bf16_peak_tflops(""));
}

// device_peak_memory_mib appears in metrics.jsonl and the progress line only when set (train.device=cuda).
TEST(ProgressLine, DeviceMemoryOnlyWhenKnown) {
  StepMetrics m;
  m.step = 1;
  EXPECT_EQ(progress_line(m, 5).find("GPU mem"), std::string::npos);
  m.device_peak_memory_mib = 1234.4;
  EXPECT_NE(progress_line(m, 5).find("GPU mem 1234 MiB"), std::string::npos) << progress_line(m, 5);
}

}  // namespace
}  // namespace iris
