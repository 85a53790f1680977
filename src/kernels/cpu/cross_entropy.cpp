// Vocab-parallel softmax cross-entropy (Megatron-LM, Shoeybi et al. 2019, sec. 3): loss = log Σ_v exp(l_v − max)
// + max − l_target from a row max, Σ exp and target logit that the caller all-reduces between phases. Only the
// first V_valid columns of a shard are real tokens; the rest is TP padding and never enters the loss.
#include <cmath>

#include "src/kernels/cpu/ops.h"
#include "src/kernels/cpu/vec_math.h"

namespace iris::cpu {

void xent_local_max(float* max, const float* logits, int N, int V_local, int V_valid) {
  // max (N,), logits (N, V_local)
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const float* l = logits + static_cast<size_t>(n) * V_local;
    float m = -INFINITY;  // a shard without valid columns contributes nothing to the MAX all-reduce
#pragma omp simd reduction(max : m)
    for (int v = 0; v < V_valid; ++v) m = l[v] > m ? l[v] : m;
    max[n] = m;
  }
}

void xent_local_sumexp(float* sumexp, float* target_logit, const float* logits, const float* max,
                       const int32_t* targets, int N, int V_local, int V_valid, int vocab_start) {
  // sumexp, target_logit (N,), logits (N, V_local), max (N,) global row max, targets (N,)
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const float* l = logits + static_cast<size_t>(n) * V_local;
    const float m = max[n];
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int v = 0; v < V_valid; ++v) s += detail::fast_exp(l[v] - m);
    sumexp[n] = s;
    const int t = targets[n] - vocab_start;
    target_logit[n] = (t >= 0 && t < V_valid) ? l[t] : 0.0f;
  }
}

void xent_losses(float* losses, const float* max, const float* sumexp, const float* target_logit, int N) {
  // losses, max, sumexp, target_logit (N,)
  for (int n = 0; n < N; ++n) losses[n] = std::log(sumexp[n]) + max[n] - target_logit[n];
}

void xent_backward(float* dlogits, const float* logits, const float* max, const float* sumexp,
                   const int32_t* targets, const float* dloss, int N, int V_local, int V_valid, int vocab_start) {
  // dlogits (N, V_local) written (may alias logits), logits (N, V_local), max, sumexp, dloss (N,), targets (N,)
  // d loss_n / d l_v = softmax_v − [v = target]; each element is read before it is written, so aliasing is safe.
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const size_t row = static_cast<size_t>(n) * V_local;
    const float* l = logits + row;
    float* dl = dlogits + row;
    const float m = max[n], scale = dloss[n] / sumexp[n], w = dloss[n];
#pragma omp simd
    for (int v = 0; v < V_valid; ++v) dl[v] = scale * detail::fast_exp(l[v] - m);
    for (int v = V_valid; v < V_local; ++v) dl[v] = 0.0f;
    const int t = targets[n] - vocab_start;
    if (t >= 0 && t < V_valid) dl[t] -= w;
  }
}

}  // namespace iris::cpu
