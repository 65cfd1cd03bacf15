#include "app/memory.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
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

TEST_CASE("tune_malloc keeps a freed buffer in the heap until release_free_memory" *
          doctest::skip(!kGlibcMalloc)) {
  tune_malloc();
  // 512 KiB: above glibc's default mmap threshold, so untuned it would be
  // mapped and unmapped on free, never counted free; tuned it comes from a
  // worker's arena and stays there, free, at the top.
  constexpr std::size_t kBuffer = 512u << 10;
  std::size_t free_while_live = 0, free_after = 0;
  std::thread worker([&] {
    auto buffer = std::make_unique<char[]>(kBuffer);
    std::memset(buffer.get(), 1, kBuffer);
    free_while_live = heap_free_bytes();
    buffer.reset();
    free_after = heap_free_bytes();
  });
  worker.join();
  CHECK(free_after >= free_while_live + kBuffer);
  release_free_memory();
  CHECK(heap_free_bytes() < free_after);
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

// Opens and closes `n` sockets on `io`: each leaves its reactor state on the free list.
void open_and_close_sockets(boost::asio::io_context& io, int n) {
  std::vector<boost::asio::ip::tcp::socket> sockets;
  for (int i = 0; i < n; ++i) {
    sockets.emplace_back(io);
    sockets.back().open(boost::asio::ip::tcp::v4());
  }
  sockets.clear();
}

TEST_CASE("closed sockets' reactor states are freed, and new sockets still open") {
  boost::asio::io_context io{1};
  open_and_close_sockets(io, 100);
  CHECK(idle_socket_states(io) == 100);
  release_idle_socket_states(io);
  io.run_one();  // takes the free list
  CHECK(idle_socket_states(io) == 0);
  io.run_one();  // deletes it, one handler later
  CHECK(io.poll() == 0);
  // Sockets opened afterwards get fresh states and reuse them as before.
  open_and_close_sockets(io, 3);
  CHECK(idle_socket_states(io) == 3);
  boost::asio::ip::tcp::socket again(io);
  again.open(boost::asio::ip::tcp::v4());
  CHECK(idle_socket_states(io) == 2);
}

TEST_CASE("the periodic release frees the workers' idle socket states") {
  boost::asio::io_context admin;
  boost::asio::io_context worker{1};
  // Threshold 0: every period releases, whatever else the heap did.
  boost::asio::co_spawn(admin,
                        release_free_memory_periodically(std::chrono::milliseconds(5), 0, {&worker}),
                        boost::asio::detached);
  open_and_close_sockets(worker, 50);
  CHECK(idle_socket_states(worker) == 50);
  admin.run_for(std::chrono::milliseconds(20));
  worker.poll();
  CHECK(idle_socket_states(worker) == 0);
}

}  // namespace
}  // namespace ztunnel::app
