// Strict SPIFFE ID parsing: a character whitelist, then an exact path shape.
#include "tls/spiffe.h"

#include <fmt/format.h>

#include <array>
#include <cctype>
#include <string>

namespace ztunnel::tls {
namespace {

bool is_trust_domain_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

bool is_path_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

// Printable rendering for error messages: the input is peer-controlled and may
// hold NULs, control bytes or 2 KiB of junk.
std::string printable(std::string_view text) {
  constexpr std::size_t kMaxShown = 120;
  std::string out;
  for (std::size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (text.size() > kMaxShown) out += fmt::format("...({} bytes)", text.size());
  return out;
}

std::string_view why_not_path_char(char c) {
  if (c == '%') return "percent-encoding is not allowed";
  if (c == '?' || c == '#') return "a query or fragment is not allowed";
  if (c == '\0') return "embedded NUL";
  return "character not allowed in a path segment";
}

}  // namespace

core::Result<state::Identity> parse_spiffe_id(std::string_view text) {
  auto bad = [text](std::string_view why) {
    return core::make_error(
        fmt::format("'{}' is not a valid SPIFFE workload ID: {}", printable(text), why));
  };
  if (text.size() > kMaxSpiffeIdLength) {
    return bad(fmt::format("longer than {} bytes", kMaxSpiffeIdLength));
  }
  constexpr std::string_view kScheme = "spiffe://";
  if (!text.starts_with(kScheme)) return bad("scheme is not spiffe://");
  std::string_view rest = text.substr(kScheme.size());

  auto slash = rest.find('/');
  std::string_view td = rest.substr(0, slash);
  if (td.empty()) return bad("empty trust domain");
  for (char c : td) {
    if (c >= 'A' && c <= 'Z') return bad("trust domain must be lowercase");
    if (c == '%') return bad("percent-encoding is not allowed");
    if (c == ':') return bad("a port is not allowed in the trust domain");
    if (c == '@') return bad("userinfo is not allowed in the trust domain");
    if (!is_trust_domain_char(c)) return bad("character not allowed in the trust domain");
  }
  if (slash == std::string_view::npos) return bad("missing /ns/<ns>/sa/<sa> path");
  std::string_view path = rest.substr(slash);  // starts with '/'

  std::array<std::string_view, 4> segments;
  std::size_t count = 0;
  while (!path.empty()) {
    path.remove_prefix(1);  // the '/'
    auto next = path.find('/');
    std::string_view segment = path.substr(0, next);
    if (count == segments.size()) return bad("extra path segments after /ns/<ns>/sa/<sa>");
    if (segment.empty()) return bad("empty path segment");
    if (segment == "." || segment == "..") return bad("'.' and '..' segments are not allowed");
    if (segment.find("..") != std::string_view::npos) return bad("'..' is not allowed");
    for (char c : segment) {
      if (!is_path_char(c)) return bad(why_not_path_char(c));
    }
    segments[count++] = segment;
    path = next == std::string_view::npos ? std::string_view() : path.substr(next);
  }
  if (count != segments.size() || segments[0] != "ns" || segments[2] != "sa") {
    return bad("path is not /ns/<ns>/sa/<sa>");
  }
  return state::Identity{std::string(td), std::string(segments[1]), std::string(segments[3])};
}

}  // namespace ztunnel::tls
