// Worker threads and per-worker SO_REUSEPORT listeners.
#include "app/workers.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

namespace ztunnel::app {

namespace asio = boost::asio;
using asio::ip::tcp;

Workers::Workers(std::size_t count) {
  workers_.reserve(count);
  for (std::size_t i = 0; i < count; ++i) workers_.push_back(std::make_unique<Worker>());
}

Workers::~Workers() {
  stop([](std::size_t) {}, std::chrono::milliseconds(0));
}

void Workers::start() {
  for (auto& w : workers_) {
    if (w->thread.joinable()) continue;
    w->work.emplace(w->io.get_executor());
    w->thread = std::thread([&io = w->io] { io.run(); });
  }
}

void Workers::stop(const std::function<void(std::size_t)>& on_stop,
                   std::chrono::milliseconds grace) {
  if (stopped_) return;
  stopped_ = true;
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    Worker& w = *workers_[i];
    // Listeners and sessions belong to the worker: close them on its thread.
    asio::post(w.io, [&on_stop, i] { on_stop(i); });
    w.work.reset();
  }
  // Proxied connections may still be copying: give them `grace`, then stop.
  // The timers are waited on the workers' own threads.
  std::vector<std::unique_ptr<asio::steady_timer>> deadlines;
  for (auto& w : workers_) {
    auto timer = std::make_unique<asio::steady_timer>(w->io, grace);
    timer->async_wait([&io = w->io](const boost::system::error_code&) { io.stop(); });
    deadlines.push_back(std::move(timer));
  }
  for (auto& w : workers_) {
    if (w->thread.joinable()) {
      w->thread.join();
    } else {
      w->io.run();  // never started: run the posted work here
    }
  }
}

boost::system::result<std::vector<tcp::acceptor>> listen_on_each(const net::SocketFactory& sockets,
                                                                 Workers& workers,
                                                                 tcp::endpoint endpoint) {
  std::vector<tcp::acceptor> acceptors;
  for (std::size_t i = 0; i < workers.size(); ++i) {
    auto acceptor = sockets.listen(workers.context(i).get_executor(), endpoint);
    if (!acceptor) return acceptor.error();
    if (i == 0) {
      boost::system::error_code ec;
      endpoint = acceptor->local_endpoint(ec);  // the port 0 picked, for the others to join
      if (ec) return ec;
    }
    acceptors.push_back(std::move(*acceptor));
  }
  return acceptors;
}

}  // namespace ztunnel::app
