#include "app/memory.h"

#include <malloc.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace ztunnel::app {

std::size_t heap_free_bytes() {
#ifdef __GLIBC__
  return mallinfo2().fordblks;
#else
  return 0;
#endif
}

void release_free_memory() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

boost::asio::awaitable<void> release_free_memory_periodically(std::chrono::milliseconds period,
                                                              std::size_t threshold) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  // Free bytes right after the last release: already given back, or too few to matter.
  std::size_t released = heap_free_bytes();
  for (;;) {
    timer.expires_after(period);
    auto [ec] = co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec) co_return;
    const std::size_t free_now = heap_free_bytes();
    // Free memory reused since: those pages are resident again, count from here.
    released = std::min(released, free_now);
    if (free_now - released >= threshold) {
      release_free_memory();
      released = free_now;
    }
  }
}

}  // namespace ztunnel::app
