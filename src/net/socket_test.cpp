// Tests for socket options and the SocketFactory on loopback.
#include "net/socket.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <string_view>

#include "support/run_coro.h"
#include "support/testing.h"

namespace ztunnel::net {
namespace {

namespace asio = boost::asio;

int get_int(int fd, int level, int name) {
  int value = -1;
  socklen_t len = sizeof value;
  ::getsockopt(fd, level, name, &value, &len);
  return value;
}

}  // namespace

TEST_CASE("the factory's listener and connections carry keepalive and NODELAY") {
  testing::run_coro([](asio::io_context&) -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    SocketOptions options;
    options.keepalive.time = std::chrono::seconds(60);
    options.keepalive.interval = std::chrono::seconds(7);
    options.keepalive.retries = 4;
    options.keepalive.user_timeout = true;
    options.reuse_port = true;
    SocketFactory factory(options);
    auto acceptor = factory.listen(executor, {asio::ip::make_address("127.0.0.1"), 0});
    REQUIRE(acceptor.has_value());
    CHECK(get_int(acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT) == 1);

    auto connected = co_await factory.connect(acceptor->local_endpoint());
    REQUIRE(connected.has_value());
    const int fd = connected->native_handle();
    CHECK(get_int(fd, SOL_SOCKET, SO_KEEPALIVE) == 1);
    CHECK(get_int(fd, IPPROTO_TCP, TCP_KEEPIDLE) == 60);
    CHECK(get_int(fd, IPPROTO_TCP, TCP_KEEPINTVL) == 7);
    CHECK(get_int(fd, IPPROTO_TCP, TCP_KEEPCNT) == 4);
    CHECK(get_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT) == (60 + 4 * 7) * 1000);
    CHECK(get_int(fd, IPPROTO_TCP, TCP_NODELAY) == 1);

    tcp::socket accepted = co_await acceptor->async_accept(asio::use_awaitable);
    factory.prepare_accepted(accepted);
    CHECK(get_int(accepted.native_handle(), IPPROTO_TCP, TCP_KEEPIDLE) == 60);
  });
}

TEST_CASE("a connect to a peer in our own namespace gets NODELAY and the mark but no keepalive") {
  testing::run_coro([](asio::io_context&) -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    SocketOptions options;
    options.keepalive.time = std::chrono::seconds(60);
    options.keepalive.user_timeout = true;
    SocketFactory factory(options);
    auto acceptor = factory.listen(executor, {asio::ip::make_address("127.0.0.1"), 0});
    REQUIRE(acceptor.has_value());
    auto connected = co_await factory.connect(acceptor->local_endpoint(), std::nullopt,
                                              SocketFactory::Peer::kSameNamespace);
    REQUIRE(connected.has_value());
    const int fd = connected->native_handle();
    CHECK(get_int(fd, IPPROTO_TCP, TCP_NODELAY) == 1);
    CHECK(get_int(fd, SOL_SOCKET, SO_KEEPALIVE) == 0);
    CHECK(get_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT) == 0);
  });
}

TEST_CASE("sockets accepted on the factory's listener inherit its options: nothing is set twice") {
  testing::run_coro([](asio::io_context&) -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    SocketOptions options;
    options.keepalive.time = std::chrono::seconds(61);
    options.keepalive.interval = std::chrono::seconds(8);
    options.keepalive.retries = 5;
    options.keepalive.user_timeout = true;
    SocketFactory factory(options);
    auto acceptor = factory.listen(executor, {asio::ip::make_address("127.0.0.1"), 0});
    REQUIRE(acceptor.has_value());
    SocketFactory::AcceptedOptions cache;
    for (int i = 0; i < 2; ++i) {
      tcp::socket client(executor);
      co_await client.async_connect(acceptor->local_endpoint(), asio::use_awaitable);
      tcp::socket accepted = co_await acceptor->async_accept(asio::use_awaitable);
      factory.prepare_accepted(accepted, cache);
      const int fd = accepted.native_handle();
      CHECK(get_int(fd, IPPROTO_TCP, TCP_NODELAY) == 1);
      CHECK(get_int(fd, SOL_SOCKET, SO_KEEPALIVE) == 1);
      CHECK(get_int(fd, IPPROTO_TCP, TCP_KEEPIDLE) == 61);
      CHECK(get_int(fd, IPPROTO_TCP, TCP_KEEPINTVL) == 8);
      CHECK(get_int(fd, IPPROTO_TCP, TCP_KEEPCNT) == 5);
      CHECK(get_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT) == (61 + 5 * 8) * 1000);
    }
    // Linux clones accepted sockets from the listener, options included.
    CHECK(cache.state == SocketFactory::AcceptedOptions::State::kInherited);
  });
}

TEST_CASE("sockets accepted on a plain listener get the options set, every one") {
  testing::run_coro([](asio::io_context&) -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    SocketOptions options;
    options.keepalive.time = std::chrono::seconds(62);
    SocketFactory factory(options);
    tcp::acceptor acceptor(executor, {asio::ip::make_address("127.0.0.1"), 0});
    SocketFactory::AcceptedOptions cache;
    for (int i = 0; i < 2; ++i) {
      tcp::socket client(executor);
      co_await client.async_connect(acceptor.local_endpoint(), asio::use_awaitable);
      tcp::socket accepted = co_await acceptor.async_accept(asio::use_awaitable);
      factory.prepare_accepted(accepted, cache);
      CHECK(get_int(accepted.native_handle(), IPPROTO_TCP, TCP_NODELAY) == 1);
      CHECK(get_int(accepted.native_handle(), SOL_SOCKET, SO_KEEPALIVE) == 1);
      CHECK(get_int(accepted.native_handle(), IPPROTO_TCP, TCP_KEEPIDLE) == 62);
    }
    CHECK(cache.state == SocketFactory::AcceptedOptions::State::kSet);
  });
}

TEST_CASE("a refused connect is an error, not an exception") {
  testing::run_coro([](asio::io_context&) -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    // Find a free port, then close it so nothing listens there.
    tcp::endpoint free_port;
    {
      tcp::acceptor probe(executor, {asio::ip::make_address("127.0.0.1"), 0});
      free_port = probe.local_endpoint();
    }
    SocketFactory factory(SocketOptions{});
    auto connected = co_await factory.connect(free_port);
    REQUIRE_FALSE(connected.has_value());
    CHECK(connected.error() == asio::error::connection_refused);
  });
}

TEST_CASE("a socket that was not redirected has no original destination") {
  testing::run_coro([](asio::io_context&) -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    tcp::acceptor acceptor(executor, {asio::ip::make_address("127.0.0.1"), 0});
    tcp::socket client(executor);
    co_await client.async_connect(acceptor.local_endpoint(), asio::use_awaitable);
    tcp::socket server = co_await acceptor.async_accept(asio::use_awaitable);
    auto dst = original_dst(server);
    // Without a NAT rule there is no conntrack entry to ask (ENOENT), unless
    // the kernel answers with the socket's own address.
    if (dst) {
      CHECK(*dst == server.local_endpoint());
    } else {
      CHECK(dst.error().value() == ENOENT);
    }
  });
}

TEST_CASE("a same-namespace connect finishes at once: connected, or its error, without a wait") {
  testing::run_coro([](asio::io_context&) -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    SocketFactory factory(SocketOptions{});
    auto acceptor = factory.listen(executor, {asio::ip::make_address("127.0.0.1"), 0});
    REQUIRE(acceptor.has_value());
    auto connected = co_await factory.connect(acceptor->local_endpoint(), std::nullopt,
                                              SocketFactory::Peer::kSameNamespace);
    REQUIRE(connected.has_value());
    boost::system::error_code ec;
    CHECK(connected->remote_endpoint(ec) == acceptor->local_endpoint());
    CHECK_FALSE(ec);
    // Bytes flow both ways on it.
    tcp::socket accepted = acceptor->accept();
    const char hello[] = "hi";
    CHECK(::send(connected->native_handle(), hello, 2, 0) == 2);
    char got[2] = {};
    CHECK(::recv(accepted.native_handle(), got, 2, MSG_WAITALL) == 2);
    CHECK(std::string_view(got, 2) == "hi");

    tcp::endpoint free_port;
    {
      tcp::acceptor probe(executor, {asio::ip::make_address("127.0.0.1"), 0});
      free_port = probe.local_endpoint();
    }
    auto refused =
        co_await factory.connect(free_port, std::nullopt, SocketFactory::Peer::kSameNamespace);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error() == asio::error::connection_refused);
  });
}

}  // namespace ztunnel::net
