// Perplexity over windows of a token stream, as the Hugging Face perplexity guide computes it: windows
// [begin, min(begin + seq_len, L)) for begin = 0, stride, 2·stride, … until one reaches the end; each window
// scores only the tokens the previous window did not (trg_len = end − previous end; its first token, having
// no context, never). Without a stride the windows do not overlap (stride = seq_len). The loss is the
// token-weighted mean negative log-likelihood over every scored token.
#pragma once
#include <cstdint>
#include <vector>

#include "src/eval/loglik.h"

namespace iris::eval {

struct PplWindow {
  int64_t begin = 0, end = 0;
  int scored = 0;
};
// UserError unless 2 <= seq_len and 1 <= stride <= seq_len; windows that would score nothing are left out.
std::vector<PplWindow> ppl_windows(int64_t tokens, int seq_len, int stride);
std::vector<ScoreRequest> ppl_requests(const std::vector<int32_t>& stream, const std::vector<PplWindow>& windows);

}  // namespace iris::eval
