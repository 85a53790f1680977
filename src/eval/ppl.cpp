#include "src/eval/ppl.h"

#include <algorithm>

#include "src/core/check.h"

namespace iris::eval {

std::vector<PplWindow> ppl_windows(int64_t tokens, int seq_len, int stride) {
  IRIS_USER_CHECK(seq_len >= 2, "--seq-len must be at least 2, got {}", seq_len);
  IRIS_USER_CHECK(stride >= 1 && stride <= seq_len, "--stride must be in [1, --seq-len = {}], got {}", seq_len, stride);
  IRIS_USER_CHECK(tokens >= 2, "the token stream has {} tokens; perplexity needs at least 2", tokens);
  std::vector<PplWindow> out;
  int64_t previous_end = 0;
  for (int64_t begin = 0; begin < tokens; begin += stride) {
    const int64_t end = std::min<int64_t>(begin + seq_len, tokens);
    const int64_t trg_len = end - previous_end;
    const int scored = static_cast<int>(std::min<int64_t>(trg_len, end - begin - 1));
    if (scored > 0) out.push_back(PplWindow{begin, end, scored});
    previous_end = end;
    if (end == tokens) break;
  }
  return out;
}

std::vector<ScoreRequest> ppl_requests(const std::vector<int32_t>& stream, const std::vector<PplWindow>& windows) {
  std::vector<ScoreRequest> out;
  out.reserve(windows.size());
  for (const auto& w : windows)
    out.push_back(ScoreRequest{std::vector<int32_t>(stream.begin() + w.begin, stream.begin() + w.end), w.scored});
  return out;
}

}  // namespace iris::eval
