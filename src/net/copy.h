// Bidirectional byte copy between two streams, with half-close propagated
// each way and no buffer held while a connection is idle.
//
// A stream type takes part by providing, next to its type (found by ADL) or
// here for tcp::socket:
//   awaitable<error_code> wait_readable(S&)              may return at once
//   awaitable<std::pair<error_code, size_t>> read_some(S&, mutable_buffer)   EOF = error::eof
//   std::pair<error_code, size_t> try_read_some(S&, mutable_buffer)  optional: never waits,
//                                                        would_block when nothing is there
//   awaitable<error_code> write_all(S&, const_buffer)
//   error_code shutdown_write(S&)                        our FIN / END_STREAM
//   void abort(S&)                                       reset; wakes pending operations
// and optionally, for a source that buffers received bytes itself (h2::Stream):
//   awaitable<std::pair<error_code, const_buffer>> read_view(S&, size_t max)
//                                                        waits like read_some; returns a view
//                                                        of buffered bytes that stays valid
//                                                        until consume()
//   void consume(S&, size_t n)                           those bytes are written out
// The copy then writes from the source's own buffer: no copy buffer, no copy.
// Such a source may also deliver to the destination itself while the copy
// waits with nothing buffered (h2::Stream into a tcp::socket):
//   G attach_sink(S&, D&, uint64_t& bytes)               a guard; delivery stops when
//                                                        it is destroyed
// Both directions run on the caller's executor (one thread): no locks.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <sys/socket.h>

#include <cerrno>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <utility>

namespace ztunnel::net {

using boost::asio::ip::tcp;
using boost::system::error_code;

// Buffer sizes grow with the bytes a direction has carried, as Istio's copy
// does: small for chatty connections, large for bulk transfer (fewer
// syscalls per MB). Sizes leave room for allocator headers.
struct CopyBufferPolicy {
  static constexpr std::size_t kSmall = 1024;
  static constexpr std::size_t kMedium = 16 * 1024 - 64;
  static constexpr std::size_t kLarge = 256 * 1024 - 64;
  static constexpr uint64_t kMediumAfter = 128 * 1024;
  static constexpr uint64_t kLargeAfter = 10 * 1024 * 1024;

  static std::size_t size_for(uint64_t bytes_so_far) {
    if (bytes_so_far >= kLargeAfter) return kLarge;
    if (bytes_so_far >= kMediumAfter) return kMedium;
    return kSmall;
  }
};

// What the caller knows when the copy starts: a side whose first bytes are
// probably queued already (a captured client wrote its request while the
// tunnel was set up) is read at once, without first waiting for readiness
// (an epoll round trip); when nothing is there after all, the copy waits as usual.
struct CopyStart {
  bool a_readable = false;
  bool b_readable = false;
};

struct CopyResult {
  uint64_t a_to_b = 0;  // bytes read from a and written to b
  uint64_t b_to_a = 0;
  error_code error;     // the first failure in either direction; empty on clean close
};

// --- tcp::socket as a copy endpoint ----------------------------------------
// Reads and writes are non-blocking syscalls made here; Asio only waits for
// readiness when one would block. Asio's async_read_some/async_write try the
// same syscall first, but then post their completion: one more pass through
// the scheduler (and usually an epoll_wait) per message.
inline boost::asio::awaitable<error_code> wait_readable(tcp::socket& s) {
  auto [ec] = co_await s.async_wait(tcp::socket::wait_read, boost::asio::as_tuple(boost::asio::use_awaitable));
  co_return ec;
}
inline std::pair<error_code, std::size_t> try_read_some(tcp::socket& s,
                                                        boost::asio::mutable_buffer b) {
  // MSG_DONTWAIT: the socket's own blocking mode is Asio's business.
  for (;;) {
    const ssize_t n = ::recv(s.native_handle(), b.data(), b.size(), MSG_DONTWAIT);
    if (n > 0) return {error_code{}, static_cast<std::size_t>(n)};
    if (n == 0) return {boost::asio::error::eof, 0};
    if (errno == EINTR) continue;
    const int err = errno == EAGAIN ? EWOULDBLOCK : errno;
    return {error_code(err, boost::system::system_category()), 0};
  }
}
inline boost::asio::awaitable<std::pair<error_code, std::size_t>> read_some(tcp::socket& s,
                                                                            boost::asio::mutable_buffer b) {
  for (;;) {
    auto got = try_read_some(s, b);
    if (got.first != boost::asio::error::would_block) co_return got;
    if (error_code ec = co_await wait_readable(s)) co_return std::pair{ec, std::size_t{0}};
  }
}
inline boost::asio::awaitable<error_code> write_all(tcp::socket& s, boost::asio::const_buffer b) {
  const auto* p = static_cast<const std::byte*>(b.data());
  std::size_t left = b.size();
  while (left > 0) {
    const ssize_t n = ::send(s.native_handle(), p, left, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
      p += n;
      left -= static_cast<std::size_t>(n);
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      // The peer is slower than us: wait until the socket takes more.
      auto [ec] = co_await s.async_wait(tcp::socket::wait_write,
                                        boost::asio::as_tuple(boost::asio::use_awaitable));
      if (ec) co_return ec;
    } else if (errno != EINTR) {
      co_return error_code(errno, boost::system::system_category());
    }
  }
  co_return error_code{};
}
inline error_code shutdown_write(tcp::socket& s) {
  error_code ec;
  s.shutdown(tcp::socket::shutdown_send, ec);
  return ec;
}
inline void abort(tcp::socket& s) {
  error_code ignored;
  // SO_LINGER 0 turns the close into an RST, so the peer learns it was cut
  // off rather than seeing a clean end of stream.
  s.set_option(boost::asio::socket_base::linger(true, 0), ignored);
  s.close(ignored);
}

namespace detail {

template <class S>
concept CanTryRead = requires(S& s, boost::asio::mutable_buffer b) {
  { try_read_some(s, b) } -> std::same_as<std::pair<error_code, std::size_t>>;
};

template <class S>
concept CanReadInPlace = requires(S& s, std::size_t n) {
  { read_view(s, n) } -> std::same_as<boost::asio::awaitable<std::pair<error_code, boost::asio::const_buffer>>>;
  { consume(s, n) } -> std::same_as<void>;
};

template <class From, class To>
concept CanSinkDirectly = requires(From& from, To& to, uint64_t& bytes) { attach_sink(from, to, bytes); };

// The source's sink guard (see the top of this file), or nothing.
template <class From, class To>
auto attach_sink_if_any(From& from, To& to, uint64_t& bytes) {
  if constexpr (CanSinkDirectly<From, To>) {
    return attach_sink(from, to, bytes);
  } else {
    return 0;
  }
}

// One direction from a source that can be read in place. The source keeps
// the bytes until they are written out; consuming them only then keeps the
// backpressure a copy buffer gives. Returns true on a clean half-close.
template <class From, class To>
boost::asio::awaitable<bool> copy_in_place(From& from, To& to, uint64_t& bytes, error_code& failure,
                                           bool& aborted) {
  // Bytes that arrive while this waits may go out without it; what the
  // destination does not take is buffered and written below as usual.
  [[maybe_unused]] const auto sink = attach_sink_if_any(from, to, bytes);
  for (;;) {
    auto [ec, view] = co_await read_view(from, CopyBufferPolicy::kLarge);
    if (view.size() > 0) {
      if (error_code write_ec = co_await write_all(to, view)) {
        if (!failure && !aborted) failure = write_ec;
        co_return false;
      }
      consume(from, view.size());
      bytes += view.size();
      continue;  // a pending EOF or error comes with the next read_view
    }
    if (ec == boost::asio::error::eof) {
      // Half-close: pass the FIN on and keep the other direction running.
      if (error_code shut = shutdown_write(to); shut && !failure && !aborted) failure = shut;
      co_return !failure;
    }
    if (!failure && !aborted) failure = ec ? ec : make_error_code(boost::asio::error::no_data);
    co_return false;
  }
}

template <class From, class To>
boost::asio::awaitable<void> copy_one_way(From& from, To& to, uint64_t& bytes, error_code& failure,
                                          bool& aborted, bool readable_now) {
  if constexpr (CanReadInPlace<From>) {
    if (co_await copy_in_place(from, to, bytes, failure, aborted)) co_return;
    if (!aborted) {
      aborted = true;
      abort(from);
      abort(to);
    }
    co_return;
  }
  std::unique_ptr<std::byte[]> buffer;
  std::size_t capacity = 0;
  const auto ensure_buffer = [&] {
    const std::size_t want = CopyBufferPolicy::size_for(bytes);
    if (capacity != want) {
      buffer = std::make_unique_for_overwrite<std::byte[]>(want);
      capacity = want;
    }
  };
  bool drained = true;  // the last read did not fill the buffer: wait before allocating
  for (;;) {
    std::pair<error_code, std::size_t> got{boost::asio::error::would_block, 0};
    if constexpr (CanTryRead<From>) {
      // Read without waiting when bytes are probably there: at the start if
      // the caller says so, and after a read that filled the buffer. Finding
      // nothing (a message that filled the buffer exactly, say 1 KiB into
      // the first 1 KiB buffer) counts as drained: the wait below then
      // happens without the buffer, like every idle connection's.
      if (readable_now || !drained) {
        ensure_buffer();
        got = try_read_some(from, boost::asio::buffer(buffer.get(), capacity));
        if (got.first == boost::asio::error::would_block) drained = true;
      }
    }
    readable_now = false;
    if (drained && got.first == boost::asio::error::would_block) {
      buffer.reset();  // idle connections hold no copy buffer
      capacity = 0;
      if (error_code ec = co_await wait_readable(from)) {
        if (!failure && !aborted) failure = ec;
        break;
      }
    }
    if (got.first == boost::asio::error::would_block) {
      ensure_buffer();
      got = co_await read_some(from, boost::asio::buffer(buffer.get(), capacity));
    }
    auto [ec, n] = got;
    if (n > 0) {
      if (error_code write_ec = co_await write_all(to, boost::asio::buffer(buffer.get(), n))) {
        if (!failure && !aborted) failure = write_ec;
        break;
      }
      bytes += n;
    }
    if (ec == boost::asio::error::eof) {
      // Half-close: pass the FIN on and keep the other direction running.
      if (error_code shut = shutdown_write(to); shut && !failure && !aborted) failure = shut;
      if (!failure) co_return;
      break;
    }
    if (ec) {
      if (!failure && !aborted) failure = ec;
      break;
    }
    drained = n < capacity;
  }
  // A failure in one direction ends both: reset the two ends so the other
  // direction's pending read or write returns at once.
  if (!aborted) {
    aborted = true;
    abort(from);
    abort(to);
  }
}

}  // namespace detail

// Copies a->b and b->a until both directions have seen EOF (each EOF is
// passed on as a half-close) or either fails (both ends are then reset).
// To end it early (a policy revocation), abort the sockets or reset the
// stream: the reads fail and the copy returns what it moved so far.
// Cancellation (of the awaiting coroutine) resets both ends, waits for both
// directions to stop, then completes as a failure would (operation_aborted,
// thrown if the coroutine throws when cancelled).
//
// a->b runs in this coroutine's frame and b->a in one coroutine of its own
// on the same executor: a parallel group (`&&`) would cost two spawned
// coroutines and the group's state, ~1 KiB more per tunnel.
template <class A, class B>
boost::asio::awaitable<CopyResult> copy_bidirectional(A& a, B& b, CopyStart start = {}) {
  namespace asio = boost::asio;
  auto executor = co_await asio::this_coro::executor;
  CopyResult result;
  bool aborted = false;
  error_code failure;
  // b->a references this frame: it signals here when it ends, and this
  // coroutine does not return before it has.
  bool reverse_done = false;
  std::exception_ptr reverse_exception;
  asio::steady_timer reverse_ended(executor, asio::steady_timer::time_point::max());
  asio::co_spawn(executor,
                 detail::copy_one_way(b, a, result.b_to_a, failure, aborted, start.b_readable),
                 [&](std::exception_ptr e) {
                   reverse_exception = e;
                   reverse_done = true;
                   reverse_ended.cancel();
                 });
  std::exception_ptr forward_exception;
  try {
    co_await detail::copy_one_way(a, b, result.a_to_b, failure, aborted, start.a_readable);
  } catch (...) {
    forward_exception = std::current_exception();  // cancelled while awaiting, or out of memory
  }
  const auto stop_both = [&] {
    if (aborted) return;
    aborted = true;
    if (!failure) failure = asio::error::operation_aborted;
    abort(a);
    abort(b);
  };
  if (forward_exception) stop_both();
  // Waiting must not throw when the caller was cancelled: b->a still runs.
  const bool throw_if_cancelled = co_await asio::this_coro::throw_if_cancelled();
  co_await asio::this_coro::throw_if_cancelled(false);
  while (!reverse_done) {
    co_await reverse_ended.async_wait(asio::as_tuple(asio::use_awaitable));
    // Woken without b->a having ended: the caller cancelled; end it too.
    if (!reverse_done) stop_both();
  }
  co_await asio::this_coro::throw_if_cancelled(throw_if_cancelled);
  if (forward_exception) std::rethrow_exception(forward_exception);
  if (reverse_exception) std::rethrow_exception(reverse_exception);
  result.error = failure;
  co_return result;
}

}  // namespace ztunnel::net
