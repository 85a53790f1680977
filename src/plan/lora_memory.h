// LoRA / QLoRA memory of one GPU (Job::lora_r > 0): the frozen base in its stored format, the adapters and
// their gradients and ZeRO-1 optimizer state, and the adapters' saved activations.
#pragma once
#include "src/model/param_table.h"
#include "src/plan/plan.h"

namespace iris::plan {

// True when the parameter-table entry is a linear weight LoRA can adapt and the job targets it.
bool is_lora_target(const std::string& entry_name, const std::vector<std::string>& targets);
// Rewrites weights, gradients and optimizer of `mem` (computed for full training) for LoRA on `table`,
// and adds the adapters, their saved activations and the dequantization buffer.
void apply_lora_memory(MemoryBreakdown& mem, const Job& job, const ParamTable& table, int dp, int layers);

}  // namespace iris::plan
