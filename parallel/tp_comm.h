// Tensor-parallel communication in named forward/backward pairs (Megatron-LM, Shoeybi et al. 2019,
// sec. 3, the "f" and "g" operators). For a column-parallel layer Y_i = X A_i (A split along its
// columns A = [A_1 … A_p]) the input X enters every rank unchanged, so the forward is the identity
// and the backward sums the partial input gradients dX = Σ_i dY_i A_iᵀ. For a row-parallel layer
// Y = Σ_i X_i A_i (A split along its rows) the forward sums the partial outputs and the backward
// hands the same dY to every rank.
#pragma once
#include <cstddef>

#include "parallel/comm.h"

namespace iris {

// f: identity forward, all-reduce backward — entering a column-parallel block.
inline void copy_to_tp_region_forward(Comm*, float*, size_t) {}
inline void copy_to_tp_region_backward(Comm* tp, float* dinput, size_t count) {
  if (tp && tp->size() > 1) tp->all_reduce(dinput, count, ReduceOp::Sum);
}

// g: all-reduce forward, identity backward — leaving a row-parallel block (or a vocab-parallel embedding,
// whose shards contribute rows that are zero outside the shard).
inline void reduce_from_tp_region_forward(Comm* tp, float* output, size_t count) {
  if (tp && tp->size() > 1) tp->all_reduce(output, count, ReduceOp::Sum);
}
inline void reduce_from_tp_region_backward(Comm*, float*, size_t) {}

}  // namespace iris
