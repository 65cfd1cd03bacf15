// TlsTransport: BoringSSL over a BIO of our own, with batched sends and large reads.
#include "h2/tls_transport.h"

#include <openssl/err.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <climits>
#include <cstring>
#include <new>

namespace ztunnel::h2 {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
// A write smaller than this means the connection is not moving bulk data:
// give the output buffers back rather than hold them while it idles.
constexpr std::size_t kKeepOutputAfter = 16u << 10;
}  // namespace

// --- the BIO: BoringSSL reads ciphertext from in_ and appends records to pending_ ---

const BIO_METHOD* TlsTransport::bio_method() {
  static const BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ztunnel-tls");
    if (m == nullptr || !BIO_meth_set_read(m, &TlsTransport::bio_read) ||
        !BIO_meth_set_write(m, &TlsTransport::bio_write) ||
        !BIO_meth_set_ctrl(m, &TlsTransport::bio_ctrl)) {
      throw std::bad_alloc();
    }
    return m;
  }();
  return method;
}

int TlsTransport::bio_read(BIO* bio, char* out, int len) {
  auto* self = static_cast<TlsTransport*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  const std::size_t available = self->in_tail_ - self->in_head_;
  if (available == 0) {
    if (self->peer_eof_) return 0;
    BIO_set_retry_read(bio);
    return -1;
  }
  const std::size_t n = std::min(available, static_cast<std::size_t>(std::max(len, 0)));
  std::memcpy(out, self->in_.get() + self->in_head_, n);
  self->in_head_ += n;
  return static_cast<int>(n);
}

int TlsTransport::bio_write(BIO* bio, const char* in, int len) {
  auto* self = static_cast<TlsTransport*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  try {
    self->pending_.insert(self->pending_.end(), reinterpret_cast<const std::uint8_t*>(in),
                          reinterpret_cast<const std::uint8_t*>(in) + len);
  } catch (...) {
    return -1;  // out of memory: BoringSSL reports a write failure
  }
  return len;
}

long TlsTransport::bio_ctrl(BIO*, int cmd, long, void*) {
  // BoringSSL flushes after each flight/record; the real flush is ours.
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

// --- construction ----------------------------------------------------------------

TlsTransport::TlsTransport(asio::ip::tcp::socket socket, bssl::UniquePtr<SSL> ssl)
    : socket_(std::move(socket)), ssl_(std::move(ssl)) {
  BIO* bio = BIO_new(bio_method());
  if (bio == nullptr) throw std::bad_alloc();
  BIO_set_data(bio, this);
  BIO_set_init(bio, 1);
  // One BIO for both directions: SSL_set_bio then owns its one reference.
  SSL_set_bio(ssl_.get(), bio, bio);
}

TlsTransport::~TlsTransport() = default;

std::size_t TlsTransport::buffered_capacity() const {
  return (in_ ? in_capacity_ : 0) + pending_.capacity() + inflight_.capacity();
}

void TlsTransport::close() noexcept {
  error_code ignored;
  socket_.close(ignored);
}

// --- socket side ----------------------------------------------------------------

asio::awaitable<error_code> TlsTransport::fill(bool handshaking) {
  if (in_head_ == in_tail_) in_head_ = in_tail_ = 0;
  if (drained_ && !handshaking) {
    // Idle connections hold no input buffer (BoringSSL has taken every byte).
    if (in_head_ == in_tail_) in_.reset();
    auto [ec] = co_await socket_.async_wait(asio::ip::tcp::socket::wait_read, use_nothrow);
    if (ec) co_return ec;
  }
  const std::size_t capacity = bulk_ ? kReadBytes : kSmallReadBytes;
  if (in_ && in_head_ == in_tail_ && in_capacity_ < capacity) in_.reset();
  if (!in_) {
    in_ = std::make_unique_for_overwrite<std::uint8_t[]>(capacity);
    in_capacity_ = capacity;
    in_head_ = in_tail_ = 0;
  } else if (in_tail_ == in_capacity_) {
    // Never happens with BoringSSL (WANT_READ means it took every byte), but
    // a full buffer must not turn into a zero-length read.
    std::memmove(in_.get(), in_.get() + in_head_, in_tail_ - in_head_);
    in_tail_ -= in_head_;
    in_head_ = 0;
  }
  const std::size_t room = in_capacity_ - in_tail_;
  auto [ec, n] =
      co_await socket_.async_read_some(asio::buffer(in_.get() + in_tail_, room), use_nothrow);
  in_tail_ += n;
  drained_ = n < room;
  if (!drained_) bulk_ = true;
  co_return ec;
}

asio::awaitable<error_code> TlsTransport::flush() {
  std::size_t largest = 0;
  while (!pending_.empty()) {
    // Records sealed while this write is in flight (by SSL_read) go to the
    // other buffer and leave in the next round.
    std::swap(pending_, inflight_);
    largest = std::max(largest, inflight_.size());
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(inflight_), use_nothrow);
    (void)n;
    inflight_.clear();
    if (ec) co_return ec;
  }
  if (largest < kKeepOutputAfter) {
    pending_.shrink_to_fit();
    inflight_.shrink_to_fit();
  }
  co_return error_code{};
}

error_code TlsTransport::ssl_error(int ret) {
  const int err = SSL_get_error(ssl_.get(), ret);
  error_code ec;
  if (err == SSL_ERROR_ZERO_RETURN) {
    ec = asio::error::eof;  // close_notify
  } else if (peer_eof_ && (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_SSL)) {
    ec = asio::ssl::error::stream_truncated;  // EOF without close_notify
  } else if (err == SSL_ERROR_SSL) {
    ec = error_code(static_cast<int>(ERR_get_error()), asio::error::get_ssl_category());
  } else {
    ec = asio::error::fault;
  }
  return ec;
}

// --- handshake -------------------------------------------------------------------

asio::awaitable<error_code> TlsTransport::drive_handshake() {
  for (;;) {
    ERR_clear_error();
    const int ret = SSL_do_handshake(ssl_.get());
    // Classify before flush() suspends: the error queue is per thread, and
    // another connection's coroutine on this thread clears it meanwhile.
    const bool want_read = ret != 1 && SSL_get_error(ssl_.get(), ret) == SSL_ERROR_WANT_READ;
    const error_code failure = ret == 1 || want_read ? error_code{} : ssl_error(ret);
    // Send what BoringSSL produced, including a fatal alert before we give up.
    const error_code sent = co_await flush();
    if (failure) co_return failure;
    if (sent) co_return sent;
    if (ret == 1) co_return error_code{};
    if (peer_eof_) co_return asio::error::eof;
    if (error_code ec = co_await fill(/*handshaking=*/true)) {
      if (ec != asio::error::eof) co_return ec;
      peer_eof_ = true;
    }
  }
}

asio::awaitable<tls::HandshakeResult> TlsTransport::handshake(
    Role role, std::chrono::steady_clock::duration deadline) {
  using namespace asio::experimental::awaitable_operators;
  if (role == Role::kServer) {
    SSL_set_accept_state(ssl_.get());
  } else {
    SSL_set_connect_state(ssl_.get());
  }
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(deadline);
  auto outcome = co_await (drive_handshake() || timer.async_wait(use_nothrow));
  tls::HandshakeResult r;
  if (outcome.index() == 1) {
    r = tls::handshake_timed_out(deadline);
  } else if (error_code ec = std::get<0>(outcome)) {
    r = tls::classify_failure(ssl_.get(), ec);
  } else {
    r = tls::completed_handshake(ssl_.get());
  }
  ERR_clear_error();
  if (!r) close();
  // The handshake's buffers are not needed until data flows (the input
  // buffer stays if the peer's first bytes arrived with its last flight).
  if (in_head_ == in_tail_) in_.reset();
  pending_.shrink_to_fit();
  inflight_.shrink_to_fit();
  co_return r;
}

// --- data ------------------------------------------------------------------------

asio::awaitable<std::tuple<error_code, std::size_t>> TlsTransport::read_some(
    asio::mutable_buffer buffer) {
  auto* out = static_cast<std::uint8_t*>(buffer.data());
  const std::size_t size = buffer.size();
  if (size == 0) co_return std::tuple{error_code{}, std::size_t{0}};
  for (;;) {
    std::size_t got = 0;
    error_code failure;
    while (got < size) {
      ERR_clear_error();
      const int want = static_cast<int>(std::min<std::size_t>(size - got, INT_MAX));
      const int ret = SSL_read(ssl_.get(), out + got, want);
      if (ret > 0) {
        got += static_cast<std::size_t>(ret);
        continue;
      }
      if (SSL_get_error(ssl_.get(), ret) != SSL_ERROR_WANT_READ) failure = ssl_error(ret);
      break;
    }
    // Bytes first; a failure or close_notify is sticky and reported next call.
    if (got > 0) co_return std::tuple{error_code{}, got};
    if (failure) co_return std::tuple{failure, std::size_t{0}};
    if (error_code ec = co_await fill()) {
      if (ec != asio::error::eof) co_return std::tuple{ec, std::size_t{0}};
      peer_eof_ = true;  // let BoringSSL tell close_notify from truncation
    }
  }
}

asio::awaitable<error_code> TlsTransport::wait_readable() {
  // !drained_: the last recv filled the buffer, so more is probably queued.
  if (SSL_pending(ssl_.get()) > 0 || in_head_ < in_tail_ || peer_eof_ || !drained_) {
    co_return error_code{};
  }
  in_.reset();  // every byte was taken (in_head_ == in_tail_)
  in_head_ = in_tail_ = 0;
  auto [ec] = co_await socket_.async_wait(asio::ip::tcp::socket::wait_read, use_nothrow);
  if (ec) co_return ec;
  drained_ = false;  // the socket is readable: fill() reads without waiting again
  co_return error_code{};
}

asio::awaitable<error_code> TlsTransport::write(std::span<const asio::const_buffer> buffers) {
  // Room for the records of this write (22 bytes of overhead per 16 KiB),
  // so pending_ does not regrow while sealing.
  std::size_t total = 0;
  for (const asio::const_buffer& b : buffers) total += b.size();
  pending_.reserve(pending_.size() + std::min(total + total / 512 + 64, kFlushBytes + 4096));
  for (const asio::const_buffer& b : buffers) {
    const auto* p = static_cast<const std::uint8_t*>(b.data());
    std::size_t left = b.size();
    while (left > 0) {
      // Seal at most what is left to the next flush, so pending_ stays bounded.
      const std::size_t room = kFlushBytes > pending_.size() ? kFlushBytes - pending_.size() : 0;
      if (room == 0) {
        if (error_code ec = co_await flush()) co_return ec;
        continue;
      }
      ERR_clear_error();
      const int chunk = static_cast<int>(std::min({left, room, std::size_t{INT_MAX}}));
      const int ret = SSL_write(ssl_.get(), p, chunk);
      if (ret <= 0) co_return ssl_error(ret);
      p += ret;
      left -= static_cast<std::size_t>(ret);
    }
  }
  co_return co_await flush();
}

}  // namespace ztunnel::h2
