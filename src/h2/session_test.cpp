// Client and server sessions talking to each other over a socketpair (no TLS).
#include "h2/session.h"

#include <sys/socket.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/log.h"
#include "support/bytes.h"
#include "support/run_coro.h"
#include "support/testing.h"

// GCC 12 misreports awaitable frames of immediately invoked coroutine lambdas
// as mismatched new/delete (GCC PR 104563-like false positive).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace ztunnel::h2 {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using boost::system::error_code;
using Socket = asio::local::stream_protocol::socket;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using testing::run_coro;

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

std::pair<Socket, Socket> socket_pair(asio::io_context& io) {
  Socket a(io), b(io);
  asio::local::connect_pair(a, b);
  return {std::move(a), std::move(b)};
}

awaitable<void> sleep_for(std::chrono::steady_clock::duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(use_nothrow);
}

using testing::pattern;

// FNV-1a, incremental.
struct Checksum {
  std::uint64_t h = 14695981039346656037ull;
  std::uint64_t bytes = 0;
  void add(const std::uint8_t* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
    bytes += n;
  }
  bool operator==(const Checksum&) const = default;
};

Checksum checksum_of(const std::vector<std::uint8_t>& v) {
  Checksum c;
  c.add(v.data(), v.size());
  return c;
}

// Reads until EOF; the error that ended it is returned in `end`.
awaitable<Checksum> read_all(Stream& s, error_code* end = nullptr) {
  Checksum c;
  std::vector<std::uint8_t> buf(32 << 10);
  for (;;) {
    auto [ec, n] = co_await s.read_some(asio::buffer(buf));
    if (ec) {
      if (end) *end = ec;
      co_return c;
    }
    c.add(buf.data(), n);
  }
}

// Writes `data` in chunks of at most `chunk` bytes, then ends the stream.
awaitable<error_code> write_all(Stream& s, const std::vector<std::uint8_t>& data,
                                std::size_t chunk = 256 << 10) {
  for (std::size_t off = 0; off < data.size(); off += chunk) {
    const std::size_t n = std::min(chunk, data.size() - off);
    auto [ec, taken] = co_await s.write(asio::buffer(data.data() + off, n));
    if (ec) co_return ec;
    if (taken != n) co_return make_error_code(Errc::kStreamClosed);
  }
  co_return s.shutdown_write();
}

// Echoes every byte back, then ends its direction after the peer's END_STREAM.
awaitable<void> echo(Stream& s) {
  std::vector<std::uint8_t> buf(64 << 10);
  for (;;) {
    auto [ec, n] = co_await s.read_some(asio::buffer(buf));
    if (ec) break;
    auto [wec, taken] = co_await s.write(asio::buffer(buf.data(), n));
    if (wec) co_return;
  }
  s.shutdown_write();
}

// Header lists are built outside coroutines: GCC 12 rejects braced string
// literals inside a coroutine body ("array used as initializer").
Headers one_header(const char* name, const char* value) {
  Headers h;
  h.push_back({name, value});
  return h;
}

Headers connect_headers() {
  Headers h;
  h.push_back({"baggage", "k8s.cluster.name=c1"});
  h.push_back({"forwarded", "for=\"10.0.0.1:3456\""});
  h.push_back({"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"});
  return h;
}

ServerSession::Handler echo_handler() {
  return [](IncomingRequest req) -> awaitable<void> {
    if (req.request.method != "CONNECT") {
      req.stream.respond(400);
      co_return;
    }
    req.stream.respond(200, one_header("baggage", "k8s.namespace.name=server"));
    co_await echo(req.stream);
  };
}

// A client and a server session over a socketpair, both running.
struct Pair {
  std::optional<ClientSession> client;
  std::optional<ServerSession> server;
  error_code client_result = make_error_code(Errc::kAlreadyRunning);  // "not finished"
  error_code server_result = make_error_code(Errc::kAlreadyRunning);
  bool client_done = false;
  bool server_done = false;
  int server_fd = -1;
};

std::shared_ptr<Pair> start_pair(asio::io_context& io, ServerSession::Handler handler,
                                  SessionOptions server_opts = SessionOptions::server_defaults(),
                                  SessionOptions client_opts = SessionOptions::client_defaults(),
                                  bool run_client = true) {
  auto p = std::make_shared<Pair>();
  auto [a, b] = socket_pair(io);
  p->server_fd = b.native_handle();
  p->client.emplace(make_transport(std::move(a)), client_opts);
  p->server.emplace(make_transport(std::move(b)), std::move(handler), server_opts);
  asio::co_spawn(io, [p]() -> awaitable<void> {
    p->server_result = co_await p->server->run();
    p->server_done = true;
  }, asio::detached);
  if (run_client) {
    asio::co_spawn(io, [p]() -> awaitable<void> {
      p->client_result = co_await p->client->run();
      p->client_done = true;
    }, asio::detached);
  }
  return p;
}

// Polls `cond` every few milliseconds until it holds or `limit` passes.
template <class Cond>
awaitable<bool> eventually(Cond cond, std::chrono::steady_clock::duration limit = 5s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > end) co_return false;
    co_await sleep_for(2ms);
  }
  co_return true;
}

// A tunnel whose server side the test holds, unread: the server answers 200
// and hands its stream over in `parked` (once the request arrived).
struct ParkedTunnel {
  std::shared_ptr<Pair> pair;
  std::shared_ptr<std::optional<Stream>> parked;
  Stream stream;  // the client's side
};

// `stream_window` 0 keeps the server's default window; another value sets
// it (and a 1 MiB connection window), so a writer stops after that much.
awaitable<ParkedTunnel> open_parked_tunnel(asio::io_context& io, std::uint32_t stream_window = 0) {
  SessionOptions server_opts = SessionOptions::server_defaults();
  if (stream_window > 0) {
    server_opts.stream_window = stream_window;
    server_opts.connection_window = 1u << 20;
  }
  auto parked = std::make_shared<std::optional<Stream>>();
  auto p = start_pair(io, [parked](IncomingRequest req) -> awaitable<void> {
    req.stream.respond(200);
    parked->emplace(std::move(req.stream));
    co_return;
  }, server_opts);
  auto r = co_await p->client->open_stream("10.0.0.2:8080");
  REQUIRE(r);
  REQUIRE(r->status == 200);
  co_return ParkedTunnel{std::move(p), std::move(parked), std::move(r->stream)};
}

// Writes `data` to `s` in writes of `chunk` bytes, then ends the stream:
// `written` counts the bytes taken, `done` is set after the end.
awaitable<void> write_in_chunks(Stream& s, const std::vector<std::uint8_t>& data, std::size_t chunk,
                                std::size_t& written, bool& done) {
  for (std::size_t off = 0; off < data.size(); off += chunk) {
    const std::size_t n = std::min(chunk, data.size() - off);
    auto [ec, taken] = co_await s.write(asio::buffer(data.data() + off, n));
    if (ec) co_return;
    written += taken;
  }
  s.shutdown_write();
  done = true;
}

awaitable<void> round_trip(std::shared_ptr<Pair> p, std::size_t size) {
  auto r = co_await p->client->open_stream("10.0.0.2:8080", connect_headers());
  REQUIRE(r);
  CHECK(r->status == 200);
  REQUIRE(r->stream.valid());
  const std::string* baggage = find_header(r->headers, "baggage");
  REQUIRE(baggage);
  CHECK(*baggage == "k8s.namespace.name=server");

  const auto data = pattern(size, size);
  Stream& s = r->stream;
  error_code write_ec, read_end;
  Checksum got;
  co_await ([&]() -> awaitable<void> { write_ec = co_await write_all(s, data); }() &&
            [&]() -> awaitable<void> { got = co_await read_all(s, &read_end); }());
  CHECK_FALSE(write_ec);
  CHECK(read_end == asio::error::eof);
  CHECK(got.bytes == size);
  CHECK(got == checksum_of(data));
}

TEST_CASE("a CONNECT round trip opens a tunnel and carries 1 KiB both ways intact") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto p = start_pair(io, echo_handler());
    co_await round_trip(p, 1024);
    p->client->close();
    CHECK(co_await eventually([&] { return p->client_done && p->server_done; }));
  });
}

TEST_CASE("a CONNECT tunnel carries 64 MiB both ways intact under flow control") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto p = start_pair(io, echo_handler());
    co_await round_trip(p, 64u << 20);
    p->client->close();
    CHECK(co_await eventually([&] { return p->client_done && p->server_done; }));
  }, 120s);
}

TEST_CASE("the server sees CONNECT's authority and extra headers") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    std::optional<Request> seen;
    auto p = start_pair(io, [&](IncomingRequest req) -> awaitable<void> {
      seen = req.request;
      req.stream.respond(200);
      co_await echo(req.stream);
    });
    auto r = co_await p->client->open_stream("[fd00::1]:15008",
                                             one_header("x-forwarded-network", "n1"));
    REQUIRE(r);
    REQUIRE(seen);
    CHECK(seen->method == "CONNECT");
    CHECK(seen->authority == "[fd00::1]:15008");
    CHECK(seen->path.empty());
    CHECK(seen->scheme.empty());
    REQUIRE(find_header(seen->headers, "x-forwarded-network"));
    CHECK(*find_header(seen->headers, "x-forwarded-network") == "n1");
  });
}

TEST_CASE("a non-200 status reaches the client and opens no tunnel") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto p = start_pair(io, [](IncomingRequest req) -> awaitable<void> {
      req.stream.respond(401, one_header("x-reason", "policy"));
      co_return;
    });
    auto r = co_await p->client->open_stream("10.0.0.2:8080");
    REQUIRE(r);
    CHECK(r->status == 401);
    CHECK_FALSE(r->stream.valid());
    REQUIRE(find_header(r->headers, "x-reason"));
    // The rejected stream does not linger on either side.
    CHECK(co_await eventually([&] {
      return p->client->active_streams() == 0 && p->server->active_streams() == 0;
    }));
    CHECK(p->client->is_usable());
    auto again = co_await p->client->open_stream("10.0.0.2:8080");
    REQUIRE(again);
    CHECK(again->status == 401);
  });
}

TEST_CASE("early data rides behind the CONNECT and is readable only once the server answers 200") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    bool arrived_before_respond = false;
    error_code read_before_respond;
    auto p = start_pair(io, [&](IncomingRequest req) -> awaitable<void> {
      // The early bytes reach the session before the handler answers, but
      // the stream keeps them until respond(200).
      arrived_before_respond =
          co_await eventually([&] { return req.stream.buffered_bytes() == 3000; });
      std::array<char, 16> probe;
      auto [ec, n] = co_await req.stream.read_some(asio::buffer(probe));
      read_before_respond = ec;
      req.stream.respond(200);
      co_await echo(req.stream);
    });
    const auto early = pattern(3000, 7);
    auto r = co_await p->client->open_stream("10.0.0.2:8080", {}, asio::buffer(early));
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(arrived_before_respond);
    CHECK(read_before_respond == Errc::kNotOpen);
    // The echo of the early bytes comes back first, then the rest.
    const auto rest = pattern(5000, 8);
    error_code write_ec, read_end;
    Checksum got;
    co_await ([&]() -> awaitable<void> { write_ec = co_await write_all(r->stream, rest); }() &&
              [&]() -> awaitable<void> { got = co_await read_all(r->stream, &read_end); }());
    CHECK_FALSE(write_ec);
    CHECK(read_end == asio::error::eof);
    Checksum want = checksum_of(early);
    want.add(rest.data(), rest.size());
    CHECK(got == want);
  });
}

TEST_CASE("early data is dropped when the server refuses the CONNECT; the caller gets the status") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    std::size_t buffered_at_refusal = 0;
    auto p = start_pair(io, [&](IncomingRequest req) -> awaitable<void> {
      co_await eventually([&] { return req.stream.buffered_bytes() > 0; });
      buffered_at_refusal = req.stream.buffered_bytes();
      req.stream.respond(503);
      CHECK(req.stream.buffered_bytes() == 0);  // discarded, never readable
    });
    const auto early = pattern(1024, 9);
    auto r = co_await p->client->open_stream("10.0.0.2:8080", {}, asio::buffer(early));
    REQUIRE(r);
    CHECK(r->status == 503);
    CHECK_FALSE(r->stream.valid());
    CHECK(buffered_at_refusal == 1024);
    CHECK(co_await eventually([&] {
      return p->client->active_streams() == 0 && p->server->active_streams() == 0;
    }));
    CHECK(p->client->is_usable());
  });
}

TEST_CASE("an oversized or overlong response header list fails that stream; the client session survives") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    // The peer is hostile: 40 KiB of fields (over the client's 16 KiB) or 150 tiny fields.
    auto p = start_pair(io, [](IncomingRequest req) -> awaitable<void> {
      Headers h;
      if (req.request.authority == "10.0.0.2:1") {
        for (int i = 0; i < 40; ++i) h.push_back({"x-big-" + std::to_string(i), std::string(1024, 'a')});
      } else if (req.request.authority == "10.0.0.2:2") {
        for (int i = 0; i < 150; ++i) h.push_back({"x-" + std::to_string(i), "v"});
      } else {
        h = one_header("baggage", "k8s.namespace.name=server");  // what round_trip expects
      }
      req.stream.respond(200, h);
      co_await echo(req.stream);
    });
    for (const char* authority : {"10.0.0.2:1", "10.0.0.2:2"}) {
      CAPTURE(authority);
      auto r = co_await p->client->open_stream(authority);
      CHECK_FALSE(r);
    }
    CHECK(p->client->is_usable());
    co_await round_trip(p, 1000);
  });
}

TEST_CASE("half-close: the client ends its side and still reads the reply; server END_STREAM is EOF") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto p = start_pair(io, [](IncomingRequest req) -> awaitable<void> {
      req.stream.respond(200);
      // Read the whole request first: the reply only starts after the FIN.
      error_code end;
      Checksum c = co_await read_all(req.stream, &end);
      CHECK(end == asio::error::eof);
      const std::string reply = "got " + std::to_string(c.bytes);
      auto [ec, n] = co_await req.stream.write(asio::buffer(reply));
      CHECK_FALSE(ec);
      CHECK_FALSE(req.stream.shutdown_write());
    });
    auto r = co_await p->client->open_stream("10.0.0.2:8080");
    REQUIRE(r);
    Stream& s = r->stream;
    const auto data = pattern(100000, 7);
    CHECK_FALSE(co_await write_all(s, data, 4096));
    // Writing after our FIN is refused locally.
    auto [wec, wn] = co_await s.write(asio::buffer(data.data(), 1));
    CHECK(wec == Errc::kWriteShutdown);
    std::string reply;
    std::array<char, 64> buf{};
    for (;;) {
      auto [ec, n] = co_await s.read_some(asio::buffer(buf));
      if (ec) {
        CHECK(ec == asio::error::eof);
        break;
      }
      reply.append(buf.data(), n);
    }
    CHECK(reply == "got 100000");
  });
}

TEST_CASE("a reader that does not read stops the writer after one stream window") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    constexpr std::uint32_t kWindow = 16384;
    auto t = co_await open_parked_tunnel(io, kWindow);
    std::optional<Stream>& parked = *t.parked;
    const auto data = pattern(1u << 20, 3);
    std::size_t written = 0;
    bool writer_done = false;
    asio::co_spawn(io, write_in_chunks(t.stream, data, 1024, written, writer_done), asio::detached);

    co_await sleep_for(300ms);
    REQUIRE(parked);
    CHECK_FALSE(writer_done);
    CHECK(written >= kWindow - 1024);
    CHECK(written <= kWindow + 1024);
    CHECK(parked->buffered_bytes() <= kWindow);

    // Reading drains the window and the writer finishes; the receive buffer
    // never holds more than a window.
    Checksum got;
    std::vector<std::uint8_t> buf(3000);
    std::size_t max_buffered = 0;
    for (;;) {
      max_buffered = std::max(max_buffered, parked->buffered_bytes());
      auto [ec, n] = co_await parked->read_some(asio::buffer(buf));
      if (ec) {
        CHECK(ec == asio::error::eof);
        break;
      }
      got.add(buf.data(), n);
      co_await sleep_for(0ms);
    }
    CHECK(writer_done);
    CHECK(max_buffered <= kWindow);
    CHECK(got == checksum_of(data));
  });
}

TEST_CASE("read_view holds the peer's window until consume_view, and carries every byte in order") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    constexpr std::uint32_t kWindow = 16384;
    auto t = co_await open_parked_tunnel(io, kWindow);
    std::optional<Stream>& parked = *t.parked;
    const auto data = pattern(1u << 20, 11);
    std::size_t written = 0;
    bool writer_done = false;
    asio::co_spawn(io, write_in_chunks(t.stream, data, 5000, written, writer_done), asio::detached);
    co_await sleep_for(200ms);
    REQUIRE(parked);

    // A view that is never consumed returns no credit: the writer stays stopped.
    auto [ec, view] = co_await parked->read_view(1000);
    REQUIRE_FALSE(ec);
    CHECK(view.size() == 1000);
    const std::size_t written_before = written;
    co_await sleep_for(100ms);
    CHECK(written == written_before);
    CHECK(written <= kWindow + 5000);
    // A copying read is refused while the view is out.
    std::array<std::uint8_t, 16> small{};
    auto [busy, none] = co_await parked->read_some(asio::buffer(small));
    CHECK(busy == Errc::kViewPending);
    CHECK(none == 0);
    // Putting the view back consumes nothing; the next view starts at the same byte.
    parked->consume_view(0);

    Checksum got;
    std::size_t views = 0;
    for (;;) {
      auto [vec, v] = co_await parked->read_view(7000);
      if (vec) {
        CHECK(vec == asio::error::eof);
        CHECK(v.size() == 0);
        break;
      }
      REQUIRE(v.size() > 0);
      CHECK(v.size() <= 7000);
      got.add(static_cast<const std::uint8_t*>(v.data()), v.size());
      parked->consume_view(v.size());
      ++views;
      co_await sleep_for(0ms);
    }
    CHECK(writer_done);
    CHECK(views > 1);
    CHECK(parked->buffered_bytes() == 0);
    CHECK(got == checksum_of(data));
  });
}

TEST_CASE("a view stays readable when the stream is reset under it, and the reset reaches read_view") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto t = co_await open_parked_tunnel(io);
    std::optional<Stream>& parked = *t.parked;
    const auto data = pattern(40000, 5);
    auto [wec, taken] = co_await t.stream.write(asio::buffer(data));
    REQUIRE_FALSE(wec);
    REQUIRE(co_await eventually([&] { return parked && parked->buffered_bytes() == data.size(); }));
    auto [ec, view] = co_await parked->read_view(1u << 20);
    REQUIRE_FALSE(ec);
    REQUIRE(view.size() > 0);
    const std::vector<std::uint8_t> expect(data.begin(),
                                           data.begin() + static_cast<std::ptrdiff_t>(view.size()));
    // The client gives up with an error code: the server's buffered bytes are dropped.
    t.stream.reset(kInternalError);
    CHECK(co_await eventually([&] { return parked->buffered_bytes() == 0; }));
    const auto* bytes = static_cast<const std::uint8_t*>(view.data());
    CHECK(std::vector<std::uint8_t>(bytes, bytes + view.size()) == expect);
    parked->consume_view(view.size());
    auto [after, none] = co_await parked->read_view(100);
    CHECK(after == make_wire_error(kInternalError));
    CHECK(none.size() == 0);
  });
}

TEST_CASE("read_view reports END_STREAM as EOF after the last bytes") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto t = co_await open_parked_tunnel(io);
    std::optional<Stream>& parked = *t.parked;
    const auto data = pattern(3000, 9);
    REQUIRE_FALSE(co_await write_all(t.stream, data));
    REQUIRE(co_await eventually([&] { return parked.has_value(); }));
    Checksum got;
    error_code end;
    for (;;) {
      auto [ec, v] = co_await parked->read_view(1000);
      if (ec) {
        end = ec;
        break;
      }
      got.add(static_cast<const std::uint8_t*>(v.data()), v.size());
      parked->consume_view(v.size());
    }
    CHECK(end == asio::error::eof);
    CHECK(got == checksum_of(data));
  });
}

TEST_CASE("a write cancelled while its bytes wait for window sends none of them after the cancel") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    constexpr std::uint32_t kWindow = 16384;
    auto t = co_await open_parked_tunnel(io, kWindow);
    std::optional<Stream>& parked = *t.parked;
    const auto data = pattern(1u << 20, 21);
    std::vector<std::uint8_t> buffer = data;
    asio::cancellation_signal cancel;
    std::optional<std::tuple<error_code, std::size_t>> result;
    asio::co_spawn(io, t.stream.write(asio::buffer(buffer)),
                   asio::bind_cancellation_slot(
                       cancel.slot(), [&](std::exception_ptr, std::tuple<error_code, std::size_t> t) {
                         result = t;
                       }));
    co_await sleep_for(100ms);
    CHECK_FALSE(result);  // stopped by the peer's window
    cancel.emit(asio::cancellation_type::terminal);
    REQUIRE(co_await eventually([&] { return result.has_value(); }));
    const auto [ec, taken] = *result;
    CHECK(ec == asio::error::operation_aborted);
    CHECK(taken > 0);
    CHECK(taken <= kWindow);
    // The buffer is the caller's again: scribbling on it must not reach the peer.
    std::fill(buffer.begin(), buffer.end(), std::uint8_t{0xff});
    CHECK_FALSE(t.stream.shutdown_write());
    REQUIRE(parked);
    // Reading opens the window: anything still queued would flow now.
    error_code end;
    const Checksum got = co_await read_all(*parked, &end);
    CHECK(end == asio::error::eof);
    Checksum expect;
    expect.add(data.data(), taken);
    CHECK(got == expect);
  });
}

TEST_CASE("a stream reset while its writer waits for window fails the write and sends no more DATA") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    constexpr std::uint32_t kWindow = 16384;
    auto t = co_await open_parked_tunnel(io, kWindow);
    std::optional<Stream>& parked = *t.parked;
    const auto data = pattern(1u << 20, 22);
    std::optional<std::tuple<error_code, std::size_t>> result;
    asio::co_spawn(io, t.stream.write(asio::buffer(data)),
                   [&](std::exception_ptr, std::tuple<error_code, std::size_t> t) { result = t; });
    co_await sleep_for(100ms);
    REQUIRE(parked);
    const std::size_t buffered = parked->buffered_bytes();
    CHECK(buffered > 0);
    t.stream.reset(kCancel);
    REQUIRE(co_await eventually([&] { return result.has_value(); }));
    const auto [ec, taken] = *result;
    CHECK(ec == Errc::kStreamClosed);
    CHECK(taken <= kWindow);
    // The server reads what arrived before the reset (CANCEL reads as EOF), nothing after.
    error_code end;
    const Checksum got = co_await read_all(*parked, &end);
    CHECK(end == asio::error::eof);
    CHECK(got.bytes <= taken);
    Checksum expect;
    expect.add(data.data(), got.bytes);
    CHECK(got == expect);
  });
}

TEST_CASE("200 concurrent streams share one session") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto p = start_pair(io, echo_handler());
    co_await round_trip(p, 10);  // the server's SETTINGS have arrived by now
    CHECK(p->client->peer_max_concurrent_streams() == 200);
    CHECK(p->client->available_streams() == 200);

    constexpr int kStreams = 200;
    int opened = 0, finished = 0, failures = 0;
    asio::steady_timer all_open(io, asio::steady_timer::time_point::max());
    for (int i = 0; i < kStreams; ++i) {
      asio::co_spawn(io, [&, i]() -> awaitable<void> {
        auto r = co_await p->client->open_stream("10.0.0.2:" + std::to_string(1000 + i));
        if (!r || r->status != 200) {
          ++failures;
          ++finished;
          co_return;
        }
        if (++opened == kStreams) all_open.cancel();
        // Hold every stream open until all 200 are.
        while (opened < kStreams) co_await all_open.async_wait(use_nothrow);
        const auto data = pattern(4096, i);
        error_code end;
        Checksum got;
        co_await ([&]() -> awaitable<void> { co_await write_all(r->stream, data, 1000); }() &&
                  [&]() -> awaitable<void> { got = co_await read_all(r->stream, &end); }());
        if (!(got == checksum_of(data))) ++failures;
        ++finished;
      }, asio::detached);
    }
    CHECK(co_await eventually([&] { return finished == kStreams; }, 20s));
    CHECK(opened == kStreams);
    CHECK(failures == 0);
  });
}

TEST_CASE("a stream beyond MAX_CONCURRENT_STREAMS is refused while the others continue") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    // The client believes it may open 1000 and sends 201 requests before the
    // server's SETTINGS (200) reach it; the server refuses the extra one.
    SessionOptions client_opts = SessionOptions::client_defaults();
    client_opts.assumed_peer_max_concurrent_streams = 1000;
    std::vector<std::optional<Stream>> held;
    auto p = start_pair(io, [&](IncomingRequest req) -> awaitable<void> {
      req.stream.respond(200);
      co_await echo(req.stream);
    }, SessionOptions::server_defaults(), client_opts, /*run_client=*/false);

    constexpr int kStreams = 201;
    int ok = 0, refused = 0, other = 0;
    std::vector<Stream> streams;
    for (int i = 0; i < kStreams; ++i) {
      asio::co_spawn(io, [&]() -> awaitable<void> {
        auto r = co_await p->client->open_stream("10.0.0.2:80");
        if (r && r->status == 200) {
          ++ok;
          streams.push_back(std::move(r->stream));
        } else if (!r && r.error() == make_wire_error(kRefusedStream)) {
          ++refused;
        } else {
          ++other;
        }
      }, asio::detached);
    }
    asio::co_spawn(io, [p]() -> awaitable<void> {
      p->client_result = co_await p->client->run();
      p->client_done = true;
    }, asio::detached);
    CHECK(co_await eventually([&] { return ok + refused + other == kStreams; }, 20s));
    CHECK(ok == 200);
    CHECK(refused == 1);
    CHECK(other == 0);
    // The connection survived: the accepted streams still work.
    REQUIRE(!streams.empty());
    const auto data = pattern(5000, 1);
    Stream& s = streams.front();
    error_code end;
    Checksum got;
    co_await ([&]() -> awaitable<void> { co_await write_all(s, data); }() &&
              [&]() -> awaitable<void> { got = co_await read_all(s, &end); }());
    CHECK(got == checksum_of(data));
    CHECK(p->client->is_usable());
  });
}

TEST_CASE("GOAWAY on drain: the client stops being usable and existing streams finish") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto p = start_pair(io, echo_handler());
    auto r1 = co_await p->client->open_stream("10.0.0.2:80");
    auto r2 = co_await p->client->open_stream("10.0.0.2:81");
    REQUIRE(r1);
    REQUIRE(r2);
    CHECK(p->client->is_usable());
    p->server->drain();
    CHECK(co_await eventually([&] { return !p->client->is_usable(); }));
    CHECK(p->client->available_streams() == 0);
    auto refused = co_await p->client->open_stream("10.0.0.2:82");
    REQUIRE_FALSE(refused);
    CHECK(refused.error() == Errc::kGoaway);

    for (Stream* s : {&r1->stream, &r2->stream}) {
      const auto data = pattern(200000, 5);
      error_code end;
      Checksum got;
      co_await ([&]() -> awaitable<void> { co_await write_all(*s, data); }() &&
                [&]() -> awaitable<void> { got = co_await read_all(*s, &end); }());
      CHECK(end == asio::error::eof);
      CHECK(got == checksum_of(data));
    }
    // With no streams left both sessions end, and the drain counts as clean.
    CHECK(co_await eventually([&] { return p->client_done && p->server_done; }));
    CHECK_FALSE(p->server_result);
    CHECK_FALSE(p->client_result);
  });
}

TEST_CASE("a peer dying mid-stream fails reads and writes instead of hanging") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto p = start_pair(io, echo_handler());
    auto r = co_await p->client->open_stream("10.0.0.2:80");
    REQUIRE(r);
    Stream& s = r->stream;
    std::array<std::uint8_t, 100> small{};
    auto [wec, wn] = co_await s.write(asio::buffer(small));
    CHECK_FALSE(wec);
    // The server's host vanishes: its socket is shut down under it.
    ::shutdown(p->server_fd, SHUT_RDWR);
    error_code end;
    co_await read_all(s, &end);
    CHECK(end);
    CHECK(end != asio::error::eof);
    const auto big = pattern(8u << 20, 1);
    auto [ec, n] = co_await s.write(asio::buffer(big));
    CHECK(ec);
    CHECK(co_await eventually([&] { return p->client_done && p->server_done; }));
    CHECK(p->client_result);
    CHECK_FALSE(p->client->is_usable());
    auto again = co_await p->client->open_stream("10.0.0.2:80");
    CHECK_FALSE(again);
  });
}

TEST_CASE("a silent peer is dropped after the PING timeout") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto [a, b] = socket_pair(io);
    SessionOptions opts = SessionOptions::client_defaults();
    opts.ping_interval = 30ms;
    opts.ping_timeout = 60ms;
    opts.settings_timeout = {};
    ClientSession client(make_transport(std::move(a)), opts);
    // The peer reads (so our writes never block) but never answers.
    bool peer_done = false;
    asio::co_spawn(io, [&, b = std::move(b)]() mutable -> awaitable<void> {
      std::array<char, 4096> buf{};
      for (;;) {
        auto [ec, n] = co_await b.async_read_some(asio::buffer(buf), use_nothrow);
        if (ec) break;
      }
      peer_done = true;
    }, asio::detached);
    const auto start = std::chrono::steady_clock::now();
    error_code result = co_await client.run();
    CHECK(result == Errc::kPingTimeout);
    CHECK(std::chrono::steady_clock::now() - start < 2s);
    CHECK(co_await eventually([&] { return peer_done; }));
  });
}

TEST_CASE("a peer that never sends SETTINGS is dropped after the handshake timeout") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto [a, b] = socket_pair(io);
    SessionOptions opts = SessionOptions::server_defaults();
    opts.settings_timeout = 50ms;
    ServerSession server(make_transport(std::move(a)), echo_handler(), opts);
    error_code result = co_await server.run();
    CHECK(result == Errc::kHandshakeTimeout);
  });
}

TEST_CASE("a forced close fails open streams on both sides") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto p = start_pair(io, echo_handler());
    auto r = co_await p->client->open_stream("10.0.0.2:80");
    REQUIRE(r);
    p->server->close();
    error_code end;
    co_await read_all(r->stream, &end);
    CHECK(end);
    CHECK(end != asio::error::eof);
    CHECK(co_await eventually([&] { return p->client_done && p->server_done; }));
    CHECK_FALSE(p->client->is_usable());
  });
}

TEST_CASE("dropping a stream handle resets it and frees its slot") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto p = start_pair(io, echo_handler());
    {
      auto r = co_await p->client->open_stream("10.0.0.2:80");
      REQUIRE(r);
      CHECK(p->client->active_streams() == 1);
    }
    CHECK(co_await eventually([&] {
      return p->client->active_streams() == 0 && p->server->active_streams() == 0;
    }));
  });
}

// A transport over a socket that counts how the session writes, and can
// hold back everything write_now is given (as a full socket buffer would),
// leaving it to the next write().
class CountingTransport final : public Transport {
 public:
  CountingTransport(Socket socket, bool hold_write_now)
      : inner_(std::move(socket)), hold_(hold_write_now) {}

  std::size_t writes = 0;      // write() calls
  std::size_t writes_now = 0;  // write_now() calls

  asio::any_io_executor get_executor() override { return inner_.get_executor(); }
  awaitable<std::tuple<error_code, std::size_t>> read_some(asio::mutable_buffer b) override {
    return inner_.read_some(b);
  }
  awaitable<error_code> write(std::span<const asio::const_buffer> buffers) override {
    ++writes;
    if (held_.empty()) co_return co_await inner_.write(buffers);
    // Behind what write_now held, and taken before waiting (Transport::write).
    hold(buffers);
    const asio::const_buffer held = asio::buffer(held_);
    error_code ec = co_await inner_.write(std::span(&held, 1));
    held_.clear();
    co_return ec;
  }
  bool can_write_now() const override { return true; }
  boost::system::result<std::size_t> write_now(std::span<const asio::const_buffer> buffers) override {
    ++writes_now;
    if (!hold_) return inner_.write_now(buffers);
    hold(buffers);
    return held_.size();
  }
  void close() noexcept override { inner_.close(); }

 private:
  void hold(std::span<const asio::const_buffer> buffers) {
    for (const asio::const_buffer& b : buffers) {
      const auto* p = static_cast<const std::uint8_t*>(b.data());
      held_.insert(held_.end(), p, p + b.size());
    }
  }

  StreamTransport<Socket> inner_;
  bool hold_;
  std::vector<std::uint8_t> held_;
};

// Runs both sessions (each until it ends) and opens a tunnel the server accepts.
awaitable<Response> run_and_open(asio::io_context& io, ClientSession client,
                                 ServerSession server) {
  asio::co_spawn(io, [server]() mutable -> awaitable<void> { co_await server.run(); },
                 asio::detached);
  asio::co_spawn(io, [client]() mutable -> awaitable<void> { co_await client.run(); },
                 asio::detached);
  auto r = co_await client.open_stream("10.0.0.2:8080");
  REQUIRE(r);
  REQUIRE(r->status == 200);
  co_return std::move(*r);
}

// Ping-pong of `rounds` messages of `size` bytes through an echo server;
// the client's transport is `transport`, observed through `counts`.
awaitable<void> ping_pong(asio::io_context& io, std::unique_ptr<CountingTransport> transport,
                          Socket server_socket, int rounds, std::size_t size,
                          std::size_t* writes, std::size_t* writes_now) {
  CountingTransport& counts = *transport;
  ClientSession client(std::move(transport));
  ServerSession server(make_transport(std::move(server_socket)), echo_handler());
  auto r = co_await run_and_open(io, client, server);
  Stream& s = r.stream;
  std::vector<std::uint8_t> back(size);
  Checksum sent, received;
  for (int i = 0; i < rounds; ++i) {
    const auto data = pattern(size, static_cast<std::uint64_t>(i) + 1);
    auto [ec, taken] = co_await s.write(asio::buffer(data));
    REQUIRE_FALSE(ec);
    REQUIRE(taken == size);
    sent.add(data.data(), data.size());
    std::size_t got = 0;
    while (got < size) {
      auto [rec, n] = co_await s.read_some(asio::buffer(back.data() + got, size - got));
      REQUIRE_FALSE(rec);
      got += n;
    }
    received.add(back.data(), back.size());
  }
  CHECK(received == sent);
  *writes = counts.writes;
  *writes_now = counts.writes_now;
  client.close();
  server.close();
}

TEST_CASE("on an idle session a stream's writes leave inline, not through the send loop") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto [a, b] = socket_pair(io);
    std::size_t writes = 0, writes_now = 0;
    co_await ping_pong(io, std::make_unique<CountingTransport>(std::move(a), false), std::move(b),
                       50, 1024, &writes, &writes_now);
    // Every message (and the window credit the reads return) went out with
    // write_now; the send loop wrote only the connection's first frames
    // (SETTINGS, the CONNECT request).
    CHECK(writes_now >= 50);
    CHECK(writes <= 4);
  });
}

TEST_CASE("bytes write_now could not send leave with the send loop, in order") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto [a, b] = socket_pair(io);
    std::size_t writes = 0, writes_now = 0;
    // Every write_now keeps everything, as on a full socket: each message
    // then waits for the send loop's write(), behind what was kept before.
    co_await ping_pong(io, std::make_unique<CountingTransport>(std::move(a), true), std::move(b),
                       20, 70'000, &writes, &writes_now);
    CHECK(writes_now >= 20);
    CHECK(writes >= 20);
  }, 30s);
}

// A transport that, like TlsTransport, reads what the socket already holds
// without suspending (a non-blocking recv) and waits through Asio only when
// the socket is empty.
class EagerReadTransport final : public Transport {
 public:
  explicit EagerReadTransport(Socket socket) : inner_(std::move(socket)) {}
  asio::any_io_executor get_executor() override { return inner_.get_executor(); }
  awaitable<std::tuple<error_code, std::size_t>> read_some(asio::mutable_buffer b) override {
    for (;;) {
      const ssize_t n = ::recv(inner_.stream().native_handle(), b.data(), b.size(), MSG_DONTWAIT);
      if (n > 0) co_return std::tuple{error_code{}, static_cast<std::size_t>(n)};
      if (n == 0) co_return std::tuple{error_code(asio::error::eof), std::size_t{0}};
      if (errno != EINTR) break;
    }
    co_return co_await inner_.read_some(b);
  }
  awaitable<error_code> write(std::span<const asio::const_buffer> buffers) override {
    return inner_.write(buffers);
  }
  void close() noexcept override { inner_.close(); }

 private:
  StreamTransport<Socket> inner_;
};

TEST_CASE("a reader gets its bytes after each full read, not after the whole backlog") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto [a, b] = socket_pair(io);
    const SessionOptions server_opts = SessionOptions::server_defaults();
    std::size_t largest_read = 0;
    Checksum got;
    bool reader_done = false;
    ServerSession server(std::make_unique<EagerReadTransport>(std::move(b)),
                         [&](IncomingRequest req) -> awaitable<void> {
      req.stream.respond(200);
      // One read takes everything delivered since the last one.
      std::vector<std::uint8_t> buf(4u << 20);
      for (;;) {
        auto [ec, n] = co_await req.stream.read_some(asio::buffer(buf));
        if (ec) break;
        largest_read = std::max(largest_read, n);
        got.add(buf.data(), n);
      }
      reader_done = true;
    }, server_opts);
    ClientSession client(make_transport(std::move(a)));
    auto r = co_await run_and_open(io, client, server);
    // 2 MiB in one write: the socket fills up far beyond one session read
    // before the server's session runs.
    const auto data = pattern(2u << 20, 11);
    REQUIRE_FALSE(co_await write_all(r.stream, data));
    CHECK(co_await eventually([&] { return reader_done; }));
    CHECK(got == checksum_of(data));
    // The session read at most one buffer (and the frame it ended inside)
    // before the reader ran.
    CHECK(largest_read > 0);
    CHECK(largest_read <= server_opts.read_buffer_bytes + server_opts.max_data_frame_bytes);
    client.close();
    server.close();
  });
}

// A plain transport that notes how many of the bytes it is asked to write
// lie inside `watched` (a writer's own buffer), i.e. were not copied first.
class WatchingTransport final : public Transport {
 public:
  WatchingTransport(Socket socket, std::span<const std::uint8_t> watched)
      : inner_(std::move(socket)), watched_(watched) {}
  std::size_t watched_bytes = 0;

  asio::any_io_executor get_executor() override { return inner_.get_executor(); }
  awaitable<std::tuple<error_code, std::size_t>> read_some(asio::mutable_buffer b) override {
    return inner_.read_some(b);
  }
  awaitable<error_code> write(std::span<const asio::const_buffer> buffers) override {
    note(buffers);
    return inner_.write(buffers);
  }
  bool can_write_now() const override { return true; }
  boost::system::result<std::size_t> write_now(std::span<const asio::const_buffer> buffers) override {
    note(buffers);
    return inner_.write_now(buffers);
  }
  void close() noexcept override { inner_.close(); }
  Socket& socket() { return inner_.stream(); }

 private:
  void note(std::span<const asio::const_buffer> buffers) {
    for (const asio::const_buffer& b : buffers) {
      const auto* p = static_cast<const std::uint8_t*>(b.data());
      if (p >= watched_.data() && p + b.size() <= watched_.data() + watched_.size()) {
        watched_bytes += b.size();
      }
    }
  }
  StreamTransport<Socket> inner_;
  std::span<const std::uint8_t> watched_;
};

TEST_CASE("large DATA payloads leave from the writer's buffer, which it may refill once write returns") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto [a, b] = socket_pair(io);
    // A small send buffer: most batches find the socket full, so the send
    // loop's write waits with writers' bytes in its batch.
    a.set_option(asio::socket_base::send_buffer_size(16 << 10));
    std::vector<std::uint8_t> buffer(256u << 10);
    auto transport = std::make_unique<WatchingTransport>(std::move(a), buffer);
    WatchingTransport& watching = *transport;
    Checksum got;
    bool reader_done = false;
    ServerSession server(make_transport(std::move(b)), [&](IncomingRequest req) -> awaitable<void> {
      req.stream.respond(200);
      got = co_await read_all(req.stream);
      reader_done = true;
    });
    ClientSession client(std::move(transport));
    auto r = co_await run_and_open(io, client, server);
    Checksum sent;
    std::size_t written = 0;
    for (std::uint64_t i = 0; i < 40; ++i) {
      // A fresh pattern in the same buffer right after each write returns,
      // and now and then a small write, whose payload is copied instead.
      const std::size_t n = i % 5 == 4 ? 100 : buffer.size() - i * 1000;
      const auto data = pattern(n, i + 1);
      std::copy(data.begin(), data.end(), buffer.begin());
      auto [ec, taken] = co_await r.stream.write(asio::buffer(buffer.data(), n));
      REQUIRE_FALSE(ec);
      REQUIRE(taken == n);
      sent.add(data.data(), n);
      written += n;
    }
    REQUIRE_FALSE(r.stream.shutdown_write());
    CHECK(co_await eventually([&] { return reader_done; }, 20s));
    CHECK(got == sent);
    // The large payloads went to the transport from the writer's buffer
    // (all of them unless flow control cut a frame below 16 KiB); the small
    // writes' payloads were copied.
    CHECK(watching.watched_bytes > written * 3 / 4);
    CHECK(watching.watched_bytes <= written - 8 * 100);
    client.close();
    server.close();
  }, 60s);
}

}  // namespace
}  // namespace ztunnel::h2
