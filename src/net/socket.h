// Socket options the proxy depends on, and the one seam through which every
// data-plane socket is created (so in-pod mode can mark and place them).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <optional>

namespace ztunnel::net {

using boost::asio::ip::tcp;
using boost::system::error_code;

// The destination a connection had before iptables REDIRECT/TPROXY sent it
// to us (SO_ORIGINAL_DST, or IP6T_SO_ORIGINAL_DST for IPv6 sockets).
// One getsockopt when the IPv4 answer is there (no getsockname).
boost::system::result<tcp::endpoint> original_dst(tcp::socket& socket);

struct KeepaliveOptions {
  bool enabled = true;
  std::chrono::seconds time{180};
  std::chrono::seconds interval{180};
  uint32_t retries = 9;
  // TCP_USER_TIMEOUT = time + retries * interval, so a dead peer's unacked
  // data is abandoned about when keepalive would have given up.
  bool user_timeout = false;
};

// Options for sockets a proxy instance creates.
struct SocketOptions {
  std::optional<uint32_t> mark;  // SO_MARK, so capture rules skip our own traffic
  KeepaliveOptions keepalive;
  bool reuse_port = false;  // listeners: let several workers (or ztunnels) share a port
  std::chrono::milliseconds connect_timeout{10'000};
};

error_code set_mark(int fd, uint32_t mark);
error_code set_keepalive(int fd, const KeepaliveOptions& options);
error_code set_nodelay(int fd);
// IP_TRANSPARENT (+ IP_FREEBIND) so a connect can use a source address that
// is not local: how inbound preserves the client's IP.
error_code set_transparent(int fd, bool ipv6);

// Creates listeners and outbound connections with the instance's options.
// Dedicated mode uses it as is; in-pod mode will run it inside the pod's
// network namespace.
class SocketFactory {
 public:
  explicit SocketFactory(SocketOptions options) : options_(options) {}
  virtual ~SocketFactory() = default;

  const SocketOptions& options() const { return options_; }

  // A listening socket bound to `endpoint` (port 0 picks one), with
  // SO_REUSEADDR, SO_REUSEPORT when configured, and the mark. It also carries
  // TCP_NODELAY and the keepalive options, which Linux copies to accepted
  // sockets (see AcceptedOptions).
  virtual boost::system::result<tcp::acceptor> listen(const boost::asio::any_io_executor& executor,
                                                      const tcp::endpoint& endpoint) const;

  // Per listener, owned by its accept loop (one thread): whether the sockets
  // it accepts already carry our options. Linux clones an accepted socket
  // from its listener (nonagle, SOCK_KEEPOPEN, keepalive time/interval/count
  // and user timeout included), but other kernels, or a listener not made by
  // listen(), may not: the first accepted socket is checked with getsockopt,
  // and only when it lacks an option are they set, on it and every later one.
  struct AcceptedOptions {
    enum class State { kUnknown, kInherited, kSet };
    State state = State::kUnknown;
  };

  // Gives an accepted socket keepalive and TCP_NODELAY: no syscall once the
  // listener's first accepted socket showed it inherits them.
  virtual void prepare_accepted(tcp::socket& socket, AcceptedOptions& listener) const;
  // The same without the cache: always sets every option.
  void prepare_accepted(tcp::socket& socket) const;

  // Where the peer of a connect lives. A peer in our own network namespace
  // (the inbound's upstream: always the local workload) cannot vanish
  // silently: if it dies the kernel resets the connection, and its kernel
  // acknowledges every byte, so keepalive and TCP_USER_TIMEOUT would never
  // fire. Such connects skip those setsockopt calls (4-5 per connection).
  enum class Peer { kRemote, kSameNamespace };

  // Connects with the mark, keepalive (remote peers), NODELAY and the
  // connect timeout; `source`, when set, binds the local address first
  // (transparent when it is not ours). Cancellation: closing the returned
  // socket's executor's context aborts it; the timeout yields `timed_out`.
  virtual boost::asio::awaitable<boost::system::result<tcp::socket>> connect(
      tcp::endpoint destination, std::optional<boost::asio::ip::address> source = {},
      Peer peer = Peer::kRemote) const;

 private:
  SocketOptions options_;
};

}  // namespace ztunnel::net
