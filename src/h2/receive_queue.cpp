#include "h2/receive_queue.h"

#include <algorithm>

#include "core/bytes.h"

namespace ztunnel::h2::detail {

std::size_t ReceiveQueue::capacity() const {
  std::size_t total = 0;
  for (const Chunk& c : chunks_) total += c.capacity;
  return total;
}

void ReceiveQueue::append(const std::uint8_t* data, std::size_t n) {
  while (n > 0) {
    if (chunks_.empty() || chunks_.back().size == chunks_.back().capacity) {
      // The first chunk fits the first message exactly; while the queue
      // stays busy, chunks double (fewer allocations per MB, and fewer writes
      // for a reader that writes each chunk out). An empty queue starts with
      // room for twice what its last busy spell held: a bulk stream, which
      // drains its queue after every session read, gets one chunk per read,
      // not a partial frame's worth and then doublings; a chatty one keeps
      // small chunks.
      const std::size_t grown =
          chunks_.empty() ? first_chunk_ : std::min(chunks_.back().capacity * 2, kMaxChunk);
      const std::size_t capacity = std::max(std::min(n, kMaxChunk), grown);
      chunks_.push_back(Chunk{std::make_unique_for_overwrite<std::uint8_t[]>(capacity), capacity, 0});
    }
    Chunk& last = chunks_.back();
    const std::size_t take = std::min(n, last.capacity - last.size);
    core::copy_bytes(last.data.get() + last.size, data, take);
    last.size += take;
    size_ += take;
    busy_bytes_ += take;
    data += take;
    n -= take;
  }
}

void ReceiveQueue::pop_front_chunk() {
  chunks_.erase(chunks_.begin());
  head_ = 0;
  // An idle stream holds nothing, not even the chunk list.
  if (chunks_.empty()) {
    std::vector<Chunk>().swap(chunks_);
    first_chunk_ = std::min(busy_bytes_ * 2, kMaxChunk);
    busy_bytes_ = 0;
  }
}

std::size_t ReceiveQueue::read(std::span<std::uint8_t> out) {
  if (pinned_ > 0) return 0;
  std::size_t copied = 0;
  while (copied < out.size() && size_ > 0) {
    Chunk& front = chunks_.front();
    const std::size_t take = std::min(out.size() - copied, front.size - head_);
    core::copy_bytes(out.data() + copied, front.data.get() + head_, take);
    copied += take;
    head_ += take;
    size_ -= take;
    if (head_ == front.size) pop_front_chunk();
  }
  return copied;
}

std::span<const std::uint8_t> ReceiveQueue::pin(std::size_t max) {
  unpin(0);
  if (size_ == 0 || max == 0) return {};
  const Chunk& front = chunks_.front();
  pinned_ = std::min(max, front.size - head_);
  return {front.data.get() + head_, pinned_};
}

std::size_t ReceiveQueue::unpin(std::size_t n) {
  if (pinned_ == 0) return 0;
  pinned_ = 0;
  if (orphan_) {
    orphan_.reset();
    return 0;
  }
  // pinned_ <= the front chunk's unconsumed bytes, and n <= pinned_.
  Chunk& front = chunks_.front();
  n = std::min(n, front.size - head_);
  head_ += n;
  size_ -= n;
  if (head_ == front.size) pop_front_chunk();
  return n;
}

void ReceiveQueue::clear() {
  if (pinned_ > 0 && !orphan_ && !chunks_.empty()) orphan_ = std::move(chunks_.front().data);
  std::vector<Chunk>().swap(chunks_);
  head_ = 0;
  size_ = 0;
}

}  // namespace ztunnel::h2::detail
