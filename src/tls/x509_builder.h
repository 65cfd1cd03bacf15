// Minting keys and X.509 certificates in process (the built-in CA and test fixtures).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "tls/x509.h"

namespace ztunnel::tls {

enum class KeyType { kEcdsaP256, kRsa2048 };

core::Result<KeyPtr> generate_key(KeyType type);

// keyUsage bits, by their RFC 5280 §4.2.1.3 bit number.
enum KeyUsageBits : uint32_t {
  kDigitalSignature = 1u << 0,
  kKeyEncipherment = 1u << 2,
  kKeyCertSign = 1u << 5,
  kCrlSign = 1u << 6,
};

// What goes into a certificate. Values are written as given, without
// validation, so tests can build malformed-on-purpose certificates (two URI
// SANs, an embedded NUL, a CA:TRUE leaf); production callers validate first.
struct CertificateFields {
  std::string common_name;            // empty = empty subject DN, as Istio's CSRs
  std::string organization;           // O=, Istio puts the trust domain in its CA's
  std::vector<std::string> uri_sans;  // raw bytes, length-preserving
  std::vector<std::string> dns_sans;
  // RFC 5280 §4.2.1.6: SAN must be critical when the subject is empty; Istio's
  // boring build always marks it critical.
  bool san_critical = true;
  bool basic_constraints = true;
  bool is_ca = false;
  std::optional<long> path_len;       // only written for a CA
  uint32_t key_usage = kDigitalSignature;  // 0 = no keyUsage extension
  bool server_auth = true;            // extendedKeyUsage; both false = no extension
  bool client_auth = true;
  TimePoint not_before;
  TimePoint not_after;
};

// Builds and signs (SHA-256) a v3 certificate for `subject_key`, with a random
// positive 128-bit serial, subject/authority key identifiers, issued by
// `issuer` (nullptr = self-signed with `signing_key` = subject_key).
core::Result<X509Ptr> build_certificate(const CertificateFields& fields, EVP_PKEY& subject_key,
                                        const X509* issuer, EVP_PKEY& signing_key);

}  // namespace ztunnel::tls
