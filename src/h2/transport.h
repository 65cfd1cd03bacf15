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

#include <cstddef>
#include <memory>
#include <span>
#include <tuple>
#include <utility>

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
  // Writes every byte of the gathered buffers.
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
    auto [ec, n] = co_await boost::asio::async_write(
        stream_, buffers, boost::asio::as_tuple(boost::asio::use_awaitable));
    (void)n;
    co_return ec;
  }

  void close() noexcept override {
    boost::system::error_code ignored;
    stream_.lowest_layer().close(ignored);
  }

 private:
  AsyncStream stream_;
};

extern template class StreamTransport<boost::asio::ip::tcp::socket>;
extern template class StreamTransport<boost::asio::local::stream_protocol::socket>;

std::unique_ptr<Transport> make_transport(boost::asio::ip::tcp::socket socket);
std::unique_ptr<Transport> make_transport(boost::asio::local::stream_protocol::socket socket);

}  // namespace ztunnel::h2
