// glibc memcpy speed by where source and destination sit within a cache line.
// From ~2 KiB up glibc uses `rep movsb`, which some CPUs (AMD Zen here) run
// an order of magnitude slower for some relative offsets; this prints the
// table that core/bytes.h and TlsTransport::read_some are written against.
//
//   build-bench/tools/bench/memcpy_offsets [bytes]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

int main(int argc, char** argv) {
  const std::size_t bytes = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 16384;
  constexpr std::size_t kSlots = 8, kStride = 64 << 10;
  auto* src = static_cast<char*>(std::aligned_alloc(4096, kSlots * kStride + 4096));
  auto* dst = static_cast<char*>(std::aligned_alloc(4096, kSlots * kStride + 4096));
  if (src == nullptr || dst == nullptr || bytes + 64 > kStride) return 1;
  std::memset(src, 1, kSlots * kStride + 4096);
  std::memset(dst, 2, kSlots * kStride + 4096);
  std::printf("memcpy of %zu bytes, GB/s, by (destination - source) mod 64\n", bytes);
  for (int distance = 0; distance < 64; distance += 4) {
    for (int src_offset : {0, 8, 13}) {
      const int dst_offset = (src_offset + distance) % 64;
      constexpr int kIterations = 20000;
      const auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < kIterations; ++i) {
        const std::size_t slot = (i % kSlots) * kStride;
        std::memcpy(dst + slot + dst_offset, src + slot + src_offset, bytes);
        asm volatile("" : : "r"(dst) : "memory");  // keep every copy
      }
      const std::chrono::duration<double, std::nano> spent =
          std::chrono::steady_clock::now() - start;
      std::printf("  %2d (src %2d, dst %2d): %5.1f", distance, src_offset, dst_offset,
                  static_cast<double>(bytes) * kIterations / spent.count());
    }
    std::printf("\n");
  }
  std::free(src);
  std::free(dst);
  return 0;
}
