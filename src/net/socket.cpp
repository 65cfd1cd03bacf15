// Socket options via setsockopt and the default SocketFactory.
#include "net/socket.h"

#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>

namespace ztunnel::net {
namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

error_code last_error() { return error_code(errno, boost::system::system_category()); }

error_code set_int(int fd, int level, int name, int value) {
  if (::setsockopt(fd, level, name, &value, sizeof value) != 0) return last_error();
  return {};
}

bool has_int(int fd, int level, int name, int expected) {
  int value = 0;
  socklen_t len = sizeof value;
  return ::getsockopt(fd, level, name, &value, &len) == 0 && value == expected;
}

int user_timeout_ms(const KeepaliveOptions& options) {
  const auto total = options.time + options.interval * options.retries;
  return static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(total).count());
}

// Whether `fd` already has TCP_NODELAY and exactly the keepalive `options`
// set_keepalive would give it.
bool has_options(int fd, const KeepaliveOptions& options) {
  if (!has_int(fd, IPPROTO_TCP, TCP_NODELAY, 1)) return false;
  if (!options.enabled) return has_int(fd, SOL_SOCKET, SO_KEEPALIVE, 0);
  return has_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1) &&
         has_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, static_cast<int>(options.time.count())) &&
         has_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, static_cast<int>(options.interval.count())) &&
         has_int(fd, IPPROTO_TCP, TCP_KEEPCNT, static_cast<int>(options.retries)) &&
         (!options.user_timeout ||
          has_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, user_timeout_ms(options)));
}

tcp::endpoint endpoint_from(const sockaddr_storage& storage) {
  if (storage.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(storage);
    asio::ip::address_v6::bytes_type bytes;
    std::memcpy(bytes.data(), &in6.sin6_addr, bytes.size());
    asio::ip::address_v6 v6(bytes);
    // A v4 client on a dual-stack socket shows up v4-mapped; report it as v4.
    asio::ip::address ip = v6.is_v4_mapped()
                               ? asio::ip::address(asio::ip::make_address_v4(asio::ip::v4_mapped, v6))
                               : asio::ip::address(v6);
    return {ip, ntohs(in6.sin6_port)};
  }
  const auto& in4 = reinterpret_cast<const sockaddr_in&>(storage);
  return {asio::ip::address_v4(ntohl(in4.sin_addr.s_addr)), ntohs(in4.sin_port)};
}

// A non-blocking connect started: finished (`done`, with its outcome), or
// still in progress (wait for writability, then read SO_ERROR).
struct ConnectStart {
  bool done = false;
  error_code ec;
};

// `expect_quick`: the peer is in our own network namespace, where the kernel
// completes the handshake inside connect() itself (it still answers
// EINPROGRESS). One poll() then confirms it, instead of an async wait, the
// deadline race around it and a scheduler round (an epoll_ctl and an
// epoll_wait) on every inbound CONNECT.
ConnectStart start_connect(tcp::socket& socket, const tcp::endpoint& destination,
                           bool expect_quick) {
  error_code ec;
  socket.non_blocking(true, ec);  // the FIONBIO Asio would make on the first async operation
  if (ec) return {true, ec};
  const int fd = socket.native_handle();
  if (::connect(fd, destination.data(), static_cast<socklen_t>(destination.size())) == 0) {
    return {true, {}};
  }
  if (errno != EINPROGRESS) return {true, last_error()};
  if (!expect_quick) return {};
  pollfd ready{fd, POLLOUT, 0};
  if (::poll(&ready, 1, 0) != 1) return {};
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return {true, last_error()};
  return {true, error_code(err, boost::system::system_category())};
}

// Asio's async_connect follows the writable event with poll() and then
// getsockopt(SO_ERROR); after epoll has said "writable" the poll adds nothing.
// Cancellation: as async_wait's (operation_aborted; the caller closes the socket).
asio::awaitable<error_code> finish_connect(tcp::socket& socket) {
  auto [wait_ec] = co_await socket.async_wait(tcp::socket::wait_write, use_nothrow);
  if (wait_ec) co_return wait_ec;
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
    co_return last_error();
  }
  co_return error_code(err, boost::system::system_category());
}

}  // namespace

boost::system::result<tcp::endpoint> original_dst(tcp::socket& socket) {
  const int fd = socket.native_handle();
  sockaddr_storage storage{};
  socklen_t len = sizeof storage;
  // A v4 connection accepted on a [::] listener still has its conntrack
  // entry in the IPv4 table, so try IPv4 first unless the socket is native v6.
  if (::getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &storage, &len) == 0) return endpoint_from(storage);
  const error_code v4_error = last_error();
  error_code ec;
  const bool ipv6 = socket.local_endpoint(ec).protocol() == tcp::v6();
  if (!ec && ipv6) {
    len = sizeof storage;
    if (::getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &storage, &len) == 0) return endpoint_from(storage);
    return last_error();
  }
  return v4_error;
}

error_code set_mark(int fd, uint32_t mark) { return set_int(fd, SOL_SOCKET, SO_MARK, static_cast<int>(mark)); }

error_code set_nodelay(int fd) { return set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1); }

error_code set_keepalive(int fd, const KeepaliveOptions& options) {
  if (!options.enabled) return set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 0);
  if (auto ec = set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1)) return ec;
  if (auto ec = set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, static_cast<int>(options.time.count()))) return ec;
  if (auto ec = set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, static_cast<int>(options.interval.count()))) return ec;
  if (auto ec = set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, static_cast<int>(options.retries))) return ec;
  if (options.user_timeout) {
    if (auto ec = set_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, user_timeout_ms(options))) return ec;
  }
  return {};
}

error_code set_transparent(int fd, bool ipv6) {
  if (ipv6) {
    if (auto ec = set_int(fd, SOL_IPV6, IPV6_TRANSPARENT, 1)) return ec;
    return set_int(fd, SOL_IPV6, IPV6_FREEBIND, 1);
  }
  if (auto ec = set_int(fd, SOL_IP, IP_TRANSPARENT, 1)) return ec;
  return set_int(fd, SOL_IP, IP_FREEBIND, 1);
}

boost::system::result<tcp::acceptor> SocketFactory::listen(const asio::any_io_executor& executor,
                                                           const tcp::endpoint& endpoint) const {
  tcp::acceptor acceptor(executor);
  error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (ec) return ec;
  acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (ec) return ec;
  if (options_.reuse_port) {
    if ((ec = set_int(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, 1))) return ec;
  }
  if (options_.mark) {
    if ((ec = set_mark(acceptor.native_handle(), *options_.mark))) return ec;
  }
  // Best effort, as for accepted sockets: prepare_accepted checks what the
  // accepted sockets really got.
  (void)set_nodelay(acceptor.native_handle());
  (void)set_keepalive(acceptor.native_handle(), options_.keepalive);
  acceptor.bind(endpoint, ec);
  if (ec) return ec;
  acceptor.listen(tcp::socket::max_listen_connections, ec);
  if (ec) return ec;
  return acceptor;
}

void SocketFactory::prepare_accepted(tcp::socket& socket) const {
  // Best effort: an option a kernel refuses must not cost the connection.
  (void)set_nodelay(socket.native_handle());
  (void)set_keepalive(socket.native_handle(), options_.keepalive);
}

void SocketFactory::prepare_accepted(tcp::socket& socket, AcceptedOptions& listener) const {
  using State = AcceptedOptions::State;
  if (listener.state == State::kUnknown) {
    listener.state = has_options(socket.native_handle(), options_.keepalive) ? State::kInherited
                                                                             : State::kSet;
  }
  if (listener.state == State::kSet) prepare_accepted(socket);
}

asio::awaitable<boost::system::result<tcp::socket>> SocketFactory::connect(
    tcp::endpoint destination, std::optional<asio::ip::address> source, Peer peer) const {
  auto executor = co_await asio::this_coro::executor;
  tcp::socket socket(executor);
  error_code ec;
  socket.open(destination.protocol(), ec);
  if (ec) co_return ec;
  const int fd = socket.native_handle();
  if (options_.mark && (ec = set_mark(fd, *options_.mark))) co_return ec;
  (void)set_nodelay(fd);
  // A new socket has keepalive off: setting "off" again would be a no-op.
  if (peer == Peer::kRemote && options_.keepalive.enabled) {
    (void)set_keepalive(fd, options_.keepalive);
  }
  if (source) {
    if ((ec = set_transparent(fd, destination.protocol() == tcp::v6()))) co_return ec;
    socket.bind(tcp::endpoint(*source, 0), ec);
    if (ec) co_return ec;
  }
  const ConnectStart started =
      start_connect(socket, destination, /*expect_quick=*/peer == Peer::kSameNamespace);
  if (started.done) {
    if (started.ec) co_return started.ec;
    co_return socket;
  }
  asio::steady_timer deadline(executor, options_.connect_timeout);
  auto outcome = co_await (finish_connect(socket) || deadline.async_wait(use_nothrow));
  if (outcome.index() == 1) co_return make_error_code(boost::system::errc::timed_out);
  if (error_code connect_ec = std::get<0>(outcome)) co_return connect_ec;
  co_return socket;
}

}  // namespace ztunnel::net
