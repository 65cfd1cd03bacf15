// Chain building via X509_verify_cert, then the SPIFFE leaf rules.
#include "tls/verify.h"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <string>

namespace ztunnel::tls {
namespace {

Rejection chain_rejection(int err, int depth) {
  std::string what = fmt::format("{} (at depth {})", X509_verify_cert_error_string(err), depth);
  switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return {Errc::kCertificateExpired, std::move(what)};
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return {Errc::kCertificateNotYetValid, std::move(what)};
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
      return {Errc::kUnknownCa, std::move(what)};
    default:
      return {Errc::kInvalidChain, std::move(what)};
  }
}

// On success, the window in which every certificate on the built path is valid.
Checked<std::pair<TimePoint, TimePoint>> verify_chain(std::span<X509* const> chain,
                                                      const VerifyPolicy& policy) {
  bssl::UniquePtr<STACK_OF(X509)> untrusted(sk_X509_new_null());
  bssl::UniquePtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  if (!untrusted || !ctx) return Rejection{Errc::kInternal, "out of memory"};
  // Intermediates may arrive in any order (RFC 8446 §4.4.2); X509_verify_cert
  // builds the path from the set. Only the first certificate is the leaf.
  for (X509* c : chain.subspan(1)) {
    if (!sk_X509_push(untrusted.get(), c)) return Rejection{Errc::kInternal, "out of memory"};
    X509_up_ref(c);
  }
  if (!X509_STORE_CTX_init(ctx.get(), policy.trust_store, chain.front(), untrusted.get()) ||
      !X509_STORE_CTX_set_default(
          ctx.get(), policy.peer_role == PeerRole::kClient ? "ssl_client" : "ssl_server")) {
    ERR_clear_error();
    return Rejection{Errc::kInternal, "cannot set up X509 verification"};
  }
  X509_STORE_CTX_set_time(ctx.get(), 0, std::chrono::system_clock::to_time_t(policy.now));
  if (X509_verify_cert(ctx.get()) != 1) {
    ERR_clear_error();
    return chain_rejection(X509_STORE_CTX_get_error(ctx.get()),
                           X509_STORE_CTX_get_error_depth(ctx.get()));
  }
  std::pair<TimePoint, TimePoint> window{TimePoint::min(), TimePoint::max()};
  STACK_OF(X509)* path = X509_STORE_CTX_get0_chain(ctx.get());
  for (size_t i = 0; path != nullptr && i < sk_X509_num(path); ++i) {
    const X509& c = *sk_X509_value(path, i);
    window.first = std::max(window.first, not_before(c));
    window.second = std::min(window.second, not_after(c));
  }
  return window;
}

Checked<void> check_leaf_is_end_entity(X509* leaf) {
  uint32_t flags = X509_get_extension_flags(leaf);
  if (flags & EXFLAG_INVALID) {
    return Rejection{Errc::kMalformedCertificate, "leaf has invalid or duplicate extensions"};
  }
  if (flags & EXFLAG_CA) return Rejection{Errc::kLeafIsCa, "leaf has basicConstraints CA:TRUE"};
  if (flags & EXFLAG_KUSAGE) {
    uint32_t usage = X509_get_key_usage(leaf);
    if (usage & KU_KEY_CERT_SIGN) {
      return Rejection{Errc::kLeafCanSignCertificates, "leaf has keyUsage keyCertSign"};
    }
    if (usage & KU_CRL_SIGN) {
      return Rejection{Errc::kLeafCanSignCertificates, "leaf has keyUsage cRLSign"};
    }
  }
  // Catches what the flags above do not: a v1 self-signed certificate, which
  // X509 treats as a root.
  if (X509_check_ca(leaf) != 0) return Rejection{Errc::kLeafIsCa, "leaf is usable as a CA"};
  return {};
}

std::string join_identities(std::span<const state::Identity> ids) {
  std::string out;
  for (const auto& id : ids) {
    if (!out.empty()) out += ", ";
    out += id.to_spiffe();
  }
  return out.empty() ? "(none)" : out;
}

}  // namespace

Checked<VerifiedChain> verify_chain_identity(std::span<X509* const> chain,
                                             const VerifyPolicy& policy) noexcept {
  if (chain.empty() || chain.front() == nullptr) {
    return Rejection{Errc::kNoPeerCertificate, "peer presented no certificate"};
  }
  if (policy.trust_store == nullptr) return Rejection{Errc::kInternal, "no trust bundle"};
  auto window = verify_chain(chain, policy);
  if (!window) return window.error();
  X509* leaf = chain.front();
  if (auto ok = check_leaf_is_end_entity(leaf); !ok) return ok.error();
  auto identity = identity_from(*leaf);
  if (!identity) return identity.error();
  return VerifiedChain{std::move(*identity), window->first, window->second};
}

Checked<void> check_peer_identity(const state::Identity& identity,
                                  const VerifyPolicy& policy) noexcept {
  if (policy.peer_role == PeerRole::kClient) {
    if (identity.trust_domain != policy.local_trust_domain) {
      return Rejection{Errc::kTrustDomainMismatch,
                       fmt::format("client {} is not in trust domain {}", identity.to_spiffe(),
                                   policy.local_trust_domain)};
    }
  } else if (std::find(policy.expected.begin(), policy.expected.end(), identity) ==
             policy.expected.end()) {
    // Same wording as Istio's ztunnel so operators can grep for it.
    return Rejection{Errc::kIdentityNotExpected,
                     fmt::format("peer did not present the expected SAN ({}), got {}",
                                 join_identities(policy.expected), identity.to_spiffe())};
  }
  return {};
}

Checked<state::Identity> verify_peer_chain(std::span<X509* const> chain,
                                           const VerifyPolicy& policy) noexcept {
  auto verified = verify_chain_identity(chain, policy);
  if (!verified) return verified.error();
  if (auto ok = check_peer_identity(verified->identity, policy); !ok) return ok.error();
  return std::move(verified->identity);
}

std::optional<state::Identity> VerifiedChainCache::find(const Key& key, TimePoint now) const {
  std::lock_guard lock(mutex_);
  auto it = chains_.find(key);
  if (it == chains_.end() || now < it->second.not_before || now >= it->second.not_after) {
    return std::nullopt;
  }
  return it->second.identity;
}

void VerifiedChainCache::insert(const Key& key, VerifiedChain chain) {
  std::lock_guard lock(mutex_);
  // Full: start over rather than track recency; the cost of a miss is one
  // verification, and live peers refill the cache at once.
  if (chains_.size() >= kCapacity) chains_.clear();
  chains_.insert_or_assign(key, std::move(chain));
}

std::size_t VerifiedChainCache::size() const {
  std::lock_guard lock(mutex_);
  return chains_.size();
}

}  // namespace ztunnel::tls
