// In-process CAs and workload certificates, valid or with a chosen defect, for TLS tests.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

#include "tls/certificate.h"
#include "tls/errors.h"
#include "tls/x509.h"
#include "tls/x509_builder.h"

namespace ztunnel::testing {

inline constexpr std::string_view kTrustDomain = "cluster.local";

// "spiffe://<td>/ns/<ns>/sa/<sa>"
std::string spiffe(std::string_view ns, std::string_view sa,
                   std::string_view trust_domain = kTrustDomain);

// What can be wrong with a leaf by itself. Chain-level defects (wrong CA,
// missing intermediate, wrong order) come from how the chain is assembled.
enum class Defect {
  kNone,
  kTwoUriSans,            // the requested ID plus a second spiffe:// URI
  kNoUriSan,              // only a DNS SAN
  kNonSpiffeUri,          // https://... instead of spiffe://...
  kExtraPathSegment,      // .../sa/<sa>/extra
  kDotDot,                // .../ns/../sa/<sa>
  kPercentEncoding,       // .../ns/a%2Fb/sa/<sa>
  kUppercaseTrustDomain,  // spiffe://Cluster.Local/...
  kEmbeddedNul,           // the ID, then "\0.evil" (ASN.1 length > strlen)
  kOversizedSan,          // a 3000-byte service account
  kCaLeaf,                // basicConstraints CA:TRUE
  kKeyCertSignLeaf,       // keyUsage keyCertSign on a CA:FALSE leaf
  kExpired,               // validity ended a day ago
  kNotYetValid,           // validity starts tomorrow
  kRsaKey,                // RSA-2048 instead of P-256 (not a defect for our verifier)
};

std::string_view defect_name(Defect defect);

// A leaf certificate and its key.
struct Leaf {
  tls::X509Ptr cert;
  tls::KeyPtr key;
  std::string cert_pem() const { return tls::to_pem(*cert); }
  std::string key_pem() const { return tls::to_pem(*key); }
};

// A root CA or an intermediate under one. Cheap to copy (shared state).
class TestCa {
 public:
  static TestCa root(std::string common_name = "ztunnel test root");
  // An intermediate CA signed by this CA (pathLen unset).
  TestCa intermediate(std::string common_name = "ztunnel test intermediate") const;
  TestCa intermediate_with(tls::CertificateFields fields) const;

  // The default workload leaf fields: one URI SAN, empty subject, CA:FALSE,
  // digitalSignature, serverAuth+clientAuth, valid from 1 h ago for 24 h.
  static tls::CertificateFields leaf_fields(std::string_view spiffe_id);

  Leaf issue(std::string_view spiffe_id, Defect defect = Defect::kNone) const;
  Leaf issue(const tls::CertificateFields& fields,
             tls::KeyType key_type = tls::KeyType::kEcdsaP256) const;

  X509* cert() const { return state_->cert.get(); }
  EVP_PKEY* key() const { return state_->key.get(); }
  X509* root_cert() const { return state_->root.get(); }
  // Certificates a leaf of this CA sends after itself: this CA (if not the
  // root) and the intermediates above it, nearest first.
  std::vector<tls::X509Ptr> chain_above_leaf() const;
  std::string root_pem() const { return tls::to_pem(*state_->root); }

 private:
  struct State {
    tls::X509Ptr cert;
    tls::KeyPtr key;
    tls::X509Ptr root;
    std::vector<tls::X509Ptr> intermediates;  // this CA first, if it is one
  };
  explicit TestCa(std::shared_ptr<const State> state) : state_(std::move(state)) {}
  std::shared_ptr<const State> state_;
};

tls::X509Ptr copy(X509* cert);

// A WorkloadCertificate for `spiffe_id` issued by `issuer` (sending its
// intermediates unless `send_intermediates` is false), trusting `trust`'s root.
std::shared_ptr<const tls::WorkloadCertificate> workload(const TestCa& issuer,
                                                         std::string_view spiffe_id,
                                                         const TestCa& trust,
                                                         bool send_intermediates = true);
inline std::shared_ptr<const tls::WorkloadCertificate> workload(const TestCa& ca,
                                                                std::string_view spiffe_id) {
  return workload(ca, spiffe_id, ca);
}

// A fresh directory under the system temp dir, removed with its contents.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path write(std::string_view name, std::string_view content) const;

 private:
  std::filesystem::path path_;
};

}  // namespace ztunnel::testing

namespace doctest {

// Print a tls::Checked<T> as "ok" or its rejection; Boost's own printer needs
// every T to be streamable.
template <class T>
struct StringMaker<boost::system::result<T, ztunnel::tls::Rejection>> {
  static String convert(const boost::system::result<T, ztunnel::tls::Rejection>& r) {
    if (r) return "ok";
    return String(("rejected: " + r.error().message()).c_str());
  }
};

}  // namespace doctest
