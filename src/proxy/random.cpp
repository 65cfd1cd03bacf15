// Random: bounded draws and the SplitMix64 generator.
#include "proxy/random.h"

#include <limits>
#include <random>

namespace ztunnel::proxy {

uint64_t Random::below(uint64_t bound) {
  // Values at or above the largest multiple of `bound` would favour small
  // results; draw again instead (at most half the range is ever rejected).
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  const uint64_t limit = kMax - kMax % bound;
  for (;;) {
    uint64_t v = next_u64();
    if (v < limit) return v % bound;
  }
}

SplitMixRandom SplitMixRandom::from_entropy() {
  std::random_device device;
  uint64_t seed = (static_cast<uint64_t>(device()) << 32) ^ device();
  return SplitMixRandom(seed);
}

uint64_t SplitMixRandom::next_u64() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

Random& thread_random() {
  thread_local SplitMixRandom random = SplitMixRandom::from_entropy();
  return random;
}

}  // namespace ztunnel::proxy
