// The bytes a stream received and its reader has not taken yet.
//
// Why not one growing vector: a reader that writes straight from the queue
// (Stream::read_view) holds a pointer into it across a socket write, while
// more DATA arrives. Here bytes live in chunks that never move once written:
// appends fill the last chunk and start a new one when it is full, so a view
// of the oldest chunk stays valid until the reader consumes it, even across
// clear() (the viewed chunk is kept until unpin). No compaction, no
// reallocation copies.
//
// Chunk sizes follow the traffic: the first chunk is exactly as large as the
// first append (a 1 KiB message costs 1 KiB), later ones double up to
// kMaxChunk; once the queue has run empty, the next first chunk has room for
// twice what it held before it emptied. Drained chunks are freed at once, so
// an idle stream holds no receive memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace ztunnel::h2::detail {

class ReceiveQueue {
 public:
  // Larger than the DATA one session read (64 KiB) delivers, so a reader
  // that drains the queue after every read writes one chunk, not a chunk and
  // the few bytes that did not fit in it (a second send per read). Less a
  // malloc header, so the block is a round 128 KiB.
  static constexpr std::size_t kMaxChunk = (128u << 10) - 64;

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Bytes held in chunks, consumed or not (for tests and memory accounting).
  std::size_t capacity() const;

  void append(const std::uint8_t* data, std::size_t n);

  // Copies up to out.size() of the oldest bytes out and consumes them.
  // Fails (returns 0) while a view is pinned: one reader style at a time.
  std::size_t read(std::span<std::uint8_t> out);

  // The oldest contiguous bytes, at most `max`, pinned: they stay valid
  // (even across append() and clear()) until unpin(). One pin at a time;
  // pinning again first unpins with nothing consumed.
  std::span<const std::uint8_t> pin(std::size_t max);
  bool pinned() const { return pinned_ > 0; }
  // Consumes `n` (<= the pinned size) of the pinned bytes and releases the
  // pin. Returns the bytes really consumed: 0 when clear() dropped them in
  // the meantime (their flow-control credit went back with the clear).
  std::size_t unpin(std::size_t n);

  // Drops every byte. A pinned chunk's storage survives until unpin().
  void clear();

 private:
  struct Chunk {
    std::unique_ptr<std::uint8_t[]> data;
    std::size_t capacity = 0;
    std::size_t size = 0;
  };
  void pop_front_chunk();

  std::vector<Chunk> chunks_;
  std::size_t head_ = 0;  // consumed bytes of chunks_.front()
  std::size_t size_ = 0;  // unconsumed bytes in all chunks
  std::size_t pinned_ = 0;
  std::size_t busy_bytes_ = 0;   // appended since the queue was last empty
  std::size_t first_chunk_ = 0;  // the least room of the chunk an empty queue starts
  std::unique_ptr<std::uint8_t[]> orphan_;  // a pinned chunk clear() dropped
};

}  // namespace ztunnel::h2::detail
