// The data-plane worker threads: N io_contexts, one thread each.
//
// Threads: each worker's io_context runs on its own thread and owns what is
// spawned on it: a copy of every proxy listener (bound with SO_REUSEPORT, so
// the kernel spreads accepted connections over the workers), that copy's
// HBONE pool, and every connection it accepts. A connection and both of its
// copy directions therefore stay on one thread (a cross-core wake-up costs
// ~25 us), and pools need no locks. Nothing is shared between workers but the
// state store and the certificate provider, both safe for concurrent readers.
// The Workers object itself is used from the thread that made it.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "net/socket.h"

namespace ztunnel::app {

class Workers {
 public:
  explicit Workers(std::size_t count);
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;
  // Stops (without a grace period) if stop() was not called.
  ~Workers();

  std::size_t size() const { return workers_.size(); }
  boost::asio::io_context& context(std::size_t i) { return workers_[i]->io; }

  // Starts one thread per worker; each runs until stop().
  void start();

  // Runs `on_stop(i)` on worker i's thread (close its listeners and
  // sessions), gives every worker `grace` to finish what those closes
  // started, then stops the io_contexts and joins the threads. Once only.
  void stop(const std::function<void(std::size_t)>& on_stop, std::chrono::milliseconds grace);

 private:
  struct Worker {
    // Hint 1: one thread runs it, so Asio skips waking other threads (its locks stay on:
    // stop() posts from another thread).
    boost::asio::io_context io{1};
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
    std::thread thread;
  };
  std::vector<std::unique_ptr<Worker>> workers_;
  bool stopped_ = false;
};

// One listener per worker on `endpoint`, all in one SO_REUSEPORT group
// (`sockets` must have reuse_port set when there is more than one worker).
// Port 0 is resolved by the first bind and the others join that port.
boost::system::result<std::vector<boost::asio::ip::tcp::acceptor>> listen_on_each(
    const net::SocketFactory& sockets, Workers& workers, boost::asio::ip::tcp::endpoint endpoint);

}  // namespace ztunnel::app
