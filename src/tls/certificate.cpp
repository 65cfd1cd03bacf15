// Loading and validating a workload certificate bundle.
#include "tls/certificate.h"

#include <fmt/format.h>
#include <openssl/err.h>

namespace ztunnel::tls {

core::Result<std::shared_ptr<const WorkloadCertificate>> WorkloadCertificate::from_pem(
    std::string_view chain_pem, std::string_view key_pem, std::string_view roots_pem) {
  auto chain = parse_pem_certificates(chain_pem);
  if (!chain) return core::make_error("certificate chain: " + chain.error().message);
  auto key = parse_pem_private_key(key_pem);
  if (!key) return core::make_error("private key: " + key.error().message);
  auto roots = parse_pem_certificates(roots_pem);
  if (!roots) return core::make_error("trust bundle: " + roots.error().message);
  X509Ptr leaf = std::move(chain->front());
  chain->erase(chain->begin());
  return from_parts(std::move(leaf), std::move(*chain), std::move(*key), std::move(*roots));
}

core::Result<std::shared_ptr<const WorkloadCertificate>> WorkloadCertificate::from_parts(
    X509Ptr leaf, std::vector<X509Ptr> intermediates, KeyPtr key, std::vector<X509Ptr> roots) {
  if (!leaf) return core::make_error("certificate chain is empty");
  if (!key) return core::make_error("private key is missing");
  if (roots.empty()) return core::make_error("trust bundle is empty");
  if (!X509_check_private_key(leaf.get(), key.get())) {
    ERR_clear_error();
    return core::make_error("private key does not match the leaf certificate");
  }
  auto identity = identity_from(*leaf);
  if (!identity) return core::make_error("leaf certificate: " + identity.error().message());

  std::shared_ptr<WorkloadCertificate> cert(new WorkloadCertificate());
  cert->store_.reset(X509_STORE_new());
  if (!cert->store_) return core::make_error("out of memory");
  for (const auto& root : roots) {
    // A duplicate root is harmless; BoringSSL reports it as an error, which we ignore.
    X509_STORE_add_cert(cert->store_.get(), root.get());
  }
  ERR_clear_error();
  auto nb = to_time_point(*X509_get0_notBefore(leaf.get()));
  auto na = to_time_point(*X509_get0_notAfter(leaf.get()));
  if (!nb || !na) return core::make_error("leaf certificate has an unparseable validity period");
  if (*na <= *nb) return core::make_error("leaf certificate's notAfter is not after its notBefore");

  cert->identity_ = std::move(*identity);
  cert->leaf_ = std::move(leaf);
  cert->intermediates_ = std::move(intermediates);
  cert->key_ = std::move(key);
  cert->roots_ = std::move(roots);
  cert->not_before_ = *nb;
  cert->not_after_ = *na;
  return std::shared_ptr<const WorkloadCertificate>(std::move(cert));
}

std::string WorkloadCertificate::chain_pem() const {
  std::string out = to_pem(*leaf_);
  for (const auto& c : intermediates_) out += to_pem(*c);
  return out;
}

std::string WorkloadCertificate::key_pem() const { return to_pem(*key_); }

std::string WorkloadCertificate::roots_pem() const {
  std::string out;
  for (const auto& c : roots_) out += to_pem(*c);
  return out;
}

}  // namespace ztunnel::tls
