// Why a TLS handshake or a peer certificate was rejected: one enum, one error category.
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <string>
#include <string_view>
#include <type_traits>

namespace ztunnel::tls {

// Each value is a distinct reason an operator may want to count or alert on;
// `reason_label()` gives the stable metric label.
enum class Errc : int {
  kNoPeerCertificate = 1,
  kMalformedCertificate,     // DER or PEM that does not parse
  kUnknownCa,                // no path to a trusted root (wrong CA, missing intermediate)
  kInvalidChain,             // a path exists but fails (signature, pathLen, purpose/EKU)
  kCertificateExpired,
  kCertificateNotYetValid,
  kLeafIsCa,                 // basicConstraints CA:TRUE on the peer's leaf
  kLeafCanSignCertificates,  // keyCertSign or cRLSign on the peer's leaf
  kNoUriSan,
  kMultipleUriSans,
  kInvalidSpiffeId,          // the one URI SAN is not spiffe://td/ns/NS/sa/SA
  kTrustDomainMismatch,      // inbound: client not in our trust domain
  kIdentityNotExpected,      // outbound: server identity not in the expected list
  kAlpnNotH2,
  kCipherNotAllowed,         // TLS 1.3 ChaCha20 (see context.h for why it can be negotiated)
  kProtocolVersion,          // no TLS version both sides accept
  kHandshakeTimeout,
  kHandshakeFailed,          // anything else: peer alert, garbage instead of TLS, reset
  kInternal,                 // allocation or library failure
};

const boost::system::error_category& tls_category() noexcept;

inline boost::system::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), tls_category()};
}

// Stable snake_case label for metrics and access logs ("unknown_ca").
std::string_view reason_label(Errc e) noexcept;

// A rejection with the precise reason and a human-readable detail naming the
// offending value (the SAN, the X509 error string, the expected identities).
struct Rejection {
  Errc reason = Errc::kInternal;
  std::string detail;

  std::string message() const;
};

[[noreturn]] void throw_exception_from_error(const Rejection& r, const boost::source_location&);

template <class T>
using Checked = boost::system::result<T, Rejection>;

}  // namespace ztunnel::tls

template <>
struct boost::system::is_error_code_enum<ztunnel::tls::Errc> : std::true_type {};
