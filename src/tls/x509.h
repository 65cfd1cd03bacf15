// Read-only helpers over BoringSSL X509 objects: URI SANs, the SPIFFE identity, PEM, times.
#pragma once

#include <openssl/base.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "state/identity.h"
#include "tls/errors.h"

namespace ztunnel::tls {

using X509Ptr = bssl::UniquePtr<X509>;
using KeyPtr = bssl::UniquePtr<EVP_PKEY>;
using TimePoint = std::chrono::system_clock::time_point;

// Every URI SAN of `cert`, in order, as the raw bytes of the IA5String (its
// ASN.1 length, not strlen, so an embedded NUL survives and can be rejected).
// Fails on a SAN extension that does not parse or appears twice: either could
// make two parsers see different names.
Checked<std::vector<std::string>> uri_sans(const X509& cert);

// The SPIFFE identity of a workload leaf: exactly one URI SAN (kNoUriSan,
// kMultipleUriSans), without NUL, parsing under parse_spiffe_id
// (kInvalidSpiffeId). Unlike Istio's ztunnel, which takes the first SAN that
// parses, a second URI SAN is an error: no ambiguity about who the peer is.
Checked<state::Identity> identity_from(const X509& cert);

// All certificates in `pem` (one or more concatenated CERTIFICATE blocks), in
// order. Text outside the blocks is ignored; no block at all is an error, and
// so is a block that does not decode.
core::Result<std::vector<X509Ptr>> parse_pem_certificates(std::string_view pem);

// One private key (PKCS#8, SEC1 EC or PKCS#1 RSA PEM).
core::Result<KeyPtr> parse_pem_private_key(std::string_view pem);

std::string to_pem(const X509& cert);
// PKCS#8, as Istio stores workload keys.
std::string to_pem(const EVP_PKEY& key);

core::Result<TimePoint> to_time_point(const ASN1_TIME& time);
TimePoint not_before(const X509& cert);  // epoch if unparseable
TimePoint not_after(const X509& cert);   // epoch if unparseable

// "CN=...,O=..." or "(empty)", and the serial as hex; for logs and config dumps.
std::string subject_of(const X509& cert);
std::string serial_hex(const X509& cert);

// BoringSSL's X509 getters predate const-correctness; the objects are
// internally locked, so calling them through a const reference is safe.
inline X509* mut(const X509& cert) { return const_cast<X509*>(&cert); }

}  // namespace ztunnel::tls
