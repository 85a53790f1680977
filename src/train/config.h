// Run configuration (docs/design.md decision 10): INI files read with Boost.Program_options, where every key is
// also a command-line flag `--section.key=value`. Precedence: command line > config file > default.
// Unknown keys are rejected by name. This file owns run-config validation.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "parallel/device_comm.h"
#include "src/core/device.h"  // train.device: cpu | cuda (Device, parse_device)
#include "src/core/dtype.h"
#include "src/model/llama.h"
#include "src/train/lr_schedule.h"

namespace iris {

// The enum-like keys, parsed once here (an unknown value is refused naming the key and the allowed
// values); the rest of the code compares these, never the strings.
enum class Task { Pretrain, Sft };                 // train.task: pretrain | sft
enum class OverlapGradReduce { Auto, On, Off };    // parallel.overlap_grad_reduce: auto | true | false
const char* to_string(Task task);
// The same spellings for the tools' own flags (iris-slurm --task, iris-plan --grad-dtype, ...): a UserError
// "<key> must be a or b, got "x"" otherwise.
Task parse_task(const std::string& text, const std::string& key);
DType parse_float_dtype(const std::string& text, const std::string& key);  // fp32 | bf16 (train.grad_dtype's)

struct RunConfig {
  std::string config_file;  // the --config INI, "" when none

  struct {
    std::string config;         // HF config.json of the model
    std::string hf_dir;         // initial weights from a Hugging Face directory (safetensors); "" = random init
    std::string init_checkpoint;  // initial weights only from an Iris checkpoint (PATH or its root's latest)
  } model;
  struct {
    std::string path;           // indexed dataset prefix (PREFIX.bin + PREFIX.idx)
    std::string paths;          // a blend "W1 PREFIX1 W2 PREFIX2 ..." (Megatron's syntax); instead of path
    std::string split;          // "TRAIN,VALID" shares of the documents of each dataset, e.g. "98,2"; "" = all train
    double val_fraction = 0;    // instead of split: a seeded, shuffled ceil(fraction × documents) for validation
    std::string tokenizer;      // sentencepiece model the data was made with (checked against the vocab)
  } data;
  struct {
    Task task = Task::Pretrain;  // pretrain | sft (data from iris-tokenize --sft: tokens + loss mask)
    Recompute recompute = Recompute::None;  // none | selective | full (activation recomputation, src/model/llama.h)
    int seq_len = 128;          // T
    int micro_batch = 8;        // B: samples per micro-batch on one rank
    int grad_accum = 1;         // micro-batches per optimizer step on one rank
    int steps = 100;            // optimizer steps
    double epochs = 0;          // instead of steps: ceil(samples per epoch × epochs / global batch) steps (0: unset)
    uint64_t seed = 1234;       // weights and data order
    int log_every = 1;          // progress-line period (metrics.jsonl gets every step)
    std::string time_limit;     // wall-clock budget of this run ("" = none): seconds, or Slurm's [D-]H:M:S forms
    double exit_margin_s = 120; // stop this long (at least) before the time limit or the Slurm job's end
    int max_consecutive_skipped = 10;  // more non-finite steps in a row: diverged, exit 3 (0: no limit)
    double max_skipped_fraction = 0.1; // more of the last 100 steps non-finite: diverged, exit 3 (1: no limit)
    double peak_tflops = 0;     // one rank's peak FLOP/s in TFLOP/s, for MFU (0: the device table on cuda, else unknown)
    Device device = Device::Cpu;  // cpu (fp32 reference backend) | cuda (bf16 weights and activations, one GPU per
                                  // rank or shared with parallel.comm=mpi)
    DType grad_dtype = DType::F32;  // fp32 | bf16: the flat gradient buffer of train.device=cuda (bf16 halves it)
  } train;
  struct {
    bool packing = true;        // several samples per row (positions restart, attention per sample); off pads
  } sft;
  struct {
    int every = 0;              // validation loss every N steps (0: never); needs validation data (data.split or
                                // data.val_fraction)
    int batches = 4;            // global batches of validation data per evaluation (always the same ones); 0 = all:
                                // the whole validation set, token-weighted

  } eval;
  struct {
    double lr = 1e-3;
    double min_lr = 1e-4;
    LrScheduleKind schedule = LrScheduleKind::Cosine;  // cosine | linear | constant | wsd (lr_schedule.h)
    int warmup_steps = 10;
    double warmup_ratio = 0;    // instead of warmup_steps: ceil(ratio × train.steps) warm-up steps (0: unset)
    int decay_steps = 0;        // decay length after warm-up; 0 = train.steps − warmup (wsd: see decay_ratio)
    double decay_ratio = 0.1;   // wsd with decay_steps = 0: decay over the last ceil(ratio × train.steps) steps
    double weight_decay = 0.1;
    double beta1 = 0.9;
    double beta2 = 0.95;
    double eps = 1e-8;
    double grad_clip = 1.0;     // global-norm clipping; 0 disables
  } optim;
  struct {
    int tp = 1;
    int pp = 1;
    std::string stage_layers;   // explicit layers per pipeline stage, e.g. "3,5"; "" = even split
    double bucket_mb = 16;      // ZeRO-1 reduce-scatter bucket size (MiB of fp32 gradients per shard)
    // Reduce gradient buckets during the last micro-batch's backward: true | false | auto (true with
    // train.device=cuda and parallel.comm=nccl, else false; see overlaps_grad_reduce()).
    OverlapGradReduce overlap_grad_reduce = OverlapGradReduce::Auto;
    double timeout_s = 1800;    // a collective or send/recv not done in this long aborts the job (0: never)
    CommKind comm = CommKind::Mpi;  // communicator for GPU buffers: nccl | mpi (host-staged, GPUs may be shared)
  } parallel;
  struct {
    std::string dir = "runs/default";
    bool save_weights = false;  // write the final weights, one safetensors file per model-parallel rank
    bool tensorboard = false;   // rank 0 writes TensorBoard event files under dir/tb/
  } output;
  struct {
    std::string dir;            // checkpoints go to DIR/step_XXXXXXXX/; "" = no checkpoints
    int every = 0;              // save every N steps (0: only at the end and on request)
    int keep = 3;               // keep the newest K checkpoints (0: all)
    int keep_best = 0;          // and the K with the lowest best_metric besides them, with a `best` pointer
    std::string best_metric = "val_loss";  // the metric keep_best ranks by (only val_loss)
    std::string load;           // PATH | latest | auto (latest if one exists in dir, else fresh); "" = fresh
  } checkpoint;

  // Parses `--config FILE` and every `--section.key=value` flag. Throws UserError naming the file
  // and the key on unknown keys, malformed values or a missing file. Returns false for --help
  // (the help text is written to `help`).
  static bool parse(int argc, const char* const* argv, RunConfig& out, std::string* help = nullptr);

  // What parallel.overlap_grad_reduce asks for, auto resolved: auto overlaps only on NCCL. MPI moves a
  // non-blocking collective only while the rank is inside an MPI call (Open MPI's reduce of >= 64 KiB
  // over 2 ranks goes 8 KiB per call), so with the MPI communicators nothing progresses during the
  // backward and the waits' polling sets the pace (dp 2, 16 MiB buckets: several times slower).
  bool overlap_grad_reduce_requested() const;
  // Whether the trainer overlaps: as requested, except that bf16 gradients (train.grad_dtype) always use
  // the reduce-scatter (the overlapped reduction sums fp32 buffers in place).
  bool overlaps_grad_reduce() const;
  // Validates values that do not depend on other files (ranges); says which key to change.
  void validate() const;
  // train.grad_dtype (F32 or BF16).
  DType grad_dtype() const { return train.grad_dtype; }
  // train.time_limit in seconds (0 when unset). Throws UserError naming the key on a malformed value.
  double time_limit_seconds() const;
  // The LR schedule of a run of `total_steps` optimizer steps (train.steps, or the steps of train.epochs).
  LrSchedule lr_schedule(int total_steps) const;
  // The resolved configuration as INI text (every key, including defaults).
  std::string to_ini() const;
};

}  // namespace iris
