// The outbound listener on loopback: passthrough, self-call refusal, and HBONE through a stub connector.
#include "proxy/outbound.h"

#include <doctest/doctest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "h2/session.h"
#include "h2/transport.h"
#include "identity/builtin_ca.h"
#include "net/socket.h"
#include "proxy/h2_stream_io.h"
#include "support/run_coro.h"

// GCC 12 misreports awaitable frames of coroutine lambdas as mismatched
// new/delete (a false positive).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace ztunnel::proxy {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

const auto kLoopback = asio::ip::make_address("127.0.0.1");
const auto kRemoteIp = asio::ip::make_address("127.0.0.2");

// Records every connect the outbound makes itself (passthrough/TCP routes).
class CountingSockets : public net::SocketFactory {
 public:
  CountingSockets() : net::SocketFactory(net::SocketOptions{}) {}
  awaitable<boost::system::result<tcp::socket>> connect(
      tcp::endpoint destination, std::optional<asio::ip::address> source,
      Peer peer) const override {
    connects->push_back(destination);
    co_return co_await net::SocketFactory::connect(destination, source, peer);
  }
  std::shared_ptr<std::vector<tcp::endpoint>> connects =
      std::make_shared<std::vector<tcp::endpoint>>();
};

// An echo server that answers EOF with EOF, one coroutine per connection.
awaitable<void> echo_connection(tcp::socket socket) {
  std::array<char, 16384> buffer;
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(buffer), use_nothrow);
    if (ec) break;
    auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(buffer.data(), n), use_nothrow);
    if (wec) co_return;
  }
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_send, ignored);
}

awaitable<void> echo_server(tcp::acceptor* acceptor) {
  for (;;) {
    auto [ec, socket] = co_await acceptor->async_accept(use_nothrow);
    if (ec) co_return;
    asio::co_spawn(acceptor->get_executor(), echo_connection(std::move(socket)), asio::detached);
  }
}

// What the stub HBONE peer saw.
struct StubPeer {
  std::vector<PoolKey> connects;         // connector calls
  std::vector<h2::Request> requests;     // CONNECTs received
  std::vector<h2::ServerSession> sessions;
};

// Answers a CONNECT whose authority ends in ":9503" with 503, others with 200 and an echo.
awaitable<void> stub_handler(StubPeer* peer, h2::IncomingRequest request) {
  peer->requests.push_back(request.request);
  if (request.request.authority.ends_with(":9503")) {
    request.stream.respond(503);
    co_return;
  }
  request.stream.respond(200);
  std::array<char, 16384> buffer;
  for (;;) {
    auto [ec, n] = co_await request.stream.read_some(asio::buffer(buffer));
    if (ec) break;
    if (co_await h2::write_all(request.stream, asio::buffer(buffer.data(), n))) co_return;
  }
  request.stream.shutdown_write();
}

template <class Session>
awaitable<void> run_session(Session session) {
  co_await session.run();
}

// The seam: instead of TLS to key.destination, an in-process ServerSession
// over a socketpair.
HboneConnector stub_connector(StubPeer* peer) {
  return [peer](PoolKey key) -> awaitable<core::Result<h2::ClientSession>> {
    peer->connects.push_back(key);
    auto executor = co_await asio::this_coro::executor;
    asio::local::stream_protocol::socket a(executor), b(executor);
    asio::local::connect_pair(a, b);
    h2::ServerSession server(h2::make_transport(std::move(a)),
                             [peer](h2::IncomingRequest r) { return stub_handler(peer, std::move(r)); });
    h2::ClientSession client(h2::make_transport(std::move(b)));
    peer->sessions.push_back(server);
    asio::co_spawn(executor, run_session(server), asio::detached);
    asio::co_spawn(executor, run_session(client), asio::detached);
    co_return client;
  };
}

state::Workload workload(std::string name, asio::ip::address ip) {
  state::Workload w;
  w.uid = "vms/" + name;
  w.name = name;
  w.namespace_ = "vms";
  w.service_account = name;
  w.trust_domain = "cluster.local";
  w.protocol = state::Protocol::kHbone;
  w.addresses = {ip};
  return w;
}

struct Exchange {
  std::string received;
  bool ended = false;  // EOF or reset, rather than the read deadline
};

// Connects to the listener, sends `data`, half-closes, reads until the end.
awaitable<Exchange> exchange(tcp::endpoint listener, std::string data) {
  tcp::socket socket(co_await asio::this_coro::executor);
  auto [cec] = co_await socket.async_connect(listener, use_nothrow);
  REQUIRE(!cec);
  co_await asio::async_write(socket, asio::buffer(data), use_nothrow);
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_send, ignored);
  Exchange out;
  std::array<char, 16384> buffer;
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(buffer), use_nothrow);
    if (ec) {
      out.ended = ec == asio::error::eof || ec == asio::error::connection_reset;
      break;
    }
    out.received.append(buffer.data(), n);
  }
  co_return out;
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 7919) >> 3);
  return s;
}

struct Fixture {
  config::Config config;
  state::Store store;
  std::shared_ptr<identity::BuiltinCaProvider> provider;
  state::Workload local = workload("local", asio::ip::make_address("10.0.0.1"));
  state::Workload remote = workload("remote", kRemoteIp);

  Fixture() {
    auto ca = identity::BuiltinCa::generate("cluster.local", std::chrono::system_clock::now());
    REQUIRE(ca.has_value());
    provider = identity::BuiltinCaProvider::create(*ca);
    state::Update update;
    update.upserted_workloads.push_back(local);
    update.upserted_workloads.push_back(remote);
    store.apply(std::move(update));
  }

  // An Outbound on 127.0.0.1:0 whose original destination is `*next_dst`.
  std::shared_ptr<Outbound> start(asio::io_context& io, std::shared_ptr<CountingSockets> sockets,
                                  std::shared_ptr<tcp::endpoint> next_dst, HboneConnector connector) {
    ProxyInputs inputs;
    inputs.config = &config;
    inputs.store = &store;
    inputs.sockets = sockets;
    inputs.certificates = provider;
    inputs.workload = {"vms", "local", "local"};
    inputs.original_dst = [next_dst](tcp::socket&) -> boost::system::result<tcp::endpoint> {
      return *next_dst;
    };
    auto acceptor = sockets->listen(io.get_executor(), {kLoopback, 0});
    REQUIRE(acceptor.has_value());
    auto outbound = Outbound::create(inputs, std::move(*acceptor), std::move(connector));
    asio::co_spawn(io, outbound->run(), asio::detached);
    return outbound;
  }
};

TEST_CASE("outbound passes an unknown destination through and the bytes echo back intact") {
  Fixture f;
  testing::run_coro([&](asio::io_context& io) -> awaitable<void> {
    StubPeer peer;
    auto sockets = std::make_shared<CountingSockets>();
    auto next_dst = std::make_shared<tcp::endpoint>();
    auto outbound = f.start(io, sockets, next_dst, stub_connector(&peer));
    tcp::acceptor echo(io, {kLoopback, 0});
    asio::co_spawn(io, echo_server(&echo), asio::detached);

    *next_dst = echo.local_endpoint();
    const std::string data = pattern(1 << 20);
    auto got = co_await exchange(outbound->local_endpoint(), data);
    CHECK(got.ended);
    CHECK(got.received.size() == data.size());
    CHECK(got.received == data);
    REQUIRE(sockets->connects->size() == 1);
    CHECK((*sockets->connects)[0] == echo.local_endpoint());
    CHECK(peer.connects.empty());
    outbound->stop();
    echo.close();
  });
}

TEST_CASE("outbound refuses a self-call to its own ports without connecting anywhere") {
  Fixture f;
  testing::run_coro([&](asio::io_context& io) -> awaitable<void> {
    StubPeer peer;
    auto sockets = std::make_shared<CountingSockets>();
    auto next_dst = std::make_shared<tcp::endpoint>();
    auto outbound = f.start(io, sockets, next_dst, stub_connector(&peer));
    for (auto dst : {tcp::endpoint(kLoopback, 15008), tcp::endpoint(kLoopback, 15001),
                     tcp::endpoint(asio::ip::make_address("10.0.0.1"), 15006)}) {
      CAPTURE(dst.port());
      *next_dst = dst;
      auto got = co_await exchange(outbound->local_endpoint(), "must go nowhere");
      CHECK(got.ended);
      CHECK(got.received.empty());
    }
    CHECK(sockets->connects->empty());
    CHECK(peer.connects.empty());
    outbound->stop();
  });
}

TEST_CASE("outbound sends an HBONE destination through the connector with its authority and headers") {
  Fixture f;
  testing::run_coro([&](asio::io_context& io) -> awaitable<void> {
    StubPeer peer;
    auto sockets = std::make_shared<CountingSockets>();
    auto next_dst = std::make_shared<tcp::endpoint>(kRemoteIp, 8080);
    auto outbound = f.start(io, sockets, next_dst, stub_connector(&peer));

    const std::string data = pattern(300000);
    auto first = co_await exchange(outbound->local_endpoint(), data);
    CHECK(first.ended);
    CHECK(first.received == data);
    auto second = co_await exchange(outbound->local_endpoint(), "again");
    CHECK(second.received == "again");

    // One pooled connection for both, to the remote's HBONE port, expecting its identity.
    REQUIRE(peer.connects.size() == 1);
    const PoolKey& key = peer.connects[0];
    CHECK(key.destination == tcp::endpoint(kRemoteIp, 15008));
    CHECK(key.source == f.local.identity());
    REQUIRE(key.expected.size() == 1);
    CHECK(key.expected[0] == f.remote.identity());
    REQUIRE(peer.requests.size() == 2);
    for (const auto& request : peer.requests) {
      CHECK(request.method == "CONNECT");
      CHECK(request.authority == "127.0.0.2:8080");
      CHECK(request.path.empty());
      std::vector<std::string> names;
      for (const auto& h : request.headers) names.push_back(h.name);
      for (const char* want : {"baggage", "forwarded", "traceparent"}) {
        CAPTURE(want);
        CHECK(std::find(names.begin(), names.end(), want) != names.end());
      }
    }
    CHECK(sockets->connects->empty());  // nothing in plain TCP
    outbound->stop();
  });
}

TEST_CASE("outbound closes the client without a byte when the HBONE peer answers 503") {
  Fixture f;
  testing::run_coro([&](asio::io_context& io) -> awaitable<void> {
    StubPeer peer;
    auto sockets = std::make_shared<CountingSockets>();
    auto next_dst = std::make_shared<tcp::endpoint>(kRemoteIp, 9503);
    auto outbound = f.start(io, sockets, next_dst, stub_connector(&peer));
    auto got = co_await exchange(outbound->local_endpoint(), "early bytes");
    CHECK(got.ended);
    CHECK(got.received.empty());
    REQUIRE(peer.requests.size() == 1);
    CHECK(peer.requests[0].authority == "127.0.0.2:9503");
    // The pooled connection survives a refused stream and carries the next one.
    *next_dst = tcp::endpoint(kRemoteIp, 8080);
    auto ok = co_await exchange(outbound->local_endpoint(), "after 503");
    CHECK(ok.received == "after 503");
    CHECK(peer.connects.size() == 1);
    outbound->stop();
  });
}

}  // namespace
}  // namespace ztunnel::proxy
