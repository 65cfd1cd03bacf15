// Built-in CA: loading or generating the CA, minting workload certificates, caching them.
#include "identity/builtin_ca.h"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fstream>
#include <sstream>

#include "identity/periodic.h"
#include "core/log.h"
#include "tls/certificate.h"
#include "tls/spiffe.h"
#include "tls/x509_builder.h"

namespace ztunnel::identity {
namespace {

namespace asio = boost::asio;
constexpr std::string_view kLogTarget = "identity";

core::Result<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::make_error(fmt::format("cannot open {}", path.string()));
  std::ostringstream out;
  out << in.rdbuf();
  // Explicit: core::Error is also constructible from a string.
  return core::Result<std::string>(boost::system::in_place_value, out.str());
}

tls::X509Ptr up_ref(X509* cert) {
  X509_up_ref(cert);
  return tls::X509Ptr(cert);
}

}  // namespace

core::Result<std::shared_ptr<const BuiltinCa>> BuiltinCa::from_pem(std::string_view cert_pem,
                                                                   std::string_view key_pem) {
  auto certs = tls::parse_pem_certificates(cert_pem);
  if (!certs) return core::make_error("CA certificate: " + certs.error().message);
  auto key = tls::parse_pem_private_key(key_pem);
  if (!key) return core::make_error("CA key: " + key.error().message);
  X509* cert = certs->front().get();
  if (!X509_check_private_key(cert, key->get())) {
    ERR_clear_error();
    return core::make_error("CA key does not match the CA certificate");
  }
  if (X509_check_ca(cert) == 0) return core::make_error("CA certificate is not a CA");
  if ((X509_get_extension_flags(cert) & EXFLAG_KUSAGE) &&
      !(X509_get_key_usage(cert) & KU_KEY_CERT_SIGN)) {
    return core::make_error("CA certificate's keyUsage does not allow keyCertSign");
  }
  std::shared_ptr<BuiltinCa> ca(new BuiltinCa());
  ca->root_ = up_ref(certs->back().get());
  ca->cert_ = std::move(certs->front());
  for (size_t i = 1; i < certs->size(); ++i) ca->chain_above_.push_back(std::move((*certs)[i]));
  ca->key_ = std::move(*key);
  return std::shared_ptr<const BuiltinCa>(std::move(ca));
}

core::Result<std::shared_ptr<const BuiltinCa>> BuiltinCa::from_files(
    const std::filesystem::path& cert, const std::filesystem::path& key) {
  auto cert_pem = read_file(cert);
  if (!cert_pem) return cert_pem.error();
  auto key_pem = read_file(key);
  if (!key_pem) return key_pem.error();
  auto ca = from_pem(*cert_pem, *key_pem);
  if (!ca) return core::make_error(fmt::format("{}: {}", cert.string(), ca.error().message));
  return ca;
}

core::Result<std::shared_ptr<const BuiltinCa>> BuiltinCa::generate(
    std::string_view trust_domain, std::chrono::system_clock::time_point now,
    std::chrono::seconds validity) {
  auto key = tls::generate_key(tls::KeyType::kEcdsaP256);
  if (!key) return key.error();
  tls::CertificateFields f;
  f.common_name = "ztunnel-cpp CA";
  f.organization = std::string(trust_domain);
  f.is_ca = true;
  f.key_usage = tls::kKeyCertSign | tls::kCrlSign | tls::kDigitalSignature;
  f.server_auth = f.client_auth = false;
  f.not_before = now - kBackdate;
  f.not_after = now + validity;
  auto cert = tls::build_certificate(f, **key, nullptr, **key);
  if (!cert) return cert.error();
  std::shared_ptr<BuiltinCa> ca(new BuiltinCa());
  ca->root_ = up_ref(cert->get());
  ca->cert_ = std::move(*cert);
  ca->key_ = std::move(*key);
  return std::shared_ptr<const BuiltinCa>(std::move(ca));
}

core::Result<CertPtr> BuiltinCa::issue(const state::Identity& id, std::chrono::seconds ttl,
                                       std::chrono::system_clock::time_point now) const {
  std::string spiffe_id = id.to_spiffe();
  if (auto strict = tls::parse_spiffe_id(spiffe_id); !strict || *strict != id) {
    return core::make_error(fmt::format("refusing to issue for {}: {}", spiffe_id,
                                        strict ? "does not round-trip" : strict.error().message));
  }
  if (ttl <= std::chrono::seconds(0)) return core::make_error("certificate TTL must be positive");
  auto ca_expiry = tls::not_after(*cert_);
  auto expiry = std::min(now + ttl, ca_expiry);
  if (expiry <= now) return core::make_error("the CA certificate has expired");
  if (now + ttl > ca_expiry) {
    log::warn(kLogTarget, "certificate for {} cut to the CA's expiry", spiffe_id);
  }

  auto key = tls::generate_key(tls::KeyType::kEcdsaP256);
  if (!key) return key.error();
  tls::CertificateFields f;
  f.uri_sans = {spiffe_id};
  f.san_critical = true;
  f.key_usage = tls::kDigitalSignature;
  f.not_before = now - kBackdate;
  f.not_after = expiry;
  auto leaf = tls::build_certificate(f, **key, cert_.get(), *key_);
  if (!leaf) return leaf.error();

  // Send the CA (unless it is the root) and everything above it but the root.
  std::vector<tls::X509Ptr> intermediates;
  if (!chain_above_.empty()) {
    intermediates.push_back(up_ref(cert_.get()));
    for (size_t i = 0; i + 1 < chain_above_.size(); ++i) {
      intermediates.push_back(up_ref(chain_above_[i].get()));
    }
  }
  std::vector<tls::X509Ptr> roots;
  roots.push_back(up_ref(root_.get()));
  auto cert = tls::WorkloadCertificate::from_parts(std::move(*leaf), std::move(intermediates),
                                                   std::move(*key), std::move(roots));
  if (!cert) return cert.error();
  return CertPtr(std::move(*cert));
}

std::string BuiltinCa::cert_pem() const {
  std::string out = tls::to_pem(*cert_);
  for (const auto& c : chain_above_) out += tls::to_pem(*c);
  return out;
}

std::string BuiltinCa::key_pem() const { return tls::to_pem(*key_); }

std::string BuiltinCa::root_pem() const { return tls::to_pem(*root_); }

std::shared_ptr<BuiltinCaProvider> BuiltinCaProvider::create(std::shared_ptr<const BuiltinCa> ca,
                                                             std::chrono::seconds ttl,
                                                             Clock clock) {
  return create(
      [ca = std::move(ca)](const state::Identity& id, std::chrono::seconds ttl,
                           std::chrono::system_clock::time_point now) {
        return ca->issue(id, ttl, now);
      },
      ttl, std::move(clock));
}

std::shared_ptr<BuiltinCaProvider> BuiltinCaProvider::create(Issuer issuer,
                                                             std::chrono::seconds ttl,
                                                             Clock clock) {
  return std::shared_ptr<BuiltinCaProvider>(
      new BuiltinCaProvider(std::move(issuer), ttl, std::move(clock)));
}

std::chrono::system_clock::time_point BuiltinCaProvider::now() const {
  return clock_ ? clock_() : std::chrono::system_clock::now();
}

core::Result<CertPtr> BuiltinCaProvider::fetch(const state::Identity& id) {
  {
    std::lock_guard lock(mutex_);
    auto it = certs_.find(id);
    if (it != certs_.end() && now() < it->second->refresh_time()) return it->second;
  }
  return renew(id);
}

core::Result<CertPtr> BuiltinCaProvider::renew(const state::Identity& id) {
  auto now = this->now();
  auto fresh = issuer_(id, ttl_, now);
  CertPtr previous;
  {
    std::lock_guard lock(mutex_);
    auto it = certs_.find(id);
    if (it != certs_.end()) previous = it->second;
    if (!fresh) {
      if (previous && !previous->expired(now)) {
        log::warn(kLogTarget, "renewing {} failed, keeping the current certificate: {}",
                  id.to_spiffe(), fresh.error().message);
        return previous;
      }
      return fresh.error();
    }
    // Another thread renewed while we minted: keep theirs, drop ours.
    if (previous && now < previous->refresh_time()) return previous;
    certs_[id] = *fresh;
  }
  if (previous) {
    log::info(kLogTarget, "renewed certificate for {}", id.to_spiffe());
    notify_rotation(id, *fresh);
  }
  return *fresh;
}

size_t BuiltinCaProvider::renew_due() {
  std::vector<std::pair<state::Identity, CertPtr>> due;
  {
    std::lock_guard lock(mutex_);
    auto now = this->now();
    for (const auto& [id, cert] : certs_) {
      if (now >= cert->refresh_time()) due.emplace_back(id, cert);
    }
  }
  size_t renewed = 0;
  for (const auto& [id, old] : due) {
    auto cert = renew(id);  // on failure it may hand back `old`
    if (cert && *cert != old) ++renewed;
  }
  return renewed;
}

void BuiltinCaProvider::forget(const state::Identity& id) {
  std::lock_guard lock(mutex_);
  certs_.erase(id);
}

void BuiltinCaProvider::start(asio::any_io_executor executor,
                              std::chrono::steady_clock::duration interval) {
  const uint64_t generation = ++generation_;
  run_every(std::move(executor), interval, [weak = weak_from_this(), generation] {
    auto self = weak.lock();
    if (!self || self->generation_ != generation) return false;
    self->renew_due();
    return true;
  });
}

}  // namespace ztunnel::identity
