// Hugging Face weights ⇄ the flat parameter buffer, by the parameter table's names (docs/design.md decision 12:
// HF names and the rotate-half RoPE layout, so HF weights load without permutation).
#pragma once
#include <filesystem>
#include <functional>

#include "src/model/param_table.h"

namespace iris {

// Reads every tensor this rank holds from an HF safetensors file or directory and copies this
// rank's shard into `params`. Throws UserError naming the directory and tensor when one is missing
// or has the wrong shape.
void load_hf_weights(const ParamTable& table, const std::filesystem::path& hf_path, float* params);
// The same checks, one tensor at a time: take(e, global) gets each of this rank's tensors whole
// (global_shape, row-major), to copy its block where the weights live.
void read_hf_weights(const ParamTable& table, const std::filesystem::path& hf_path,
                     const std::function<void(const ParamEntry& e, const float* global)>& take);

}  // namespace iris
