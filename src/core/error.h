// Errors. iris::Error is an internal failure (a bug or a failed library call, with file:line);
// iris::UserError is bad input from the user and its message must say what to change.
#pragma once
#include <stdexcept>
#include <string>

namespace iris {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class UserError : public Error {
 public:
  using Error::Error;
};

// The rank this process reports in messages; set once by logging setup (-1 until then).
int current_rank();
void set_current_rank(int rank);

}  // namespace iris
