// SPIFFE peer verification: the one place that decides whether a peer chain is acceptable.
#pragma once

#include <openssl/x509.h>

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

}  // namespace ztunnel::tls
