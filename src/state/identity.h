// A workload's SPIFFE identity: spiffe://<trust domain>/ns/<namespace>/sa/<service account>.
#pragma once

#include <string>
#include <string_view>

#include "core/error.h"

namespace ztunnel::state {

struct Identity {
  std::string trust_domain;
  std::string namespace_;
  std::string service_account;

  std::string to_spiffe() const;
  // The same text appended to `out`: for log lines built in a reused buffer.
  void append_spiffe(std::string& out) const;

  // Accepts exactly "spiffe://TD/ns/NS/sa/SA": the scheme, five path segments
  // and the literal "ns" and "sa". Like Istio, empty TD/NS/SA segments are
  // accepted (local config without defaults produces them); anything else,
  // including extra segments, a query or a fragment, is rejected.
  static core::Result<Identity> parse(std::string_view text);

  friend bool operator==(const Identity&, const Identity&) = default;
  friend auto operator<=>(const Identity&, const Identity&) = default;
};

}  // namespace ztunnel::state
