// A TLS transport that drives BoringSSL itself: many records per send, large reads.
//
// Why not asio::ssl::stream: its engine moves ciphertext through a 17 KiB BIO
// pair and an output buffer of the same size, so every TLS record costs one
// sendto (~16 KiB) and every 17,408 bytes one recvfrom, plus two copies.
// Here a BIO of our own appends sealed records to `pending_`, flushed with
// one gathered write of up to kFlushBytes; reads take up to kReadBytes of
// ciphertext per recv and SSL_read decrypts from it in a loop.
//
// Threads: everything runs on the socket's executor. The session calls
// read_some from its receive loop and write from its send loop; the two may
// be suspended at the same time (one socket read and one socket write in
// flight), but SSL_read and SSL_write are synchronous and never overlap.
// Output SSL_read produces (a KeyUpdate reply) waits in `pending_` and
// leaves with the next write; the session writes at least a PING every
// ping_interval.
//
// Memory while idle: the ciphertext input buffer is freed whenever a read
// finds the socket drained (as net::copy does), the output buffers when a
// write was small; BoringSSL frees its record buffers when empty. The input
// buffer is kSmallReadBytes until a recv fills it, kReadBytes after.
//
// Cancellation: read_some, write and handshake honour terminal cancellation
// of the awaiting coroutine (forwarded to the socket operation). A cancelled
// operation leaves the TLS stream in an unknown state: close the transport.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

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
  // Ciphertext read per recv; output flushed once this much is sealed.
  static constexpr std::size_t kReadBytes = 128u << 10;
  // Until a recv fills it, the input buffer is this small (one full TLS 1.3
  // record): handshake flights, the h2 preface and small requests fit, and a
  // connection that never moves bulk data never allocates kReadBytes (glibc
  // consolidates its heap on every free that large).
  static constexpr std::size_t kSmallReadBytes = (16u << 10) + 256;
  static constexpr std::size_t kFlushBytes = 256u << 10;

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
  // Waits for ciphertext on the socket unless plaintext or ciphertext is
  // already buffered (then returns at once).
  boost::asio::awaitable<boost::system::error_code> wait_readable() override;
  // Seals every byte into records and sends them with few, large writes.
  boost::asio::awaitable<boost::system::error_code> write(
      std::span<const boost::asio::const_buffer> buffers) override;
  void close() noexcept override;

 private:
  boost::asio::awaitable<boost::system::error_code> drive_handshake();
  // `handshaking`: recv at once (asio tries it before polling), without
  // first waiting for readability: a flight is expected, the connection is
  // not idle, and the wait costs an epoll_ctl.
  boost::asio::awaitable<boost::system::error_code> fill(bool handshaking = false);
  boost::asio::awaitable<boost::system::error_code> flush();
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
  bool drained_ = true;   // the last recv did not fill in_: wait before allocating
  bool peer_eof_ = false;  // the socket reached EOF; BoringSSL sees it as a 0 read
  // Sealed records not yet sent, and the batch a write is sending now.
  std::vector<std::uint8_t> pending_;
  std::vector<std::uint8_t> inflight_;
};

}  // namespace ztunnel::h2
