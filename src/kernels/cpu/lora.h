// LoRA (Hu et al. 2021) on a frozen linear layer, fp32 on the CPU, with the maths of Hugging Face PEFT:
// h = x·W0^T + scale·(dropout(x)·A^T)·B^T, scale = alpha/r (alpha/sqrt(r) with rsLoRA, Kalajdzievski 2023).
// Conventions as src/kernels/cpu/ops.h: outputs first, adapter gradients ACCUMULATE, dx is WRITTEN; the
// base W0 gets no gradient. R is the LoRA rank.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace iris::cpu {

float lora_scale(float alpha, int R, bool use_rslora);

// A (R, IC) ~ U(−1/√IC, 1/√IC): PEFT's kaiming_uniform_(a = √5) bound gain·√(3/fan_in) with
// gain = √(2/(1 + a²)), drawn from the counter-based RNG keyed by (seed, name) so every layout agrees.
// B (OC, R) = 0, so the adapted layer starts equal to the base.
void lora_init(float* A, float* B, uint64_t seed, std::string_view name, int IC, int OC, int R);

// Inverted dropout of the adapter's input: element i is kept when the uniform at counter i of
// (seed, stream) is ≥ p, and scaled by 1/(1 − p). The backward recomputes the mask from the same counters,
// so nothing but x_dropped is saved.
struct LoraDropout {
  float p = 0;
  uint64_t seed = 0, stream = 0;
  bool keeps(size_t i) const;
};
// x_dropped (N, IC) = mask · x / (1 − p); p = 0 copies x.
void lora_dropout(float* x_dropped, const float* x, const LoraDropout& dropout, int N, int IC);

// out (N, OC) = x · W0^T + scale · xa · B^T     xa (N, R) = x_dropped · A^T, saved for backward
// x, x_dropped (N, IC)  W0 (OC, IC)  A (R, IC)  B (OC, R)
void lora_linear_forward(float* out, float* xa, const float* x, const float* x_dropped, const float* W0,
                         const float* A, const float* B, float scale, int N, int IC, int OC, int R);

// dx (N, IC) = dout · W0 + mask/(1 − p) · (scale · dout · B) · A   (written; may be nullptr)
// dA (R, IC) += (scale · dout · B)^T · x_dropped      dB (OC, R) += scale · dout^T · xa
// scratch (N, R); dout (N, OC); x_dropped, xa as the forward saved them.
void lora_linear_backward(float* dx, float* dA, float* dB, float* scratch, const float* dout, const float* x_dropped,
                          const float* xa, const float* W0, const float* A, const float* B, float scale,
                          const LoraDropout& dropout, int N, int IC, int OC, int R);

}  // namespace iris::cpu
