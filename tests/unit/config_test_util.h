// RunConfig from a command line, for the config-reading tests.
#pragma once
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "src/core/error.h"
#include "src/train/config.h"

namespace iris::test {

// iris-train ARGS... parsed into a RunConfig (not validated); UserError as RunConfig::parse throws it.
inline RunConfig parse_args(std::vector<std::string> args) {
  args.insert(args.begin(), "iris-train");
  std::vector<const char*> argv;
  for (auto& a : args) argv.push_back(a.c_str());
  RunConfig c;
  EXPECT_TRUE(RunConfig::parse(static_cast<int>(argv.size()), argv.data(), c));
  return c;
}

// The UserError message of parsing ARGS, "" when they parse.
inline std::string parse_error(std::vector<std::string> args) {
  try {
    parse_args(std::move(args));
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

}  // namespace iris::test
