// A small in-process CA minting short-lived SPIFFE workload certificates, and a provider on it.
//
// For deployments without istiod (the standalone two-VM tunnel, tests): like
// Istio's self-signed CA (FAKE_CA / the citadel self-signed root), either
// loaded from a CA certificate + key or generated on the spot.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "identity/provider.h"
#include "tls/x509.h"

namespace ztunnel::identity {

inline constexpr std::chrono::seconds kDefaultWorkloadTtl = std::chrono::hours(24);
inline constexpr std::chrono::seconds kDefaultCaValidity = std::chrono::hours(24 * 365 * 10);
// Issued certificates start this far in the past, to absorb clock skew
// between the CA and the peers that check them.
inline constexpr std::chrono::seconds kBackdate = std::chrono::minutes(1);

// Immutable; issue() may be called from any thread.
class BuiltinCa {
 public:
  // `cert_pem`: the CA certificate, optionally followed by the chain above it
  // (the last certificate is the root issued certificates will trust).
  // `key_pem`: the CA's private key. The certificate must be a CA that may
  // sign certificates, and the key must match it.
  static core::Result<std::shared_ptr<const BuiltinCa>> from_pem(std::string_view cert_pem,
                                                                 std::string_view key_pem);
  static core::Result<std::shared_ptr<const BuiltinCa>> from_files(
      const std::filesystem::path& cert, const std::filesystem::path& key);

  // A fresh self-signed ECDSA P-256 root: CN "ztunnel-cpp CA", O = trust domain.
  static core::Result<std::shared_ptr<const BuiltinCa>> generate(
      std::string_view trust_domain, std::chrono::system_clock::time_point now,
      std::chrono::seconds validity = kDefaultCaValidity);

  // A workload certificate for `id`: new ECDSA P-256 key, empty subject, one
  // critical URI SAN = the SPIFFE ID, CA:FALSE, digitalSignature, serverAuth +
  // clientAuth, random 128-bit serial, valid [now - kBackdate, now + ttl]
  // (cut at the CA's own expiry). Refuses identities our verifier would reject.
  core::Result<CertPtr> issue(const state::Identity& id, std::chrono::seconds ttl,
                              std::chrono::system_clock::time_point now) const;

  X509* certificate() const { return cert_.get(); }
  std::string cert_pem() const;  // the CA certificate and the chain above it
  std::string key_pem() const;
  std::string root_pem() const;  // what issued certificates trust

 private:
  BuiltinCa() = default;
  tls::X509Ptr cert_;
  tls::KeyPtr key_;
  std::vector<tls::X509Ptr> chain_above_;  // certificates above cert_, nearest first
  tls::X509Ptr root_;
};

// Caches one certificate per identity, renewing it at half-life (lazily on
// fetch(), or from a timer with start()). The old certificate keeps being
// served until a new one exists; a failed renewal is retried on the next
// fetch or tick while the old one is still valid.
//
// Threading: fetch(), renew_due() and forget() may be called from any thread.
// Minting happens outside the lock; rotation callbacks run on the renewing thread.
class BuiltinCaProvider final : public CertificateProvider,
                                public std::enable_shared_from_this<BuiltinCaProvider> {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;
  // Mints a certificate (BuiltinCa::issue); a seam for tests and other CAs.
  using Issuer = std::function<core::Result<CertPtr>(
      const state::Identity&, std::chrono::seconds ttl, std::chrono::system_clock::time_point now)>;

  static std::shared_ptr<BuiltinCaProvider> create(std::shared_ptr<const BuiltinCa> ca,
                                                   std::chrono::seconds ttl = kDefaultWorkloadTtl,
                                                   Clock clock = {});
  static std::shared_ptr<BuiltinCaProvider> create(Issuer issuer,
                                                   std::chrono::seconds ttl = kDefaultWorkloadTtl,
                                                   Clock clock = {});

  // Issues on first use; replaces the cached certificate once past its refresh time.
  core::Result<CertPtr> fetch(const state::Identity& id) override;

  // Renews every cached certificate past its refresh time; returns how many.
  size_t renew_due();
  // Drops the cached certificate (the workload left this node).
  void forget(const state::Identity& id);

  // Calls renew_due() every `interval` on `executor` until stop() or destruction.
  void start(boost::asio::any_io_executor executor,
             std::chrono::steady_clock::duration interval = std::chrono::seconds(10));
  void stop() { ++generation_; }

 private:
  BuiltinCaProvider(Issuer issuer, std::chrono::seconds ttl, Clock clock)
      : issuer_(std::move(issuer)), ttl_(ttl), clock_(std::move(clock)) {}
  std::chrono::system_clock::time_point now() const;
  // Mints and installs a certificate for `id` unless a fresh one appeared meanwhile.
  core::Result<CertPtr> renew(const state::Identity& id);

  const Issuer issuer_;
  const std::chrono::seconds ttl_;
  const Clock clock_;
  std::atomic<uint64_t> generation_{0};
  std::mutex mutex_;
  std::map<state::Identity, CertPtr> certs_;  // guarded by mutex_
};

}  // namespace ztunnel::identity
