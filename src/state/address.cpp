// Parsing, printing, hashing and prefix matching for mesh addresses.
#include "state/address.h"

#include <fmt/format.h>

#include <array>
#include <charconv>

namespace ztunnel::state {

namespace ip = boost::asio::ip;

IpAddress canonical_ip(const IpAddress& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return ip::make_address_v4(ip::v4_mapped, a.to_v6());
  }
  return a;
}

core::Result<IpAddress> ip_from_bytes(std::string_view bytes, std::string_view field) {
  if (bytes.size() == 4) {
    ip::address_v4::bytes_type b;
    std::copy(bytes.begin(), bytes.end(), reinterpret_cast<char*>(b.data()));
    return IpAddress(ip::address_v4(b));
  }
  if (bytes.size() == 16) {
    ip::address_v6::bytes_type b;
    std::copy(bytes.begin(), bytes.end(), reinterpret_cast<char*>(b.data()));
    return IpAddress(ip::address_v6(b));
  }
  return core::make_error(
      fmt::format("{}: an IP address must be 4 or 16 bytes, got {}", field, bytes.size()));
}

std::string NetworkAddress::to_string() const { return network + "/" + ip.to_string(); }

core::Result<NetworkAddress> NetworkAddress::parse(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    return core::make_error(fmt::format("'{}' is not network/IP", text));
  }
  boost::system::error_code ec;
  auto addr = ip::make_address(std::string(text.substr(slash + 1)), ec);
  if (ec) return core::make_error(fmt::format("'{}' is not network/IP: bad IP", text));
  return NetworkAddress{std::string(text.substr(0, slash)), addr};
}

std::size_t NetworkAddressHash::operator()(const NetworkAddress& a) const noexcept {
  std::size_t h = std::hash<std::string>{}(a.network);
  auto mix = [&h](std::size_t v) { h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
  if (a.ip.is_v4()) {
    mix(a.ip.to_v4().to_uint());
  } else {
    auto b = a.ip.to_v6().to_bytes();
    std::string_view view(reinterpret_cast<const char*>(b.data()), b.size());
    mix(std::hash<std::string_view>{}(view));
  }
  return h;
}

core::Result<Cidr> Cidr::make(const IpAddress& address, uint32_t prefix_len) {
  uint32_t max = address.is_v4() ? 32 : 128;
  if (prefix_len > max) {
    return core::make_error(
        fmt::format("prefix length {} is beyond {} for {}", prefix_len, max, address.to_string()));
  }
  return Cidr{address, static_cast<uint8_t>(prefix_len)};
}

Cidr Cidr::host(const IpAddress& ip) {
  return Cidr{ip, static_cast<uint8_t>(ip.is_v4() ? 32 : 128)};
}

core::Result<Cidr> Cidr::parse(std::string_view text) {
  auto slash = text.find('/');
  boost::system::error_code ec;
  auto addr = ip::make_address(std::string(text.substr(0, slash)), ec);
  if (ec) return core::make_error(fmt::format("'{}' is not an IP or CIDR", text));
  if (slash == std::string_view::npos) return host(addr);
  auto len_text = text.substr(slash + 1);
  uint32_t len = 0;
  auto [end, err] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
  if (err != std::errc() || end != len_text.data() + len_text.size() || len_text.empty()) {
    return core::make_error(fmt::format("'{}' has a bad prefix length", text));
  }
  return make(addr, len);
}

namespace {

// First `bits` bits of two equally long byte strings are equal.
template <std::size_t N>
bool prefix_equal(const std::array<unsigned char, N>& a, const std::array<unsigned char, N>& b,
                  unsigned bits) {
  if (bits > N * 8) bits = N * 8;
  std::size_t whole = bits / 8;
  for (std::size_t i = 0; i < whole; ++i) {
    if (a[i] != b[i]) return false;
  }
  unsigned rest = bits % 8;
  if (rest == 0) return true;
  auto mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

}  // namespace

bool Cidr::contains(const IpAddress& candidate) const {
  if (address.is_v4()) {
    IpAddress c = canonical_ip(candidate);
    if (!c.is_v4()) return false;
    return prefix_equal(address.to_v4().to_bytes(), c.to_v4().to_bytes(), prefix_len);
  }
  ip::address_v6 c =
      candidate.is_v4() ? ip::make_address_v6(ip::v4_mapped, candidate.to_v4()) : candidate.to_v6();
  return prefix_equal(address.to_v6().to_bytes(), c.to_bytes(), prefix_len);
}

std::string Cidr::to_string() const {
  return fmt::format("{}/{}", address.to_string(), prefix_len);
}

core::Result<NamespacedHostname> NamespacedHostname::parse(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size() ||
      text.find('/', slash + 1) != std::string_view::npos) {
    return core::make_error(fmt::format("'{}' is not namespace/hostname", text));
  }
  return NamespacedHostname{std::string(text.substr(0, slash)),
                            std::string(text.substr(slash + 1))};
}

}  // namespace ztunnel::state
