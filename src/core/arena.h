// A bump allocator over one fp32 buffer: the activations of a micro-batch (or any set of buffers
// that live and die together) are carved from a single allocation and freed at once.
#pragma once
#include <cstddef>
#include <vector>

#include "src/core/check.h"

namespace iris {

class Arena {
 public:
  explicit Arena(size_t floats) : storage_(floats, 0.0f) {}
  // The next n floats; fails when the arena was sized too small (a layout bug, not user input).
  float* take(size_t n) {
    IRIS_CHECK(used_ + n <= storage_.size(), "arena of {} floats exhausted (asked for {} more after {})",
               storage_.size(), n, used_);
    float* p = storage_.data() + used_;
    used_ += n;
    return p;
  }
  size_t used() const { return used_; }
  size_t capacity() const { return storage_.size(); }

 private:
  std::vector<float> storage_;
  size_t used_ = 0;
};

}  // namespace iris
