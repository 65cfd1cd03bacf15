// h2::Stream as a net::copy_bidirectional endpoint (found by ADL in ztunnel::h2).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <cstdint>
#include <utility>

#include "h2/session.h"

namespace ztunnel::h2 {

// A stream read returns as soon as bytes are buffered, so there is nothing to
// gain from waiting first: the copy's buffer is small until bulk data flows.
inline boost::asio::awaitable<boost::system::error_code> wait_readable(Stream&) { co_return boost::system::error_code{}; }

inline boost::asio::awaitable<std::pair<boost::system::error_code, std::size_t>> read_some(
    Stream& s, boost::asio::mutable_buffer b) {
  auto [ec, n] = co_await s.read_some(b);
  co_return std::pair{ec, n};
}

// Read in place: the copy writes to the socket straight from the stream's
// receive queue (no copy buffer, no copy), then consumes what it wrote.
inline boost::asio::awaitable<std::pair<boost::system::error_code, boost::asio::const_buffer>>
read_view(Stream& s, std::size_t max_bytes) {
  auto [ec, view] = co_await s.read_view(max_bytes);
  co_return std::pair{ec, view};
}

inline void consume(Stream& s, std::size_t n) { s.consume_view(n); }

// While the copy from `s` to `socket` waits, the session writes DATA to the
// socket itself (Stream::attach_sink), counting it in `bytes`; detached when
// this goes out of scope, before the copy returns and the socket can close.
class SinkAttachment {
 public:
  SinkAttachment(Stream& s, boost::asio::ip::tcp::socket& socket, std::uint64_t& bytes) : s_(s) {
    s_.attach_sink(socket, bytes);
  }
  ~SinkAttachment() { s_.detach_sink(); }
  SinkAttachment(const SinkAttachment&) = delete;
  SinkAttachment& operator=(const SinkAttachment&) = delete;

 private:
  Stream& s_;
};

inline SinkAttachment attach_sink(Stream& s, boost::asio::ip::tcp::socket& socket,
                                  std::uint64_t& bytes) {
  return SinkAttachment(s, socket, bytes);
}

inline boost::asio::awaitable<boost::system::error_code> write_all(Stream& s,
                                                                    boost::asio::const_buffer b) {
  while (b.size() > 0) {
    auto [ec, n] = co_await s.write(b);
    b += n;
    if (ec) co_return ec;
  }
  co_return boost::system::error_code{};
}

inline boost::system::error_code shutdown_write(Stream& s) { return s.shutdown_write(); }

inline void abort(Stream& s) { s.reset(kCancel); }

}  // namespace ztunnel::h2
