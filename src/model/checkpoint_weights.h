// The weights of an Iris checkpoint, saved at any layout, as this rank's blocks (docs/design.md decision 9):
// each tensor is assembled whole from whatever blocks the saving layout wrote, then cut to the block
// `table` gives this rank. For the programs that read weights only (iris-generate, iris-eval).
#pragma once
#include "io/checkpoint.h"
#include "src/model/param_table.h"

namespace iris {

// params: (table.total_numel(),). UserError naming the checkpoint and the tensor when one is missing or
// has another shape than the table's.
void load_checkpoint_weights(const io::CheckpointDir& ckpt, const ParamTable& table, float* params);

}  // namespace iris
