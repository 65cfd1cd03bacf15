#include "app/memory.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "support/testing.h"

namespace ztunnel::app {
namespace {

// AddressSanitizer replaces malloc: glibc's heap, which these tests measure
// and trim, is not the one in use.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kGlibcMalloc = false;
#else
constexpr bool kGlibcMalloc = true;
#endif

long resident_bytes() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * 4096;
}

// 8 MiB in 32 KiB blocks, touched; every other one freed, so the free ones
// sit between live ones and glibc cannot give them back from the top of the
// heap by itself.
struct FreedBetweenLive {
  std::vector<std::unique_ptr<char[]>> live;
  FreedBetweenLive() {
    std::vector<std::unique_ptr<char[]>> blocks;
    for (int i = 0; i < 256; ++i) {
      blocks.push_back(std::make_unique<char[]>(32 << 10));
      std::memset(blocks.back().get(), 1, 32 << 10);
    }
    for (size_t i = 1; i < blocks.size(); i += 2) live.push_back(std::move(blocks[i]));
  }
};

TEST_CASE("release_free_memory gives pages freed below live memory back" *
          doctest::skip(!kGlibcMalloc)) {
  FreedBetweenLive freed;
  CHECK(heap_free_bytes() >= (3u << 20));
  const long before = resident_bytes();
  release_free_memory();
  CHECK(before - resident_bytes() >= (3l << 20));
}

TEST_CASE("release_free_memory_periodically releases once enough more is free" *
          doctest::skip(!kGlibcMalloc)) {
  boost::asio::io_context io;
  boost::asio::co_spawn(io, release_free_memory_periodically(std::chrono::milliseconds(5), 1 << 20),
                        boost::asio::detached);
  io.run_for(std::chrono::milliseconds(20));  // its baseline: what is free now
  FreedBetweenLive freed;
  const long before = resident_bytes();
  io.run_for(std::chrono::milliseconds(50));
  CHECK(before - resident_bytes() >= (3l << 20));
}

}  // namespace
}  // namespace ztunnel::app
