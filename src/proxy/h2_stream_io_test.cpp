// net::copy_bidirectional between an h2::Stream and a TCP socket: the h2 side
// is read in place (read_view / consume), the TCP side through a copy buffer.
#include "proxy/h2_stream_io.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "net/copy.h"
#include "support/bytes.h"
#include "support/run_coro.h"
#include "support/testing.h"

#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace ztunnel::proxy {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

using testing::pattern;

awaitable<std::vector<std::uint8_t>> read_to_end(tcp::socket& s, error_code& end) {
  std::vector<std::uint8_t> out;
  std::vector<std::uint8_t> chunk(50'000);
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(chunk), use_nothrow);
    out.insert(out.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
    if (ec) {
      end = ec;
      co_return out;
    }
  }
}

awaitable<std::vector<std::uint8_t>> read_to_end(h2::Stream& s, error_code& end) {
  std::vector<std::uint8_t> out;
  std::vector<std::uint8_t> chunk(30'000);
  for (;;) {
    auto [ec, n] = co_await s.read_some(asio::buffer(chunk));
    out.insert(out.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
    if (ec) {
      end = ec;
      co_return out;
    }
  }
}

// A tunnel through a client and a server session over a socketpair; the
// server's handler copies its stream to `upstream_end`, as inbound does, and
// the test holds `app`, the upstream connection's far end.
struct CopyTunnel {
  tcp::socket upstream_end;
  tcp::socket app;
  std::optional<net::CopyResult> copied;  // once the server's copy returned
  std::optional<h2::ClientSession> client;
  std::optional<h2::ServerSession> server;
  h2::Stream stream;  // the client's side of the tunnel
};

awaitable<std::shared_ptr<CopyTunnel>> open_copy_tunnel(asio::io_context& io) {
  asio::local::stream_protocol::socket a(io), b(io);
  asio::local::connect_pair(a, b);
  auto [upstream_end, app] = co_await testing::loopback_pair();
  auto t = std::make_shared<CopyTunnel>(CopyTunnel{std::move(upstream_end), std::move(app), {}, {}, {}, {}});
  CopyTunnel* raw = t.get();  // the test keeps `t` alive while the sessions run
  t->server.emplace(h2::make_transport(std::move(b)), [raw](h2::IncomingRequest req) -> awaitable<void> {
    req.stream.respond(200);
    raw->copied = co_await net::copy_bidirectional(req.stream, raw->upstream_end);
  });
  t->client.emplace(h2::make_transport(std::move(a)));
  asio::co_spawn(io, t->server->run(), asio::detached);
  asio::co_spawn(io, t->client->run(), asio::detached);
  auto r = co_await t->client->open_stream("10.0.0.2:80");
  REQUIRE(r);
  REQUIRE(r->status == 200);
  t->stream = std::move(r->stream);
  co_return t;
}

// The h2 side takes the in-place path, the socket side the buffered one.
static_assert(net::detail::CanReadInPlace<h2::Stream>);
static_assert(!net::detail::CanReadInPlace<tcp::socket>);

}  // namespace

TEST_CASE("a copy between an h2 stream and a TCP socket carries both directions intact and passes each FIN on") {
  testing::run_coro([](asio::io_context& io) -> awaitable<void> {
    auto t = co_await open_copy_tunnel(io);
    tcp::socket& app = t->app;
    std::optional<net::CopyResult>& copied = t->copied;
    // More than a stream window each way, in writes that split frames and views.
    const auto up = pattern(9'000'001, 1);
    const auto down = pattern(5'000'003, 2);
    std::vector<std::uint8_t> app_got, client_got;
    error_code app_end, client_end, client_write_ec;
    bool done_up = false, done_down = false;
    asio::co_spawn(io, [&]() -> awaitable<void> {
      for (std::size_t off = 0; off < up.size(); off += 70'000) {
        const std::size_t n = std::min<std::size_t>(70'000, up.size() - off);
        auto [ec, taken] = co_await t->stream.write(asio::buffer(up.data() + off, n));
        if (ec) {
          client_write_ec = ec;
          co_return;
        }
      }
      t->stream.shutdown_write();
      client_got = co_await read_to_end(t->stream, client_end);
      done_down = true;
    }, asio::detached);
    asio::co_spawn(io, [&]() -> awaitable<void> {
      auto [ec, n] = co_await asio::async_write(app, asio::buffer(down), use_nothrow);
      CHECK_FALSE(ec);
      app.shutdown(tcp::socket::shutdown_send);
      app_got = co_await read_to_end(app, app_end);
      done_up = true;
    }, asio::detached);
    asio::steady_timer poll(io);
    for (int i = 0; i < 2000 && !(done_up && done_down && copied); ++i) {
      poll.expires_after(5ms);
      co_await poll.async_wait(use_nothrow);
    }
    REQUIRE(done_up);
    REQUIRE(done_down);
    REQUIRE(copied);
    CHECK_FALSE(client_write_ec);
    CHECK(app_end == asio::error::eof);
    CHECK(client_end == asio::error::eof);
    CHECK(app_got == up);
    CHECK(client_got == down);
    CHECK(copied->a_to_b == up.size());
    CHECK(copied->b_to_a == down.size());
    CHECK_FALSE(copied->error);
    t->client->close();
  }, 60s);
}

TEST_CASE("a reset h2 stream ends the copy with an error and resets the TCP side") {
  testing::run_coro([](asio::io_context& io) -> awaitable<void> {
    auto t = co_await open_copy_tunnel(io);
    tcp::socket& app = t->app;
    std::optional<net::CopyResult>& copied = t->copied;
    const auto data = pattern(100'000, 3);
    auto [wec, taken] = co_await t->stream.write(asio::buffer(data));
    REQUIRE_FALSE(wec);
    // The app does not read at first, so the copy is likely mid-write when the reset lands.
    t->stream.reset(h2::kInternalError);
    error_code app_end;
    auto got = co_await read_to_end(app, app_end);
    CHECK(app_end);
    CHECK(app_end != asio::error::eof);  // an RST, not a FIN
    CHECK(got.size() <= data.size());
    CHECK(std::equal(got.begin(), got.end(), data.begin()));
    asio::steady_timer poll(io);
    for (int i = 0; i < 400 && !copied; ++i) {
      poll.expires_after(5ms);
      co_await poll.async_wait(use_nothrow);
    }
    REQUIRE(copied);
    CHECK(copied->error == h2::make_wire_error(h2::kInternalError));
    t->client->close();
  });
}

}  // namespace ztunnel::proxy
