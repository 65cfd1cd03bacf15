// HboneAddress formatting and strict :authority parsing.
#include "proxy/hbone_address.h"

#include <fmt/format.h>

#include <boost/asio/ip/address.hpp>

#include <charconv>

namespace ztunnel::proxy {

namespace {

constexpr std::size_t kMaxHostnameLength = 253;  // RFC 1035 limits
constexpr std::size_t kMaxLabelLength = 63;

core::Error bad_authority(std::string_view authority, std::string_view why) {
  return core::make_error(fmt::format("invalid CONNECT authority \"{}\": {}", authority, why));
}

// Decimal digits only (no sign, no spaces), 1..65535.
bool parse_port(std::string_view text, uint16_t& port) {
  if (text.empty() || text.size() > 5) return false;
  uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value == 0 || value > 65535) return false;
  port = static_cast<uint16_t>(value);
  return true;
}

bool is_label_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

// A DNS name: dot-separated non-empty labels of letters, digits, '-' and '_'.
bool valid_hostname(std::string_view host) {
  if (host.empty() || host.size() > kMaxHostnameLength) return false;
  std::size_t label = 0;
  for (char c : host) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (is_label_char(c)) {
      if (++label > kMaxLabelLength) return false;
    } else {
      return false;
    }
  }
  return label != 0;  // no trailing dot
}

bool looks_numeric(std::string_view host) {
  return host.find_first_not_of("0123456789.") == std::string_view::npos;
}

}  // namespace

std::string format_endpoint(const tcp::endpoint& endpoint) {
  std::string out;
  append_endpoint(out, endpoint);
  return out;
}

void append_endpoint(std::string& out, const tcp::endpoint& endpoint) {
  const auto& ip = endpoint.address();
  if (ip.is_v6()) {
    out += '[';
    out += ip.to_string();
    out += ']';
  } else {
    // "255.255.255.255" at most, built on the stack and appended once.
    char text[16];
    std::size_t size = 0;
    const auto bytes = ip.to_v4().to_bytes();
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      const unsigned octet = bytes[i];
      if (i != 0) text[size++] = '.';
      if (octet >= 100) text[size++] = static_cast<char>('0' + octet / 100);
      if (octet >= 10) text[size++] = static_cast<char>('0' + octet / 10 % 10);
      text[size++] = static_cast<char>('0' + octet % 10);
    }
    out.append(text, size);
  }
  char port[8] = {':'};
  out.append(port, std::to_chars(port + 1, port + sizeof port, endpoint.port()).ptr);
}

uint16_t HboneAddress::port() const {
  if (const auto* e = endpoint()) return e->port();
  return host_port()->port;
}

std::string HboneAddress::to_string() const {
  if (const auto* e = endpoint()) return format_endpoint(*e);
  return fmt::format("{}:{}", host_port()->host, host_port()->port);
}

core::Result<HboneAddress> parse_authority(std::string_view authority) {
  if (authority.empty()) return bad_authority(authority, "empty");
  for (char c : authority) {
    // Controls, spaces and non-ASCII never belong in an authority.
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      return bad_authority(authority, "contains a space, control or non-ASCII character");
    }
  }
  if (authority.find('@') != std::string_view::npos) {
    return bad_authority(authority, "userinfo is not allowed");
  }

  std::string_view host;
  std::string_view port_text;
  bool bracketed = authority.front() == '[';
  if (bracketed) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return bad_authority(authority, "unbalanced '['");
    host = authority.substr(1, close - 1);
    std::string_view rest = authority.substr(close + 1);
    if (rest.empty() || rest.front() != ':') {
      return bad_authority(authority, "expected ':port' after ']'");
    }
    port_text = rest.substr(1);
  } else {
    auto colon = authority.rfind(':');
    if (colon == std::string_view::npos) return bad_authority(authority, "missing port");
    host = authority.substr(0, colon);
    port_text = authority.substr(colon + 1);
    if (host.find_first_of(":[]") != std::string_view::npos) {
      return bad_authority(authority, "an IPv6 address must be in brackets");
    }
  }

  uint16_t port = 0;
  if (!parse_port(port_text, port)) return bad_authority(authority, "port must be 1..65535");
  if (host.empty()) return bad_authority(authority, "empty host");

  if (bracketed) {
    // Zone ids are meaningful only on the sender's host.
    if (host.find('%') != std::string_view::npos) {
      return bad_authority(authority, "IPv6 zone ids are not allowed");
    }
    boost::system::error_code ec;
    auto v6 = boost::asio::ip::make_address_v6(std::string(host), ec);
    if (ec) return bad_authority(authority, "not an IPv6 address in brackets");
    return HboneAddress::socket(tcp::endpoint(v6, port));
  }

  boost::system::error_code ec;
  auto v4 = boost::asio::ip::make_address_v4(std::string(host), ec);
  if (!ec) return HboneAddress::socket(tcp::endpoint(v4, port));
  // "1.2.3.256" or "010.1.1.1" is a broken address, not a hostname.
  if (looks_numeric(host)) return bad_authority(authority, "malformed IPv4 address");
  if (!valid_hostname(host)) return bad_authority(authority, "malformed hostname");
  return HboneAddress::hostname(std::string(host), port);
}

}  // namespace ztunnel::proxy
