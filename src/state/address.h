// Addresses as the mesh names them: network-scoped IPs, CIDRs, namespaced hostnames, gateways.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <variant>

#include "core/error.h"

namespace ztunnel::state {

using IpAddress = boost::asio::ip::address;

// The IPv4 address inside an IPv4-mapped IPv6 address (::ffff:a.b.c.d), else
// the address unchanged. Dual-stack sockets report IPv4 peers in mapped form;
// indexes key on this form so both spellings find the same entry.
IpAddress canonical_ip(const IpAddress& ip);

// An IP from its wire form: exactly 4 or 16 bytes. `field` names the proto
// field in the error.
core::Result<IpAddress> ip_from_bytes(std::string_view bytes, std::string_view field);

// An IP qualified by the network it lives on ("" is the default network).
// Two pods may share an IP on different networks, so lookups use both.
struct NetworkAddress {
  std::string network;
  IpAddress ip;

  // "network/ip", the form Istio uses in local config and on-demand keys.
  std::string to_string() const;
  // Parses "network/ip"; the network is everything before the first '/'.
  static core::Result<NetworkAddress> parse(std::string_view text);

  friend bool operator==(const NetworkAddress&, const NetworkAddress&) = default;
};

struct NetworkAddressHash {
  std::size_t operator()(const NetworkAddress& a) const noexcept;
};

// A prefix. `prefix_len` never exceeds 32 (IPv4) or 128 (IPv6) when built
// through make() or parse(); host bits of `address` may be set and are ignored.
struct Cidr {
  IpAddress address;
  uint8_t prefix_len = 0;

  static core::Result<Cidr> make(const IpAddress& address, uint32_t prefix_len);
  // "10.0.0.0/8", "fd00::/64", or a bare IP meaning a full-length prefix.
  static core::Result<Cidr> parse(std::string_view text);
  // The single address `ip` as a /32 or /128.
  static Cidr host(const IpAddress& ip);

  // IPv4 and IPv6 never match each other, except that an IPv4-mapped IPv6
  // address is compared as the IPv4 address it carries (and an IPv4 address
  // against an IPv6 prefix as its mapped form).
  bool contains(const IpAddress& ip) const;
  uint8_t max_prefix_len() const { return address.is_v4() ? 32 : 128; }
  std::string to_string() const;

  friend bool operator==(const Cidr&, const Cidr&) = default;
};

// A CIDR VIP: a service that owns a whole range on one network.
struct NetworkCidr {
  std::string network;
  Cidr cidr;

  friend bool operator==(const NetworkCidr&, const NetworkCidr&) = default;
};

// A hostname qualified by namespace; the key of a service ("ns/hostname").
struct NamespacedHostname {
  std::string namespace_;
  std::string hostname;

  std::string to_string() const { return namespace_ + "/" + hostname; }
  // Strict "namespace/hostname": both parts non-empty, exactly one '/'.
  static core::Result<NamespacedHostname> parse(std::string_view text);

  friend bool operator==(const NamespacedHostname&, const NamespacedHostname&) = default;
  friend auto operator<=>(const NamespacedHostname&, const NamespacedHostname&) = default;
};

// Where to reach a waypoint or network gateway: a service hostname (resolved
// through the service index) or an address, plus its HBONE port.
struct GatewayAddress {
  std::variant<NamespacedHostname, NetworkAddress> destination;
  uint16_t hbone_mtls_port = 15008;

  const NamespacedHostname* hostname() const {
    return std::get_if<NamespacedHostname>(&destination);
  }
  const NetworkAddress* address() const { return std::get_if<NetworkAddress>(&destination); }

  friend bool operator==(const GatewayAddress&, const GatewayAddress&) = default;
};

}  // namespace ztunnel::state

template <>
struct std::hash<ztunnel::state::NetworkAddress> : ztunnel::state::NetworkAddressHash {};
