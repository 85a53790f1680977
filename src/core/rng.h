// Counter-based random numbers (docs/design.md decision 11): a value depends only on (seed, stream, index), so
// any shard of a tensor can be initialised without generating the rest, and every layout starts
// from the same model. The mixer is SplitMix64's finaliser (Steele et al., "Fast splittable
// pseudorandom number generators", OOPSLA 2014).
#pragma once
#include <cstdint>
#include <string_view>

namespace iris {

inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// FNV-1a of a name, used as the stream id of a tensor.
inline uint64_t name_hash(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

inline uint64_t random_u64(uint64_t seed, uint64_t stream, uint64_t index) {
  return mix64(mix64(seed ^ mix64(stream + 0x9e3779b97f4a7c15ull)) + index);
}

// Uniform in (0, 1): 53 random bits, never exactly 0 or 1.
inline double random_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  return (static_cast<double>(random_u64(seed, stream, index) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

// Standard normal by Box-Muller over two uniforms drawn at counters 2i and 2i+1.
double random_normal(uint64_t seed, uint64_t stream, uint64_t index);

// A small sequential generator for shuffles (Fisher-Yates) that must be identical on every platform.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() { return mix64(state_ += 0x9e3779b97f4a7c15ull); }
  // Uniform integer in [0, n) without modulo bias (Lemire's method would also do; rejection is simpler).
  uint64_t below(uint64_t n);
  uint64_t state() const { return state_; }
  void set_state(uint64_t s) { state_ = s; }

 private:
  uint64_t state_;
};

}  // namespace iris
