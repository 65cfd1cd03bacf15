// Runs a test coroutine to completion on a fresh io_context, with a deadline, rethrowing its failure.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <exception>
#include <stdexcept>

namespace ztunnel::testing {

// `make(io)` returns the test's awaitable<void>. Whatever else the test
// spawned on `io` is destroyed with it once the test coroutine ends.
template <class F>
void run_coro(F&& make, std::chrono::steady_clock::duration deadline = std::chrono::seconds(30)) {
  boost::asio::io_context io;
  bool done = false;
  std::exception_ptr error;
  boost::asio::co_spawn(io, make(io), [&](std::exception_ptr e) {
    done = true;
    error = e;
    io.stop();
  });
  io.run_for(deadline);
  if (!done) throw std::runtime_error("test coroutine missed its deadline");
  if (error) std::rethrow_exception(error);
}

}  // namespace ztunnel::testing
