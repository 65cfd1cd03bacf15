// net::copy_bidirectional between an h2::Stream and a TCP socket: the h2 side
// is read in place (read_view / consume), the TCP side through a copy buffer.
#include "proxy/h2_stream_io.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/read.hpp>
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

// Runs both sessions of a test tunnel and opens its stream from the client
// (the server's handler answers 200).
awaitable<h2::Stream> run_and_open(asio::io_context& io, h2::ServerSession& server,
                                   h2::ClientSession& client) {
  asio::co_spawn(io, server.run(), asio::detached);
  asio::co_spawn(io, client.run(), asio::detached);
  auto r = co_await client.open_stream("10.0.0.2:80");
  REQUIRE(r);
  REQUIRE(r->status == 200);
  co_return std::move(r->stream);
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
  t->stream = co_await run_and_open(io, *t->server, *t->client);
  co_return t;
}

// The h2 side takes the in-place path (with direct sends into a socket),
// the socket side the buffered one.
static_assert(net::detail::CanReadInPlace<h2::Stream>);
static_assert(!net::detail::CanReadInPlace<tcp::socket>);
static_assert(net::detail::CanSinkDirectly<h2::Stream, tcp::socket>);
static_assert(!net::detail::CanSinkDirectly<tcp::socket, h2::Stream>);

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

TEST_CASE("an attached sink takes DATA straight to its socket without a reader, and returns the window") {
  testing::run_coro([](asio::io_context& io) -> awaitable<void> {
    asio::local::stream_protocol::socket a(io), b(io);
    asio::local::connect_pair(a, b);
    auto [sink_socket, app] = co_await testing::loopback_pair();
    // A small stream window: without the credit the sink gives back, the
    // client would stop after 16 KiB.
    h2::SessionOptions options = h2::SessionOptions::server_defaults();
    options.stream_window = 16u << 10;
    std::optional<h2::Stream> server_stream;
    std::uint64_t sunk = 0;
    h2::ServerSession server(
        h2::make_transport(std::move(b)),
        [&](h2::IncomingRequest req) -> awaitable<void> {
          req.stream.respond(200);
          req.stream.attach_sink(sink_socket, sunk);
          server_stream.emplace(std::move(req.stream));  // no reader: nobody calls read_*
          co_return;
        },
        options);
    h2::ClientSession client(h2::make_transport(std::move(a)));
    asio::co_spawn(io, server.run(), asio::detached);
    asio::co_spawn(io, client.run(), asio::detached);
    auto r = co_await client.open_stream("10.0.0.2:80");
    REQUIRE(r);
    REQUIRE(r->status == 200);
    REQUIRE(server_stream);

    // 200 KiB in odd pieces: more than twelve windows, all through the sink.
    const auto data = pattern(200'000, 7);
    std::vector<std::uint8_t> got(data.size());
    bool written = false;
    asio::co_spawn(io, [&]() -> awaitable<void> {
      for (std::size_t off = 0; off < data.size(); off += 7'001) {
        const std::size_t n = std::min<std::size_t>(7'001, data.size() - off);
        auto [ec, taken] = co_await r->stream.write(asio::buffer(data.data() + off, n));
        REQUIRE_FALSE(ec);
      }
      written = true;
    }, asio::detached);
    auto [rec, n] = co_await asio::async_read(app, asio::buffer(got), use_nothrow);
    REQUIRE_FALSE(rec);
    CHECK(got == data);
    CHECK(sunk == data.size());
    CHECK(server_stream->buffered_bytes() == 0);
    asio::steady_timer poll(io);
    for (int i = 0; i < 200 && !written; ++i) {
      poll.expires_after(5ms);
      co_await poll.async_wait(use_nothrow);
    }
    CHECK(written);

    // Detached, DATA waits in the stream for a reader again, and the socket
    // gets nothing more.
    server_stream->detach_sink();
    const auto more = pattern(5'000, 8);
    auto [wec, taken] = co_await r->stream.write(asio::buffer(more));
    REQUIRE_FALSE(wec);
    for (int i = 0; i < 200 && server_stream->buffered_bytes() < more.size(); ++i) {
      poll.expires_after(5ms);
      co_await poll.async_wait(use_nothrow);
    }
    CHECK(server_stream->buffered_bytes() == more.size());
    CHECK(sunk == data.size());
    std::vector<std::uint8_t> extra(more.size());
    auto [view_ec, view] = co_await server_stream->read_view(more.size());
    REQUIRE_FALSE(view_ec);
    CHECK(std::equal(more.begin(), more.end(), static_cast<const std::uint8_t*>(view.data()),
                     static_cast<const std::uint8_t*>(view.data()) + view.size()));
    std::size_t available = 0;
    app.non_blocking(true);
    error_code avail_ec;
    available = app.available(avail_ec);
    CHECK(available == 0);
    client.close();
  });
}

// A server stream with a sink attached and no reader, as in the test above.
struct SinkTunnel {
  tcp::socket sink_socket;
  tcp::socket app;
  std::uint64_t sunk = 0;
  std::optional<h2::Stream> server_stream;
  std::optional<h2::ServerSession> server;
  std::optional<h2::ClientSession> client;
  h2::Stream stream;  // the client's side
};

awaitable<std::shared_ptr<SinkTunnel>> open_sink_tunnel(asio::io_context& io) {
  asio::local::stream_protocol::socket a(io), b(io);
  asio::local::connect_pair(a, b);
  auto [sink_socket, app] = co_await testing::loopback_pair();
  auto t = std::make_shared<SinkTunnel>(SinkTunnel{std::move(sink_socket), std::move(app), 0, {}, {}, {}, {}});
  SinkTunnel* raw = t.get();
  t->server.emplace(h2::make_transport(std::move(b)), [raw](h2::IncomingRequest req) -> awaitable<void> {
    req.stream.respond(200);
    req.stream.attach_sink(raw->sink_socket, raw->sunk);
    raw->server_stream.emplace(std::move(req.stream));
    co_return;
  });
  t->client.emplace(h2::make_transport(std::move(a)));
  t->stream = co_await run_and_open(io, *t->server, *t->client);
  co_return t;
}

TEST_CASE("a peer's one-byte DATA frames, many to a read, reach the sink in order") {
  testing::run_coro([](asio::io_context& io) -> awaitable<void> {
    auto t = co_await open_sink_tunnel(io);
    // 3,000 one-byte writes: a frame each, dozens of them in each read the
    // server makes, so one read's spans need several gathered sends.
    const auto data = pattern(3'000, 11);
    asio::co_spawn(io, [&]() -> awaitable<void> {
      for (std::uint8_t byte : data) {
        auto [ec, taken] = co_await t->stream.write(asio::buffer(&byte, 1));
        REQUIRE_FALSE(ec);
        CHECK(taken == 1);
      }
    }, asio::detached);
    std::vector<std::uint8_t> got(data.size());
    auto [ec, n] = co_await asio::async_read(t->app, asio::buffer(got), use_nothrow);
    REQUIRE_FALSE(ec);
    CHECK(got == data);
    CHECK(t->sunk == data.size());
    REQUIRE(t->server_stream);
    CHECK(t->server_stream->buffered_bytes() == 0);
    t->client->close();
  });
}

TEST_CASE("DATA for a sink whose socket is closed waits in the stream for the reader") {
  testing::run_coro([](asio::io_context& io) -> awaitable<void> {
    auto t = co_await open_sink_tunnel(io);
    REQUIRE(t->server_stream);
    t->sink_socket.close();
    const auto data = pattern(10'000, 12);
    auto [wec, taken] = co_await t->stream.write(asio::buffer(data));
    REQUIRE_FALSE(wec);
    asio::steady_timer poll(io);
    for (int i = 0; i < 200 && t->server_stream->buffered_bytes() < data.size(); ++i) {
      poll.expires_after(5ms);
      co_await poll.async_wait(use_nothrow);
    }
    CHECK(t->server_stream->buffered_bytes() == data.size());
    CHECK(t->sunk == 0);
    std::vector<std::uint8_t> got(data.size());
    auto [rec, n] = co_await t->server_stream->read_some(asio::buffer(got));
    REQUIRE_FALSE(rec);
    CHECK(n == data.size());
    CHECK(got == data);
    t->client->close();
  });
}

TEST_CASE("a copy into a socket that is slower than the tunnel keeps every byte in order") {
  testing::run_coro([](asio::io_context& io) -> awaitable<void> {
    auto t = co_await open_copy_tunnel(io);
    // Small socket buffers: the session's direct sends come up short, the
    // rest queues for the copy, and direct sends resume once it has drained.
    t->upstream_end.set_option(asio::socket_base::send_buffer_size(8192));
    t->app.set_option(asio::socket_base::receive_buffer_size(8192));
    const auto data = pattern(3'000'017, 9);
    bool written = false;
    asio::co_spawn(io, [&]() -> awaitable<void> {
      std::size_t piece = 1;
      for (std::size_t off = 0; off < data.size();) {
        const std::size_t n = std::min(piece, data.size() - off);
        auto [ec, taken] = co_await t->stream.write(asio::buffer(data.data() + off, n));
        REQUIRE_FALSE(ec);
        off += n;
        piece = piece * 7 % 100'003 + 1;  // 1 byte to ~100 KB
      }
      t->stream.shutdown_write();
      written = true;
    }, asio::detached);
    // The app reads in bursts with pauses, so the socket keeps filling up.
    std::vector<std::uint8_t> got;
    std::vector<std::uint8_t> chunk(20'000);
    asio::steady_timer pause(io);
    error_code end;
    for (int reads = 0;; ++reads) {
      auto [ec, n] = co_await t->app.async_read_some(asio::buffer(chunk), use_nothrow);
      got.insert(got.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
      if (ec) {
        end = ec;
        break;
      }
      if (reads % 16 == 0) {
        pause.expires_after(1ms);
        co_await pause.async_wait(use_nothrow);
      }
    }
    CHECK(end == asio::error::eof);
    CHECK(written);
    CHECK(got.size() == data.size());
    CHECK(got == data);
    t->app.shutdown(tcp::socket::shutdown_send);  // the other direction ends too
    asio::steady_timer poll(io);
    for (int i = 0; i < 400 && !t->copied; ++i) {
      poll.expires_after(5ms);
      co_await poll.async_wait(use_nothrow);
    }
    REQUIRE(t->copied);
    CHECK(t->copied->a_to_b == data.size());
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
