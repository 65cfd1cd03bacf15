#include "proxy/pool.h"

#include <doctest/doctest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "h2/session.h"
#include "identity/builtin_ca.h"
#include "support/run_coro.h"
#include "tls/context.h"
#include "tls/handshake.h"

namespace ztunnel::proxy {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

state::Identity id(std::string ns, std::string sa) { return {"cluster.local", ns, sa}; }

// A real HBONE server on loopback: TLS 1.3 with the provider's certificate
// for `identity`, a ServerSession answering every CONNECT with 200.
struct LoopbackHboneServer {
  tcp::acceptor acceptor;
  std::shared_ptr<const tls::ServerContext> context;
  std::vector<h2::ServerSession> sessions;
  h2::SessionOptions options;
  int accepted = 0;
  // What each accepted tunnel received, by its CONNECT authority.
  std::shared_ptr<std::map<std::string, std::string>> received =
      std::make_shared<std::map<std::string, std::string>>();

  LoopbackHboneServer(asio::io_context& io, std::shared_ptr<const tls::ServerContext> ctx,
                      h2::SessionOptions opts = h2::SessionOptions::server_defaults())
      : acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        context(std::move(ctx)),
        options(opts) {}

  tcp::endpoint endpoint() const { return acceptor.local_endpoint(); }

  asio::awaitable<void> serve() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(use_nothrow);
      if (ec) co_return;
      ++accepted;
      asio::co_spawn(acceptor.get_executor(), handle(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> handle(tcp::socket socket) {
    auto stream = tls::make_stream(std::move(socket), context->new_ssl());
    auto result = co_await tls::handshake(stream, asio::ssl::stream_base::server, 5s);
    if (!result) co_return;
    h2::ServerSession session(
        std::make_unique<h2::StreamTransport<tls::TlsStream>>(std::move(stream)),
        [received = received](h2::IncomingRequest request) -> asio::awaitable<void> {
          request.stream.respond(200);
          // Hold the stream until the client ends it.
          std::array<char, 64> buffer;
          for (;;) {
            auto [ec, n] = co_await request.stream.read_some(asio::buffer(buffer));
            if (ec) co_return;
            (*received)[request.request.authority].append(buffer.data(), n);
          }
        },
        options);
    sessions.push_back(session);
    co_await session.run();
  }
};

struct Fixture {
  std::shared_ptr<identity::BuiltinCaProvider> provider;
  state::Identity client = id("ns-a", "client");
  state::Identity server = id("ns-b", "server");

  Fixture() {
    auto ca = identity::BuiltinCa::generate("cluster.local", std::chrono::system_clock::now());
    REQUIRE(ca);
    provider = identity::BuiltinCaProvider::create(*ca);
  }

  std::shared_ptr<const tls::ServerContext> server_context() {
    auto cert = provider->fetch(server);
    REQUIRE(cert);
    auto ctx = tls::make_server_context(*cert);
    REQUIRE(ctx);
    return *ctx;
  }

  HboneConnector connector() {
    ConnectorInputs inputs;
    inputs.sockets = std::make_shared<net::SocketFactory>(net::SocketOptions{});
    inputs.certificates = provider;
    return make_hbone_connector(inputs);
  }
};

// A serving loopback HBONE server, and a pool that reaches it as f.client.
struct PoolAndServer {
  LoopbackHboneServer server;
  HbonePool pool;
  PoolKey key;

  PoolAndServer(asio::io_context& io, Fixture& f, PoolOptions options = {},
                h2::SessionOptions server_options = h2::SessionOptions::server_defaults())
      : server(io, f.server_context(), server_options),
        pool(io.get_executor(), options, f.connector()),
        key(make_pool_key(f.client, {f.server}, server.endpoint())) {
    asio::co_spawn(io, server.serve(), asio::detached);
  }
  void stop() {
    pool.shutdown();
    server.acceptor.close();
  }
};

// A server that allows only `streams` concurrent streams per connection.
h2::SessionOptions server_allowing(std::uint32_t streams) {
  h2::SessionOptions options = h2::SessionOptions::server_defaults();
  options.max_concurrent_streams = streams;
  return options;
}

asio::awaitable<void> sleep_for(std::chrono::steady_clock::duration d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  co_await timer.async_wait(use_nothrow);
}

// A free coroutine, not a capturing lambda: co_spawn outlives the lambda object.
asio::awaitable<void> open_one(HbonePool* pool, PoolKey key, std::vector<h2::Stream>* streams,
                               int* ok, int* done) {
  auto response = co_await pool->open(key, "10.0.0.1:80", {});
  if (response && response->status == 200) {
    ++*ok;
    streams->push_back(std::move(response->stream));
  }
  ++*done;
}

TEST_CASE("fifty concurrent opens share one pooled HBONE connection") {
  Fixture f;
  testing::run_coro([&](asio::io_context& io) -> asio::awaitable<void> {
    PoolAndServer rig(io, f);
    auto& [server, pool, key] = rig;

    std::vector<h2::Stream> streams;
    int done = 0;
    int ok = 0;
    for (int i = 0; i < 50; ++i) {
      asio::co_spawn(io, open_one(&pool, key, &streams, &ok, &done), asio::detached);
    }
    while (done < 50) co_await sleep_for(5ms);
    CHECK(ok == 50);
    CHECK(server.accepted == 1);
    CHECK(pool.connection_count() == 1);
    rig.stop();
  });
}

// Opens `n` streams at once and holds them all; returns how many got 200.
asio::awaitable<int> open_and_hold(asio::io_context& io, HbonePool& pool, const PoolKey& key,
                                   int n, std::vector<h2::Stream>& streams) {
  int done = 0;
  int ok = 0;
  for (int i = 0; i < n; ++i) {
    asio::co_spawn(io, open_one(&pool, key, &streams, &ok, &done), asio::detached);
  }
  while (done < n) co_await sleep_for(5ms);
  co_return ok;
}

TEST_CASE("streams beyond POOL_MAX_STREAMS_PER_CONNECTION go to another connection") {
  Fixture f;
  testing::run_coro([&](asio::io_context& io) -> asio::awaitable<void> {
    PoolOptions options;
    options.max_streams_per_connection = 10;
    PoolAndServer rig(io, f, options);
    auto& [server, pool, key] = rig;
    std::vector<h2::Stream> streams;
    CHECK(co_await open_and_hold(io, pool, key, 25, streams) == 25);
    CHECK(server.accepted == 3);  // 10 + 10 + 5, as Istio's pool with the same cap
    CHECK(pool.connection_count(key) == 3);
    rig.stop();
  });
}

TEST_CASE("a burst far beyond one connection's streams all succeed, one connect at a time") {
  // 400 callers at once with 10 streams per connection: each connect serves
  // ten of them while the rest wait; waiting is not a retry, so none gives up.
  Fixture f;
  testing::run_coro([&](asio::io_context& io) -> asio::awaitable<void> {
    PoolOptions options;
    options.max_streams_per_connection = 10;
    PoolAndServer rig(io, f, options);
    auto& [server, pool, key] = rig;
    std::vector<h2::Stream> streams;
    CHECK(co_await open_and_hold(io, pool, key, 400, streams) == 400);
    CHECK(server.accepted == 40);
    CHECK(pool.connection_count(key) == 40);
    rig.stop();
  });
}

asio::awaitable<void> open_expecting_error(HbonePool* pool, PoolKey key, std::vector<std::string>* errors) {
  auto response = co_await pool->open(key, "10.0.0.1:80", {});
  errors->push_back(response ? "status " + std::to_string(response->status) : response.error().message);
}

TEST_CASE("callers queued behind a failed connect all get its error; the connect is tried once") {
  testing::run_coro([&](asio::io_context& io) -> asio::awaitable<void> {
    int connects = 0;
    HboneConnector failing = [&connects](PoolKey) -> asio::awaitable<core::Result<h2::ClientSession>> {
      ++connects;
      co_await sleep_for(20ms);
      co_return core::make_error("connect 10.0.0.9:15008: Connection refused");
    };
    HbonePool pool(io.get_executor(), PoolOptions{}, failing);
    const PoolKey key = make_pool_key(id("ns-a", "client"), {id("ns-b", "server")},
                                      tcp::endpoint(asio::ip::make_address("10.0.0.9"), 15008));
    std::vector<std::string> errors;
    for (int i = 0; i < 50; ++i) {
      asio::co_spawn(io, open_expecting_error(&pool, key, &errors), asio::detached);
    }
    while (errors.size() < 50) co_await sleep_for(5ms);
    CHECK(connects == 1);
    for (const auto& e : errors) CHECK(e == "connect 10.0.0.9:15008: Connection refused");
    // A later caller tries again rather than inheriting an old failure.
    co_await open_expecting_error(&pool, key, &errors);
    CHECK(connects == 2);
  });
}

TEST_CASE("a peer allowing fewer concurrent streams than the pool cap gets more connections") {
  Fixture f;
  testing::run_coro([&](asio::io_context& io) -> asio::awaitable<void> {
    PoolAndServer rig(io, f, PoolOptions{}, server_allowing(10));
    auto& [server, pool, key] = rig;
    std::vector<h2::Stream> streams;
    // The first burst races the peer's SETTINGS; refused streams must be retried, not failed.
    CHECK(co_await open_and_hold(io, pool, key, 25, streams) == 25);
    CHECK(pool.connection_count(key) >= 3);
    // Once the peer's limit is known, later opens respect it up front.
    const int before = server.accepted;
    CHECK(co_await open_and_hold(io, pool, key, 10, streams) == 10);
    CHECK(server.accepted == before + 1);
    // Every slot comes back when the streams end, the cancelled requests'
    // included: ten per connection already open, and no new connection.
    streams.clear();
    co_await sleep_for(100ms);  // the resets go out
    const int after = server.accepted;
    const int slots = 10 * static_cast<int>(pool.connection_count(key));
    CHECK(co_await open_and_hold(io, pool, key, slots, streams) == slots);
    CHECK(server.accepted == after);
    rig.stop();
  });
}

TEST_CASE("a refused stream's early data reaches the server once, on the retry") {
  Fixture f;
  testing::run_coro([&](asio::io_context& io) -> asio::awaitable<void> {
    PoolAndServer rig(io, f, PoolOptions{}, server_allowing(5));
    auto& [server, pool, key] = rig;
    // 12 opens race the peer's SETTINGS (5 streams): the first connection's
    // streams beyond 5 are refused and retried elsewhere, with their early data.
    constexpr int kOpens = 12;
    std::vector<h2::Stream> streams;
    int ok = 0, done = 0;
    for (int i = 0; i < kOpens; ++i) {
      asio::co_spawn(io, [&, i]() -> asio::awaitable<void> {
        const std::string authority = "10.0.0.1:" + std::to_string(1000 + i);
        const std::string early = "early bytes of tunnel " + std::to_string(i);
        auto response = co_await pool.open(key, authority, {}, asio::buffer(early));
        if (response && response->status == 200) {
          ++ok;
          streams.push_back(std::move(response->stream));
        }
        ++done;
      }, asio::detached);
    }
    while (done < kOpens) co_await sleep_for(5ms);
    CHECK(ok == kOpens);
    CHECK(server.accepted >= 3);  // some streams were refused and went elsewhere
    for (int i = 0; i < kOpens; ++i) {
      const std::string authority = "10.0.0.1:" + std::to_string(1000 + i);
      for (int t = 0; t < 200 && server.received->count(authority) == 0; ++t) co_await sleep_for(5ms);
      // Exactly once: a refused attempt's copy never reached a handler.
      CHECK((*server.received)[authority] == "early bytes of tunnel " + std::to_string(i));
    }
    rig.stop();
  });
}

TEST_CASE("distinct pool keys get distinct connections") {
  Fixture f;
  testing::run_coro([&](asio::io_context& io) -> asio::awaitable<void> {
    LoopbackHboneServer server(io, f.server_context());
    asio::co_spawn(io, server.serve(), asio::detached);
    HbonePool pool(io.get_executor(), PoolOptions{}, f.connector());
    const PoolKey a = make_pool_key(f.client, {f.server}, server.endpoint());
    const PoolKey b = make_pool_key(f.client, {id("ns-b", "other"), f.server}, server.endpoint());
    auto ra = co_await pool.open(a, "10.0.0.1:80", {});
    auto rb = co_await pool.open(b, "10.0.0.1:80", {});
    auto ra2 = co_await pool.open(a, "10.0.0.1:81", {});
    REQUIRE(ra.has_value());
    REQUIRE(rb.has_value());
    REQUIRE(ra2.has_value());
    CHECK(server.accepted == 2);
    CHECK(pool.connection_count(a) == 1);
    CHECK(pool.connection_count(b) == 1);
    pool.shutdown();
    server.acceptor.close();
  });
}

TEST_CASE("a session that received GOAWAY is not reused") {
  Fixture f;
  testing::run_coro([&](asio::io_context& io) -> asio::awaitable<void> {
    PoolAndServer rig(io, f);
    auto& [server, pool, key] = rig;
    auto first = co_await pool.open(key, "10.0.0.1:80", {});
    REQUIRE(first.has_value());
    REQUIRE(server.sessions.size() == 1);
    server.sessions[0].drain();
    for (int i = 0; i < 200 && pool.connection_count(key) != 0; ++i) co_await sleep_for(5ms);
    CHECK(pool.connection_count(key) == 0);
    auto second = co_await pool.open(key, "10.0.0.1:80", {});
    REQUIRE(second.has_value());
    CHECK(second->status == 200);
    CHECK(server.accepted == 2);
    rig.stop();
  });
}

TEST_CASE("an idle pooled connection is released after the unused timeout") {
  Fixture f;
  testing::run_coro([&](asio::io_context& io) -> asio::awaitable<void> {
    PoolOptions options;
    options.unused_release_timeout = 100ms;
    PoolAndServer rig(io, f, options);
    auto& [server, pool, key] = rig;
    {
      auto response = co_await pool.open(key, "10.0.0.1:80", {});
      REQUIRE(response.has_value());
      co_await sleep_for(250ms);
      // A stream in use keeps the connection.
      CHECK(pool.connection_count(key) == 1);
    }
    for (int i = 0; i < 200 && pool.connection_count(key) != 0; ++i) co_await sleep_for(10ms);
    CHECK(pool.connection_count(key) == 0);
    rig.stop();
  });
}

TEST_CASE("spare idle connections go after the grace period; the last one per key stays") {
  Fixture f;
  testing::run_coro([&](asio::io_context& io) -> asio::awaitable<void> {
    PoolOptions options;
    options.max_streams_per_connection = 10;
    options.spare_release_grace = 50ms;
    PoolAndServer rig(io, f, options);
    auto& [server, pool, key] = rig;
    std::vector<h2::Stream> full;
    CHECK(co_await open_and_hold(io, pool, key, 20, full) == 20);
    CHECK(pool.connection_count(key) == 2);
    // A third connection whose only stream ends: the other two have no free
    // slot, so it is not a spare and stays.
    {
      std::vector<h2::Stream> third;
      CHECK(co_await open_and_hold(io, pool, key, 1, third) == 1);
      CHECK(server.accepted == 3);
    }
    co_await sleep_for(300ms);
    CHECK(pool.connection_count(key) == 3);
    // Every stream ends: two of the three are spares.
    full.clear();
    for (int i = 0; i < 100 && pool.connection_count(key) > 1; ++i) co_await sleep_for(10ms);
    CHECK(pool.connection_count(key) == 1);
    co_await sleep_for(300ms);  // the survivor keeps the 5-minute timeout
    CHECK(pool.connection_count(key) == 1);
    // It serves the next streams without a new connect.
    std::vector<h2::Stream> again;
    CHECK(co_await open_and_hold(io, pool, key, 10, again) == 10);
    CHECK(server.accepted == 3);
    rig.stop();
  });
}

}  // namespace
}  // namespace ztunnel::proxy
