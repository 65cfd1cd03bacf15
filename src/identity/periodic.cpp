// run_every: one coroutine parked on a steady_timer between ticks.
#include "identity/periodic.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace ztunnel::identity {
namespace {

namespace asio = boost::asio;

asio::awaitable<void> tick_loop(std::chrono::steady_clock::duration interval, std::function<bool()> tick) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(interval);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec || !tick()) co_return;
  }
}

}  // namespace

void run_every(asio::any_io_executor executor, std::chrono::steady_clock::duration interval,
               std::function<bool()> tick) {
  asio::co_spawn(std::move(executor), tick_loop(interval, std::move(tick)), asio::detached);
}

}  // namespace ztunnel::identity
