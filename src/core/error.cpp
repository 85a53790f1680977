#include <fmt/format.h>

#include "src/core/check.h"
#include "src/core/error.h"

namespace iris {
namespace {
int g_rank = -1;
}

int current_rank() { return g_rank; }
void set_current_rank(int rank) { g_rank = rank; }

namespace detail {
void throw_check_failure(const char* what, const char* file, int line, const std::string& message) {
  throw Error(fmt::format("rank {}: check failed: {} at {}:{}: {}", current_rank(), what, file, line, message));
}
void throw_user_error(const std::string& message) { throw UserError(message); }
}  // namespace detail
}  // namespace iris
