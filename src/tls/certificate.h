// A workload's certificate: leaf + intermediates, private key, trust bundle, identity.
#pragma once

#include <openssl/x509.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "state/identity.h"
#include "tls/x509.h"

namespace ztunnel::tls {

// Immutable once built and shared as shared_ptr<const WorkloadCertificate>;
// rotation builds a new one. Every member is safe to use from any thread
// (BoringSSL locks the lazily-filled caches inside X509 and X509_STORE).
class WorkloadCertificate {
 public:
  // `chain_pem`: the leaf first, then intermediates (Istio's cert-chain.pem).
  // `roots_pem`: one or more concatenated trust anchors (root-cert.pem; during
  // a root rotation it holds the old and the new root, and both are trusted).
  // The key must match the leaf, and the leaf must carry exactly one valid
  // SPIFFE URI SAN. Validity is not checked here: an expired certificate still
  // loads (callers decide; peers will reject it).
  static core::Result<std::shared_ptr<const WorkloadCertificate>> from_pem(
      std::string_view chain_pem, std::string_view key_pem, std::string_view roots_pem);

  static core::Result<std::shared_ptr<const WorkloadCertificate>> from_parts(
      X509Ptr leaf, std::vector<X509Ptr> intermediates, KeyPtr key, std::vector<X509Ptr> roots);

  const state::Identity& identity() const { return identity_; }
  X509* leaf() const { return leaf_.get(); }
  const std::vector<X509Ptr>& intermediates() const { return intermediates_; }
  EVP_PKEY* private_key() const { return key_.get(); }
  const std::vector<X509Ptr>& roots() const { return roots_; }
  // The roots as a verification store, built once and shared by every handshake.
  X509_STORE* trust_store() const { return store_.get(); }

  TimePoint not_before() const { return not_before_; }
  TimePoint not_after() const { return not_after_; }
  // Half-life, as Istio's ztunnel renews: not_before + (not_after - not_before) / 2.
  TimePoint refresh_time() const { return not_before_ + (not_after_ - not_before_) / 2; }
  bool expired(TimePoint now) const { return now >= not_after_; }

  // Istio's file layout: cert-chain.pem (leaf + intermediates), key.pem, root-cert.pem.
  std::string chain_pem() const;
  std::string key_pem() const;
  std::string roots_pem() const;

 private:
  WorkloadCertificate() = default;

  state::Identity identity_;
  X509Ptr leaf_;
  std::vector<X509Ptr> intermediates_;
  KeyPtr key_;
  std::vector<X509Ptr> roots_;
  bssl::UniquePtr<X509_STORE> store_;
  TimePoint not_before_;
  TimePoint not_after_;
};

}  // namespace ztunnel::tls
