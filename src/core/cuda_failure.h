// What the CUDA check macros of src/core/cuda_check.h call on failure. Plain C++ (no CUDA headers), so
// it is defined in src/core, which builds without the toolkit.
#pragma once

namespace iris::cuda {

// Throws iris::Error "rank R: CUDA check failed: CALL at FILE:LINE: WHAT", the shape of IRIS_CHECK's.
[[noreturn]] void throw_cuda_failure(const char* call, const char* file, int line, const char* what);

}  // namespace iris::cuda
