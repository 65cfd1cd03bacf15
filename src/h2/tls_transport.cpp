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

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <new>

#include "core/bytes.h"

namespace ztunnel::h2 {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
// A write smaller than this means the connection is not moving bulk data:
// give the output buffers back rather than hold them while it idles.
constexpr std::size_t kKeepOutputAfter = 16u << 10;
// An output buffer up to this size stays allocated between small writes.
constexpr std::size_t kIdleWriteBytes = 4u << 10;

// SSL_get_error consults this thread's error queue, so an error another
// connection left there must not be taken for ours. ERR_clear_error frees
// all 16 slots (~700 instructions, twice per message); the queue is
// nearly always empty, which ERR_peek_error sees cheaply.
void clear_stale_errors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}
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
  core::copy_bytes(reinterpret_cast<std::uint8_t*>(out), self->in_.get() + self->in_head_, n);
  self->in_head_ += n;
  return static_cast<int>(n);
}

int TlsTransport::bio_write(BIO* bio, const char* in, int len) {
  auto* self = static_cast<TlsTransport*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  try {
    core::append_bytes(self->pending_, reinterpret_cast<const std::uint8_t*>(in),
                       static_cast<std::size_t>(len));
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
  return (in_ ? in_capacity_ : 0) + pending_.capacity();
}

void TlsTransport::close() noexcept {
  error_code ignored;
  socket_.close(ignored);
}

// --- socket side ----------------------------------------------------------------

// A read that waits goes through Asio's reactor rather than a wait for
// readability and a recv of our own: once a read has drained the socket,
// Asio queues the next one without a syscall and performs it when epoll
// reports data, completing it inline. An async_wait instead costs an
// epoll_ctl each time, and on a socket also registered for writability
// (connected with a wait_write) that re-arm reports a spurious EPOLLOUT:
// one more epoll_wait per message. The waiting read holds a buffer, which
// is why it is only kIdleReadBytes.
asio::awaitable<error_code> TlsTransport::fill() {
  for (;;) {
    if (in_head_ == in_tail_) {
      const std::size_t want = drained_ ? kIdleReadBytes : bulk_ ? kReadBytes : kSmallReadBytes;
      if (!in_ || in_capacity_ != want) {
        in_.reset();  // first: never hold both
        in_ = std::make_unique_for_overwrite<std::uint8_t[]>(want);
        in_capacity_ = want;
      }
      in_head_ = in_tail_ = 0;
    } else if (in_tail_ == in_capacity_) {
      // Never happens with BoringSSL (WANT_READ means it took every byte), but
      // a full buffer must not turn into a zero-length read.
      std::memmove(in_.get(), in_.get() + in_head_, in_tail_ - in_head_);
      in_tail_ -= in_head_;
      in_head_ = 0;
    }
    const std::size_t room = in_capacity_ - in_tail_;
    const bool idle_sized = in_capacity_ == kIdleReadBytes;
    std::size_t n = 0;
    if (!drained_) {
      // The last read filled the buffer, so more is probably queued: take it
      // now (Asio would post the completion: one more scheduler pass).
      const ssize_t got = ::recv(socket_.native_handle(), in_.get() + in_tail_, room, MSG_DONTWAIT);
      if (got == 0) co_return asio::error::eof;
      if (got < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          co_return error_code(errno, boost::system::system_category());
        }
        drained_ = true;  // wait, with the small buffer
        continue;
      }
      n = static_cast<std::size_t>(got);
    } else {
      auto [ec, got] =
          co_await socket_.async_read_some(asio::buffer(in_.get() + in_tail_, room), use_nothrow);
      if (ec) co_return ec;
      n = got;
    }
    in_tail_ += n;
    drained_ = n < room;
    if (!drained_ && !idle_sized) bulk_ = true;
    co_return error_code{};
  }
}

error_code TlsTransport::send_pending() {
  while (pending_sent_ < pending_.size()) {
    const ssize_t n = ::send(socket_.native_handle(), pending_.data() + pending_sent_,
                             pending_.size() - pending_sent_, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
      pending_sent_ += static_cast<std::size_t>(n);
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return asio::error::would_block;
    } else if (errno != EINTR) {
      return error_code(errno, boost::system::system_category());
    }
  }
  return error_code{};
}

void TlsTransport::output_sent(std::size_t batch) {
  pending_.clear();
  pending_sent_ = 0;
  // A small batch means the connection is not moving bulk data: give a
  // bulk-sized buffer back, but keep a small one (no malloc and free for
  // every message of a chatty connection).
  if (batch < kKeepOutputAfter && pending_.capacity() > kIdleWriteBytes) pending_.shrink_to_fit();
}

asio::awaitable<error_code> TlsTransport::flush() {
  std::size_t largest = pending_.size();
  for (;;) {
    const error_code ec = send_pending();
    if (!ec) break;
    if (ec != asio::error::would_block) co_return ec;
    auto [wait_ec] = co_await socket_.async_wait(asio::ip::tcp::socket::wait_write, use_nothrow);
    if (wait_ec) co_return wait_ec;
    largest = std::max(largest, pending_.size());
  }
  output_sent(largest);
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
    clear_stale_errors();
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
    if (error_code ec = co_await fill()) {
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
      clear_stale_errors();
      // In pieces: SSL_read hands its plaintext over with glibc's memcpy,
      // which above ~2 KiB uses `rep movsb`, 15x slower on AMD Zen when the
      // destination lies 1-31 bytes past the source within a cache line
      // (core/bytes.h). Where a record lands here depends on the sizes of
      // the records before it, which the peer chooses: one short record
      // (a WINDOW_UPDATE, a DATA frame's header) shifts every later copy.
      const int want = static_cast<int>(std::min(size - got, core::kCopyPiece));
      const int ret = SSL_read(ssl_.get(), out + got, want);
      if (ret > 0) {
        got += static_cast<std::size_t>(ret);
        // Without ciphertext left here or plaintext left in BoringSSL (it
        // reads no records ahead), another SSL_read only says WANT_READ.
        if (in_head_ == in_tail_ && SSL_pending(ssl_.get()) == 0) break;
        continue;
      }
      if (SSL_get_error(ssl_.get(), ret) != SSL_ERROR_WANT_READ) failure = ssl_error(ret);
      break;
    }
    // Bytes first; a failure or close_notify is sticky and reported next call.
    if (got > 0) co_return std::tuple{error_code{}, got};
    if (failure) co_return std::tuple{failure, std::size_t{0}};
    if (read_error_) co_return std::tuple{read_error_, std::size_t{0}};
    if (error_code ec = co_await fill()) {
      if (ec != asio::error::eof) co_return std::tuple{ec, std::size_t{0}};
      peer_eof_ = true;  // let BoringSSL tell close_notify from truncation
    }
  }
}

asio::awaitable<error_code> TlsTransport::wait_readable() {
  // !drained_: the last recv filled the buffer, so more is probably queued.
  if (read_error_ || SSL_pending(ssl_.get()) > 0 || in_head_ < in_tail_ || peer_eof_ ||
      !drained_) {
    co_return error_code{};
  }
  // Waits by reading into the small idle buffer (see fill()).
  error_code ec = co_await fill();
  if (ec == asio::error::eof) {
    peer_eof_ = true;  // read_some lets BoringSSL tell close_notify from truncation
    ec = {};
  } else if (ec && ec != asio::error::operation_aborted) {
    read_error_ = ec;  // read_some reports it
  }
  co_return ec;
}

boost::system::result<std::size_t> TlsTransport::seal(const std::uint8_t* data,
                                                      std::size_t size) {
  clear_stale_errors();
  const int ret = SSL_write(ssl_.get(), data, static_cast<int>(std::min(size, std::size_t{INT_MAX})));
  if (ret <= 0) return ssl_error(ret);
  return static_cast<std::size_t>(ret);
}

namespace {
// Room for the records of `buffers` (22 bytes of overhead per 16 KiB), so
// the output buffer does not regrow while sealing.
std::size_t sealed_size(std::span<const asio::const_buffer> buffers) {
  std::size_t total = 0;
  for (const asio::const_buffer& b : buffers) total += b.size();
  return total + total / 512 + 64;
}
}  // namespace

asio::awaitable<error_code> TlsTransport::write(std::span<const asio::const_buffer> buffers) {
  // Every byte is sealed before the first wait (Transport::write's
  // contract): pending_ grows by one batch, which the session bounds.
  auto sealed = seal_all(buffers);
  if (!sealed) co_return sealed.error();
  co_return co_await flush();
}

boost::system::result<void> TlsTransport::seal_all(std::span<const asio::const_buffer> buffers) {
  pending_.reserve(pending_.size() + sealed_size(buffers));
  for (const asio::const_buffer& b : buffers) {
    const auto* p = static_cast<const std::uint8_t*>(b.data());
    std::size_t left = b.size();
    while (left > 0) {
      auto taken = seal(p, left);
      if (!taken) return taken.error();
      p += *taken;
      left -= *taken;
    }
  }
  return {};
}

boost::system::result<std::size_t> TlsTransport::write_now(std::span<const asio::const_buffer> buffers) {
  if (auto sealed = seal_all(buffers); !sealed) return sealed.error();
  const std::size_t batch = pending_.size();
  const error_code ec = send_pending();
  if (ec == asio::error::would_block) return pending_.size() - pending_sent_;
  if (ec) return ec;
  output_sent(batch);
  return std::size_t{0};
}

}  // namespace ztunnel::h2
