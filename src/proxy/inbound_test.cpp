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
#include <chrono>
#include <memory>
#include <string>

#include "identity/builtin_ca.h"
#include "net/socket.h"
#include "proxy/h2_stream_io.h"
#include "proxy/pool.h"
#include "support/run_coro.h"

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

TEST_CASE("the inbound listener answers CONNECT phases and tunnels to the upstream after 200") {
  auto ca = identity::BuiltinCa::generate("cluster.local", std::chrono::system_clock::now());
  REQUIRE(ca.has_value());
  auto provider = identity::BuiltinCaProvider::create(*ca);
  config::Config config;
  state::Store store;
  state::Update update;
  state::Workload local;
  local.uid = "vms/local";
  local.name = "local";
  local.namespace_ = "vms";
  local.service_account = "local";
  local.trust_domain = "cluster.local";
  local.protocol = state::Protocol::kHbone;
  local.addresses = {asio::ip::make_address("127.0.0.1")};
  update.upserted_workloads.push_back(local);
  store.apply(std::move(update));

  testing::run_coro([&](asio::io_context& io) -> asio::awaitable<void> {
    auto sockets = std::make_shared<net::SocketFactory>(net::SocketOptions{});
    ProxyInputs inputs;
    inputs.config = &config;
    inputs.store = &store;
    inputs.sockets = sockets;
    inputs.certificates = provider;
    inputs.workload = {"vms", "local", "local"};
    int authorized = 0;
    inputs.authorize = [&](const AuthorizationRequest& r) {
      ++authorized;
      CHECK(r.source_identity == state::Identity{"cluster.local", "vms", "client"});
      CHECK(r.destination_workload->uid == "vms/local");
      rbac::Decision decision;
      decision.allowed = r.destination.port() != 7;  // a port the "policy" denies
      return decision;
    };
    auto acceptor = sockets->listen(io.get_executor(), {asio::ip::make_address("127.0.0.1"), 0});
    REQUIRE(acceptor.has_value());
    auto inbound = Inbound::create(inputs, std::move(*acceptor));
    asio::co_spawn(io, inbound->run(), asio::detached);

    tcp::acceptor echo(io, {asio::ip::make_address("127.0.0.1"), 0});
    asio::co_spawn(io, echo_server(&echo), asio::detached);

    ConnectorInputs connector;
    connector.sockets = sockets;
    connector.certificates = provider;
    HbonePool pool(io.get_executor(), PoolOptions{}, make_hbone_connector(connector));
    const state::Identity client{"cluster.local", "vms", "client"};
    const PoolKey key = make_pool_key(client, {local.identity()}, inbound->local_endpoint());

    auto status_of = [&](std::string authority) -> asio::awaitable<int> {
      auto response = co_await pool.open(key, authority, {});
      REQUIRE(response.has_value());
      co_return response->status;
    };
    const std::string echo_port = std::to_string(echo.local_endpoint().port());
    CHECK(co_await status_of("127.0.0.2:" + echo_port) == 400);  // not the address called
    CHECK(co_await status_of("127.0.0.1:15008") == 503);         // the proxy's own port
    CHECK(co_await status_of("127.0.0.1:7") == 401);             // denied by the hook
    CHECK(co_await status_of("127.0.0.1:1") == 503);             // nothing listens there

    auto response = co_await pool.open(key, "127.0.0.1:" + echo_port, {});
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
    pool.shutdown();
    inbound->stop();
    echo.close();
  });
}

}  // namespace
}  // namespace ztunnel::proxy
