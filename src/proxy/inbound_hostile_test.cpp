// Hostile peers against the inbound listener (15008): early CONNECT payload, slowloris, handshake cap, non-TLS bytes.
#include <doctest/doctest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "identity/builtin_ca.h"
#include "net/socket.h"
#include "proxy/inbound.h"
#include "proxy/pool.h"
#include "support/run_coro.h"
#include "support/workloads.h"
#include "tls/context.h"
#include "tls/handshake.h"

// GCC 12 misreports awaitable frames of coroutine lambdas as mismatched
// new/delete (a false positive).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace ztunnel::proxy {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
using Bytes = std::vector<std::uint8_t>;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

const auto kLoopback = asio::ip::make_address("127.0.0.1");

awaitable<void> sleep_for(std::chrono::steady_clock::duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(use_nothrow);
}

template <class Cond>
awaitable<bool> eventually(Cond cond, std::chrono::steady_clock::duration limit = 10s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > end) co_return false;
    co_await sleep_for(5ms);
  }
  co_return true;
}

// An upstream that records what each connection delivered, until its EOF.
struct RecordingUpstream {
  tcp::acceptor acceptor;
  std::vector<std::string> received;  // one entry per connection
  std::vector<bool> finished;

  explicit RecordingUpstream(asio::io_context& io) : acceptor(io, {kLoopback, 0}) {}
  uint16_t port() const { return acceptor.local_endpoint().port(); }

  awaitable<void> serve() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(use_nothrow);
      if (ec) co_return;
      received.emplace_back();
      finished.push_back(false);
      asio::co_spawn(acceptor.get_executor(), record(std::move(socket), received.size() - 1),
                     asio::detached);
    }
  }

  awaitable<void> record(tcp::socket socket, std::size_t index) {
    std::array<char, 4096> buffer;
    for (;;) {
      auto [ec, n] = co_await socket.async_read_some(asio::buffer(buffer), use_nothrow);
      if (ec) break;
      received[index].append(buffer.data(), n);
    }
    finished[index] = true;
  }
};

// --- raw HTTP/2 frames (RFC 9113 §4.1), HPACK literals without indexing (RFC 7541 §6.2.2) ---

void put32(Bytes& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

void add_frame(Bytes& out, std::uint8_t type, std::uint8_t flags, std::uint32_t stream,
               const Bytes& payload) {
  const auto n = payload.size();
  out.push_back(static_cast<std::uint8_t>(n >> 16));
  out.push_back(static_cast<std::uint8_t>(n >> 8));
  out.push_back(static_cast<std::uint8_t>(n));
  out.push_back(type);
  out.push_back(flags);
  put32(out, stream);
  out.insert(out.end(), payload.begin(), payload.end());
}

void put_literal(Bytes& out, const std::string& name, const std::string& value) {
  // Short strings only: 7-bit lengths.
  REQUIRE(name.size() < 127);
  REQUIRE(value.size() < 127);
  out.push_back(0x00);
  out.push_back(static_cast<std::uint8_t>(name.size()));
  out.insert(out.end(), name.begin(), name.end());
  out.push_back(static_cast<std::uint8_t>(value.size()));
  out.insert(out.end(), value.begin(), value.end());
}

// CONNECT `authority` on `stream` followed at once by `body` (DATA, END_STREAM):
// the payload is on the wire before any response.
void add_connect_with_body(Bytes& out, std::uint32_t stream, const std::string& authority,
                           const std::string& body) {
  Bytes block;
  put_literal(block, ":method", "CONNECT");
  put_literal(block, ":authority", authority);
  add_frame(out, 0x1, 0x4, stream, block);  // HEADERS, END_HEADERS
  add_frame(out, 0x0, 0x1, stream, Bytes(body.begin(), body.end()));  // DATA, END_STREAM
}

Bytes client_preface() {
  const std::string magic = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  Bytes out(magic.begin(), magic.end());
  add_frame(out, 0x4, 0, 0, {});  // empty SETTINGS
  return out;
}

struct Fixture {
  config::Config config;
  state::Store store;
  std::shared_ptr<identity::BuiltinCaProvider> provider;
  state::Identity local_identity{"cluster.local", "vms", "local"};
  state::Identity client_identity{"cluster.local", "vms", "client"};
  std::shared_ptr<net::SocketFactory> sockets =
      std::make_shared<net::SocketFactory>(net::SocketOptions{});

  Fixture() {
    auto ca = identity::BuiltinCa::generate("cluster.local", std::chrono::system_clock::now());
    REQUIRE(ca.has_value());
    provider = identity::BuiltinCaProvider::create(*ca);
    state::Update update;
    update.upserted_workloads.push_back(testing::local_hbone_workload());
    store.apply(std::move(update));
  }

  std::shared_ptr<Inbound> start(asio::io_context& io, InboundOptions options = {},
                                 Authorize authorize = nullptr) {
    ProxyInputs inputs;
    inputs.config = &config;
    inputs.store = &store;
    inputs.sockets = sockets;
    inputs.certificates = provider;
    inputs.workload = {"vms", "local", "local"};
    if (authorize) inputs.authorize = std::move(authorize);
    auto acceptor = sockets->listen(io.get_executor(), {kLoopback, 0});
    REQUIRE(acceptor.has_value());
    auto inbound = Inbound::create(inputs, std::move(*acceptor), options);
    asio::co_spawn(io, inbound->run(), asio::detached);
    return inbound;
  }

  // A client TLS stream to `inbound`, handshaken, as vms/client.
  awaitable<tls::TlsStream> tls_client(tcp::endpoint inbound) {
    auto cert = provider->fetch(client_identity);
    REQUIRE(cert);
    auto context = tls::make_client_context(*cert);
    REQUIRE(context);
    tcp::socket socket(co_await asio::this_coro::executor);
    auto [ec] = co_await socket.async_connect(inbound, use_nothrow);
    REQUIRE(!ec);
    auto stream = tls::make_stream(std::move(socket), (*context)->new_ssl({local_identity}));
    auto handshake = co_await tls::handshake(stream, asio::ssl::stream_base::client, 5s);
    REQUIRE(handshake);
    co_return stream;
  }

  // A full HBONE round trip through a fresh pool: the listener still serves.
  awaitable<int> connect_status(tcp::endpoint inbound, uint16_t upstream_port) {
    ConnectorInputs connector;
    connector.sockets = sockets;
    connector.certificates = provider;
    HbonePool pool(co_await asio::this_coro::executor, PoolOptions{},
                   make_hbone_connector(connector));
    // Built before the co_await: GCC 12 miscompiles a string literal
    // temporary in a co_await operand ("array used as initializer").
    PoolKey key = make_pool_key(client_identity, {local_identity}, inbound);
    std::string authority = "127.0.0.1:" + std::to_string(upstream_port);
    auto response = co_await pool.open(std::move(key), std::move(authority), {});
    pool.shutdown();
    co_return response ? response->status : -1;
  }
};

// Reads and discards until the peer closes, so the server never blocks on us.
awaitable<void> drain(tls::TlsStream* stream, bool* closed) {
  std::array<char, 4096> buffer;
  for (;;) {
    auto [ec, n] = co_await stream->async_read_some(asio::buffer(buffer), use_nothrow);
    if (ec) break;
  }
  *closed = true;
}

TEST_CASE("CONNECT payload sent before the response never reaches an upstream when rejected") {
  Fixture f;
  testing::run_coro([&](asio::io_context& io) -> awaitable<void> {
    RecordingUpstream upstream(io);
    asio::co_spawn(io, upstream.serve(), asio::detached);
    int authorize_calls = 0;
    // Streams are decided in arrival order; the first request that gets as
    // far as authorization is denied, later ones allowed.
    auto inbound = f.start(io, {}, [&](const AuthorizationRequest&) {
      rbac::Decision decision;
      decision.allowed = ++authorize_calls > 1;
      return decision;
    });
    auto stream = co_await f.tls_client(inbound->local_endpoint());
    bool closed = false;
    asio::co_spawn(io, drain(&stream, &closed), asio::detached);

    const std::string port = std::to_string(upstream.port());
    Bytes out = client_preface();
    add_connect_with_body(out, 1, "127.0.0.2:" + port, "leak-400");  // not the address called
    add_connect_with_body(out, 3, "127.0.0.1:" + port, "leak-401");  // denied by policy
    add_connect_with_body(out, 5, "127.0.0.1:15008", "leak-503");    // the proxy's own port
    add_connect_with_body(out, 7, "127.0.0.1:" + port, "allowed");   // tunnels
    auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(out), use_nothrow);
    REQUIRE(!wec);

    CHECK(co_await eventually([&] { return !upstream.finished.empty() && upstream.finished[0]; }));
    CHECK(authorize_calls == 2);
    REQUIRE(upstream.received.size() == 1);
    CHECK(upstream.received[0] == "allowed");
    CHECK_FALSE(closed);  // rejections are per stream; the connection survives
    inbound->stop();
    upstream.acceptor.close();
  });
}

TEST_CASE("a ClientHello dribbled byte by byte is cut off at the handshake deadline") {
  Fixture f;
  testing::run_coro([&](asio::io_context& io) -> awaitable<void> {
    InboundOptions options;
    options.handshake_timeout = 300ms;
    auto inbound = f.start(io, options);
    RecordingUpstream upstream(io);
    asio::co_spawn(io, upstream.serve(), asio::detached);

    tcp::socket socket(io);
    auto [cec] = co_await socket.async_connect(inbound->local_endpoint(), use_nothrow);
    REQUIRE(!cec);
    // A handshake record header announcing 16 KiB, then one byte every 20 ms:
    // 500 bytes would take 10 s, far past the 300 ms deadline.
    const Bytes header = {0x16, 0x03, 0x01, 0x40, 0x00};
    co_await asio::async_write(socket, asio::buffer(header), use_nothrow);
    bool cut = false;
    int dribbled = 0;
    std::array<char, 64> buffer;
    for (; dribbled < 500 && !cut; ++dribbled) {
      const char byte = 0x01;
      auto [ec, n] = co_await asio::async_write(socket, asio::buffer(&byte, 1), use_nothrow);
      if (ec) {
        cut = true;
        break;
      }
      asio::steady_timer tick(io, 20ms);
      auto r = co_await (socket.async_read_some(asio::buffer(buffer), use_nothrow) ||
                         tick.async_wait(use_nothrow));
      // Anything the server sends here is its goodbye (an alert), then EOF.
      if (r.index() == 0 && std::get<1>(std::get<0>(r))) cut = true;
      if (r.index() == 0 && std::get<0>(std::get<0>(r))) cut = true;
    }
    CHECK(cut);
    CHECK(dribbled < 500);
    // The listener still serves a well-behaved client.
    CHECK(co_await f.connect_status(inbound->local_endpoint(), upstream.port()) == 200);
    inbound->stop();
    upstream.acceptor.close();
  });
}

TEST_CASE("connections over the handshake cap are closed at once and the cap frees up again") {
  Fixture f;
  testing::run_coro([&](asio::io_context& io) -> awaitable<void> {
    InboundOptions options;
    options.max_handshakes_in_progress = 2;
    options.handshake_timeout = 20s;  // the silent ones must still be waiting
    auto inbound = f.start(io, options);
    RecordingUpstream upstream(io);
    asio::co_spawn(io, upstream.serve(), asio::detached);

    std::vector<tcp::socket> silent;
    for (int i = 0; i < 2; ++i) {
      silent.emplace_back(io);
      auto [ec] = co_await silent.back().async_connect(inbound->local_endpoint(), use_nothrow);
      REQUIRE(!ec);
    }
    tcp::socket over(io);
    auto [oec] = co_await over.async_connect(inbound->local_endpoint(), use_nothrow);
    REQUIRE(!oec);
    std::array<char, 16> buffer;
    asio::steady_timer limit(io, 10s);
    auto r = co_await (over.async_read_some(asio::buffer(buffer), use_nothrow) ||
                       limit.async_wait(use_nothrow));
    REQUIRE(r.index() == 0);  // closed by the server, not our 10 s limit
    const auto over_ec = std::get<0>(std::get<0>(r));
    CHECK((over_ec == asio::error::eof || over_ec == asio::error::connection_reset));
    // A silent connection is still open: its slot is in use, not dropped.
    for (auto& s : silent) CHECK(s.is_open());

    // The silent clients leave; their handshakes fail and give the slots back.
    for (auto& s : silent) s.close();
    int status = 0;
    for (int attempt = 0; attempt < 100 && status != 200; ++attempt) {
      status = co_await f.connect_status(inbound->local_endpoint(), upstream.port());
      if (status != 200) co_await sleep_for(20ms);
    }
    CHECK(status == 200);
    inbound->stop();
    upstream.acceptor.close();
  });
}

TEST_CASE("non-TLS bytes on the HBONE port get no HTTP answer and the listener keeps serving") {
  Fixture f;
  testing::run_coro([&](asio::io_context& io) -> awaitable<void> {
    auto inbound = f.start(io);
    RecordingUpstream upstream(io);
    asio::co_spawn(io, upstream.serve(), asio::detached);
    const std::vector<std::string> probes = {
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "PROXY TCP4 10.0.0.9 127.0.0.1 4444 15008\r\n",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",  // cleartext HTTP/2 (h2c) preface
        std::string("\x16\x03\x01\x00\x05garbage-after-a-short-record", 33),
    };
    for (const auto& probe : probes) {
      CAPTURE(probe);
      tcp::socket socket(io);
      auto [cec] = co_await socket.async_connect(inbound->local_endpoint(), use_nothrow);
      REQUIRE(!cec);
      co_await asio::async_write(socket, asio::buffer(probe), use_nothrow);
      std::string reply;
      std::array<char, 256> buffer;
      asio::steady_timer limit(io, 10s);
      bool ended = false;
      while (!ended) {
        auto r = co_await (socket.async_read_some(asio::buffer(buffer), use_nothrow) ||
                           limit.async_wait(use_nothrow));
        REQUIRE(r.index() == 0);  // the server ends it, well before the handshake deadline
        auto [ec, n] = std::get<0>(r);
        reply.append(buffer.data(), n);
        ended = static_cast<bool>(ec);
      }
      // At most a TLS alert record (content type 21), never an HTTP response.
      CHECK((reply.empty() || static_cast<std::uint8_t>(reply[0]) == 0x15));
      CHECK(reply.find("HTTP") == std::string::npos);
    }
    CHECK(upstream.received.empty());
    CHECK(co_await f.connect_status(inbound->local_endpoint(), upstream.port()) == 200);
    inbound->stop();
    upstream.acceptor.close();
  });
}

}  // namespace
}  // namespace ztunnel::proxy
