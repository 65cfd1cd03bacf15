// SPIFFE peer verification: the one place that decides whether a peer chain is acceptable.
#pragma once

#include <openssl/x509.h>

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>

#include "state/identity.h"
#include "tls/errors.h"
#include "tls/x509.h"

namespace ztunnel::tls {

// Which side of the handshake the certificate being verified belongs to.
enum class PeerRole {
  kClient,  // we are the server (inbound, :15008); X509 purpose sslclient
  kServer,  // we are the client (outbound); X509 purpose sslserver
};

struct VerifyPolicy {
  PeerRole peer_role = PeerRole::kClient;
  X509_STORE* trust_store = nullptr;        // our trust bundle
  std::string_view local_trust_domain;      // kClient: the peer must be in it
  std::span<const state::Identity> expected;  // kServer: the peer must be one of these
  TimePoint now;                            // validity is checked at this instant
};

// Verifies `chain` (the peer's certificates as sent, leaf first):
//   1. the chain builds to a root in `trust_store` with the role's X509
//      purpose, and every certificate is within its validity period at `now`;
//   2. the leaf is not a CA (basicConstraints CA:TRUE) and cannot sign
//      certificates or CRLs (keyCertSign / cRLSign);
//   3. the leaf has exactly one URI SAN and it is a strict SPIFFE workload ID;
//   4. kClient: its trust domain equals ours; kServer: the ID is one of the
//      expected identities (an empty list accepts nobody).
// Returns the peer identity, or the first rule broken. noexcept so it can sit
// directly under a C callback; only allocation failure could throw, and that
// terminates.
Checked<state::Identity> verify_peer_chain(std::span<X509* const> chain,
                                           const VerifyPolicy& policy) noexcept;

// What rules 1-3 established about a chain. They depend only on the chain,
// the trust store, the role and the time, so the result holds for the same
// chain, store and role at any instant in [not_before, not_after]: the
// intersection of the validity periods of every certificate on the path
// built (the trust anchor's included).
struct VerifiedChain {
  state::Identity identity;
  TimePoint not_before;
  TimePoint not_after;
};
Checked<VerifiedChain> verify_chain_identity(std::span<X509* const> chain,
                                             const VerifyPolicy& policy) noexcept;
// Rule 4, on an identity from verify_chain_identity.
Checked<void> check_peer_identity(const state::Identity& identity,
                                  const VerifyPolicy& policy) noexcept;

// Chains that passed rules 1-3, keyed by a SHA-256 over their certificates
// (DER, in the order sent), so that a peer presenting the same chain again
// skips building and checking it: the chain's signature checks are the most
// expensive step of a handshake after the key exchange. Only successes are
// kept; an entry answers only inside its validity window. One cache belongs
// to one trust store and role (a context): a new trust bundle means a new
// context and an empty cache. Would need flushing if revocation (CRLs) were
// ever checked. Bounded; when full it starts over. Thread-safe (a lock around
// the map only).
class VerifiedChainCache {
 public:
  using Key = std::array<std::uint8_t, 32>;
  static constexpr std::size_t kCapacity = 1024;

  // The identity if `key` verified before and `now` is inside its window.
  std::optional<state::Identity> find(const Key& key, TimePoint now) const;
  void insert(const Key& key, VerifiedChain chain);
  std::size_t size() const;

 private:
  mutable std::mutex mutex_;
  std::map<Key, VerifiedChain> chains_;
};

}  // namespace ztunnel::tls
