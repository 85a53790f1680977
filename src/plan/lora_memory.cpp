// LoRA memory. Per adapted linear layer with local weight (OC_local, IC_local): A (r, IC_local) and
// B (OC_local, r) — this is B split by output for column-parallel layers and A by input for row-parallel
// ones, as the local shape already says. Adapters: bf16 working copy 2 B, fp32 gradients 4 B, ZeRO-1 fp32
// master + Adam m, v 12 B / dp. Base linear weights: cpu::nf4_bytes (4 bits + 8-bit absmax per 64 + fp32
// per 16384 + code books: 4.13 bits/param) or int8 + an fp32 scale per row; embeddings, norms and the LM
// head stay bf16, as bitsandbytes leaves them. On the GPU the base is dequantized one layer at a time into
// a reused bf16 buffer: the workspace gains the largest local linear weight in bf16.
#include "src/plan/lora_memory.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <fmt/ranges.h>

#include "src/core/check.h"

namespace iris::plan {
namespace {

constexpr std::array<const char*, 7> kLinear = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                "gate_proj", "up_proj", "down_proj"};

// "model.layers.3.self_attn.q_proj.weight" -> "q_proj"; "" for anything else.
std::string linear_kind(const std::string& name) {
  const std::string suffix = ".weight";
  if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return "";
  const std::string module = name.substr(0, name.size() - suffix.size());
  const std::string kind = module.substr(module.rfind('.') + 1);
  return std::find(kLinear.begin(), kLinear.end(), kind) != kLinear.end() ? kind : "";
}

double base_bytes(const ParamEntry& e, cpu::Quantize q) {
  int64_t numel = 1;
  for (int64_t d : e.local_shape) numel *= d;
  if (linear_kind(e.name).empty() || q == cpu::Quantize::None) return 2.0 * static_cast<double>(numel);
  if (q == cpu::Quantize::Nf4) return static_cast<double>(cpu::nf4_bytes(static_cast<size_t>(numel)));
  return static_cast<double>(cpu::int8_bytes(static_cast<int>(e.local_shape[0]), static_cast<int>(e.local_shape[1])));
}

}  // namespace

bool is_lora_target(const std::string& entry_name, const std::vector<std::string>& targets) {
  const std::string kind = linear_kind(entry_name);
  if (kind.empty()) return false;
  return std::any_of(targets.begin(), targets.end(), [&](const std::string& t) { return t == "all-linear" || t == kind; });
}

void apply_lora_memory(MemoryBreakdown& mem, const Job& job, const ParamTable& table, int dp, int layers) {
  const int r = job.lora_r;
  mem.weights = 0;
  mem.adapter_parameters = 0;
  double largest_linear = 0;
  int targets = 0;
  for (const ParamEntry& e : table.entries()) {
    mem.weights += base_bytes(e, job.quantize);
    if (!linear_kind(e.name).empty())
      largest_linear = std::max(largest_linear, 2.0 * static_cast<double>(e.local_shape[0] * e.local_shape[1]));
    if (!is_lora_target(e.name, job.lora_targets)) continue;
    mem.adapter_parameters += static_cast<int64_t>(r) * (e.local_shape[0] + e.local_shape[1]);
    ++targets;
  }
  IRIS_USER_CHECK(mem.adapter_parameters > 0, "--lora-targets {} match no linear layer of the model",
                  fmt::join(job.lora_targets, ","));
  const double A = static_cast<double>(mem.adapter_parameters);
  mem.adapters = 2.0 * A;
  mem.gradients = 4.0 * A;
  mem.optimizer = 12.0 * std::ceil(A / dp);
  // Saved for backward per target: xa = x·A^T (b·s, r) bf16, unless full recomputation keeps only the input.
  if (job.recompute != Recompute::Full)
    mem.activations += mem.activation_sets * 2.0 * job.micro_batch * job.seq * static_cast<double>(targets) * r;
  if (job.quantize != cpu::Quantize::None) mem.workspace += largest_linear;
}

}  // namespace iris::plan
