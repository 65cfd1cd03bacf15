// Immutable server and client TLS contexts for HBONE: TLS 1.3, AES-GCM, ALPN h2, SPIFFE mTLS.
//
// Threading: a context is immutable after creation and shared as
// shared_ptr<const ...>; rotation builds a new context and swaps the pointer.
// Per-connection state (expected identities, the verified peer identity, the
// rejection reason) lives in ex_data on each SSL, so handshakes on any thread
// share a context without locks. An SSL keeps its SSL_CTX (and with it the
// certificate and trust bundle) alive, so swapping a context never pulls
// state out from under a handshake in progress.
//
// Policy (matching Istio's ztunnel, certificate.rs server_config/client_config):
//   - TLS 1.3 only; with tls12_enabled also TLS 1.2 with ECDHE-ECDSA/RSA + AES-GCM.
//   - TLS 1.3 AES-GCM suites only. This BoringSSL (Android 13, API version 17)
//     has no SSL_CTX_set_compliance_policy and always offers/accepts
//     TLS_CHACHA20_POLY1305_SHA256 in TLS 1.3; its server prefers AES-GCM when
//     the CPU has AES instructions and ChaCha20 otherwise. So ChaCha20 is
//     refused after negotiation: the verify callback fails the handshake with
//     Errc::kCipherNotAllowed (alert insufficient_security). Between two
//     ztunnel-cpp nodes on CPUs with AES-NI/ARMv8-CE this never triggers; on a
//     CPU without AES hardware, handshakes with peers offering ChaCha20 fail.
//   - ALPN "h2" required both ways: the server rejects a ClientHello that does
//     not offer h2 (before any signature work); the client fails unless the
//     server selected h2.
//   - No SNI, no session resumption (no cache, no tickets), a client
//     certificate is required, verification is tls::verify_peer_chain's
//     rules; a context remembers the peer chains it verified
//     (VerifiedChainCache), so a peer reconnecting with the same chain
//     skips the chain's signature checks but not the identity rules.
//   - BoringSSL holds certificates as DER buffers (TLS_with_buffers_method):
//     X509 APIs on these contexts and their SSLs are not available.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "core/error.h"
#include "state/identity.h"
#include "tls/certificate.h"
#include "tls/errors.h"

namespace ztunnel::tls {

inline constexpr std::string_view kAlpnH2 = "h2";

struct TlsOptions {
  bool tls12_enabled = false;  // Istio's TLS12_ENABLED
  // Wall clock for certificate validity; tests inject one. Empty = system_clock.
  std::function<TimePoint()> clock;
};

class ServerContext {
 public:
  // Fails on a library error or if the key does not fit the certificate.
  static core::Result<std::shared_ptr<const ServerContext>> create(
      std::shared_ptr<const WorkloadCertificate> cert, TlsOptions options = {});

  // A fresh SSL for one accepted connection, in accept state.
  bssl::UniquePtr<SSL> new_ssl() const;

  SSL_CTX* native_handle() const { return ctx_.get(); }
  const std::shared_ptr<const WorkloadCertificate>& certificate() const { return cert_; }

 private:
  ServerContext() = default;
  bssl::UniquePtr<SSL_CTX> ctx_;
  std::shared_ptr<const WorkloadCertificate> cert_;
};

// One client context per source identity; the expected server identities are
// given per connection, so a pool keyed by (src identity, dst identities, dst
// address) shares one context across all its destinations.
class ClientContext {
 public:
  static core::Result<std::shared_ptr<const ClientContext>> create(
      std::shared_ptr<const WorkloadCertificate> cert, TlsOptions options = {});

  // A fresh SSL in connect state that accepts only a server presenting one of
  // `expected` (destination workload identity + service SANs). An empty list
  // fails every handshake: without an expectation there is nobody to trust.
  bssl::UniquePtr<SSL> new_ssl(std::vector<state::Identity> expected) const;

  SSL_CTX* native_handle() const { return ctx_.get(); }
  const std::shared_ptr<const WorkloadCertificate>& certificate() const { return cert_; }

 private:
  ClientContext() = default;
  bssl::UniquePtr<SSL_CTX> ctx_;
  std::shared_ptr<const WorkloadCertificate> cert_;
};

// Client contexts by local identity, so that a new HBONE connection costs only
// its handshake. An entry is rebuilt when the provider hands out a different
// certificate for its identity (rotation makes a new WorkloadCertificate, the
// same check Inbound makes for its server context); SSLs already made keep
// their old context alive. Entries whose certificate has expired are dropped
// when another identity's context is built, so identities that went away do
// not pile up. Thread-safe: a lock held only to look up or swap an entry,
// never while building a context.
class ClientContextCache {
 public:
  explicit ClientContextCache(TlsOptions options = {}) : options_(std::move(options)) {}

  core::Result<std::shared_ptr<const ClientContext>> get(
      const std::shared_ptr<const WorkloadCertificate>& cert);

  std::size_t size() const;

 private:
  TlsOptions options_;
  mutable std::mutex mutex_;
  std::map<state::Identity, std::shared_ptr<const ClientContext>> contexts_;
};

inline core::Result<std::shared_ptr<const ServerContext>> make_server_context(
    std::shared_ptr<const WorkloadCertificate> cert, TlsOptions options = {}) {
  return ServerContext::create(std::move(cert), std::move(options));
}
inline core::Result<std::shared_ptr<const ClientContext>> make_client_context(
    std::shared_ptr<const WorkloadCertificate> cert, TlsOptions options = {}) {
  return ClientContext::create(std::move(cert), std::move(options));
}

// Replaces the expected server identities of a client SSL (before its handshake).
bool set_expected_identities(SSL* ssl, std::vector<state::Identity> expected);

// The peer identity verified during this SSL's handshake, or nullptr if the
// handshake has not verified one (not finished, or failed).
const state::Identity* peer_identity(const SSL* ssl);

// Why our side rejected this SSL's handshake, if our callbacks rejected it.
const Rejection* rejection(const SSL* ssl);

// The ALPN protocol the handshake selected ("" if none).
std::string_view selected_alpn(const SSL* ssl);

}  // namespace ztunnel::tls
