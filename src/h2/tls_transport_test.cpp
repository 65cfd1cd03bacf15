// TlsTransport over loopback TCP: against itself and against asio::ssl::stream.
#include "h2/tls_transport.h"

#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "support/cert_fixtures.h"
#include "support/bytes.h"
#include "support/run_coro.h"
#include "support/testing.h"
#include "tls/context.h"

// GCC 12 false positive on coroutine frames (GCC PR 109224), as in handshake_test.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace ztunnel::h2 {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using testing::spiffe;
using testing::TestCa;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

struct Mesh {
  TestCa ca = TestCa::root();
  std::shared_ptr<const tls::WorkloadCertificate> server_cert =
      testing::workload(ca, spiffe("backend", "server-sa"));
  std::shared_ptr<const tls::WorkloadCertificate> client_cert =
      testing::workload(ca, spiffe("frontend", "client-sa"));

  bssl::UniquePtr<SSL> server_ssl() const {
    auto ctx = tls::make_server_context(server_cert);
    REQUIRE(ctx);
    return (*ctx)->new_ssl();
  }
  bssl::UniquePtr<SSL> client_ssl() const {
    auto ctx = tls::make_client_context(client_cert);
    REQUIRE(ctx);
    return (*ctx)->new_ssl({server_cert->identity()});
  }
};

struct SocketPair {
  tcp::socket client;
  tcp::socket server;
};

awaitable<SocketPair> connect_pair() {
  auto ex = co_await asio::this_coro::executor;
  tcp::acceptor acceptor(ex, {asio::ip::address_v4::loopback(), 0});
  tcp::socket client(ex);
  co_await client.async_connect(acceptor.local_endpoint(), asio::use_awaitable);
  tcp::socket server = co_await acceptor.async_accept(asio::use_awaitable);
  co_return SocketPair{std::move(client), std::move(server)};
}

struct Pair {
  std::unique_ptr<TlsTransport> client;
  std::unique_ptr<TlsTransport> server;
};

awaitable<Pair> handshaken_pair(const Mesh& mesh) {
  auto sockets = co_await connect_pair();
  Pair p{std::make_unique<TlsTransport>(std::move(sockets.client), mesh.client_ssl()),
         std::make_unique<TlsTransport>(std::move(sockets.server), mesh.server_ssl())};
  auto [c, s] = co_await (p.client->handshake(TlsTransport::Role::kClient, 5s) &&
                          p.server->handshake(TlsTransport::Role::kServer, 5s));
  REQUIRE_MESSAGE(c, c.detail);
  REQUIRE_MESSAGE(s, s.detail);
  CHECK(c.peer_identity == mesh.server_cert->identity());
  CHECK(s.peer_identity == mesh.client_cert->identity());
  co_return p;
}

using testing::pattern;

// Writes `data` in writes of `chunk` bytes (one gathered write of two halves each).
awaitable<error_code> send_all(Transport& t, const std::vector<std::uint8_t>& data,
                               std::size_t chunk) {
  for (std::size_t off = 0; off < data.size(); off += chunk) {
    const std::size_t n = std::min(chunk, data.size() - off);
    const std::size_t half = n / 2;
    const std::array<asio::const_buffer, 2> bufs = {asio::buffer(data.data() + off, half),
                                                   asio::buffer(data.data() + off + half, n - half)};
    if (error_code ec = co_await t.write(bufs)) co_return ec;
  }
  co_return error_code{};
}

// Reads until an error; returns the bytes and the error that ended it.
awaitable<std::pair<std::vector<std::uint8_t>, error_code>> receive_all(Transport& t,
                                                                        std::size_t buffer) {
  std::vector<std::uint8_t> got;
  std::vector<std::uint8_t> buf(buffer);
  for (;;) {
    auto [ec, n] = co_await t.read_some(asio::buffer(buf));
    got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    if (ec) co_return std::pair{std::move(got), ec};
  }
}

TEST_CASE("TlsTransport: 24 MiB each way arrive intact and close_notify reads as EOF") {
  Mesh mesh;
  testing::run_coro([&](asio::io_context&) -> awaitable<void> {
    auto p = co_await handshaken_pair(mesh);
    const auto up = pattern(24u << 20, 1);
    const auto down = pattern(24u << 20, 2);
    auto client_side = [&]() -> awaitable<std::pair<std::vector<std::uint8_t>, error_code>> {
      auto reader = receive_all(*p.client, 16u << 10);
      auto writer = [&]() -> awaitable<void> {
        CHECK_FALSE(co_await send_all(*p.client, up, 1u << 20));
        SSL_shutdown(p.client->native_handle());  // queues close_notify
        CHECK_FALSE(co_await p.client->write({}));
      };
      co_return co_await (std::move(reader) && writer());
    };
    auto server_side = [&]() -> awaitable<std::pair<std::vector<std::uint8_t>, error_code>> {
      auto reader = receive_all(*p.server, 256u << 10);
      auto writer = [&]() -> awaitable<void> {
        CHECK_FALSE(co_await send_all(*p.server, down, 100'000));
        SSL_shutdown(p.server->native_handle());
        CHECK_FALSE(co_await p.server->write({}));
      };
      co_return co_await (std::move(reader) && writer());
    };
    auto [c, s] = co_await (client_side() && server_side());
    CHECK(c.second == asio::error::eof);
    CHECK(s.second == asio::error::eof);
    CHECK(c.first == down);
    CHECK(s.first == up);
  });
}

TEST_CASE("TlsTransport interoperates with asio::ssl::stream in both roles") {
  Mesh mesh;
  testing::run_coro([&](asio::io_context&) -> awaitable<void> {
    const auto data = pattern(3u << 20, 7);
    for (bool ours_is_client : {true, false}) {
      auto sockets = co_await connect_pair();
      TlsTransport ours(std::move(ours_is_client ? sockets.client : sockets.server),
                        ours_is_client ? mesh.client_ssl() : mesh.server_ssl());
      tls::TlsStream theirs =
          tls::make_stream(std::move(ours_is_client ? sockets.server : sockets.client),
                           ours_is_client ? mesh.server_ssl() : mesh.client_ssl());
      auto [a, b] = co_await (
          ours.handshake(ours_is_client ? TlsTransport::Role::kClient : TlsTransport::Role::kServer,
                         5s) &&
          tls::handshake(theirs,
                         ours_is_client ? asio::ssl::stream_base::server
                                        : asio::ssl::stream_base::client,
                         5s));
      REQUIRE_MESSAGE(a, a.detail);
      REQUIRE_MESSAGE(b, b.detail);
      // Ours sends, theirs echoes it back.
      std::vector<std::uint8_t> echoed(data.size());
      auto echo = [&]() -> awaitable<void> {
        std::vector<std::uint8_t> buf(data.size());
        auto [ec, n] = co_await asio::async_read(theirs, asio::buffer(buf), use_nothrow);
        REQUIRE_FALSE(ec);
        auto [wec, wn] = co_await asio::async_write(theirs, asio::buffer(buf, n), use_nothrow);
        CHECK_FALSE(wec);
        (void)wn;
      };
      auto roundtrip = [&]() -> awaitable<void> {
        CHECK_FALSE(co_await send_all(ours, data, 300'000));
        std::size_t got = 0;
        while (got < echoed.size()) {
          auto [ec, n] = co_await ours.read_some(asio::buffer(echoed.data() + got,
                                                              echoed.size() - got));
          REQUIRE_FALSE(ec);
          got += n;
        }
      };
      co_await (echo() && roundtrip());
      CHECK(echoed == data);
    }
  });
}

TEST_CASE("TlsTransport: a peer that closes without close_notify reads as truncation") {
  Mesh mesh;
  testing::run_coro([&](asio::io_context&) -> awaitable<void> {
    auto p = co_await handshaken_pair(mesh);
    const auto data = pattern(100'000, 3);
    CHECK_FALSE(co_await send_all(*p.client, data, data.size()));
    p.client->socket().shutdown(tcp::socket::shutdown_send);
    auto [got, ec] = co_await receive_all(*p.server, 16u << 10);
    CHECK(got == data);
    CHECK(ec == asio::ssl::error::stream_truncated);
  });
}

TEST_CASE("TlsTransport: a peer reset is an error, not EOF") {
  Mesh mesh;
  testing::run_coro([&](asio::io_context&) -> awaitable<void> {
    auto p = co_await handshaken_pair(mesh);
    error_code ignored;
    p.client->socket().set_option(asio::socket_base::linger(true, 0), ignored);
    p.client->close();
    auto [got, ec] = co_await receive_all(*p.server, 16u << 10);
    CHECK(got.empty());
    CHECK(ec);
    CHECK(ec != asio::error::eof);
    CHECK(ec != asio::ssl::error::stream_truncated);
  });
}

TEST_CASE("TlsTransport: garbage after the handshake fails the read") {
  Mesh mesh;
  testing::run_coro([&](asio::io_context&) -> awaitable<void> {
    auto p = co_await handshaken_pair(mesh);
    const std::array<std::uint8_t, 32> junk = {0x17, 0x03, 0x03, 0x00, 0x1b};
    co_await asio::async_write(p.client->socket(), asio::buffer(junk), asio::use_awaitable);
    auto [got, ec] = co_await receive_all(*p.server, 16u << 10);
    CHECK(got.empty());
    CHECK(ec.category() == asio::error::get_ssl_category());
  });
}

TEST_CASE("TlsTransport: a cancelled read returns and the transport closes cleanly") {
  Mesh mesh;
  testing::run_coro([&](asio::io_context& io) -> awaitable<void> {
    auto p = co_await handshaken_pair(mesh);
    std::array<std::uint8_t, 64> buf{};
    asio::steady_timer timer(io, 50ms);
    auto outcome = co_await (p.server->read_some(asio::buffer(buf)) ||
                             timer.async_wait(asio::use_awaitable));
    CHECK(outcome.index() == 1);
    p.server->close();
    auto [ec, n] = co_await p.server->read_some(asio::buffer(buf));
    CHECK(ec);
    CHECK(n == 0);
  });
}

TEST_CASE("TlsTransport: an idle connection holds only its small idle read buffer after bulk data") {
  Mesh mesh;
  testing::run_coro([&](asio::io_context& io) -> awaitable<void> {
    auto p = co_await handshaken_pair(mesh);
    const auto bulk = pattern(4u << 20, 5);
    auto reader = [&]() -> awaitable<void> {
      std::vector<std::uint8_t> buf(64u << 10);
      std::size_t got = 0;
      while (got < bulk.size() + 10) {
        auto [ec, n] = co_await p.server->read_some(asio::buffer(buf));
        REQUIRE_FALSE(ec);
        got += n;
      }
    };
    const auto small = pattern(10, 6);
    auto writer = [&]() -> awaitable<void> {
      CHECK_FALSE(co_await send_all(*p.client, bulk, 1u << 20));
      CHECK_FALSE(co_await send_all(*p.client, small, small.size()));  // a small write trims
    };
    co_await (reader() && writer());
    // Both sides' next reads wait with every other transport buffer released.
    std::array<std::uint8_t, 64> client_buf{};
    std::array<std::uint8_t, 64> server_buf{};
    asio::steady_timer timer(io, 20ms);
    auto outcome = co_await (p.server->read_some(asio::buffer(server_buf)) ||
                             p.client->read_some(asio::buffer(client_buf)) ||
                             [&]() -> awaitable<void> {
                               co_await timer.async_wait(asio::use_awaitable);
                               CHECK(p.server->buffered_capacity() == TlsTransport::kIdleReadBytes);
                               CHECK(p.client->buffered_capacity() == TlsTransport::kIdleReadBytes);
                             }());
    CHECK(outcome.index() == 2);
  });
}

TEST_CASE("TlsTransport: write_now sends what the socket takes, keeps the rest in order for write") {
  Mesh mesh;
  testing::run_coro([&](asio::io_context&) -> awaitable<void> {
    auto p = co_await handshaken_pair(mesh);
    // Small socket buffers and a reader that starts late: most of 4 MiB
    // cannot leave at once.
    p.client->socket().set_option(asio::socket_base::send_buffer_size(32u << 10));
    p.server->socket().set_option(asio::socket_base::receive_buffer_size(32u << 10));
    const auto data = pattern(5u << 20, 9);
    const std::size_t first = 4u << 20;
    const asio::const_buffer head = asio::buffer(data.data(), first);
    auto kept = p.client->write_now(std::span(&head, 1));
    REQUIRE(kept);
    CHECK(*kept > 0);
    CHECK(*kept < first + first / 64);  // sealed: 22 bytes per record on top
    // A second write_now queues behind what the first kept.
    const asio::const_buffer tail = asio::buffer(data.data() + first, data.size() - first);
    auto kept_more = p.client->write_now(std::span(&tail, 1));
    REQUIRE(kept_more);
    CHECK(*kept_more > *kept);
    auto writer = [&]() -> awaitable<void> {
      CHECK_FALSE(co_await p.client->write({}));  // sends only what was kept
      SSL_shutdown(p.client->native_handle());
      CHECK_FALSE(co_await p.client->write({}));
    };
    auto [got, ec] = co_await (receive_all(*p.server, 64u << 10) && writer());
    CHECK(ec == asio::error::eof);
    CHECK(got == data);
  });
}

TEST_CASE("TlsTransport: write seals every byte before it waits, so the caller may then reuse its buffers") {
  Mesh mesh;
  testing::run_coro([&](asio::io_context&) -> awaitable<void> {
    auto p = co_await handshaken_pair(mesh);
    // Small socket buffers and a reader that starts only after the writer
    // waits: 2 MiB cannot leave at once.
    p.client->socket().set_option(asio::socket_base::send_buffer_size(32u << 10));
    p.server->socket().set_option(asio::socket_base::receive_buffer_size(32u << 10));
    const auto data = pattern(2u << 20, 12);
    std::vector<std::uint8_t> scratch = data;
    const std::array<asio::const_buffer, 2> bufs = {asio::buffer(scratch.data(), 1000),
                                                   asio::buffer(scratch.data() + 1000,
                                                                scratch.size() - 1000)};
    bool writing = false, wrote = false;
    auto writer = [&]() -> awaitable<void> {
      writing = true;
      CHECK_FALSE(co_await p.client->write(bufs));
      SSL_shutdown(p.client->native_handle());
      CHECK_FALSE(co_await p.client->write({}));
      wrote = true;
    };
    auto reader = [&]() -> awaitable<std::pair<std::vector<std::uint8_t>, error_code>> {
      // Once the writer is inside write, it can only be suspended there
      // (waiting for the socket): scribble over its buffers, then read.
      asio::steady_timer tick(co_await asio::this_coro::executor);
      while (!writing) {
        tick.expires_after(1ms);
        co_await tick.async_wait(asio::use_awaitable);
      }
      CHECK_FALSE(wrote);
      std::fill(scratch.begin(), scratch.end(), std::uint8_t{0xee});
      co_return co_await receive_all(*p.server, 64u << 10);
    };
    auto [got, ec] = co_await (reader() && writer());
    CHECK(ec == asio::error::eof);
    CHECK(got == data);
  });
}

TEST_CASE("TlsTransport: a small write_now leaves at once and keeps only a small output buffer") {
  Mesh mesh;
  testing::run_coro([&](asio::io_context&) -> awaitable<void> {
    auto p = co_await handshaken_pair(mesh);
    const auto data = pattern(1024, 10);
    for (int i = 0; i < 3; ++i) {
      const asio::const_buffer b = asio::buffer(data);
      auto kept = p.client->write_now(std::span(&b, 1));
      REQUIRE(kept);
      CHECK(*kept == 0);
      std::vector<std::uint8_t> got(data.size());
      std::size_t n = 0;
      while (n < got.size()) {
        auto [ec, m] = co_await p.server->read_some(asio::buffer(got.data() + n, got.size() - n));
        REQUIRE_FALSE(ec);
        n += m;
      }
      CHECK(got == data);
      // Kept for the next message; at most 4 KiB.
      CHECK(p.client->buffered_capacity() > 0);
      CHECK(p.client->buffered_capacity() <= 4096);
    }
  });
}

TEST_CASE("TlsTransport handshake: rejections and deadlines as tls::handshake reports them") {
  Mesh mesh;
  SUBCASE("a client without a certificate is rejected by the server") {
    testing::run_coro([&](asio::io_context&) -> awaitable<void> {
      auto sockets = co_await connect_pair();
      bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
      static const uint8_t kH2[] = {2, 'h', '2'};
      SSL_CTX_set_alpn_protos(ctx.get(), kH2, sizeof(kH2));
      TlsTransport client(std::move(sockets.client), bssl::UniquePtr<SSL>(SSL_new(ctx.get())));
      TlsTransport server(std::move(sockets.server), mesh.server_ssl());
      auto [s, c] = co_await (server.handshake(TlsTransport::Role::kServer, 5s) &&
                              client.handshake(TlsTransport::Role::kClient, 5s));
      (void)c;
      CHECK_MESSAGE(s.error == tls::Errc::kNoPeerCertificate, s.detail);
      CHECK_FALSE(server.socket().is_open());
    });
  }
  SUBCASE("a server whose identity is not expected is rejected by the client") {
    testing::run_coro([&](asio::io_context&) -> awaitable<void> {
      auto sockets = co_await connect_pair();
      auto ctx = tls::make_client_context(mesh.client_cert);
      REQUIRE(ctx);
      TlsTransport client(std::move(sockets.client),
                          (*ctx)->new_ssl({state::Identity{"cluster.local", "backend", "other-sa"}}));
      TlsTransport server(std::move(sockets.server), mesh.server_ssl());
      auto [c, s] = co_await (client.handshake(TlsTransport::Role::kClient, 5s) &&
                              server.handshake(TlsTransport::Role::kServer, 5s));
      (void)s;
      CHECK_FALSE(c);
      CHECK(c.error.category() == tls::make_error_code(tls::Errc::kHandshakeFailed).category());
    });
  }
  SUBCASE("a silent server hits the client's deadline") {
    testing::run_coro([&](asio::io_context&) -> awaitable<void> {
      auto sockets = co_await connect_pair();
      TlsTransport client(std::move(sockets.client), mesh.client_ssl());
      auto r = co_await client.handshake(TlsTransport::Role::kClient, 100ms);
      CHECK(r.error == tls::Errc::kHandshakeTimeout);
      CHECK_FALSE(client.socket().is_open());
    });
  }
  SUBCASE("a peer that closes mid-handshake fails it") {
    testing::run_coro([&](asio::io_context&) -> awaitable<void> {
      auto sockets = co_await connect_pair();
      TlsTransport client(std::move(sockets.client), mesh.client_ssl());
      sockets.server.close();
      auto r = co_await client.handshake(TlsTransport::Role::kClient, 5s);
      CHECK(r.error == tls::Errc::kHandshakeFailed);
    });
  }
}

}  // namespace
}  // namespace ztunnel::h2
