// Hugging Face weights ⇄ the flat parameter buffer, by the parameter table's names (docs/design.md decision 12:
// HF names and the rotate-half RoPE layout, so HF weights load without permutation).
#pragma once
#include <filesystem>

#include "src/model/param_table.h"

namespace iris {

// Reads every tensor this rank holds from an HF safetensors file or directory and copies this
// rank's shard into `params`. Throws UserError naming the directory and tensor when one is missing
// or has the wrong shape.
void load_hf_weights(const ParamTable& table, const std::filesystem::path& hf_path, float* params);

}  // namespace iris
