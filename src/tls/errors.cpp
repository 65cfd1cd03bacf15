// The "ztunnel.tls" error category and the metric labels of its reasons.
#include "tls/errors.h"

#include <fmt/format.h>

#include <stdexcept>

namespace ztunnel::tls {
namespace {

class Category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "ztunnel.tls"; }
  std::string message(int value) const override {
    return std::string(reason_label(static_cast<Errc>(value)));
  }
};

}  // namespace

const boost::system::error_category& tls_category() noexcept {
  static const Category category;
  return category;
}

std::string_view reason_label(Errc e) noexcept {
  switch (e) {
    case Errc::kNoPeerCertificate: return "no_peer_certificate";
    case Errc::kMalformedCertificate: return "malformed_certificate";
    case Errc::kUnknownCa: return "unknown_ca";
    case Errc::kInvalidChain: return "invalid_chain";
    case Errc::kCertificateExpired: return "certificate_expired";
    case Errc::kCertificateNotYetValid: return "certificate_not_yet_valid";
    case Errc::kLeafIsCa: return "leaf_is_ca";
    case Errc::kLeafCanSignCertificates: return "leaf_can_sign_certificates";
    case Errc::kNoUriSan: return "no_uri_san";
    case Errc::kMultipleUriSans: return "multiple_uri_sans";
    case Errc::kInvalidSpiffeId: return "invalid_spiffe_id";
    case Errc::kTrustDomainMismatch: return "trust_domain_mismatch";
    case Errc::kIdentityNotExpected: return "identity_not_expected";
    case Errc::kAlpnNotH2: return "alpn_not_h2";
    case Errc::kCipherNotAllowed: return "cipher_not_allowed";
    case Errc::kProtocolVersion: return "protocol_version";
    case Errc::kHandshakeTimeout: return "handshake_timeout";
    case Errc::kHandshakeFailed: return "handshake_failed";
    case Errc::kInternal: return "internal";
  }
  return "unknown";
}

std::string Rejection::message() const {
  if (detail.empty()) return std::string(reason_label(reason));
  return fmt::format("{}: {}", reason_label(reason), detail);
}

void throw_exception_from_error(const Rejection& r, const boost::source_location&) {
  throw std::runtime_error(r.message());
}

}  // namespace ztunnel::tls
