// The target of an HBONE CONNECT (its :authority): a socket address or a service hostname and port.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "core/error.h"

namespace ztunnel::proxy {

using tcp = boost::asio::ip::tcp;

// "1.2.3.4:80" or "[fd00::1]:80", as Rust's SocketAddr prints them, which is
// what Istio peers send and expect in :authority and `forwarded: for=`.
std::string format_endpoint(const tcp::endpoint& endpoint);
// The same text appended to `out`, without the generic formatter: an IPv4
// endpoint is printed digit by digit (inet_ntop goes through sprintf), as it
// is on every connection's access-log line and forwarded header.
void append_endpoint(std::string& out, const tcp::endpoint& endpoint);

// A service hostname target, used when the caller cannot know a pod IP (a
// request that crossed an east/west gateway).
struct HostPort {
  std::string host;
  uint16_t port = 0;

  friend bool operator==(const HostPort&, const HostPort&) = default;
};

struct HboneAddress {
  std::variant<tcp::endpoint, HostPort> value;

  static HboneAddress socket(tcp::endpoint endpoint) { return {std::move(endpoint)}; }
  static HboneAddress hostname(std::string host, uint16_t port) {
    return {HostPort{std::move(host), port}};
  }

  const tcp::endpoint* endpoint() const { return std::get_if<tcp::endpoint>(&value); }
  const HostPort* host_port() const { return std::get_if<HostPort>(&value); }
  uint16_t port() const;
  // The :authority form: "1.2.3.4:80", "[::1]:80" or "host:80".
  std::string to_string() const;

  friend bool operator==(const HboneAddress&, const HboneAddress&) = default;
};

// Parses a CONNECT :authority. Accepts exactly `IPv4:port`, `[IPv6]:port` or
// `hostname:port`, with a port in 1..65535. Stricter than Istio (which falls
// back to whatever http::Uri accepts): userinfo, zone ids, bare IPv6, empty or
// malformed hostnames and anything after the port are rejected, so a peer
// cannot smuggle a second meaning into the target.
core::Result<HboneAddress> parse_authority(std::string_view authority);

}  // namespace ztunnel::proxy
