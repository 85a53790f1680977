// The one `main` body of every Iris program: runs the tool, and turns what escapes it into a message
// naming the tool and an exit status of exit_codes.h (bad input 2, internal failure 1), so job scripts
// and users read every tool's failures the same way.
//   int main(int argc, char** argv) { return iris::run_tool("iris-plan", [&] { return run(argc, argv); }); }
#pragma once
#include <cstdio>
#include <exception>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "src/core/error.h"
#include "src/core/exit_codes.h"

namespace iris {

// Through the rank-aware logger once init_logging has set it up (its name is "rankN"), else to stderr.
inline void report_tool_failure(const char* tool, const char* kind, const char* what) {
  std::fflush(stdout);  // what the tool printed so far comes first, also when both go to one file
  if (spdlog::default_logger_raw()->name().empty())
    fmt::print(stderr, "{}: {}{}\n", tool, kind, what);
  else
    spdlog::error("{}: {}{}", tool, kind, what);
}

template <class Body>
int run_tool(const char* tool, Body&& body) {
  try {
    return body();
  } catch (const UserError& e) {
    report_tool_failure(tool, "error: ", e.what());
    return kExitUserError;
  } catch (const std::exception& e) {
    report_tool_failure(tool, "internal error: ", e.what());
    return kExitFailure;
  }
}

}  // namespace iris
