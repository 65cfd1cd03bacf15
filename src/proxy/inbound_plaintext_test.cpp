// Loopback tests of the inbound plaintext listener: relay, policy denial, foreign and self-call
// destinations.
#include "proxy/inbound_plaintext.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "core/log.h"
#include "net/socket.h"
#include "proxy/connection_tracker.h"
#include "support/run_coro.h"
#include "support/workloads.h"

namespace ztunnel::proxy {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

// Echoes every connection and counts what reached it: the "upstream saw
// nothing" checks rest on these counters.
struct EchoServer {
  tcp::acceptor acceptor;
  int connections = 0;
  uint64_t bytes = 0;

  EchoServer(asio::io_context& io, const char* ip) : acceptor(io, {asio::ip::make_address(ip), 0}) {
    asio::co_spawn(io, accept_loop(), asio::detached);
  }
  tcp::endpoint endpoint() const { return acceptor.local_endpoint(); }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(use_nothrow);
      if (ec) co_return;
      ++connections;
      asio::co_spawn(acceptor.get_executor(), echo(std::move(socket)), asio::detached);
    }
  }
  asio::awaitable<void> echo(tcp::socket socket) {
    std::array<char, 4096> buffer;
    for (;;) {
      auto [ec, n] = co_await socket.async_read_some(asio::buffer(buffer), use_nothrow);
      bytes += n;
      if (ec) break;
      auto [wec, written] =
          co_await asio::async_write(socket, asio::buffer(buffer.data(), n), use_nothrow);
      if (wec) co_return;
    }
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_send, ignored);
  }
};

std::string random_payload(std::size_t size) {
  std::mt19937 rng(42);
  std::string out(size, '\0');
  for (auto& c : out) c = static_cast<char>(rng());
  return out;
}

struct Exchange {
  bool connected = false;
  std::string received;
  boost::system::error_code read_error;  // eof when the listener closed cleanly
};

// Sends `payload`, half-closes, and reads until the listener closes.
asio::awaitable<Exchange> exchange(tcp::endpoint listener, std::string payload) {
  Exchange out;
  tcp::socket socket(co_await asio::this_coro::executor);
  auto [cec] = co_await socket.async_connect(listener, use_nothrow);
  if (cec) co_return out;
  out.connected = true;
  // A refused connection may be reset while we write; the read below tells.
  co_await asio::async_write(socket, asio::buffer(payload), use_nothrow);
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_send, ignored);
  std::array<char, 4096> buffer;
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(buffer), use_nothrow);
    out.received.append(buffer.data(), n);
    if (ec) {
      out.read_error = ec;
      break;
    }
  }
  co_return out;
}

// Captures what the process logger writes while alive (the access log).
class LogCapture {
 public:
  LogCapture() {
    REQUIRE(::pipe2(fds_, O_NONBLOCK) == 0);
    log::logger().set_fd(fds_[1]);
  }
  ~LogCapture() {
    log::logger().set_fd(2);
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  std::string text() {
    std::string out;
    std::array<char, 4096> buffer;
    ssize_t n;
    while ((n = ::read(fds_[0], buffer.data(), buffer.size())) > 0) out.append(buffer.data(), n);
    return out;
  }

 private:
  int fds_[2];
};

// The local workload vms/local at 127.0.0.1, a plaintext listener on
// 127.0.0.1:0 whose "original destination" each test names, and a policy
// hook that records what it was asked.
struct Harness {
  config::Config config;
  state::Store store;
  std::optional<tcp::endpoint> original_dst;
  std::optional<AuthorizationRequest> asked;
  bool allow = true;
  std::shared_ptr<ConnectionTracker> connections = std::make_shared<ConnectionTracker>();

  Harness() {
    state::Update update;
    update.upserted_workloads.push_back(testing::local_hbone_workload());
    store.apply(std::move(update));
  }

  std::shared_ptr<InboundPlaintext> start(asio::io_context& io) {
    auto sockets = std::make_shared<net::SocketFactory>(net::SocketOptions{});
    ProxyInputs inputs;
    inputs.config = &config;
    inputs.store = &store;
    inputs.sockets = sockets;
    inputs.workload = {"vms", "local", "local"};
    inputs.connections = connections;
    inputs.authorize = [this](const AuthorizationRequest& r) {
      asked = r;
      rbac::Decision decision;
      decision.allowed = allow;
      if (!allow) {
        decision.policy = "vms/deny-all";
        decision.reason = "explicitly denied by: vms/deny-all";
      }
      return decision;
    };
    inputs.original_dst = [this](tcp::socket&) -> boost::system::result<tcp::endpoint> {
      REQUIRE(original_dst.has_value());
      return *original_dst;
    };
    auto acceptor = sockets->listen(io.get_executor(), {asio::ip::make_address("127.0.0.1"), 0});
    REQUIRE(acceptor.has_value());
    auto listener = InboundPlaintext::create(inputs, std::move(*acceptor));
    asio::co_spawn(io, listener->run(), asio::detached);
    return listener;
  }
};

TEST_CASE("an allowed plaintext connection reaches its original destination with every byte") {
  Harness h;
  testing::run_coro([&](asio::io_context& io) -> asio::awaitable<void> {
    EchoServer echo(io, "127.0.0.1");
    h.original_dst = echo.endpoint();
    auto listener = h.start(io);
    const std::string payload = random_payload(300 * 1024);

    auto result = co_await exchange(listener->local_endpoint(), payload);
    CHECK(result.connected);
    CHECK(result.read_error == asio::error::eof);
    CHECK(result.received.size() == payload.size());
    CHECK(std::hash<std::string>{}(result.received) == std::hash<std::string>{}(payload));
    CHECK(echo.connections == 1);
    CHECK(echo.bytes == payload.size());

    REQUIRE(h.asked.has_value());
    CHECK_FALSE(h.asked->source_identity.has_value());  // plaintext proves no identity
    CHECK(h.asked->destination == echo.endpoint());
    CHECK(h.asked->source.address() == asio::ip::make_address("127.0.0.1"));
    REQUIRE(h.asked->destination_workload != nullptr);
    CHECK(h.asked->destination_workload->uid == "vms/local");
    listener->stop();
    echo.acceptor.close();
  });
}

TEST_CASE("a plaintext connection the policy denies is closed and nothing reaches the upstream") {
  Harness h;
  h.allow = false;
  LogCapture logs;
  testing::run_coro([&](asio::io_context& io) -> asio::awaitable<void> {
    EchoServer echo(io, "127.0.0.1");
    h.original_dst = echo.endpoint();
    auto listener = h.start(io);

    auto result = co_await exchange(listener->local_endpoint(), "let me in");
    // The refusal is a reset, which can reach this client before its
    // connect completes (both ends share one thread): either way it ends.
    if (result.connected) CHECK(result.read_error);
    CHECK(result.received.empty());
    CHECK(h.asked.has_value());
    CHECK(echo.connections == 0);
    listener->stop();
    echo.acceptor.close();
  });
  const std::string text = logs.text();
  CHECK(text.find("direction=inbound") != std::string::npos);
  CHECK(text.find("src.identity=- dst.identity=spiffe://cluster.local/ns/vms/sa/local") !=
        std::string::npos);
  CHECK(text.find("error=\"connection closed due to policy rejection: explicitly denied by: "
                  "vms/deny-all\"") != std::string::npos);
}

TEST_CASE("an open plaintext connection a new policy denies is closed; the copy stops at once") {
  Harness h;
  LogCapture logs;
  testing::run_coro([&](asio::io_context& io) -> asio::awaitable<void> {
    EchoServer echo(io, "127.0.0.1");
    h.original_dst = echo.endpoint();
    auto listener = h.start(io);

    tcp::socket client(io);
    auto [cec] = co_await client.async_connect(listener->local_endpoint(), use_nothrow);
    REQUIRE_FALSE(cec);
    std::array<char, 5> got;
    co_await asio::async_write(client, asio::buffer("ping!", 5), use_nothrow);
    auto [rec, rn] = co_await asio::async_read(client, asio::buffer(got), use_nothrow);
    REQUIRE_FALSE(rec);
    CHECK(h.connections->size() == 1);

    // The store publishes a DENY on the echo port; the re-check closes the connection.
    const state::Policy deny = testing::namespace_deny_of_port("no-echo", "vms", echo.endpoint().port());
    state::Update update;
    update.upserted_policies.push_back(deny);
    h.store.apply(std::move(update));
    CHECK(h.connections->recheck(*h.store.snapshot()) == 1);

    const auto start = std::chrono::steady_clock::now();
    auto [ec, n] = co_await client.async_read_some(asio::buffer(got), use_nothrow);
    CHECK(ec);  // reset: the client learns it was cut off
    CHECK(n == 0);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(1));
    // The connection's coroutine has ended and deregistered.
    asio::steady_timer settle(io, std::chrono::milliseconds(20));
    co_await settle.async_wait(use_nothrow);
    CHECK(h.connections->size() == 0);
    listener->stop();
    echo.acceptor.close();
  });
  const std::string text = logs.text();
  // The bytes that flowed before the close are still counted.
  CHECK(text.find("bytes_sent=5 bytes_recv=5 ") != std::string::npos);
  CHECK(text.find("error=\"connection closed due to policy change\"") != std::string::npos);
  CHECK(text.find("reason=\"explicitly denied by: vms/no-echo\"") != std::string::npos);
}

TEST_CASE("a plaintext connection to an address that is not the local workload's is closed") {
  Harness h;
  testing::run_coro([&](asio::io_context& io) -> asio::awaitable<void> {
    // A listener on another loopback address stands for another host.
    EchoServer elsewhere(io, "127.0.0.2");
    h.original_dst = elsewhere.endpoint();
    auto listener = h.start(io);

    auto result = co_await exchange(listener->local_endpoint(), "relay me");
    CHECK(result.connected);
    CHECK(result.read_error);
    CHECK(result.received.empty());
    CHECK_FALSE(h.asked.has_value());  // refused before the policy is asked
    CHECK(elsewhere.connections == 0);
    listener->stop();
    elsewhere.acceptor.close();
  });
}

TEST_CASE("a plaintext connection to one of ztunnel's own ports is refused as a self call") {
  for (uint16_t port : config::kIllegalPorts) {
    CAPTURE(port);
    Harness h;
    h.original_dst = tcp::endpoint(asio::ip::make_address("127.0.0.1"), port);
    LogCapture logs;
    testing::run_coro([&](asio::io_context& io) -> asio::awaitable<void> {
      auto listener = h.start(io);
      auto result = co_await exchange(listener->local_endpoint(), "loop");
      CHECK(result.connected);
      CHECK(result.read_error);
      CHECK(result.received.empty());
      CHECK_FALSE(h.asked.has_value());
      listener->stop();
    });
    CHECK(logs.text().find("attempted recursive call to ourselves") != std::string::npos);
  }
}

}  // namespace
}  // namespace ztunnel::proxy
