#include "proxy/inbound.h"

#include <doctest/doctest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <functional>
#include <optional>
#include <chrono>
#include <memory>
#include <string>

#include "identity/builtin_ca.h"
#include "net/socket.h"
#include "proxy/connection_tracker.h"
#include "proxy/h2_stream_io.h"
#include "proxy/pool.h"
#include "support/run_coro.h"
#include "support/workloads.h"

namespace ztunnel::proxy {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

// One echo connection at a time is enough here.
asio::awaitable<void> echo_server(tcp::acceptor* acceptor) {
  for (;;) {
    auto [ec, socket] = co_await acceptor->async_accept(use_nothrow);
    if (ec) co_return;
    std::array<char, 1024> buffer;
    for (;;) {
      auto [rec, n] = co_await socket.async_read_some(asio::buffer(buffer), use_nothrow);
      if (rec) break;
      co_await asio::async_write(socket, asio::buffer(buffer.data(), n), use_nothrow);
    }
  }
}

// Calls `before_same_namespace_connect` before each connect to the local
// workload, as if the connect took that long: a test changes policy there.
class HookedSockets : public net::SocketFactory {
 public:
  HookedSockets() : net::SocketFactory(net::SocketOptions{}) {}
  asio::awaitable<boost::system::result<tcp::socket>> connect(
      tcp::endpoint destination, std::optional<asio::ip::address> source,
      Peer peer) const override {
    if (peer == Peer::kSameNamespace && before_same_namespace_connect) before_same_namespace_connect();
    co_return co_await net::SocketFactory::connect(destination, source, peer);
  }
  std::function<void()> before_same_namespace_connect;
};

// One local HBONE workload (vms/local at 127.0.0.1) behind an inbound
// listener, a client pool that reaches it as vms/client, and an echo server
// as the workload's application.
struct InboundHarness {
  config::Config config;
  state::Store store;
  state::Workload local = testing::local_hbone_workload();
  std::shared_ptr<identity::CertificateProvider> provider;

  InboundHarness() {
    auto ca = identity::BuiltinCa::generate("cluster.local", std::chrono::system_clock::now());
    REQUIRE(ca.has_value());
    provider = identity::BuiltinCaProvider::create(*ca);
    apply({}, {local});
  }
  void apply(std::vector<state::Policy> policies, std::vector<state::Workload> workloads = {}) {
    state::Update update;
    update.upserted_policies = std::move(policies);
    update.upserted_workloads = std::move(workloads);
    store.apply(std::move(update));
  }
  ProxyInputs inputs(std::shared_ptr<net::SocketFactory> sockets) {
    ProxyInputs in;
    in.config = &config;
    in.store = &store;
    in.sockets = std::move(sockets);
    in.certificates = provider;
    in.workload = {"vms", "local", "local"};
    return in;
  }
};

// The listener, the echo application and the client pool, running on `io`.
struct RunningInbound {
  std::shared_ptr<Inbound> inbound;
  tcp::acceptor echo;
  HbonePool pool;
  PoolKey key;
  std::string echo_port;

  RunningInbound(asio::io_context& io, const InboundHarness& h, ProxyInputs inputs)
      : inbound(start(io, inputs)),
        echo(io, {asio::ip::make_address("127.0.0.1"), 0}),
        pool(io.get_executor(), PoolOptions{}, make_hbone_connector(connector(inputs))),
        key(make_pool_key({"cluster.local", "vms", "client"}, {h.local.identity()},
                          inbound->local_endpoint())),
        echo_port(std::to_string(echo.local_endpoint().port())) {
    asio::co_spawn(io, echo_server(&echo), asio::detached);
  }
  static std::shared_ptr<Inbound> start(asio::io_context& io, const ProxyInputs& inputs) {
    auto acceptor = inputs.sockets->listen(io.get_executor(), {asio::ip::make_address("127.0.0.1"), 0});
    REQUIRE(acceptor.has_value());
    auto inbound = Inbound::create(inputs, std::move(*acceptor));
    asio::co_spawn(io, inbound->run(), asio::detached);
    return inbound;
  }
  static ConnectorInputs connector(const ProxyInputs& inputs) {
    ConnectorInputs c;
    c.sockets = inputs.sockets;
    c.certificates = inputs.certificates;
    return c;
  }
  void stop() {
    pool.shutdown();
    inbound->stop();
    echo.close();
  }
};

TEST_CASE("the inbound listener answers CONNECT phases and tunnels to the upstream after 200") {
  InboundHarness h;
  testing::run_coro([&](asio::io_context& io) -> asio::awaitable<void> {
    ProxyInputs inputs = h.inputs(std::make_shared<net::SocketFactory>(net::SocketOptions{}));
    int authorized = 0;
    inputs.authorize = [&](const AuthorizationRequest& r) {
      ++authorized;
      CHECK(r.source_identity == state::Identity{"cluster.local", "vms", "client"});
      CHECK(r.destination_workload->uid == "vms/local");
      rbac::Decision decision;
      decision.allowed = r.destination.port() != 7;  // a port the "policy" denies
      return decision;
    };
    RunningInbound running(io, h, inputs);
    auto status_of = [&](std::string authority) -> asio::awaitable<int> {
      auto response = co_await running.pool.open(running.key, authority, {});
      REQUIRE(response.has_value());
      co_return response->status;
    };
    CHECK(co_await status_of("127.0.0.2:" + running.echo_port) == 400);  // not the address called
    CHECK(co_await status_of("127.0.0.1:15008") == 503);  // the proxy's own port
    CHECK(co_await status_of("127.0.0.1:7") == 401);      // denied by the hook
    CHECK(co_await status_of("127.0.0.1:1") == 503);      // nothing listens there

    auto response = co_await running.pool.open(running.key, "127.0.0.1:" + running.echo_port, {});
    REQUIRE(response.has_value());
    REQUIRE(response->status == 200);
    const std::string hello = "hello over HBONE";
    CHECK(!co_await h2::write_all(response->stream, asio::buffer(hello)));
    std::string got;
    std::array<char, 64> buffer;
    while (got.size() < hello.size()) {
      auto [ec, n] = co_await response->stream.read_some(asio::buffer(buffer));
      REQUIRE(!ec);
      got.append(buffer.data(), n);
    }
    CHECK(got == hello);
    CHECK(authorized == 3);
    running.stop();
  });
}

TEST_CASE("a policy that denies a tunnel while its upstream connect runs refuses it with 401") {
  InboundHarness h;
  testing::run_coro([&](asio::io_context& io) -> asio::awaitable<void> {
    auto sockets = std::make_shared<HookedSockets>();
    ProxyInputs inputs = h.inputs(sockets);
    auto tracker = std::make_shared<ConnectionTracker>();
    inputs.connections = tracker;
    RunningInbound running(io, h, inputs);
    // The first decision allows (no policy yet). During the connect a
    // namespace DENY of the echo port arrives, and the worker re-checks its
    // connections, as App does on every store update.
    std::size_t revoked = 0;
    sockets->before_same_namespace_connect = [&] {
      h.apply({testing::namespace_deny_of_port("deny-echo", "vms",
                                               running.echo.local_endpoint().port())});
      revoked = tracker->recheck(*h.store.snapshot());
    };
    auto response = co_await running.pool.open(running.key, "127.0.0.1:" + running.echo_port, {});
    REQUIRE(response.has_value());
    CHECK(response->status == 401);
    CHECK(revoked == 1);
    CHECK(tracker->size() == 0);  // the refused tunnel is no longer tracked
    running.stop();
  });
}

}  // namespace
}  // namespace ztunnel::proxy
