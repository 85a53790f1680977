// Weight initialisation on the device with the counter-based RNG of src/core/rng.h: the same values as
// ParamTable::initialize (CPU reference), element by element, so a GPU run starts from the CPU's model
// without a host copy. Each value is init_std · random_normal(seed, stream, global index), Box-Muller over
// the SplitMix64 uniforms at counters 2g and 2g + 1, evaluated in double like the host and rounded to fp32.
#pragma once
#include <cstdint>

#include "src/kernels/cuda/common.cuh"

namespace iris::cuda {

// Local element i of a tensor's block → its global row-major index, as ParamEntry::global_index:
// r = i / local_cols, c = i % local_cols; rows r ≥ valid_rows are padding (value 0); otherwise
// g = (row_offset + r) · global_cols + col_offset + c. A 1-D tensor is local_cols = global_cols = 1.
struct InitIndexMap {
  int64_t local_cols = 1, global_cols = 1;
  int64_t row_offset = 0, col_offset = 0;
  int64_t valid_rows = 0;
};

// out (n,) fp32 = the tensor's local elements [first, first + n): padding 0, init_std == 0 → 1 (norm
// weights), else init_std · random_normal(seed, stream_id, g).
void init_weights(float* out, int64_t first, int64_t n, const InitIndexMap& map, double init_std, uint64_t seed,
                  uint64_t stream_id, cudaStream_t stream);

}  // namespace iris::cuda
