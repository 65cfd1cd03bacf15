// Strict parsing of the SPIFFE ID carried in a peer certificate's URI SAN.
#pragma once

#include <cstddef>
#include <string_view>

#include "core/error.h"
#include "state/identity.h"

namespace ztunnel::tls {

// SPIFFE ID spec §2.3: a SPIFFE ID is at most 2048 bytes.
inline constexpr std::size_t kMaxSpiffeIdLength = 2048;

// Accepts only spiffe://<td>/ns/<ns>/sa/<sa> as SPIFFE X509-SVID §5.2 and the
// SPIFFE ID spec allow it, minus everything a peer could use to smuggle a
// second meaning past a string compare:
//   - the scheme is exactly "spiffe://" (lowercase);
//   - the trust domain is non-empty, [a-z0-9._-] only (so no uppercase, port,
//     userinfo or percent-encoding);
//   - the path is exactly /ns/<ns>/sa/<sa>: non-empty segments of
//     [A-Za-z0-9._-], never "." or "..", no ".." anywhere, no '%', '?', '#';
//   - at most kMaxSpiffeIdLength bytes; no NUL (outside the character set).
// state::Identity::parse is the lenient form for configuration input; this one
// is for bytes a peer controls.
core::Result<state::Identity> parse_spiffe_id(std::string_view text);

}  // namespace ztunnel::tls
