#include "app/memory.h"

#include <malloc.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/version.hpp>
#include <cstdlib>
#include <string_view>
#include <utility>

namespace ztunnel::app {

namespace {

// The reactor's pool of socket states is private to Asio. An explicit
// instantiation may name private members (C++20 [temp.spec.general]/6); the
// friend function it defines hands the member pointer out. Checked against
// Boost 1.81's epoll reactor (Debian 12), the only one this builds with.
static_assert(BOOST_VERSION == 108100, "check Asio's epoll_reactor layout before changing Boost");
using Reactor = boost::asio::detail::epoll_reactor;
using SocketState = Reactor::descriptor_state;
using SocketStatePool = boost::asio::detail::object_pool<SocketState>;

template <class Tag, typename Tag::type Member>
struct Expose {
  friend typename Tag::type member(Tag) { return Member; }
};
struct PoolOfReactor {
  using type = SocketStatePool Reactor::*;
  friend type member(PoolOfReactor);
};
struct PoolMutexOfReactor {
  using type = boost::asio::detail::conditionally_enabled_mutex Reactor::*;
  friend type member(PoolMutexOfReactor);
};
struct FreeListOfPool {
  using type = SocketState* SocketStatePool::*;
  friend type member(FreeListOfPool);
};
template struct Expose<PoolOfReactor, &Reactor::registered_descriptors_>;
template struct Expose<PoolMutexOfReactor, &Reactor::registered_descriptors_mutex_>;
template struct Expose<FreeListOfPool, &SocketStatePool::free_list_>;

// Takes the whole free list out of the pool: no socket can reuse these now.
SocketState* take_free_list(Reactor& reactor) {
  boost::asio::detail::conditionally_enabled_mutex::scoped_lock lock(reactor.*member(PoolMutexOfReactor{}));
  SocketState*& free_list = reactor.*member(PoolOfReactor{}).*member(FreeListOfPool{});
  return std::exchange(free_list, nullptr);
}

}  // namespace

void release_idle_socket_states(boost::asio::io_context& io) {
  boost::asio::post(io, [&io] {
    SocketState* taken = take_free_list(boost::asio::use_service<Reactor>(io));
    if (!taken) return;
    // Events the reactor returned for these sockets before they closed may
    // still be queued behind this handler; the next one runs after them.
    boost::asio::post(io, [taken] {
      for (SocketState* s = taken; s;) {
        SocketState* next = boost::asio::detail::object_pool_access::next(s);
        boost::asio::detail::object_pool_access::destroy(s);
        s = next;
      }
    });
  });
}

std::size_t idle_socket_states(boost::asio::io_context& io) {
  auto& reactor = boost::asio::use_service<Reactor>(io);
  boost::asio::detail::conditionally_enabled_mutex::scoped_lock lock(reactor.*member(PoolMutexOfReactor{}));
  std::size_t n = 0;
  for (SocketState* s = reactor.*member(PoolOfReactor{}).*member(FreeListOfPool{}); s;
       s = boost::asio::detail::object_pool_access::next(s)) {
    ++n;
  }
  return n;
}

std::size_t heap_free_bytes() {
#ifdef __GLIBC__
  return mallinfo2().fordblks;
#else
  return 0;
#endif
}

void tune_malloc() {
#ifdef __GLIBC__
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables != nullptr && std::string_view(tunables).find("glibc.malloc.") != std::string_view::npos) return;
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(kMmapThreshold));
  mallopt(M_TRIM_THRESHOLD, static_cast<int>(kTrimThreshold));
#endif
}

void release_free_memory() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

boost::asio::awaitable<void> release_free_memory_periodically(
    std::chrono::milliseconds period, std::size_t threshold,
    std::vector<boost::asio::io_context*> workers) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  // Free bytes right after the last release: already given back, or too few to matter.
  std::size_t released = heap_free_bytes();
  // Connections go on closing for a while after a release is triggered (a
  // burst's HBONE connections drain over the next seconds): their sockets'
  // states and the pages those pinned are given back in a few follow-ups.
  constexpr int kFollowUps = 3;
  int follow_ups = 0;
  for (;;) {
    timer.expires_after(period);
    auto [ec] = co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec) co_return;
    const std::size_t free_now = heap_free_bytes();
    // Free memory reused since: those pages are resident again, count from here.
    released = std::min(released, free_now);
    const bool grown = free_now - released >= threshold;
    if (grown || follow_ups > 0) {
      follow_ups = grown && !workers.empty() ? kFollowUps : follow_ups - 1;
      // Connections closed: their sockets' reactor states go too.
      for (auto* worker : workers) release_idle_socket_states(*worker);
      release_free_memory();
      released = free_now;
    }
  }
}

}  // namespace ztunnel::app
