#include "src/core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include "src/core/error.h"

namespace iris {
void init_logging(int rank, int world_size) {
  set_current_rank(rank);
  auto logger = spdlog::stderr_color_mt(fmt::format("rank{}", rank));
  logger->set_pattern(world_size > 1 ? fmt::format("[%H:%M:%S] [rank {}] [%^%l%$] %v", rank)
                                     : std::string("[%H:%M:%S] [%^%l%$] %v"));
  logger->set_level(rank == 0 ? spdlog::level::info : spdlog::level::warn);
  spdlog::set_default_logger(logger);
}
}  // namespace iris
