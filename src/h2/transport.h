// The byte transport under an HTTP/2 session: TLS in production, plain sockets in tests.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace ztunnel::h2 {

// A small virtual seam instead of a template over the stream type: the
// session is compiled once, and adding TLS does not recompile it.
//
// Cancellation: read_some and write honour terminal cancellation of the
// awaiting coroutine (forwarded to the underlying stream). A cancelled
// operation leaves the byte stream in an unknown state; the session then
// closes the transport.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual boost::asio::any_io_executor get_executor() = 0;
  // Reads at least one byte; EOF as boost::asio::error::eof.
  virtual boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> read_some(
      boost::asio::mutable_buffer buffer) = 0;
  // Writes every byte of the gathered buffers. Takes them (sends, seals or
  // copies them) before it first suspends: the buffers need to stay valid
  // and unchanged only until then. The session relies on this to write
  // large DATA payloads straight from the writers' buffers.
  virtual boost::asio::awaitable<boost::system::error_code> write(
      std::span<const boost::asio::const_buffer> buffers) = 0;
  // Closes the underlying socket; pending operations complete with an error.
  virtual void close() noexcept = 0;
  // Waits until read_some is likely to complete without waiting for the
  // peer, so a reader need not hold its buffer while the connection idles.
  // May return at once (the default). An error means read_some will fail too.
  virtual boost::asio::awaitable<boost::system::error_code> wait_readable() {
    co_return boost::system::error_code{};
  }

  // For a writer that must not suspend (the session sends a stream's frames
  // from the stream's own coroutine when nothing else is writing, which
  // saves a hand-off to its send loop through the scheduler): takes every
  // byte of `buffers`, sends what the socket accepts now and keeps the rest
  // for the next write(), which sends it first (write({}) sends only that).
  // Returns the bytes kept. Not while a write() is suspended.
  // Only when can_write_now(); otherwise it fails and takes nothing.
  virtual bool can_write_now() const { return false; }
  virtual boost::system::result<std::size_t> write_now(std::span<const boost::asio::const_buffer> buffers) {
    (void)buffers;
    return boost::system::errc::make_error_code(boost::system::errc::operation_not_supported);
  }
};

// Adapter for any AsyncReadStream + AsyncWriteStream with a lowest_layer()
// that can be closed: tcp::socket, local::stream_protocol::socket and
// ssl::stream<tcp::socket>.
template <class AsyncStream>
class StreamTransport final : public Transport {
 public:
  explicit StreamTransport(AsyncStream stream) : stream_(std::move(stream)) {}
  template <class... Args>
  explicit StreamTransport(std::in_place_t, Args&&... args)
      : stream_(std::forward<Args>(args)...) {}

  AsyncStream& stream() { return stream_; }

  boost::asio::any_io_executor get_executor() override { return stream_.get_executor(); }

  boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> read_some(
      boost::asio::mutable_buffer buffer) override {
    co_return co_await stream_.async_read_some(
        buffer, boost::asio::as_tuple(boost::asio::use_awaitable));
  }

  boost::asio::awaitable<boost::system::error_code> write(
      std::span<const boost::asio::const_buffer> buffers) override {
    // Everything the socket does not take now is copied into kept_ first
    // (Transport::write's contract); only then does the write wait.
    if constexpr (kPlainSocket) {
      if (auto kept = write_now(buffers); !kept) co_return kept.error();
    } else {
      for (const boost::asio::const_buffer& b : buffers) {
        const auto* p = static_cast<const std::uint8_t*>(b.data());
        kept_.insert(kept_.end(), p, p + b.size());
      }
    }
    if (kept_.empty()) co_return boost::system::error_code{};
    auto [ec, n] = co_await boost::asio::async_write(
        stream_, boost::asio::buffer(kept_), boost::asio::as_tuple(boost::asio::use_awaitable));
    (void)n;
    std::vector<std::uint8_t>().swap(kept_);
    co_return ec;
  }

  // Plain sockets only; a TLS stream of Asio's cannot send without waiting.
  static constexpr bool kPlainSocket =
      std::is_same_v<AsyncStream, boost::asio::ip::tcp::socket> ||
      std::is_same_v<AsyncStream, boost::asio::local::stream_protocol::socket>;
  bool can_write_now() const override { return kPlainSocket; }

  boost::system::result<std::size_t> write_now(
      std::span<const boost::asio::const_buffer> buffers) override {
    if constexpr (kPlainSocket) {
      for (const boost::asio::const_buffer& b : buffers) {
        const auto* p = static_cast<const std::uint8_t*>(b.data());
        std::size_t left = b.size();
        while (left > 0 && kept_.empty()) {
          const ssize_t n =
              ::send(stream_.native_handle(), p, left, MSG_DONTWAIT | MSG_NOSIGNAL);
          if (n < 0 && errno == EINTR) continue;
          if (n < 0 && errno != EAGAIN) {
            return boost::system::error_code(errno, boost::system::system_category());
          }
          if (n < 0) break;  // the socket buffer is full: keep the rest
          p += n;
          left -= static_cast<std::size_t>(n);
        }
        kept_.insert(kept_.end(), p, p + left);
      }
      return kept_.size();
    } else {
      return Transport::write_now(buffers);
    }
  }

  void close() noexcept override {
    boost::system::error_code ignored;
    stream_.lowest_layer().close(ignored);
  }

 private:
  AsyncStream stream_;
  std::vector<std::uint8_t> kept_;  // what write_now could not send yet
};

extern template class StreamTransport<boost::asio::ip::tcp::socket>;
extern template class StreamTransport<boost::asio::local::stream_protocol::socket>;

std::unique_ptr<Transport> make_transport(boost::asio::ip::tcp::socket socket);
std::unique_ptr<Transport> make_transport(boost::asio::local::stream_protocol::socket socket);

}  // namespace ztunnel::h2
