// The HBONE data path in one process, without TLS: a TCP source copied into
// an h2 CONNECT stream (as the outbound side does), the stream copied out to
// a TCP sink (as the inbound side does), client and server sessions over a
// socketpair. Prints CPU seconds per GB and the heap bytes the two idle
// sessions keep after the transfer, so copy and buffer changes can be
// measured without the noise of a shared machine (callgrind counts
// instructions; mallinfo2 counts bytes).
//
//   build-bench/tools/bench/h2_bulk [MiB]      default 256
#include <malloc.h>
#include <sys/resource.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <vector>

#include "h2/session.h"
#include "net/copy.h"
#include "proxy/h2_stream_io.h"

namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

std::size_t heap_in_use() {
  malloc_trim(0);
  return mallinfo2().uordblks;
}

awaitable<std::pair<tcp::socket, tcp::socket>> tcp_pair() {
  auto ex = co_await asio::this_coro::executor;
  tcp::acceptor acceptor(ex, {asio::ip::make_address("127.0.0.1"), 0});
  tcp::socket client(ex);
  co_await client.async_connect(acceptor.local_endpoint(), asio::use_awaitable);
  tcp::socket server = co_await acceptor.async_accept(asio::use_awaitable);
  co_return std::pair{std::move(client), std::move(server)};
}

awaitable<void> pause(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(use_nothrow);
}

awaitable<void> run(std::size_t total) {
  auto ex = co_await asio::this_coro::executor;
  asio::local::stream_protocol::socket a(ex), b(ex);
  asio::local::connect_pair(a, b);
  // Sink side (inbound): the stream is copied to `upstream`, `app_sink` drains it.
  auto [upstream, app_sink] = co_await tcp_pair();
  // Source side (outbound): `app_source` writes, `downstream` is copied to the stream.
  auto [app_source, downstream] = co_await tcp_pair();
  bool server_copy_done = false;
  ztunnel::h2::ServerSession server(
      ztunnel::h2::make_transport(std::move(b)),
      [&](ztunnel::h2::IncomingRequest req) -> awaitable<void> {
        req.stream.respond(200);
        co_await ztunnel::net::copy_bidirectional(req.stream, upstream);
        server_copy_done = true;
      });
  ztunnel::h2::ClientSession client(ztunnel::h2::make_transport(std::move(a)));
  asio::co_spawn(ex, server.run(), asio::detached);
  asio::co_spawn(ex, client.run(), asio::detached);
  co_await pause(std::chrono::milliseconds(50));
  const std::size_t heap_before = heap_in_use();

  app_sink.shutdown(tcp::socket::shutdown_send);  // one direction only: the other just ends
  std::size_t sunk = 0;
  bool sink_done = false;
  asio::co_spawn(ex, [&]() -> awaitable<void> {
    std::vector<char> buf(256 << 10);
    for (;;) {
      auto [ec, n] = co_await app_sink.async_read_some(asio::buffer(buf), use_nothrow);
      sunk += n;
      if (ec) break;
    }
    sink_done = true;
  }, asio::detached);
  asio::co_spawn(ex, [&]() -> awaitable<void> {
    std::vector<char> chunk(256 << 10, 'x');
    for (std::size_t sent = 0; sent < total; sent += chunk.size()) {
      auto [ec, n] = co_await asio::async_write(app_source, asio::buffer(chunk), use_nothrow);
      if (ec) co_return;
    }
    app_source.shutdown(tcp::socket::shutdown_send);
  }, asio::detached);

  const double cpu0 = cpu_seconds();
  auto r = co_await client.open_stream("10.0.0.2:80");
  if (!r || r->status != 200) {
    std::fprintf(stderr, "h2_bulk: CONNECT failed\n");
    std::exit(1);
  }
  co_await ztunnel::net::copy_bidirectional(downstream, r->stream);
  while (!sink_done || !server_copy_done) co_await pause(std::chrono::milliseconds(1));
  const double cpu = cpu_seconds() - cpu0;
  r->stream = ztunnel::h2::Stream();
  app_source.close();
  app_sink.close();
  downstream.close();
  upstream.close();
  co_await pause(std::chrono::milliseconds(100));  // the sessions idle, as a pooled connection does
  const std::size_t heap_after = heap_in_use();
  std::printf("bytes %zu cpu_s %.3f cpu_s_per_gb %.3f idle_sessions_heap_delta_bytes %lld\n", sunk,
              cpu, cpu / (static_cast<double>(sunk) / 1e9),
              static_cast<long long>(heap_after) - static_cast<long long>(heap_before));
  client.close();
  server.close();
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t mib = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 256;
  asio::io_context io;
  asio::co_spawn(io, run(mib << 20), [&](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  io.run();
}
