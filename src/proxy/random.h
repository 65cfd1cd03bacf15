// Injectable randomness for pure decisions (load balancing, trace ids); tests script it.
#pragma once

#include <cstdint>

namespace ztunnel::proxy {

// Callers pass a Random& instead of reaching for a global generator: a test
// can script the choices, production uses one generator per thread.
class Random {
 public:
  virtual ~Random() = default;

  virtual uint64_t next_u64() = 0;

  // Uniform in [0, bound); `bound` must be > 0. Rejection sampling, so a
  // scripted generator returning small values gets exactly value % bound.
  uint64_t below(uint64_t bound);
};

// SplitMix64: fast and statistically sound; not cryptographic, which nothing
// here needs (endpoint choice and trace ids are not secrets).
class SplitMixRandom final : public Random {
 public:
  explicit SplitMixRandom(uint64_t seed) : state_(seed) {}
  // Seeded from std::random_device.
  static SplitMixRandom from_entropy();

  uint64_t next_u64() override;

 private:
  uint64_t state_;
};

// A per-thread generator seeded from entropy, for production callers.
Random& thread_random();

}  // namespace ztunnel::proxy
