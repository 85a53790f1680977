// Rank-aware logging over spdlog. The pattern carries the rank; rank 0 logs at info, the other
// ranks at warn, so progress is printed once and every rank still reports its errors.
#pragma once
#include <spdlog/spdlog.h>

namespace iris {
void init_logging(int rank, int world_size);
}  // namespace iris
