// HTTP/2 CONNECT sessions (client and server) and the byte-stream view of one CONNECT stream.
//
// Threads: a session, its nghttp2 object and every stream on it belong to the
// executor of its transport (one io_context thread). All member functions and
// awaitables here must be used from that thread; nothing is locked.
//
// Lifetimes: ClientSession and ServerSession are cheap handles on a shared
// session; run() keeps the session alive until the connection ends. A Stream
// keeps its own state alive, so it stays safe to use (operations fail with
// Errc::kConnectionClosed) after its session is gone.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "h2/error.h"
#include "h2/headers.h"
#include "h2/options.h"
#include "h2/transport.h"

namespace ztunnel::h2 {

namespace detail {
class Core;
struct StreamState;
}  // namespace detail

// RFC 9113 §7 codes used with Stream::reset().
inline constexpr std::uint32_t kNoError = 0x0;
inline constexpr std::uint32_t kInternalError = 0x2;
inline constexpr std::uint32_t kRefusedStream = 0x7;
inline constexpr std::uint32_t kCancel = 0x8;
inline constexpr std::uint32_t kConnectError = 0xa;
inline constexpr std::uint32_t kEnhanceYourCalm = 0xb;

// One HTTP/2 stream used as a byte stream (the HBONE tunnel payload).
// At most one read_some and one write may be outstanding at a time; they may
// run concurrently (one copy loop per direction).
//
// Dropping the last handle of a stream that is still open resets it
// (CANCEL, or NO_ERROR when our side already ended), so a forgotten stream
// never pins a slot of the peer's MAX_CONCURRENT_STREAMS.
class Stream {
 public:
  Stream() = default;
  explicit Stream(std::shared_ptr<detail::StreamState> state);
  Stream(Stream&& other) noexcept = default;
  Stream& operator=(Stream&& other) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream();

  bool valid() const { return state_ != nullptr; }
  std::int32_t id() const;
  boost::asio::any_io_executor get_executor() const;

  // Reads up to buffer.size() bytes; returns as soon as any are buffered.
  // Returns boost::asio::error::eof after END_STREAM or a RST_STREAM with
  // NO_ERROR or CANCEL (once buffered bytes are read); a wire_category()
  // error for other resets; Errc::kConnectionClosed (or the session's close
  // reason) when the connection dies; Errc::kNotOpen on a server stream
  // before respond(200), because request bytes must not reach an upstream
  // before the handler has authorized the tunnel.
  // Each byte read returns flow-control credit to the peer: an idle reader
  // stops the peer after one window.
  // Cancellation: terminal cancellation completes with operation_aborted and
  // consumes nothing; the stream stays usable.
  boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> read_some(
      boost::asio::mutable_buffer buffer);

  // Reads in place: waits as read_some does (same errors, same
  // cancellation), then returns a view of up to `max_bytes` of the oldest
  // received bytes without copying them. The view stays valid, even if more
  // DATA arrives or the stream is reset or its session ends, until
  // consume_view() or the next read_view(); read_some fails with
  // Errc::kViewPending meanwhile. The bytes stay unread, and their
  // flow-control credit stays with us, until consume_view().
  boost::asio::awaitable<std::tuple<boost::system::error_code, boost::asio::const_buffer>> read_view(
      std::size_t max_bytes);
  // Marks the first `n` bytes of the last view read (n <= its size; 0 puts
  // them back) and returns their flow-control credit to the peer.
  void consume_view(std::size_t n);

  // Lets the session write received DATA straight to `socket` while nothing
  // is buffered: right after the frames are parsed, a non-blocking send from
  // the session's read buffer, so the bytes are neither copied into the
  // receive queue nor handed over through a wake-up of the reader. What the
  // socket does not take (or all of it, while bytes are buffered or the
  // socket is closed) is buffered for the reader as usual, in order. Bytes
  // sent are added to `*bytes_sent` and their credit goes back to the peer
  // at once, as consume_view() would. For a read_view()/consume_view()
  // reader that writes to the same socket: it must never be writing when
  // nothing is buffered (true of a view reader, whose bytes stay buffered
  // until consumed). `socket` and `bytes_sent` must outlive the attachment.
  void attach_sink(boost::asio::ip::tcp::socket& socket, std::uint64_t& bytes_sent);
  void detach_sink();

  // Writes all of `data`. Completes once every byte is framed into the
  // session's send batch (not when the peer has them); suspends while the peer's
  // stream or connection window is exhausted, so a slow peer slows the
  // writer and nothing is buffered per stream beyond the caller's buffer.
  // Returns the count taken so far with any error.
  // Cancellation: terminal cancellation completes with operation_aborted and
  // the count already taken; the caller's buffer is released immediately.
  // The byte stream is then cut mid-write, so callers usually reset().
  boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> write(
      boost::asio::const_buffer data);

  // Ends our direction (END_STREAM, the HBONE form of a TCP FIN) after the
  // bytes already written. Reading continues.
  boost::system::error_code shutdown_write();

  // Aborts the stream with RST_STREAM(code); pending reads and writes fail
  // with Errc::kStreamClosed.
  void reset(std::uint32_t code = kCancel);

  // Server streams only: sends the response HEADERS. 200 opens the tunnel;
  // any other status ends the stream (HEADERS with END_STREAM, no body).
  boost::system::error_code respond(int status, const Headers& headers = {});

  // Received bytes not yet read (never more than the stream window).
  std::size_t buffered_bytes() const;
  // Trailers received after the body, if any (gRPC status rides here).
  const Headers& trailers() const;

 private:
  void release() noexcept;
  std::shared_ptr<detail::StreamState> state_;
};

struct Request {
  std::string method;
  std::string authority;
  std::string scheme;  // empty for CONNECT
  std::string path;    // empty for CONNECT
  Headers headers;     // regular fields, in arrival order
};

// What a server handler receives. The handler decides: stream.respond(200)
// opens the tunnel, any other status rejects it. Non-CONNECT methods reach
// the handler too (it answers 400); malformed requests (CONNECT with :path,
// missing :authority, connection-specific headers) are reset by nghttp2 and
// never reach it.
struct IncomingRequest {
  Request request;
  Stream stream;
};

struct Response {
  int status = 0;
  Headers headers;
  Stream stream;  // valid only when status == 200
};

// Server side of an HBONE connection.
class ServerSession {
 public:
  // Runs once per accepted stream, as its own coroutine on the session's
  // executor. Exceptions are logged as bugs and reset the stream.
  using Handler = std::function<boost::asio::awaitable<void>(IncomingRequest)>;

  ServerSession(std::unique_ptr<Transport> transport, Handler handler,
                SessionOptions options = SessionOptions::server_defaults());

  // Drives the connection until it ends and returns why: success after a
  // graceful GOAWAY exchange (either side drained); otherwise
  // Errc::kConnectionClosed (peer closed the socket, or close()),
  // kPingTimeout, kHandshakeTimeout, kFlood, kProtocolError, a
  // wire_category() code from the peer's GOAWAY, or the transport's error.
  // Streams still open fail with that reason. Call once.
  // Cancellation: closes the connection at once (operation_aborted).
  boost::asio::awaitable<boost::system::error_code> run();

  // Graceful: GOAWAY (a shutdown notice, then the final GOAWAY after one
  // PING round trip); streams already accepted finish, then the connection
  // closes.
  void drain();
  // Forced: GOAWAY NO_ERROR, flushed for at most close_flush_timeout, then
  // the transport is closed and every stream fails.
  void close();

  std::size_t active_streams() const;
  bool is_closed() const;

 private:
  std::shared_ptr<detail::Core> core_;
};

// Client side of an HBONE connection, shaped for a connection pool.
class ClientSession {
 public:
  explicit ClientSession(std::unique_ptr<Transport> transport,
                         SessionOptions options = SessionOptions::client_defaults());

  // As ServerSession::run().
  boost::asio::awaitable<boost::system::error_code> run();

  // Sends CONNECT `authority` with `headers` (baggage, forwarded,
  // traceparent...) and waits for the response HEADERS. A 200 comes back
  // with an open stream; other statuses with an invalid stream (the stream
  // is already reset). Fails with Errc::kNotUsable / kGoaway / kStreamLimit
  // without sending anything, or with a wire_category() code when the peer
  // resets the stream (REFUSED_STREAM...).
  // Cancellation: resets the stream (CANCEL) and completes with
  // operation_aborted.
  //
  // `early_data`, when not empty, is sent as DATA right behind the HEADERS,
  // without waiting for the response (one round trip less before the
  // tunnel's first bytes arrive). The buffer must stay valid until this
  // completes; on a 200 every byte of it has been handed to nghttp2 by then.
  // A server must buffer such bytes until it accepts the stream and drop
  // them when it refuses it (h2::Stream does: reads fail with kNotOpen
  // before respond(200)).
  boost::asio::awaitable<boost::system::result<Response>> open_stream(
      std::string authority, Headers headers = {}, boost::asio::const_buffer early_data = {});

  // False once GOAWAY was received or sent, or the session is closing/closed.
  bool is_usable() const;
  // Streams that may still be opened now: peer limit minus active streams.
  std::size_t available_streams() const;
  std::size_t active_streams() const;
  // The peer's MAX_CONCURRENT_STREAMS (the assumed value before its SETTINGS).
  std::uint32_t peer_max_concurrent_streams() const;

  void drain();  // GOAWAY; existing streams finish
  void close();  // as ServerSession::close()

 private:
  std::shared_ptr<detail::Core> core_;
};

}  // namespace ztunnel::h2
