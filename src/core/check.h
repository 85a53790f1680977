// Check macros: every failed check names the expression or library call, the file and line, and
// the rank. IRIS_CHECK is for internal invariants; IRIS_USER_CHECK for input a user can fix.
#pragma once
#include <fmt/format.h>

#include "src/core/error.h"

namespace iris::detail {
[[noreturn]] void throw_check_failure(const char* what, const char* file, int line, const std::string& message);
[[noreturn]] void throw_user_error(const std::string& message);
}  // namespace iris::detail

#define IRIS_CHECK(cond, ...)                                                                   \
  do {                                                                                          \
    if (!(cond)) ::iris::detail::throw_check_failure(#cond, __FILE__, __LINE__,                 \
                                                    ::fmt::format(__VA_ARGS__));                \
  } while (0)

#define IRIS_USER_CHECK(cond, ...)                                                              \
  do {                                                                                          \
    if (!(cond)) ::iris::detail::throw_user_error(::fmt::format(__VA_ARGS__));                  \
  } while (0)

// MPI calls: MPI_ERRORS_RETURN is set on every communicator, so a failure comes back as a code.
#define IRIS_MPI_CHECK(call)                                                                    \
  do {                                                                                          \
    int iris_mpi_rc_ = (call);                                                                  \
    if (iris_mpi_rc_ != 0) ::iris::detail::throw_check_failure(#call, __FILE__, __LINE__,       \
                                 ::fmt::format("MPI error code {}", iris_mpi_rc_));             \
  } while (0)
