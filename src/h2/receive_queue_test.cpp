#include "h2/receive_queue.h"

#include <cstdint>
#include <numeric>
#include <vector>

#include "support/testing.h"

namespace ztunnel::h2::detail {
namespace {

std::vector<std::uint8_t> counting(std::size_t n, std::uint8_t first = 0) {
  std::vector<std::uint8_t> v(n);
  std::iota(v.begin(), v.end(), first);
  return v;
}

}  // namespace

TEST_CASE("a receive queue returns bytes in order across chunks and frees drained chunks") {
  ReceiveQueue q;
  const auto data = counting(200'000);
  // Appends of odd sizes, so chunk boundaries fall mid-append.
  for (std::size_t off = 0; off < data.size(); off += 7'001) {
    q.append(data.data() + off, std::min<std::size_t>(7'001, data.size() - off));
  }
  CHECK(q.size() == data.size());
  CHECK(q.capacity() >= data.size());
  std::vector<std::uint8_t> out;
  std::vector<std::uint8_t> buf(5'000);
  while (!q.empty()) {
    const std::size_t n = q.read(buf);
    out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
  }
  CHECK(out == data);
  CHECK(q.capacity() == 0);
}

TEST_CASE("a receive queue's first chunk is the size of the first message, later ones grow") {
  ReceiveQueue q;
  const auto small = counting(1024);
  q.append(small.data(), small.size());
  CHECK(q.capacity() == 1024);
  q.append(small.data(), small.size());
  CHECK(q.capacity() == 1024 + 2048);
  const auto big = counting(ReceiveQueue::kMaxChunk * 3);
  q.append(big.data(), big.size());
  // No chunk exceeds kMaxChunk however large the append.
  CHECK(q.capacity() <= 1024 + 2048 + 4096 + 3 * ReceiveQueue::kMaxChunk + ReceiveQueue::kMaxChunk);
  CHECK(q.size() == 2048 + big.size());
}

TEST_CASE("after draining, a queue starts with room for twice its last busy spell") {
  ReceiveQueue q;
  std::vector<std::uint8_t> buf(ReceiveQueue::kMaxChunk);
  // A bulk stream: each session read delivers the tail of a frame, then whole
  // frames (60,080 bytes), and the reader empties the queue after each read.
  const auto frame_tail = counting(80);
  const auto frame = counting(20'000);
  const auto deliver_read = [&] {
    q.append(frame_tail.data(), frame_tail.size());
    for (int i = 0; i < 3; ++i) q.append(frame.data(), frame.size());
  };
  deliver_read();
  while (!q.empty()) q.read(buf);
  CHECK(q.capacity() == 0);  // drained: nothing held
  deliver_read();
  // One chunk holds the whole read, so a reader writes it out in one piece.
  CHECK(q.pin(ReceiveQueue::kMaxChunk).size() == 60'080);
  q.unpin(60'080);
  // A chatty stream (1 KiB messages) keeps small chunks.
  ReceiveQueue chatty;
  const auto message = counting(1024);
  for (int i = 0; i < 20; ++i) {
    chatty.append(message.data(), message.size());
    CHECK(chatty.capacity() <= 2048);
    while (!chatty.empty()) chatty.read(buf);
  }
}

TEST_CASE("a pinned view stays valid while more bytes arrive, and unpin consumes it") {
  ReceiveQueue q;
  const auto first = counting(16'384, 1);
  q.append(first.data(), first.size());
  const auto view = q.pin(1u << 20);
  REQUIRE(view.size() == first.size());
  const std::uint8_t* where = view.data();
  // Enough to fill several more chunks: nothing already written moves.
  const auto more = counting(300'000, 7);
  q.append(more.data(), more.size());
  CHECK(view.data() == where);
  CHECK(std::vector<std::uint8_t>(view.begin(), view.end()) == first);
  // A copying read is refused while a view is out.
  std::vector<std::uint8_t> buf(10);
  CHECK(q.read(buf) == 0);
  CHECK(q.unpin(1000) == 1000);
  CHECK(q.size() == first.size() - 1000 + more.size());
  const auto rest = q.pin(1u << 20);
  REQUIRE(rest.size() == first.size() - 1000);
  CHECK(rest[0] == first[1000]);
  CHECK(q.unpin(rest.size()) == rest.size());
  // Then the next chunk, from its start.
  const auto next = q.pin(10);
  REQUIRE(next.size() == 10);
  CHECK(next[0] == more[0]);
  CHECK(q.unpin(0) == 0);
  CHECK(q.size() == more.size());
}

TEST_CASE("clear() while a view is pinned keeps the viewed bytes until unpin, which consumes nothing") {
  ReceiveQueue q;
  const auto data = counting(4096, 3);
  q.append(data.data(), data.size());
  const auto view = q.pin(4096);
  q.clear();
  CHECK(q.size() == 0);
  // The storage is still ours to read (ASan would flag a use after free).
  CHECK(std::vector<std::uint8_t>(view.begin(), view.end()) == data);
  CHECK(q.unpin(view.size()) == 0);
  CHECK(q.capacity() == 0);
  CHECK_FALSE(q.pinned());
}

TEST_CASE("pinning an empty queue gives an empty view") {
  ReceiveQueue q;
  CHECK(q.pin(100).empty());
  CHECK_FALSE(q.pinned());
  CHECK(q.unpin(5) == 0);
}

}  // namespace ztunnel::h2::detail
