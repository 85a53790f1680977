// iris-plan: will this layout fit, how fast will it run, which layout is best (docs/planning.md).
//   iris-plan --model configs/models/llama2-13b.json --gpus 16 --gpu a100-80gb --gpus-per-node 8 --seq 4096
//             --global-batch 1024 [--micro-batch 1] [--recompute none|selective|full] [--layout TP,PP]
//             [--grad-dtype fp32|bf16] [--lora-r R [--lora-targets q_proj,v_proj] [--quantize none|nf4|int8]]
//   iris-plan --backend cpu --model M.json --ranks 4 --layout 2,2 --micro-batch 2 --grad-accum 4 --seq 16
//             (peak RSS of rank 0 of today's CPU trainer, in MiB, to set beside metrics.jsonl)
// Without --layout every layout is ranked by predicted tokens/s. Exit status: 0 done (a layout that
// does not fit is still a plan), 2 bad input or an impossible --layout, 1 internal failure.
#include <boost/program_options.hpp>

#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <iostream>
#include <sstream>
#include <string>

#include "parallel/topology.h"
#include "src/core/check.h"
#include "src/core/error.h"
#include "src/plan/cpu_memory.h"
#include "src/plan/plan.h"
#include "src/train/config.h"
#include "src/core/tool_main.h"

namespace {
namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace iris;
using namespace iris::plan;

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0, kMiB = 1024.0 * 1024.0;

std::string group_digits(int64_t n) {
  std::string s = std::to_string(n), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

// The GPU table: --hardware, else configs/hardware/gpus.json beside the build (bin/../../configs) or here.
fs::path default_hardware() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  for (const fs::path& p : {exe.parent_path() / "../../configs/hardware/gpus.json", fs::path("configs/hardware/gpus.json")})
    if (!ec && fs::exists(p)) return fs::weakly_canonical(p);
  return "configs/hardware/gpus.json";
}

std::pair<int, int> parse_layout(const std::string& text) {
  int tp = 0, pp = 0;
  char extra = 0;
  IRIS_USER_CHECK(std::sscanf(text.c_str(), "%d,%d%c", &tp, &pp, &extra) == 2 && tp >= 1 && pp >= 1,
                  "--layout must be TP,PP with positive integers (e.g. 2,4), got \"{}\"", text);
  return {tp, pp};
}

// LoRA: the frozen base, then the adapters and the state only they have.
template <typename Row>
void print_lora_rows(const MemoryBreakdown& w, const Job& job, int dp, Row row) {
  const char* base = job.quantize == cpu::Quantize::Nf4
                         ? "frozen; linear weights NF4 (4.13 bits/param with statistics), the rest bf16"
                         : job.quantize == cpu::Quantize::Int8 ? "frozen; linear weights int8 + fp32 row scales, "
                                                                 "the rest bf16"
                                                               : "frozen, bf16";
  row("base weights", w.weights, base);
  fmt::print("  LoRA r={} on {}: {} adapter parameters\n", job.lora_r, fmt::join(job.lora_targets, ","),
             group_digits(w.adapter_parameters));
  row("adapters", w.adapters, "bf16 working copy, 2 B/param");
  row("adapter gradients", w.gradients, "fp32, 4 B/param");
  row("optimizer (ZeRO-1)", w.optimizer, dp > 1 ? "adapters only: fp32 master + Adam m, v: 12 B/param / dp"
                                                : "adapters only: fp32 master + Adam m, v: 12 B/param");
}

void print_breakdown(const LayoutPlan& p, const GpuSpec& gpu, const Job& job) {
  const MemoryBreakdown& w = p.worst;
  fmt::print("layout tp={} pp={} dp={}: {} micro-batches of the global batch per DP replica\n", p.tp, p.pp, p.dp,
             p.time.micro_batches);
  fmt::print("memory per GPU (stage {} of {}, the largest; {} parameters on it, {} activation sets alive):\n",
             w.stage, p.pp, group_digits(w.local_parameters), w.activation_sets);
  auto row = [](const char* what, double bytes, const char* how) {
    fmt::print("  {:<22} {:>9.2f} GiB   {}\n", what, bytes / kGiB, how);
  };
  if (job.lora_r > 0) {
    print_lora_rows(w, job, p.dp, row);
  } else {
  row("weights", w.weights, "bf16, 2 B/param");
  if (job.bf16_grads)
    row("gradients", w.gradients, p.dp > 1 ? "bf16 grads, 2 B/param + fp32 DP-summed shard, 4 B/param / dp"
                                           : "bf16 grads, 2 B/param");
  else
    row("gradients", w.gradients, "fp32 main grads, 4 B/param");
  row("optimizer (ZeRO-1)", w.optimizer, "fp32 master + Adam m, v: 12 B/param / dp");
  }
  row("activations", w.activations, "Korthikanti et al. 2022, per layer x layers x sets");
  row("logits/loss", w.logits, "last stage: bf16 logits + fp32 cross-entropy");
  row("workspace", w.workspace, "1 GiB allowance + one layer's activation gradients + recompute set");
  fmt::print("  {:<22} {:>9.2f} GiB of {:.1f} GiB ({})\n", "total", w.total() / kGiB, gpu.memory_gib,
             p.fits ? "fits" : "DOES NOT FIT");
  if (p.pp > 1) {
    fmt::print("  per stage total:");
    for (const auto& s : p.stages) fmt::print(" {:.1f}", s.total() / kGiB);
    fmt::print(" GiB\n");
  }
  const StepTime& t = p.time;
  fmt::print("step time (predicted, {}): {:.3f} s = compute {:.3f} + TP all-reduce {:.3f} + PP sends {:.3f} + "
             "bubble {:.3f} + ZeRO-1 reduce-scatter/all-gather {:.3f}\n",
             gpu.name, t.step, t.compute, t.tp_comm, t.pp_comm, t.bubble, t.dp_comm);
  fmt::print("throughput: {:.0f} tokens/s ({:.0f} per GPU), MFU {:.1f}%\n", t.tokens_per_s,
             t.tokens_per_s / (p.tp * p.pp * p.dp), 100 * t.mfu);
}

int run_cpu(const LlamaConfig& config, const po::variables_map& vm) {
  CpuRun run;
  run.world = vm["ranks"].as<int>();
  auto [tp, pp] = vm.count("layout") ? parse_layout(vm["layout"].as<std::string>()) : std::pair{1, 1};
  run.tp = tp;
  run.pp = pp;
  run.micro_batch = vm["micro-batch"].as<int>();
  run.grad_accum = vm["grad-accum"].as<int>();
  run.seq_len = vm["seq"].as<int>();
  run.bucket_mb = vm["bucket-mb"].as<double>();
  run.recompute = parse_recompute(vm["recompute"].as<std::string>(), "--recompute");
  IRIS_USER_CHECK(run.world % (tp * pp) == 0, "--ranks {} is not a multiple of tp × pp = {}", run.world, tp * pp);
  validate_layout(config, tp, pp);
  const double baseline = vm.count("baseline-mib") ? vm["baseline-mib"].as<double>() : cpu_process_baseline_mib(run.world);
  const CpuMemory m = cpu_rank0_memory(config, run, baseline);
  fmt::print("CPU backend, {} ranks, tp={} pp={} dp={}, micro-batch {} x {} tokens, {} micro-batches, {} activation "
             "sets on stage 0, recompute {}\n",
             run.world, tp, pp, run.world / (tp * pp), run.micro_batch, run.seq_len, run.grad_accum, m.activation_sets,
             to_string(run.recompute));
  auto row = [](const char* what, double bytes) { fmt::print("  {:<20} {:>9.2f} MiB\n", what, bytes / kMiB); };
  row("weights (fp32)", m.weights);
  row("gradients (fp32)", m.gradients);
  row("Adam m, v (shard)", m.adam);
  row("norm mask (shard)", m.norm_mask);
  row("DP staging", m.dp_staging);
  row("activations", m.activations);
  row("pipeline buffers", m.pipeline_buffers);
  row("backward scratch", m.backward_scratch);
  row("batches", m.batches);
  row("process baseline", m.baseline);
  fmt::print("predicted rank 0 peak RSS: {:.1f} MiB\n", m.total() / kMiB);
  return kExitOk;
}

po::options_description plan_options() {
  po::options_description opts("iris-plan options");
  opts.add_options()("help", "show this help")
      ("model", po::value<std::string>(), "HF config.json of the model (e.g. configs/models/llama2-13b.json)")
      ("gpus", po::value<int>(), "number of GPUs")
      ("gpu", po::value<std::string>(), "GPU type, a key of the hardware file (a100-80gb, h100-80gb, ...)")
      ("gpus-per-node", po::value<int>()->default_value(8), "GPUs per node")
      ("seq", po::value<int>()->default_value(4096), "sequence length in tokens")
      ("global-batch", po::value<int>(), "samples per optimizer step")
      ("micro-batch", po::value<int>()->default_value(1), "samples per micro-batch")
      ("recompute", po::value<std::string>()->default_value("none"), "activation recomputation: none|selective|full")
      ("layout", po::value<std::string>(), "TP,PP to plan one layout; without it every layout is ranked")
      ("no-flash-attention", po::bool_switch(), "store the (s x s) attention matrix (no FlashAttention)")
      ("grad-dtype", po::value<std::string>()->default_value("fp32"),
       "gradient buffer, as iris-train's train.grad_dtype: fp32 (4 B/param) or bf16 (2 B/param + the fp32 "
       "DP-summed shard, 4 B/param / dp, when dp > 1)")
      ("lora-r", po::value<int>()->default_value(0), "LoRA rank: the base is frozen, only adapters train (0: off)")
      ("lora-targets", po::value<std::string>()->default_value("q_proj,v_proj"),
       "modules LoRA adapts, PEFT's names: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj or all-linear")
      ("quantize", po::value<std::string>()->default_value("none"), "frozen base's linear weights: none|nf4|int8")
      ("hardware", po::value<std::string>(), "GPU table (default configs/hardware/gpus.json)")
      ("backend", po::value<std::string>()->default_value("cuda"), "cuda (plan a GPU job) or cpu (predict the "
                                                                   "CPU trainer's rank-0 peak RSS)")
      ("ranks", po::value<int>()->default_value(1), "cpu: MPI ranks")
      ("grad-accum", po::value<int>()->default_value(1), "cpu: micro-batches per step (train.grad_accum)")
      ("bucket-mb", po::value<double>()->default_value(16), "cpu: parallel.bucket_mb")
      ("baseline-mib", po::value<double>(), "cpu: process baseline in MiB (default: the documented measurement)");
  return opts;
}

std::vector<std::string> split_targets(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string t; std::getline(in, t, ',');)
    if (!t.empty()) out.push_back(t);
  IRIS_USER_CHECK(!out.empty(), "--lora-targets must list module names (q_proj,v_proj,... or all-linear)");
  return out;
}

// The GPU job of the command line, checked.
Job gpu_job(const po::variables_map& vm) {
  Job job;
  job.gpus = vm["gpus"].as<int>();
  job.gpus_per_node = vm["gpus-per-node"].as<int>();
  job.seq = vm["seq"].as<int>();
  job.global_batch = vm["global-batch"].as<int>();
  job.micro_batch = vm["micro-batch"].as<int>();
  job.recompute = parse_recompute(vm["recompute"].as<std::string>(), "--recompute");
  job.flash_attention = !vm["no-flash-attention"].as<bool>();
  job.bf16_grads = parse_float_dtype(vm["grad-dtype"].as<std::string>(), "--grad-dtype") == DType::BF16;
  IRIS_USER_CHECK(job.gpus >= 1 && job.gpus_per_node >= 1 && job.seq >= 1 && job.global_batch >= 1 &&
                      job.micro_batch >= 1,
                  "--gpus, --gpus-per-node, --seq, --global-batch and --micro-batch must be positive");
  job.lora_r = vm["lora-r"].as<int>();
  IRIS_USER_CHECK(job.lora_r >= 0, "--lora-r must be positive (0: full fine-tuning), got {}", job.lora_r);
  job.lora_targets = split_targets(vm["lora-targets"].as<std::string>());
  job.quantize = cpu::parse_quantize(vm["quantize"].as<std::string>(), "--quantize");
  IRIS_USER_CHECK(job.quantize == cpu::Quantize::None || job.lora_r > 0,
                  "--quantize {} needs --lora-r: a quantized base cannot be trained, only adapted",
                  cpu::to_string(job.quantize));
  return job;
}

// Every possible layout ranked by predicted tokens/s, the impossible ones with the reason, then the best's breakdown.
void print_ranking(const std::vector<LayoutPlan>& plans, const GpuSpec& gpu, const Job& job) {
  fmt::print("\n{:>4} {:>3} {:>3} {:>4} {:>5} {:>10} {:>12} {:>6} {:>8}  {}\n", "rank", "tp", "pp", "dp", "m",
             "GiB/GPU", "tokens/s", "MFU%", "step s", "verdict");
  int rank = 0;
  for (const auto& p : plans) {
    if (!p.refusal.empty()) continue;
    fmt::print("{:>4} {:>3} {:>3} {:>4} {:>5} {:>10.1f} {:>12.0f} {:>6.1f} {:>8.2f}  {}\n", ++rank, p.tp, p.pp, p.dp,
               p.time.micro_batches, p.worst.total() / kGiB, p.time.tokens_per_s, 100 * p.time.mfu, p.time.step,
               p.fits ? "fits" : "DOES NOT FIT: " + p.why_not);
  }
  bool header = false;
  for (const auto& p : plans) {
    if (p.refusal.empty()) continue;
    if (!header) fmt::print("\nimpossible layouts:\n");
    header = true;
    fmt::print("  tp={} pp={}: {}\n", p.tp, p.pp, p.refusal);
  }
  if (rank > 0 && plans.front().fits) {
    const auto& best = plans.front();
    fmt::print("\nbest layout: --layout {},{}\n\n", best.tp, best.pp);
    print_breakdown(best, gpu, job);
  } else {
    fmt::print("\nno layout fits; try --recompute selective|full, a smaller --micro-batch or more GPUs\n");
  }
}

int run(int argc, char** argv) {
  const po::options_description opts = plan_options();
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, opts), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::ostringstream help;
    help << opts;
    throw UserError(fmt::format("{}\n{}", e.what(), help.str()));
  }
  if (vm.count("help")) {
    std::cout << opts;
    return kExitOk;
  }
  auto need = [&](const char* key) {
    IRIS_USER_CHECK(vm.count(key), "--{} is required (see --help)", key);
  };
  need("model");
  const LlamaConfig config = LlamaConfig::load(vm["model"].as<std::string>());
  fmt::print("model {}: {} parameters ({} layers, hidden {}, heads {}/{} kv, FFN {}, vocab {})\n", config.source,
             group_digits(config.num_parameters()), config.num_hidden_layers, config.hidden_size,
             config.num_attention_heads, config.num_key_value_heads, config.intermediate_size, config.vocab_size);
  if (parse_device(vm["backend"].as<std::string>(), "--backend") == Device::Cpu) return run_cpu(config, vm);

  need("gpus");
  need("gpu");
  need("global-batch");
  const Job job = gpu_job(vm);
  const fs::path hardware = vm.count("hardware") ? fs::path(vm["hardware"].as<std::string>()) : default_hardware();
  const GpuSpec gpu = find_gpu(hardware, vm["gpu"].as<std::string>());
  fmt::print("FLOPs per token (6 x {} matmul parameters + 12 x L x C x T): {:.4g}\n",
             group_digits(matmul_parameters(config)), flops_per_token(config, job.seq));
  fmt::print("job: {} x {} ({:.0f} TFLOP/s bf16, {:.1f} GiB), {} per node, seq {}, global batch {}, micro-batch {}, "
             "recompute {}{}{}\n",
             job.gpus, gpu.name, gpu.peak_bf16_tflops, gpu.memory_gib, job.gpus_per_node, job.seq, job.global_batch,
             job.micro_batch, to_string(job.recompute), job.flash_attention ? ", FlashAttention" : ", no FlashAttention",
             job.bf16_grads ? ", bf16 gradients" : "");
  if (vm.count("layout")) {
    auto [tp, pp] = parse_layout(vm["layout"].as<std::string>());
    const LayoutPlan p = plan_layout(config, gpu, job, tp, pp);
    IRIS_USER_CHECK(p.refusal.empty(), "layout tp={} pp={} is impossible: {}", tp, pp, p.refusal);
    print_breakdown(p, gpu, job);
    return kExitOk;
  }
  print_ranking(plan_all(config, gpu, job), gpu, job);
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  return iris::run_tool("iris-plan", [&] { return run(argc, argv); });
}
