// Tests for the bidirectional copy over real loopback TCP connections.
#include "net/copy.h"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/this_coro.hpp>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>

#include <malloc.h>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "support/bytes.h"
#include "support/run_coro.h"
#include "support/testing.h"

namespace ztunnel::net {
namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

using testing::checksum;
using testing::pattern;

// Runs copy_bidirectional(a, b, start) in a coroutine of its own: `result`
// and then `done` are set when it returns.
void spawn_copy(tcp::socket& a, tcp::socket& b, CopyResult& result, bool& done,
                CopyStart start = {}) {
  asio::co_spawn(a.get_executor(), [&, start]() -> asio::awaitable<void> {
    result = co_await copy_bidirectional(a, b, start);
    done = true;
  }, asio::detached);
}

// client <-> [a | copy | b] <-> server, the copy running from the start.
// Held on the heap: the running copy refers to its members.
struct CopyRig {
  tcp::socket client, a, b, server;
  CopyResult result;
  bool done = false;
};

asio::awaitable<std::unique_ptr<CopyRig>> start_copy_rig() {
  auto [client, a] = co_await testing::loopback_pair();
  auto [b, server] = co_await testing::loopback_pair();
  auto rig = std::unique_ptr<CopyRig>(
      new CopyRig{std::move(client), std::move(a), std::move(b), std::move(server), {}, false});
  spawn_copy(rig->a, rig->b, rig->result, rig->done);
  co_return rig;
}

// Whether `done` is set within a second (polled every 10 ms).
asio::awaitable<bool> finished(const bool& done) {
  for (int i = 0; i < 100 && !done; ++i) {
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(10));
    co_await t.async_wait(asio::use_awaitable);
  }
  co_return done;
}

asio::awaitable<std::vector<uint8_t>> read_to_eof(tcp::socket& s) {
  std::vector<uint8_t> out;
  std::vector<uint8_t> chunk(64 * 1024);
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(chunk), use_nothrow);
    out.insert(out.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
    if (ec) break;
  }
  co_return out;
}

// Heap bytes malloc has handed out and not had back (all arenas).
std::size_t heap_in_use() { return ::mallinfo2().uordblks; }

}  // namespace

TEST_CASE("bytes cross both ways intact and a half-close passes through") {
  testing::run_coro([](asio::io_context&) -> asio::awaitable<void> {
    auto rig = co_await start_copy_rig();
    tcp::socket& client = rig->client;
    tcp::socket& server = rig->server;

    const auto request = pattern(3 * 1024 * 1024 + 17);  // crosses every buffer size
    co_await asio::async_write(client, asio::buffer(request), asio::use_awaitable);
    client.shutdown(tcp::socket::shutdown_send);  // client is done talking, still listening

    auto received = co_await read_to_eof(server);  // EOF arrives: the FIN was passed on
    CHECK(received.size() == request.size());
    CHECK(checksum(received) == checksum(request));

    const auto reply = pattern(100 * 1024);
    co_await asio::async_write(server, asio::buffer(reply), asio::use_awaitable);
    server.shutdown(tcp::socket::shutdown_send);
    auto got = co_await read_to_eof(client);
    CHECK(checksum(got) == checksum(reply));

    REQUIRE(co_await finished(rig->done));
    CHECK(rig->result.a_to_b == request.size());
    CHECK(rig->result.b_to_a == reply.size());
    CHECK_FALSE(rig->result.error);
  });
}

TEST_CASE("a reset on one side resets the other and reports the error") {
  testing::run_coro([](asio::io_context&) -> asio::awaitable<void> {
    auto rig = co_await start_copy_rig();
    tcp::socket& client = rig->client;
    tcp::socket& server = rig->server;

    co_await asio::async_write(client, asio::buffer(std::string("hello")), asio::use_awaitable);
    char buf[5];
    co_await asio::async_read(server, asio::buffer(buf), asio::use_awaitable);
    abort(server);  // RST towards the copy

    std::vector<uint8_t> rest(16);
    auto [ec, n] = co_await client.async_read_some(asio::buffer(rest), use_nothrow);
    CHECK(n == 0);
    CHECK(ec == asio::error::connection_reset);  // not a clean EOF: the client learns it was cut
    REQUIRE(co_await finished(rig->done));
    CHECK(rig->result.error);
    CHECK(rig->result.a_to_b == 5);
  });
}

TEST_CASE("a side marked readable is read at once, and waited for when nothing is there yet") {
  testing::run_coro([](asio::io_context&) -> asio::awaitable<void> {
    auto [client, a] = co_await testing::loopback_pair();
    auto [b, server] = co_await testing::loopback_pair();
    // The client's request is queued before the copy starts; the server's
    // side is marked readable too but has nothing yet (would_block path).
    const auto request = pattern(1000);
    co_await asio::async_write(client, asio::buffer(request), asio::use_awaitable);
    CopyResult result;
    bool copy_done = false;
    spawn_copy(a, b, result, copy_done, CopyStart{.a_readable = true, .b_readable = true});

    std::vector<uint8_t> got(request.size());
    co_await asio::async_read(server, asio::buffer(got), asio::use_awaitable);
    CHECK(got == request);
    const auto reply = pattern(5000);
    co_await asio::async_write(server, asio::buffer(reply), asio::use_awaitable);
    std::vector<uint8_t> back(reply.size());
    co_await asio::async_read(client, asio::buffer(back), asio::use_awaitable);
    CHECK(back == reply);

    client.shutdown(tcp::socket::shutdown_send);
    server.shutdown(tcp::socket::shutdown_send);
    REQUIRE(co_await finished(copy_done));
    CHECK(result.a_to_b == request.size());
    CHECK(result.b_to_a == reply.size());
    CHECK_FALSE(result.error);
  });
}

TEST_CASE("a side marked readable that is already at EOF passes the FIN on") {
  testing::run_coro([](asio::io_context&) -> asio::awaitable<void> {
    auto [client, a] = co_await testing::loopback_pair();
    auto [b, server] = co_await testing::loopback_pair();
    client.shutdown(tcp::socket::shutdown_send);
    CopyResult result;
    bool copy_done = false;
    spawn_copy(a, b, result, copy_done, CopyStart{.a_readable = true});
    auto received = co_await read_to_eof(server);
    CHECK(received.empty());
    server.shutdown(tcp::socket::shutdown_send);
    REQUIRE(co_await finished(copy_done));
    CHECK_FALSE(result.error);
  });
}

TEST_CASE("cancelling the awaiting coroutine resets both ends and returns after both directions") {
  testing::run_coro([](asio::io_context&) -> asio::awaitable<void> {
    auto [client, a] = co_await testing::loopback_pair();
    auto [b, server] = co_await testing::loopback_pair();
    auto executor = co_await asio::this_coro::executor;
    asio::cancellation_signal cancel;
    CopyResult result;
    bool copy_done = false;
    std::exception_ptr thrown;
    asio::co_spawn(
        executor,
        [&]() -> asio::awaitable<void> { result = co_await copy_bidirectional(a, b); },
        asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e) {
          thrown = e;
          copy_done = true;
        }));
    // Bytes flow both ways, then both directions sit waiting for more.
    co_await asio::async_write(client, asio::buffer(std::string("hello")), asio::use_awaitable);
    char buf[5];
    co_await asio::async_read(server, asio::buffer(buf), asio::use_awaitable);
    co_await asio::async_write(server, asio::buffer(std::string("hi")), asio::use_awaitable);
    co_await asio::async_read(client, asio::buffer(buf, 2), asio::use_awaitable);

    cancel.emit(asio::cancellation_type::terminal);
    REQUIRE(co_await finished(copy_done));
    CHECK_FALSE(thrown);
    CHECK(result.error == asio::error::operation_aborted);
    CHECK(result.a_to_b == 5);
    CHECK(result.b_to_a == 2);
    // Both ends were reset, not closed cleanly.
    std::vector<uint8_t> rest(16);
    auto [client_ec, client_n] = co_await client.async_read_some(asio::buffer(rest), use_nothrow);
    CHECK(client_n == 0);
    CHECK(client_ec == asio::error::connection_reset);
    auto [server_ec, server_n] = co_await server.async_read_some(asio::buffer(rest), use_nothrow);
    CHECK(server_n == 0);
    CHECK(server_ec == asio::error::connection_reset);
  });
}

TEST_CASE("cancelling after one direction ended still stops the other") {
  testing::run_coro([](asio::io_context&) -> asio::awaitable<void> {
    auto [client, a] = co_await testing::loopback_pair();
    auto [b, server] = co_await testing::loopback_pair();
    auto executor = co_await asio::this_coro::executor;
    asio::cancellation_signal cancel;
    CopyResult result;
    bool copy_done = false;
    asio::co_spawn(
        executor,
        [&]() -> asio::awaitable<void> { result = co_await copy_bidirectional(a, b); },
        asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr) { copy_done = true; }));
    client.shutdown(tcp::socket::shutdown_send);  // a->b ends; b->a waits for the server
    auto received = co_await read_to_eof(server);
    CHECK(received.empty());
    CHECK_FALSE(copy_done);
    cancel.emit(asio::cancellation_type::terminal);
    REQUIRE(co_await finished(copy_done));
    CHECK(result.error == asio::error::operation_aborted);
    std::vector<uint8_t> rest(16);
    auto [ec, n] = co_await client.async_read_some(asio::buffer(rest), use_nothrow);
    CHECK(n == 0);
    CHECK(ec == asio::error::connection_reset);
  });
}

TEST_CASE("tcp write_all sends what the socket takes now and waits for the rest, byte-exact") {
  testing::run_coro([](asio::io_context&) -> asio::awaitable<void> {
    auto [writer, reader] = co_await testing::loopback_pair();
    // Small buffers, so the first non-blocking send is partial and the rest
    // goes after waits for writability.
    writer.set_option(asio::socket_base::send_buffer_size(16 * 1024));
    reader.set_option(asio::socket_base::receive_buffer_size(16 * 1024));
    const auto data = pattern(4 * 1024 * 1024 + 7);
    std::vector<uint8_t> got;
    co_await ([&]() -> asio::awaitable<void> {
      CHECK_FALSE(co_await write_all(writer, asio::buffer(data)));
      writer.shutdown(tcp::socket::shutdown_send);
    }() && [&]() -> asio::awaitable<void> { got = co_await read_to_eof(reader); }());
    CHECK(got.size() == data.size());
    CHECK(checksum(got) == checksum(data));
  });
}

TEST_CASE("tcp read_some returns queued bytes at once, waits for later ones, and reports EOF") {
  testing::run_coro([](asio::io_context& io) -> asio::awaitable<void> {
    auto [a, b] = co_await testing::loopback_pair();
    const auto first = pattern(300);
    co_await asio::async_write(a, asio::buffer(first), asio::use_awaitable);
    std::vector<uint8_t> buf(1024);
    // The bytes may still be on their way through loopback; a wait covers that.
    auto [ec, n] = co_await read_some(b, asio::buffer(buf));
    CHECK_FALSE(ec);
    CHECK(n == first.size());
    CHECK(std::equal(first.begin(), first.end(), buf.begin()));
    // Nothing queued: read_some waits until the peer writes.
    auto later = [&]() -> asio::awaitable<void> {
      asio::steady_timer t(io, std::chrono::milliseconds(20));
      co_await t.async_wait(asio::use_awaitable);
      co_await asio::async_write(a, asio::buffer(first.data(), 10), asio::use_awaitable);
      a.shutdown(tcp::socket::shutdown_send);
    };
    auto [later_ec, later_n] = co_await (read_some(b, asio::buffer(buf)) && later());
    CHECK_FALSE(later_ec);
    CHECK(later_n == 10);
    auto [eof, zero] = co_await read_some(b, asio::buffer(buf));
    CHECK(eof == asio::error::eof);
    CHECK(zero == 0);
  });
}

TEST_CASE("a message that fills the copy buffer exactly leaves no buffer held while idle") {
  testing::run_coro([](asio::io_context&) -> asio::awaitable<void> {
    auto rig = co_await start_copy_rig();
    tcp::socket& client = rig->client;
    tcp::socket& server = rig->server;
    const auto settle = [&]() -> asio::awaitable<void> {
      asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(20));
      co_await t.async_wait(asio::use_awaitable);
    };
    // Enough first to move the copy to kMedium buffers, which are too large
    // for malloc's per-thread cache: freed, they no longer count as in use.
    // The odd 100 bytes end it with a partial read, so the copy idles bare.
    const auto warmup = pattern(CopyBufferPolicy::kMediumAfter + 100);
    const auto message = pattern(CopyBufferPolicy::kMedium);  // fills one buffer exactly
    std::vector<uint8_t> got(warmup.size());
    co_await asio::async_write(client, asio::buffer(warmup), asio::use_awaitable);
    co_await asio::async_read(server, asio::buffer(got), asio::use_awaitable);
    co_await settle();
    const std::size_t idle = heap_in_use();

    co_await asio::async_write(client, asio::buffer(message), asio::use_awaitable);
    co_await asio::async_read(server, asio::buffer(got, message.size()), asio::use_awaitable);
    CHECK(std::equal(message.begin(), message.end(), got.begin()));
    co_await settle();
    // Waiting for more with the buffer would keep kMedium bytes in use.
    CHECK(heap_in_use() < idle + CopyBufferPolicy::kMedium / 2);

    client.shutdown(tcp::socket::shutdown_send);
    server.shutdown(tcp::socket::shutdown_send);
    REQUIRE(co_await finished(rig->done));
    CHECK(rig->result.a_to_b == warmup.size() + message.size());
    CHECK_FALSE(rig->result.error);
  });
}

TEST_CASE("copy buffers grow with the bytes carried") {
  CHECK(CopyBufferPolicy::size_for(0) == 1024);
  CHECK(CopyBufferPolicy::size_for(128 * 1024 - 1) == 1024);
  CHECK(CopyBufferPolicy::size_for(128 * 1024) == 16 * 1024 - 64);
  CHECK(CopyBufferPolicy::size_for(10 * 1024 * 1024) == 256 * 1024 - 64);
}

}  // namespace ztunnel::net
