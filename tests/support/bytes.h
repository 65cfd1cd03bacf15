// Test data that both ends of a connection can generate and check, and a
// connected loopback socket pair: the helpers the data-path tests share.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace ztunnel::testing {

// `n` deterministic bytes (a 64-bit LCG): different seeds give different
// streams, so a test can tell two directions or two messages apart.
inline std::vector<std::uint8_t> pattern(std::size_t n, std::uint64_t seed = 1) {
  std::vector<std::uint8_t> out(n);
  std::uint64_t x = seed;
  for (auto& b : out) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    b = static_cast<std::uint8_t>(x >> 56);
  }
  return out;
}

// FNV-1a over `bytes`: compares megabytes in a readable one-line CHECK.
inline std::uint64_t checksum(std::span<const std::uint8_t> bytes) {
  std::uint64_t h = 14695981039346656037ull;
  for (std::uint8_t b : bytes) h = (h ^ b) * 1099511628211ull;
  return h;
}

// A connected pair of TCP sockets on 127.0.0.1 (client, server).
inline boost::asio::awaitable<std::pair<boost::asio::ip::tcp::socket, boost::asio::ip::tcp::socket>>
loopback_pair() {
  namespace asio = boost::asio;
  using asio::ip::tcp;
  auto executor = co_await asio::this_coro::executor;
  tcp::acceptor acceptor(executor, {asio::ip::make_address("127.0.0.1"), 0});
  tcp::socket client(executor);
  co_await client.async_connect(acceptor.local_endpoint(), asio::use_awaitable);
  tcp::socket server = co_await acceptor.async_accept(asio::use_awaitable);
  co_return std::pair{std::move(client), std::move(server)};
}

}  // namespace ztunnel::testing
