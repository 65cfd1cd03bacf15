// A TLS transport that drives BoringSSL itself: many records per send, large reads.
//
// Why not asio::ssl::stream: its engine moves ciphertext through a 17 KiB BIO
// pair and an output buffer of the same size, so every TLS record costs one
// sendto (~16 KiB) and every 17,408 bytes one recvfrom, plus two copies.
// Here a BIO of our own appends sealed records to `pending_`: a write seals
// its whole batch (the session bounds it) and sends it with as few sends as
// the socket allows; reads take up to kReadBytes of ciphertext per recv and
// SSL_read decrypts from it in a loop.
//
// Socket calls are non-blocking sends and recvs made here, and Asio is only
// asked to wait for readiness when one would block: Asio's own async
// read/write try the same syscall first but then post the completion, one
// more pass through the scheduler (and usually an epoll_wait) per message.
//
// Threads: everything runs on the socket's executor. The session calls
// read_some from its receive loop and write (or write_now) from its send
// side; a read and a write may be suspended at the same time, but SSL_read
// and SSL_write are synchronous and never overlap. Output SSL_read produces
// (a KeyUpdate reply) waits in `pending_` and leaves with the next write;
// the session writes at least a PING every ping_interval.
//
// Memory while idle: the read waiting for the peer holds a kIdleReadBytes
// input buffer (waiting by reading saves an epoll_ctl and a wake-up per
// message, see fill()); an output buffer larger than 4 KiB is freed when a
// write was small; BoringSSL frees its record buffers when empty. While bytes flow, the input
// buffer is kSmallReadBytes until a recv fills it, kReadBytes after.
//
// Cancellation: read_some, write and handshake honour terminal cancellation
// of the awaiting coroutine (forwarded to the socket wait). A cancelled
// operation leaves the TLS stream in an unknown state: close the transport.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <tuple>
#include <vector>

#include "h2/transport.h"
#include "tls/handshake.h"

namespace ztunnel::h2 {

class TlsTransport final : public Transport {
 public:
  // Ciphertext read per recv.
  static constexpr std::size_t kReadBytes = 128u << 10;
  // Until a recv fills it, the input buffer is this small (one full TLS 1.3
  // record): handshake flights, the h2 preface and small requests fit, and a
  // connection that never moves bulk data never allocates kReadBytes (glibc
  // consolidates its heap on every free that large).
  static constexpr std::size_t kSmallReadBytes = (16u << 10) + 256;
  // The input buffer of a read that waits on a drained socket: an idle
  // connection holds this much; a request of a few KiB fits.
  static constexpr std::size_t kIdleReadBytes = 4u << 10;

  enum class Role { kClient, kServer };

  // Takes ownership of `ssl` (from ServerContext::new_ssl or
  // ClientContext::new_ssl) and replaces its BIOs with our own.
  TlsTransport(boost::asio::ip::tcp::socket socket, bssl::UniquePtr<SSL> ssl);
  ~TlsTransport() override;
  TlsTransport(const TlsTransport&) = delete;
  TlsTransport& operator=(const TlsTransport&) = delete;

  // Runs the handshake until it completes or `deadline` elapses, with
  // tls::handshake's semantics: the same verification, failure reasons and
  // timeout; on any failure the socket is closed. Call once, before I/O.
  boost::asio::awaitable<tls::HandshakeResult> handshake(
      Role role, std::chrono::steady_clock::duration deadline);

  SSL* native_handle() { return ssl_.get(); }
  boost::asio::ip::tcp::socket& socket() { return socket_; }
  // Bytes of buffers this transport holds now (not counting BoringSSL's).
  std::size_t buffered_capacity() const;

  boost::asio::any_io_executor get_executor() override { return socket_.get_executor(); }
  // Decrypts up to buffer.size() bytes (several records if available).
  // close_notify from the peer: error::eof. The socket closing without it:
  // ssl::error::stream_truncated, as asio::ssl::stream reports.
  boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> read_some(
      boost::asio::mutable_buffer buffer) override;
  // Waits for ciphertext on the socket (by reading it into the idle buffer)
  // unless plaintext or ciphertext is already buffered (then returns at once).
  boost::asio::awaitable<boost::system::error_code> wait_readable() override;
  // Seals every byte into records and sends them with few, large writes.
  boost::asio::awaitable<boost::system::error_code> write(
      std::span<const boost::asio::const_buffer> buffers) override;
  // Seals every byte and sends what the socket takes now (see Transport).
  bool can_write_now() const override { return true; }
  boost::system::result<std::size_t> write_now(
      std::span<const boost::asio::const_buffer> buffers) override;
  void close() noexcept override;

 private:
  boost::asio::awaitable<boost::system::error_code> drive_handshake();
  // Reads ciphertext into in_ (sized by what the last read saw).
  boost::asio::awaitable<boost::system::error_code> fill();
  // Sends pending_ to the end, waiting for writability only when the socket is full.
  boost::asio::awaitable<boost::system::error_code> flush();
  // Non-blocking sends of pending_ until it is all sent or the socket is
  // full (error::would_block).
  boost::system::error_code send_pending();
  // Seals up to `size` bytes into records appended to pending_; the count taken.
  boost::system::result<std::size_t> seal(const std::uint8_t* data, std::size_t size);
  // Seals every byte of `buffers` (each into records of its own).
  boost::system::result<void> seal_all(std::span<const boost::asio::const_buffer> buffers);
  // The output buffer is sent: empty it, and give it back if the batch was small.
  void output_sent(std::size_t batch);
  boost::system::error_code ssl_error(int ret);

  static int bio_read(BIO* bio, char* out, int len);
  static int bio_write(BIO* bio, const char* in, int len);
  static long bio_ctrl(BIO* bio, int cmd, long larg, void* parg);
  static const BIO_METHOD* bio_method();

  boost::asio::ip::tcp::socket socket_;
  bssl::UniquePtr<SSL> ssl_;
  // Ciphertext received, not yet taken by BoringSSL: in_[in_head_, in_tail_).
  std::unique_ptr<std::uint8_t[]> in_;
  std::size_t in_head_ = 0;
  std::size_t in_tail_ = 0;
  std::size_t in_capacity_ = 0;  // of in_ when allocated
  bool bulk_ = false;     // a recv has filled in_: read kReadBytes from now on
  bool drained_ = true;   // the last recv did not fill in_: the next one probably waits
  bool peer_eof_ = false;  // the socket reached EOF; BoringSSL sees it as a 0 read
  boost::system::error_code read_error_;  // a failed wait_readable, for read_some to report
  // Sealed records; pending_[pending_sent_, end) are not sent yet. SSL_read
  // may append while a write waits for writability (nothing points into it then).
  std::vector<std::uint8_t> pending_;
  std::size_t pending_sent_ = 0;
};

}  // namespace ztunnel::h2
