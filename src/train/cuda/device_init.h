// Where a ParamTable tensor's local elements sit in its global tensor, in the form of the device
// initialisation kernel (src/kernels/cuda/init.cuh): the same map as ParamEntry::global_index.
#pragma once
#include "src/kernels/cuda/init.cuh"
#include "src/model/param_table.h"

namespace iris {

inline cuda::InitIndexMap init_index_map(const ParamEntry& e) {
  cuda::InitIndexMap m;
  if (e.local_shape.size() == 1) {  // global index shard_begin + i
    m.row_offset = e.shard_begin;
    m.valid_rows = static_cast<int64_t>(e.numel);
    return m;
  }
  m.local_cols = e.local_shape[1];
  m.global_cols = e.global_shape[1];
  m.valid_rows = e.rule == ShardRule::Column || e.rule == ShardRule::Vocab ? e.valid_rows : e.local_shape[0];
  if (e.rule == ShardRule::Row) m.col_offset = e.shard_begin;                     // split along columns
  else if (e.rule != ShardRule::Replicated) m.row_offset = e.shard_begin;         // split along rows
  return m;
}

}  // namespace iris
