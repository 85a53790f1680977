// Per-step metrics: one JSON object per optimizer step in OUTPUT/metrics.jsonl, and the progress
// line rank 0 prints (docs/design.md decision 13).
#pragma once
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "io/tensorboard_events.h"

namespace iris {

struct StepMetrics {
  int step = 0;
  double loss = 0, lr = 0, grad_norm = 0;
  double tokens_per_s = 0, step_time_s = 0, elapsed_s = 0;
  long long tokens = 0;       // tokens consumed so far
  int skipped_steps = 0;      // steps skipped for non-finite loss or gradients, so far
  bool skipped = false;
  double peak_memory_mib = 0;        // CPU backend: peak resident set size (RSS), maximum over ranks
  double rank0_peak_memory_mib = 0;  // rank 0's own peak RSS (what iris-plan --backend cpu predicts)
  std::optional<double> device_peak_memory_mib;  // train.device=cuda: peak GPU memory in use (cudaMemGetInfo), max over ranks
  std::optional<double> mfu;       // model FLOPs utilisation; unknown (null) without a peak figure
  std::optional<double> val_loss;  // validation loss, at steps that evaluate (eval.every)
};

// Peak resident set size of this process so far, MiB (getrusage).
double peak_rss_mib();

// Dense bf16 peak TFLOP/s of a GPU from its CUDA device name (cudaDeviceProp::name), for MFU: A100 312,
// H100 SXM 989, H100 PCIe 756, H200 989 (NVIDIA data sheets, without sparsity). Empty for any other
// device (including H100/H200 NVL): MFU is then unknown rather than guessed.
std::optional<double> dense_bf16_peak_tflops(const std::string& device_name);

class MetricsWriter {
 public:
  // Starts `path` afresh, or, for a run resumed at step `resumed_at` > 0, keeps the lines of steps up
  // to it (a restarted job keeps one history; steps done after that checkpoint are done again). With
  // `tensorboard_dir`, every step's numbers also go to a new TensorBoard event file there (output.tensorboard).
  explicit MetricsWriter(const std::string& path, long long resumed_at = 0, const std::string& tensorboard_dir = "");
  ~MetricsWriter();
  void write(const StepMetrics& m);

 private:
  std::FILE* file_ = nullptr;
  std::unique_ptr<io::TensorBoardWriter> tensorboard_;
};

// "step 10/200 | loss 5.1234 | lr 1.00e-03 | grad norm 1.23 | 12,345 tok/s | elapsed 0:01:02 | ETA 0:10:00"
// first_step: the step this run started after (a resumed run's ETA uses only its own steps' time).
std::string progress_line(const StepMetrics& m, int total_steps, int first_step = 0);
std::string format_duration(double seconds);  // H:MM:SS

}  // namespace iris
