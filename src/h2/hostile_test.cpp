// A hand-driven hostile HTTP/2 client against ServerSession: floods, oversized and malformed requests.
#include <nghttp2/nghttp2.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "h2/session.h"
#include "support/run_coro.h"
#include "support/testing.h"

// GCC 12 misreports awaitable frames of coroutine lambdas as mismatched
// new/delete (a false positive).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace ztunnel::h2 {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using boost::system::error_code;
using Socket = asio::local::stream_protocol::socket;
using Bytes = std::vector<std::uint8_t>;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using testing::run_coro;

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

// --- a tiny frame builder (RFC 9113 §4.1) and HPACK literal encoder (RFC 7541) ---

enum : std::uint8_t {
  kData = 0x0,
  kHeaders = 0x1,
  kRstStream = 0x3,
  kSettings = 0x4,
  kPing = 0x6,
  kGoaway = 0x7,
  kWindowUpdate = 0x8,
  kContinuation = 0x9,
};
enum : std::uint8_t { kEndStream = 0x1, kAck = 0x1, kEndHeaders = 0x4 };

void put32(Bytes& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

void add_frame(Bytes& out, std::uint8_t type, std::uint8_t flags, std::uint32_t stream,
               const Bytes& payload = {}) {
  const auto n = payload.size();
  out.push_back(static_cast<std::uint8_t>(n >> 16));
  out.push_back(static_cast<std::uint8_t>(n >> 8));
  out.push_back(static_cast<std::uint8_t>(n));
  out.push_back(type);
  out.push_back(flags);
  put32(out, stream & 0x7fffffffu);
  out.insert(out.end(), payload.begin(), payload.end());
}

// HPACK integer with an N-bit prefix (RFC 7541 §5.1); `first` holds the flag bits.
void put_int(Bytes& out, std::uint8_t first, int prefix_bits, std::size_t v) {
  const std::size_t max = (1u << prefix_bits) - 1;
  if (v < max) {
    out.push_back(static_cast<std::uint8_t>(first | v));
    return;
  }
  out.push_back(static_cast<std::uint8_t>(first | max));
  v -= max;
  while (v >= 128) {
    out.push_back(static_cast<std::uint8_t>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<std::uint8_t>(v));
}

// "Literal header field without indexing, new name": no dynamic table state.
void put_header(Bytes& out, const std::string& name, const std::string& value) {
  out.push_back(0x00);
  put_int(out, 0, 7, name.size());
  out.insert(out.end(), name.begin(), name.end());
  put_int(out, 0, 7, value.size());
  out.insert(out.end(), value.begin(), value.end());
}

using Fields = std::vector<std::pair<std::string, std::string>>;

Bytes block(const Fields& fields) {
  Bytes out;
  for (const auto& [n, v] : fields) put_header(out, n, v);
  return out;
}

Fields connect_fields(const std::string& authority = "10.0.0.2:8080") {
  Fields f;
  f.emplace_back(":method", "CONNECT");
  f.emplace_back(":authority", authority);
  return f;
}

// A header block as HEADERS + CONTINUATIONs of at most 16 KiB (the frame
// size the peer may use before acknowledging our SETTINGS).
void add_headers(Bytes& out, std::uint32_t stream, const Bytes& hblock, std::uint8_t flags = 0) {
  constexpr std::size_t kMax = 16384;
  std::size_t off = 0;
  bool first = true;
  do {
    const std::size_t n = std::min(kMax, hblock.size() - off);
    Bytes part(hblock.begin() + static_cast<std::ptrdiff_t>(off),
               hblock.begin() + static_cast<std::ptrdiff_t>(off + n));
    off += n;
    const std::uint8_t end = off == hblock.size() ? kEndHeaders : 0;
    add_frame(out, first ? kHeaders : kContinuation,
              static_cast<std::uint8_t>((first ? flags : 0) | end), stream, part);
    first = false;
  } while (off < hblock.size());
}

Bytes settings_payload(const std::vector<std::pair<std::uint16_t, std::uint32_t>>& entries) {
  Bytes p;
  for (const auto& [id, value] : entries) {
    p.push_back(static_cast<std::uint8_t>(id >> 8));
    p.push_back(static_cast<std::uint8_t>(id));
    put32(p, value);
  }
  return p;
}

Bytes preface() {
  const std::string magic = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  Bytes out(magic.begin(), magic.end());
  add_frame(out, kSettings, 0, 0, settings_payload({{0x4, 1u << 20}}));  // INITIAL_WINDOW_SIZE
  return out;
}

struct RawFrame {
  std::uint8_t type = 0;
  std::uint8_t flags = 0;
  std::uint32_t stream = 0;
  Bytes payload;
};

std::uint32_t get32(const Bytes& b, std::size_t off) {
  return (std::uint32_t{b[off]} << 24) | (std::uint32_t{b[off + 1]} << 16) |
         (std::uint32_t{b[off + 2]} << 8) | std::uint32_t{b[off + 3]};
}

struct InflaterDeleter {
  void operator()(nghttp2_hd_inflater* p) const { nghttp2_hd_inflate_del(p); }
};

// What the server sent us, as far as these tests care.
struct Seen {
  bool eof = false;
  std::optional<std::uint32_t> goaway;
  std::map<std::uint32_t, std::uint32_t> resets;             // stream -> code
  std::map<std::uint32_t, std::map<std::string, std::string>> headers;  // stream -> fields
  std::size_t settings_acks = 0;
};

// A raw HTTP/2 client: writes frames we build, parses what comes back.
class RawPeer {
 public:
  explicit RawPeer(Socket s) : s_(std::move(s)) {
    nghttp2_hd_inflater* raw = nullptr;
    REQUIRE(nghttp2_hd_inflate_new(&raw) == 0);
    inflater_.reset(raw);
  }

  // False if the bytes could not all be written in time (the server may
  // have stopped reading after closing the connection).
  awaitable<bool> send(const Bytes& bytes, std::chrono::milliseconds limit = 2000ms) {
    asio::steady_timer t(s_.get_executor(), limit);
    auto r = co_await (asio::async_write(s_, asio::buffer(bytes), use_nothrow) ||
                       t.async_wait(use_nothrow));
    co_return r.index() == 0 && !std::get<0>(std::get<0>(r));
  }

  // Reads frames until `done(seen)` holds, EOF, or the time limit.
  template <class Done>
  awaitable<Seen> watch(Done done, std::chrono::milliseconds limit = 3000ms) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done(seen_) && !seen_.eof && std::chrono::steady_clock::now() < end) {
      if (parse_one()) continue;
      std::array<std::uint8_t, 16384> buf{};
      asio::steady_timer t(s_.get_executor(), end);
      auto r = co_await (s_.async_read_some(asio::buffer(buf), use_nothrow) ||
                         t.async_wait(use_nothrow));
      if (r.index() == 1) break;
      auto [ec, n] = std::get<0>(r);
      if (ec) {
        seen_.eof = true;
        break;
      }
      in_.insert(in_.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    }
    co_return seen_;
  }

  Socket& socket() { return s_; }

 private:
  bool parse_one() {
    if (in_.size() < 9) return false;
    const std::size_t len = (std::size_t{in_[0]} << 16) | (std::size_t{in_[1]} << 8) | in_[2];
    if (in_.size() < 9 + len) return false;
    RawFrame f;
    f.type = in_[3];
    f.flags = in_[4];
    f.stream = get32(in_, 5) & 0x7fffffffu;
    f.payload.assign(in_.begin() + 9, in_.begin() + 9 + static_cast<std::ptrdiff_t>(len));
    in_.erase(in_.begin(), in_.begin() + 9 + static_cast<std::ptrdiff_t>(len));
    record(f);
    return true;
  }

  void record(const RawFrame& f) {
    switch (f.type) {
      case kGoaway:
        if (f.payload.size() >= 8) seen_.goaway = get32(f.payload, 4);
        break;
      case kRstStream:
        if (f.payload.size() >= 4) seen_.resets[f.stream] = get32(f.payload, 0);
        break;
      case kSettings:
        if (f.flags & kAck) ++seen_.settings_acks;
        break;
      case kHeaders: {
        // The server sends neither padding nor priority, and small blocks.
        auto& fields = seen_.headers[f.stream];
        const std::uint8_t* in = f.payload.data();
        std::size_t left = f.payload.size();
        for (;;) {
          nghttp2_nv nv;
          int flags = 0;
          const ssize_t n = nghttp2_hd_inflate_hd2(inflater_.get(), &nv, &flags, in, left, 1);
          if (n < 0) break;
          in += n;
          left -= static_cast<std::size_t>(n);
          if (flags & NGHTTP2_HD_INFLATE_EMIT) {
            fields[std::string(reinterpret_cast<char*>(nv.name), nv.namelen)] =
                std::string(reinterpret_cast<char*>(nv.value), nv.valuelen);
          }
          if (flags & NGHTTP2_HD_INFLATE_FINAL) {
            nghttp2_hd_inflate_end_headers(inflater_.get());
            break;
          }
          if (n == 0 && !(flags & NGHTTP2_HD_INFLATE_EMIT)) break;
        }
        break;
      }
      default:
        break;
    }
  }

  Socket s_;
  Bytes in_;
  Seen seen_;
  std::unique_ptr<nghttp2_hd_inflater, InflaterDeleter> inflater_;
};

// A ServerSession on one end of a socketpair, a RawPeer on the other.
struct Harness {
  std::optional<ServerSession> server;
  std::optional<RawPeer> peer;
  error_code result;
  bool done = false;
  int handled = 0;  // handler invocations
};

std::shared_ptr<Harness> start(asio::io_context& io, ServerSession::Handler handler,
                               SessionOptions opts = SessionOptions::server_defaults()) {
  auto h = std::make_shared<Harness>();
  Socket a(io), b(io);
  asio::local::connect_pair(a, b);
  // A raw pointer: the session owns this handler, and the harness owns the
  // session, so a shared_ptr here would be a cycle.
  auto counting = [raw = h.get(), handler = std::move(handler)](IncomingRequest req)
      -> awaitable<void> {
    ++raw->handled;
    co_await handler(std::move(req));
  };
  h->server.emplace(make_transport(std::move(a)), counting, opts);
  h->peer.emplace(std::move(b));
  asio::co_spawn(io, [h]() -> awaitable<void> {
    h->result = co_await h->server->run();
    h->done = true;
  }, asio::detached);
  return h;
}

// Accepts CONNECT with 200 and keeps the stream open until the peer ends it;
// answers anything else with 400.
ServerSession::Handler accept_connect() {
  return [](IncomingRequest req) -> awaitable<void> {
    if (req.request.method != "CONNECT") {
      req.stream.respond(400);
      co_return;
    }
    req.stream.respond(200);
    std::array<std::uint8_t, 4096> buf{};
    for (;;) {
      auto [ec, n] = co_await req.stream.read_some(asio::buffer(buf));
      if (ec) break;
    }
  };
}

awaitable<void> sleep_for(std::chrono::steady_clock::duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(use_nothrow);
}

template <class Cond>
awaitable<bool> eventually(Cond cond, std::chrono::steady_clock::duration limit = 5s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > end) co_return false;
    co_await sleep_for(2ms);
  }
  co_return true;
}

bool has_status(const Seen& s, std::uint32_t stream, const std::string& status) {
  auto it = s.headers.find(stream);
  if (it == s.headers.end()) return false;
  auto f = it->second.find(":status");
  return f != it->second.end() && f->second == status;
}

// --- tests -------------------------------------------------------------------------

TEST_CASE("an oversized header list resets the stream and the connection survives") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto h = start(io, accept_connect());
    RawPeer& peer = *h->peer;
    Bytes out = preface();
    // Stream 1: 40 fields of 2 KiB = 80 KiB decoded, over the 64 KiB limit.
    Fields big = connect_fields();
    for (int i = 0; i < 40; ++i) big.emplace_back("x-big-" + std::to_string(i), std::string(2048, 'a'));
    add_headers(out, 1, block(big));
    // Stream 3: 150 tiny fields, over the field-count limit.
    Fields many = connect_fields();
    for (int i = 0; i < 150; ++i) many.emplace_back("x-" + std::to_string(i), "v");
    add_headers(out, 3, block(many));
    // Stream 5: a normal CONNECT.
    add_headers(out, 5, block(connect_fields()));
    CHECK(co_await peer.send(out));
    Seen seen = co_await peer.watch([](const Seen& s) {
      return s.resets.count(1) && s.resets.count(3) && has_status(s, 5, "200");
    });
    CHECK(seen.resets.count(1) == 1);
    CHECK(seen.resets.count(3) == 1);
    CHECK(has_status(seen, 5, "200"));
    CHECK_FALSE(seen.goaway);
    CHECK_FALSE(seen.eof);
    CHECK(h->handled == 1);
  });
}

TEST_CASE("rapid HEADERS + RST_STREAM pairs get GOAWAY and the connection closed") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto h = start(io, accept_connect());
    RawPeer& peer = *h->peer;
    CHECK(co_await peer.send(preface()));
    const Bytes hblock = block(connect_fields());
    Bytes rst;
    put32(rst, kCancel);
    std::uint32_t id = 1;
    for (int batch = 0; batch < 30 && !h->done; ++batch) {
      Bytes out;
      for (int i = 0; i < 100; ++i, id += 2) {
        add_headers(out, id, hblock);
        add_frame(out, kRstStream, 0, id, rst);
      }
      if (!co_await peer.send(out, 500ms)) break;
    }
    Seen seen = co_await peer.watch([](const Seen&) { return false; }, 5000ms);
    CHECK(seen.goaway);
    CHECK(seen.eof);
    CHECK(co_await eventually([&] { return h->done; }));
    CHECK(h->result);
    // Requests reset in the same read never reach a handler (no upstream
    // connects for them).
    CHECK(h->handled < 100);
  });
}

TEST_CASE("a CONTINUATION flood closes the connection") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto h = start(io, accept_connect());
    RawPeer& peer = *h->peer;
    Bytes out = preface();
    Fields first = connect_fields();
    add_frame(out, kHeaders, 0, 1, block(first));  // no END_HEADERS
    for (int i = 0; i < 20; ++i) {
      Fields f;
      f.emplace_back("x-c" + std::to_string(i), "v");
      add_frame(out, kContinuation, 0, 1, block(f));
    }
    co_await peer.send(out);
    Seen seen = co_await peer.watch([](const Seen&) { return false; });
    CHECK(seen.eof);
    CHECK(seen.goaway);
    CHECK(co_await eventually([&] { return h->done; }));
    CHECK(h->result == Errc::kFlood);
    CHECK(h->handled == 0);
  });
}

TEST_CASE("a SETTINGS frame with 33 entries closes the connection") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto h = start(io, accept_connect());
    RawPeer& peer = *h->peer;
    Bytes out = preface();
    std::vector<std::pair<std::uint16_t, std::uint32_t>> entries(33, {0x1, 4096});
    add_frame(out, kSettings, 0, 0, settings_payload(entries));
    co_await peer.send(out);
    Seen seen = co_await peer.watch([](const Seen&) { return false; });
    CHECK(seen.eof);
    CHECK(seen.goaway);
    CHECK(co_await eventually([&] { return h->done; }));
    CHECK(h->result);
  });
}

TEST_CASE("a SETTINGS frame with 32 entries is accepted") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto h = start(io, accept_connect());
    RawPeer& peer = *h->peer;
    Bytes out = preface();
    std::vector<std::pair<std::uint16_t, std::uint32_t>> entries(32, {0x1, 4096});
    add_frame(out, kSettings, 0, 0, settings_payload(entries));
    co_await peer.send(out);
    Seen seen = co_await peer.watch([](const Seen& s) { return s.settings_acks >= 2; });
    CHECK(seen.settings_acks == 2);
    CHECK_FALSE(seen.goaway);
    CHECK_FALSE(seen.eof);
  });
}

TEST_CASE("a non-CONNECT method reaches the handler, which answers 400") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    std::string method, path;
    auto h = start(io, [&](IncomingRequest req) -> awaitable<void> {
      method = req.request.method;
      path = req.request.path;
      req.stream.respond(400);
      co_return;
    });
    RawPeer& peer = *h->peer;
    Bytes out = preface();
    Fields get;
    get.emplace_back(":method", "GET");
    get.emplace_back(":scheme", "http");
    get.emplace_back(":authority", "10.0.0.2:8080");
    get.emplace_back(":path", "/index.html");
    add_headers(out, 1, block(get), kEndStream);
    co_await peer.send(out);
    Seen seen = co_await peer.watch([](const Seen& s) { return has_status(s, 1, "400"); });
    CHECK(has_status(seen, 1, "400"));
    CHECK(method == "GET");
    CHECK(path == "/index.html");
    CHECK_FALSE(seen.goaway);
  });
}

TEST_CASE("a malformed CONNECT (with :path) is reset by nghttp2 and the connection survives") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto h = start(io, accept_connect());
    RawPeer& peer = *h->peer;
    Bytes out = preface();
    Fields bad = connect_fields();
    bad.emplace_back(":path", "/");
    add_headers(out, 1, block(bad));
    Fields conn = connect_fields();
    conn.emplace_back("connection", "keep-alive");  // connection-specific: forbidden in HTTP/2
    add_headers(out, 3, block(conn));
    add_headers(out, 5, block(connect_fields()));
    co_await peer.send(out);
    Seen seen = co_await peer.watch([](const Seen& s) {
      return s.resets.count(1) && s.resets.count(3) && has_status(s, 5, "200");
    });
    CHECK(seen.resets[1] == NGHTTP2_PROTOCOL_ERROR);
    CHECK(seen.resets[3] == NGHTTP2_PROTOCOL_ERROR);
    CHECK(has_status(seen, 5, "200"));
    CHECK_FALSE(seen.goaway);
    CHECK(h->handled == 1);
  });
}

TEST_CASE("request bytes sent before the 200 are held, unread and flow-controlled, not dropped") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    std::string received;
    error_code early;
    std::size_t buffered_before = 0;
    auto h = start(io, [&](IncomingRequest req) -> awaitable<void> {
      std::array<char, 4096> buf{};
      // Authorization would happen here: the body must not be readable yet.
      auto [ec, n] = co_await req.stream.read_some(asio::buffer(buf));
      early = ec;
      co_await eventually([&] { return req.stream.buffered_bytes() == 1000; });
      buffered_before = req.stream.buffered_bytes();
      req.stream.respond(200);
      for (;;) {
        auto [rec, rn] = co_await req.stream.read_some(asio::buffer(buf));
        if (rec) break;
        received.append(buf.data(), rn);
      }
    });
    RawPeer& peer = *h->peer;
    Bytes out = preface();
    add_headers(out, 1, block(connect_fields()));
    add_frame(out, kData, 0, 1, Bytes(1000, 'x'));
    co_await peer.send(out);
    co_await peer.watch([](const Seen& s) { return has_status(s, 1, "200"); });
    Bytes fin;
    add_frame(fin, kData, kEndStream, 1, Bytes(24, 'y'));
    co_await peer.send(fin);
    CHECK(co_await eventually([&] { return received.size() == 1024; }));
    CHECK(early == Errc::kNotOpen);
    CHECK(buffered_before == 1000);
    CHECK(received == std::string(1000, 'x') + std::string(24, 'y'));
  });
}

TEST_CASE("a flood of empty DATA frames closes the connection") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto h = start(io, accept_connect());
    RawPeer& peer = *h->peer;
    Bytes out = preface();
    add_headers(out, 1, block(connect_fields()));
    for (int i = 0; i < 10; ++i) add_frame(out, kData, 0, 1);
    co_await peer.send(out);
    Seen seen = co_await peer.watch([](const Seen&) { return false; });
    CHECK(seen.eof);
    REQUIRE(seen.goaway);
    CHECK(*seen.goaway == NGHTTP2_ENHANCE_YOUR_CALM);
    CHECK(co_await eventually([&] { return h->done; }));
    CHECK(h->result == Errc::kFlood);
  });
}

// Case 21: a peer that floods frames which each need an ACK, and never reads,
// must not make the server buffer ACKs without bound: nghttp2 reports
// NGHTTP2_ERR_FLOODED at max_outbound_ack queued ACKs and the session ends.
awaitable<void> ack_flood_while_not_reading(asio::io_context& io, std::uint8_t type) {
  auto h = start(io, accept_connect());
  RawPeer& peer = *h->peer;
  CHECK(co_await peer.send(preface()));
  Bytes ping_payload(8, 0x5a);
  Bytes batch;
  for (int i = 0; i < 1000; ++i) {
    if (type == kPing) add_frame(batch, kPing, 0, 0, ping_payload);
    else add_frame(batch, kSettings, 0, 0);
  }
  // Up to 100k frames; each answer is a 17- or 9-byte ACK the server cannot
  // deliver once the socket buffer is full. Stops when the server stops
  // reading (the write times out) or the session has ended.
  int sent = 0;
  for (; sent < 100 && !h->done; ++sent) {
    if (!co_await peer.send(batch, 1000ms)) break;
  }
  CHECK(co_await eventually([&] { return h->done; }, 10s));
  CHECK(h->result == Errc::kFlood);
  // Only now read: whatever was flushed, then the end of the connection.
  Seen seen = co_await peer.watch([](const Seen&) { return false; }, 10000ms);
  CHECK(seen.eof);
  CHECK(sent < 100);  // the server stopped reading: it did not take all 100k frames
}

TEST_CASE("a PING flood from a peer that never reads closes the connection (ERR_FLOODED)") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    co_await ack_flood_while_not_reading(io, kPing);
  });
}

TEST_CASE("a SETTINGS flood from a peer that never reads closes the connection (ERR_FLOODED)") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    co_await ack_flood_while_not_reading(io, kSettings);
  });
}

Bytes window_update(std::uint32_t increment) {
  Bytes p;
  put32(p, increment & 0x7fffffffu);
  return p;
}

// Case 22: 1-byte WINDOW_UPDATEs while the server sends no DATA.
TEST_CASE("a flood of 1-byte WINDOW_UPDATE frames closes the connection with ENHANCE_YOUR_CALM") {
  for (const std::uint32_t stream : {0u, 1u}) {
    CAPTURE(stream);
    run_coro([stream](asio::io_context& io) -> awaitable<void> {
      auto h = start(io, accept_connect());
      RawPeer& peer = *h->peer;
      Bytes out = preface();
      add_headers(out, 1, block(connect_fields()));
      for (int i = 0; i < 1000; ++i) add_frame(out, kWindowUpdate, 0, stream, window_update(1));
      co_await peer.send(out);
      Seen seen = co_await peer.watch([](const Seen&) { return false; });
      CHECK(seen.eof);
      REQUIRE(seen.goaway);
      CHECK(*seen.goaway == NGHTTP2_ENHANCE_YOUR_CALM);
      CHECK(co_await eventually([&] { return h->done; }));
      CHECK(h->result == Errc::kFlood);
    });
  }
}

TEST_CASE("WINDOW_UPDATEs in proportion to the DATA the server sends are not a flood") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto h = start(io, [](IncomingRequest req) -> awaitable<void> {
      req.stream.respond(200);
      // 400 small writes: 400 DATA frames (at least) for the peer to answer.
      const std::string chunk(100, 'd');
      for (int i = 0; i < 400; ++i) {
        auto [ec, n] = co_await req.stream.write(asio::buffer(chunk));
        if (ec) co_return;
        co_await sleep_for(1ms);
      }
      std::array<std::uint8_t, 64> buf{};
      for (;;) {
        auto [ec, n] = co_await req.stream.read_some(asio::buffer(buf));
        if (ec) break;
      }
    });
    RawPeer& peer = *h->peer;
    Bytes out = preface();
    add_headers(out, 1, block(connect_fields()));
    co_await peer.send(out);
    co_await peer.watch([](const Seen& s) { return has_status(s, 1, "200"); });
    // 150 WINDOW_UPDATEs up front (over the base of 100), then one per 10 ms.
    Bytes burst;
    for (int i = 0; i < 150; ++i) add_frame(burst, kWindowUpdate, 0, i % 2 ? 1 : 0, window_update(1));
    co_await sleep_for(100ms);  // some DATA frames have been sent by now
    co_await peer.send(burst);
    for (int i = 0; i < 30; ++i) {
      Bytes one;
      add_frame(one, kWindowUpdate, 0, 1, window_update(100));
      co_await peer.send(one);
      co_await sleep_for(10ms);
    }
    Seen seen = co_await peer.watch([](const Seen&) { return false; }, 300ms);
    CHECK_FALSE(seen.goaway);
    CHECK_FALSE(seen.eof);
    CHECK_FALSE(h->done);
  });
}

TEST_CASE("window returned every 4 KiB against 64 KiB DATA frames is not a flood") {
  // Go's HTTP/2 returns window after every 4 KiB read, on the stream and on
  // the connection: 32 WINDOW_UPDATEs per 64 KiB frame we send. The allowance
  // counts DATA in 4 KiB units, so such a peer is not taken for a flood.
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto h = start(io, [](IncomingRequest req) -> awaitable<void> {
      req.stream.respond(200);
      const std::string mib(1u << 20, 'd');
      auto [ec, n] = co_await req.stream.write(asio::buffer(mib));
      (void)n;
      if (ec) co_return;
      std::array<std::uint8_t, 64> buf{};
      for (;;) {
        auto [rec, m] = co_await req.stream.read_some(asio::buffer(buf));
        if (rec) break;
      }
    });
    RawPeer& peer = *h->peer;
    const std::string magic = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    Bytes out(magic.begin(), magic.end());
    // INITIAL_WINDOW_SIZE 4 MiB, MAX_FRAME_SIZE 64 KiB; the connection window
    // grows by WINDOW_UPDATE only.
    add_frame(out, kSettings, 0, 0, settings_payload({{0x4, 4u << 20}, {0x5, 64u << 10}}));
    add_frame(out, kWindowUpdate, 0, 0, window_update(8u << 20));
    add_headers(out, 1, block(connect_fields()));
    co_await peer.send(out);
    co_await peer.watch([](const Seen& s) { return has_status(s, 1, "200"); });
    co_await peer.watch([](const Seen&) { return false; }, 200ms);  // take the 1 MiB
    // 1 MiB in 4 KiB steps, on the stream and on the connection: 512 frames.
    Bytes returned;
    for (int i = 0; i < 256; ++i) {
      add_frame(returned, kWindowUpdate, 0, 1, window_update(4096));
      add_frame(returned, kWindowUpdate, 0, 0, window_update(4096));
    }
    co_await peer.send(returned);
    Seen seen = co_await peer.watch([](const Seen&) { return false; }, 300ms);
    CHECK_FALSE(seen.goaway);
    CHECK_FALSE(seen.eof);
    CHECK_FALSE(h->done);
  });
}

// Case 25: RFC 9113 §6.9.1: a window above 2^31-1 is a FLOW_CONTROL_ERROR,
// a stream error for a stream window, a connection error for the connection's.
TEST_CASE("a WINDOW_UPDATE overflowing a stream's send window resets it with FLOW_CONTROL_ERROR") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto h = start(io, accept_connect());
    RawPeer& peer = *h->peer;
    Bytes out = preface();
    add_headers(out, 1, block(connect_fields()));
    add_headers(out, 3, block(connect_fields()));
    // The stream window starts at our INITIAL_WINDOW_SIZE (1 MiB).
    add_frame(out, kWindowUpdate, 0, 1, window_update(0x7fffffffu));
    co_await peer.send(out);
    Seen seen = co_await peer.watch([](const Seen& s) {
      return s.resets.count(1) && has_status(s, 3, "200");
    });
    REQUIRE(seen.resets.count(1));
    CHECK(seen.resets[1] == NGHTTP2_FLOW_CONTROL_ERROR);
    CHECK(has_status(seen, 3, "200"));
    CHECK_FALSE(seen.resets.count(3));
    CHECK_FALSE(seen.goaway);
    CHECK_FALSE(seen.eof);
  });
}

TEST_CASE("a WINDOW_UPDATE overflowing the connection's send window gets GOAWAY FLOW_CONTROL_ERROR") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    auto h = start(io, accept_connect());
    RawPeer& peer = *h->peer;
    Bytes out = preface();
    add_headers(out, 1, block(connect_fields()));
    // The connection window starts at 65535 and cannot be changed by SETTINGS.
    add_frame(out, kWindowUpdate, 0, 0, window_update(0x7fffffffu));
    co_await peer.send(out);
    Seen seen = co_await peer.watch([](const Seen&) { return false; });
    REQUIRE(seen.goaway);
    CHECK(*seen.goaway == NGHTTP2_FLOW_CONTROL_ERROR);
    CHECK(seen.eof);
    CHECK(co_await eventually([&] { return h->done; }));
    CHECK(h->result);
  });
}

TEST_CASE("streams the peer makes us reset (MadeYouReset) are rate limited with ENHANCE_YOUR_CALM") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    SessionOptions opts = SessionOptions::server_defaults();
    opts.limits.sent_reset_burst = 50;
    opts.limits.sent_reset_rate = 1;
    auto h = start(io, accept_connect(), opts);
    RawPeer& peer = *h->peer;
    CHECK(co_await peer.send(preface()));
    // Each malformed request (CONNECT with :path) makes the server send a
    // RST_STREAM although the peer sent none. (A zero WINDOW_UPDATE would
    // not do: nghttp2 1.52 makes that a connection error.)
    Fields bad = connect_fields();
    bad.emplace_back(":path", "/");
    const Bytes hblock = block(bad);
    Bytes out;
    for (std::uint32_t id = 1; id < 2 * 120; id += 2) add_headers(out, id, hblock);
    co_await peer.send(out);
    Seen seen = co_await peer.watch([](const Seen&) { return false; });
    CHECK(seen.eof);
    REQUIRE(seen.goaway);
    CHECK(*seen.goaway == NGHTTP2_ENHANCE_YOUR_CALM);
    CHECK(seen.resets.size() >= 50);
    CHECK(co_await eventually([&] { return h->done; }));
    CHECK(h->result == Errc::kFlood);
  });
}

TEST_CASE("nghttp2 1.52 treats exceeding an acknowledged MAX_CONCURRENT_STREAMS as a connection error") {
  // RFC 9113 §5.1.2 allows a stream error; nghttp2 sends GOAWAY
  // PROTOCOL_ERROR once the peer has ACKed our SETTINGS. Before the ACK the
  // extra stream is refused (see session_test). Documented, not fixed.
  run_coro([](asio::io_context& io) -> awaitable<void> {
    SessionOptions opts = SessionOptions::server_defaults();
    opts.max_concurrent_streams = 2;
    auto h = start(io, accept_connect(), opts);
    RawPeer& peer = *h->peer;
    CHECK(co_await peer.send(preface()));
    co_await peer.watch([](const Seen& s) { return s.settings_acks >= 1; });
    Bytes out;
    add_frame(out, kSettings, kAck, 0);
    const Bytes hblock = block(connect_fields());
    for (std::uint32_t id = 1; id <= 5; id += 2) add_headers(out, id, hblock);
    co_await peer.send(out);
    Seen seen = co_await peer.watch([](const Seen&) { return false; });
    REQUIRE(seen.goaway);
    CHECK(*seen.goaway == NGHTTP2_PROTOCOL_ERROR);
  });
}

}  // namespace
}  // namespace ztunnel::h2
