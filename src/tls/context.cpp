// SSL_CTX factories and the callbacks that enforce ALPN, cipher and SPIFFE peer policy.
#include "tls/context.h"

#include <fmt/format.h>
#include <openssl/bytestring.h>
#include <openssl/err.h>
#include <openssl/nid.h>
#include <openssl/pool.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <cstring>
#include <optional>

#include "tls/verify.h"

namespace ztunnel::tls {
namespace {

// Istio ztunnel's TLS 1.2 suites (only used when tls12_enabled).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";
constexpr const char* kCurves = "X25519:P-256:P-384";
constexpr uint8_t kAlpnWire[] = {2, 'h', '2'};

// Per-SSL_CTX configuration the callbacks need. Owned by the SSL_CTX through
// ex_data, so it lives exactly as long as the last SSL using the context.
struct ContextConfig {
  PeerRole peer_role = PeerRole::kClient;
  std::shared_ptr<const WorkloadCertificate> cert;
  std::function<TimePoint()> clock;
  // Peers reconnecting with the same chain skip its verification (this
  // context's trust store and role are fixed, so its verdict is too).
  VerifiedChainCache verified;
};

VerifiedChainCache::Key chain_key(const STACK_OF(CRYPTO_BUFFER)* buffers) {
  SHA256_CTX sha;
  SHA256_Init(&sha);
  for (size_t i = 0; i < sk_CRYPTO_BUFFER_num(buffers); ++i) {
    const CRYPTO_BUFFER* b = sk_CRYPTO_BUFFER_value(buffers, i);
    // Length-prefixed, so that certificate boundaries are part of the key.
    const uint64_t len = CRYPTO_BUFFER_len(b);
    SHA256_Update(&sha, &len, sizeof(len));
    SHA256_Update(&sha, CRYPTO_BUFFER_data(b), len);
  }
  VerifiedChainCache::Key key;
  SHA256_Final(key.data(), &sha);
  return key;
}

template <class T>
void free_ex_data(void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*index*/,
                  long /*argl*/, void* /*argp*/) {
  delete static_cast<T*>(ptr);
}

// Our own ex_data slots; index 0 (app data) belongs to Asio's verify callback.
struct Slots {
  int ctx_config;
  int expected;
  int peer;
  int rejection;
};

const Slots& slots() {
  static const Slots s = {
      SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_ex_data<ContextConfig>),
      SSL_get_ex_new_index(0, nullptr, nullptr, nullptr,
                           &free_ex_data<std::vector<state::Identity>>),
      SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_ex_data<state::Identity>),
      SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_ex_data<Rejection>),
  };
  return s;
}

// Sets before deleting the old value, so a failed set leaves the slot intact.
template <class T>
bool replace_ex_data(SSL* ssl, int index, T* value) {
  auto* old = static_cast<T*>(SSL_get_ex_data(ssl, index));
  if (!SSL_set_ex_data(ssl, index, value)) {
    delete value;
    return false;
  }
  delete old;
  return true;
}

// Keeps the first reason: later failures are consequences of it.
void record_rejection(SSL* ssl, Rejection r) noexcept {
  if (SSL_get_ex_data(ssl, slots().rejection) != nullptr) return;
  SSL_set_ex_data(ssl, slots().rejection, new Rejection(std::move(r)));
}

bool offers_h2(const uint8_t* data, size_t len) {
  CBS in;
  CBS list;
  CBS_init(&in, data, len);
  if (!CBS_get_u16_length_prefixed(&in, &list) || CBS_len(&in) != 0) return false;
  while (CBS_len(&list) > 0) {
    CBS name;
    if (!CBS_get_u8_length_prefixed(&list, &name)) return false;
    if (CBS_mem_equal(&name, kAlpnWire + 1, kAlpnWire[0])) return true;
  }
  return false;
}

// Server, on the ClientHello before any key exchange or signature: a client
// that does not offer h2 cannot speak HBONE, so don't spend work on it.
ssl_select_cert_result_t select_certificate_cb(const SSL_CLIENT_HELLO* hello) noexcept {
  const uint8_t* data = nullptr;
  size_t len = 0;
  if (!SSL_early_callback_ctx_extension_get(
          hello, TLSEXT_TYPE_application_layer_protocol_negotiation, &data, &len) ||
      !offers_h2(data, len)) {
    record_rejection(hello->ssl, {Errc::kAlpnNotH2, "client did not offer ALPN h2"});
    return ssl_select_cert_error;
  }
  return ssl_select_cert_success;
}

int alpn_select_cb(SSL* ssl, const uint8_t** out, uint8_t* out_len, const uint8_t* in,
                   unsigned in_len, void* /*arg*/) noexcept {
  CBS list;
  CBS_init(&list, in, in_len);
  while (CBS_len(&list) > 0) {
    CBS name;
    if (!CBS_get_u8_length_prefixed(&list, &name)) break;
    if (CBS_mem_equal(&name, kAlpnWire + 1, kAlpnWire[0])) {
      *out = CBS_data(&name);
      *out_len = static_cast<uint8_t>(CBS_len(&name));
      return SSL_TLSEXT_ERR_OK;
    }
  }
  record_rejection(ssl, {Errc::kAlpnNotH2, "client did not offer ALPN h2"});
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

uint8_t alert_for(Errc reason) {
  switch (reason) {
    case Errc::kUnknownCa: return SSL_AD_UNKNOWN_CA;
    case Errc::kCertificateExpired:
    case Errc::kCertificateNotYetValid: return SSL_AD_CERTIFICATE_EXPIRED;
    case Errc::kAlpnNotH2: return SSL_AD_NO_APPLICATION_PROTOCOL;
    case Errc::kCipherNotAllowed: return SSL_AD_INSUFFICIENT_SECURITY;
    case Errc::kNoPeerCertificate: return SSL_AD_CERTIFICATE_REQUIRED;
    case Errc::kInternal: return SSL_AD_INTERNAL_ERROR;
    default: return SSL_AD_BAD_CERTIFICATE;
  }
}

ssl_verify_result_t reject(SSL* ssl, uint8_t* out_alert, Rejection r) noexcept {
  *out_alert = alert_for(r.reason);
  record_rejection(ssl, std::move(r));
  return ssl_verify_invalid;
}

Checked<VerifiedChain> verify_buffers(const STACK_OF(CRYPTO_BUFFER)* buffers,
                                      const VerifyPolicy& policy) noexcept;

// The single gate for every peer: cipher, ALPN, then the certificate chain and
// SPIFFE identity (verify_peer_chain's rules; the chain's verdict is
// remembered per context). In TLS 1.3 and 1.2 alike the cipher and ALPN are
// settled before the peer's Certificate arrives, so all are known here.
ssl_verify_result_t verify_cb(SSL* ssl, uint8_t* out_alert) noexcept {
  auto* config = static_cast<ContextConfig*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), slots().ctx_config));
  if (config == nullptr) return reject(ssl, out_alert, {Errc::kInternal, "context not configured"});

  const SSL_CIPHER* cipher = SSL_get_pending_cipher(ssl);
  if (cipher == nullptr) cipher = SSL_get_current_cipher(ssl);
  if (cipher == nullptr || SSL_CIPHER_get_cipher_nid(cipher) == NID_chacha20_poly1305) {
    return reject(ssl, out_alert,
                  {Errc::kCipherNotAllowed,
                   fmt::format("cipher {} is not AES-GCM",
                               cipher ? SSL_CIPHER_get_name(cipher) : "(none)")});
  }
  if (selected_alpn(ssl) != kAlpnH2) {
    return reject(ssl, out_alert,
                  {Errc::kAlpnNotH2, fmt::format("ALPN '{}' selected, h2 required",
                                                 selected_alpn(ssl))});
  }

  const auto* expected =
      static_cast<const std::vector<state::Identity>*>(SSL_get_ex_data(ssl, slots().expected));
  VerifyPolicy policy;
  policy.peer_role = config->peer_role;
  policy.trust_store = config->cert->trust_store();
  policy.local_trust_domain = config->cert->identity().trust_domain;
  if (expected != nullptr) policy.expected = *expected;
  policy.now = config->clock ? config->clock() : std::chrono::system_clock::now();

  const STACK_OF(CRYPTO_BUFFER)* buffers = SSL_get0_peer_certificates(ssl);
  std::optional<VerifiedChainCache::Key> key;
  if (buffers != nullptr && sk_CRYPTO_BUFFER_num(buffers) > 0) key = chain_key(buffers);
  std::optional<state::Identity> identity;
  if (key) identity = config->verified.find(*key, policy.now);
  if (!identity) {
    auto verified = verify_buffers(buffers, policy);
    if (!verified) return reject(ssl, out_alert, std::move(verified.error()));
    identity = verified->identity;
    if (key) config->verified.insert(*key, std::move(*verified));
  }
  if (auto ok = check_peer_identity(*identity, policy); !ok) {
    return reject(ssl, out_alert, std::move(ok.error()));
  }
  if (!replace_ex_data(ssl, slots().peer, new state::Identity(std::move(*identity)))) {
    return reject(ssl, out_alert, {Errc::kInternal, "cannot store the peer identity"});
  }
  return ssl_verify_ok;
}

// Rules 1-3 of verify_peer_chain on the peer's certificates as received.
Checked<VerifiedChain> verify_buffers(const STACK_OF(CRYPTO_BUFFER)* buffers,
                                      const VerifyPolicy& policy) noexcept {
  std::vector<X509Ptr> owned;
  std::vector<X509*> chain;
  for (size_t i = 0; buffers != nullptr && i < sk_CRYPTO_BUFFER_num(buffers); ++i) {
    X509Ptr cert(X509_parse_from_buffer(sk_CRYPTO_BUFFER_value(buffers, i)));
    if (!cert) {
      ERR_clear_error();
      return Rejection{Errc::kMalformedCertificate,
                       fmt::format("peer certificate {} does not parse", i)};
    }
    chain.push_back(cert.get());
    owned.push_back(std::move(cert));
  }
  return verify_chain_identity(chain, policy);
}

std::string ssl_error_text() {
  uint32_t err = ERR_get_error();
  ERR_clear_error();
  if (err == 0) return "unknown BoringSSL error";
  char buf[256];
  ERR_error_string_n(err, buf, sizeof(buf));
  return buf;
}

bssl::UniquePtr<CRYPTO_BUFFER> der_buffer(X509* cert) {
  uint8_t* der = nullptr;
  const int len = i2d_X509(cert, &der);
  if (len <= 0) return nullptr;
  bssl::UniquePtr<uint8_t> owned(der);
  return bssl::UniquePtr<CRYPTO_BUFFER>(
      CRYPTO_BUFFER_new(der, static_cast<std::size_t>(len), nullptr));
}

// Everything both sides share: versions, suites, groups, our certificate,
// no session resumption, and the verify callback.
core::Result<bssl::UniquePtr<SSL_CTX>> new_base_context(
    const std::shared_ptr<const WorkloadCertificate>& cert, const TlsOptions& options,
    PeerRole peer_role) {
  if (!cert) return core::make_error("no workload certificate");
  // Buffers, not X509: verify_cb parses the peer's chain itself, so the X509
  // copies TLS_method would also parse for every handshake are never needed.
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_with_buffers_method()));
  if (!ctx) return core::make_error("SSL_CTX_new: " + ssl_error_text());
  auto fail = [](std::string_view what) {
    return core::make_error(fmt::format("{}: {}", what, ssl_error_text()));
  };
  if (!SSL_CTX_set_min_proto_version(ctx.get(),
                                     options.tls12_enabled ? TLS1_2_VERSION : TLS1_3_VERSION) ||
      !SSL_CTX_set_max_proto_version(ctx.get(), TLS1_3_VERSION)) {
    return fail("setting TLS versions");
  }
  if (!SSL_CTX_set_strict_cipher_list(ctx.get(), kTls12Ciphers)) return fail("TLS 1.2 ciphers");
  if (!SSL_CTX_set1_curves_list(ctx.get(), kCurves)) return fail("key exchange groups");

  // The chain as DER buffers: with TLS_with_buffers_method BoringSSL never
  // builds X509 objects (it checks that the key fits the leaf here).
  std::vector<bssl::UniquePtr<CRYPTO_BUFFER>> owned;
  std::vector<CRYPTO_BUFFER*> chain;
  owned.push_back(der_buffer(cert->leaf()));
  for (const auto& intermediate : cert->intermediates()) {
    owned.push_back(der_buffer(intermediate.get()));
  }
  for (const auto& b : owned) {
    if (!b) return fail("encoding the certificate chain");
    chain.push_back(b.get());
  }
  if (!SSL_CTX_set_chain_and_key(ctx.get(), chain.data(), chain.size(), cert->private_key(),
                                 nullptr)) {
    return fail("installing the workload certificate");
  }

  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);

  int mode = SSL_VERIFY_PEER;
  if (peer_role == PeerRole::kClient) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  SSL_CTX_set_custom_verify(ctx.get(), mode, verify_cb);

  auto* config = new ContextConfig{peer_role, cert, options.clock, {}};
  if (!SSL_CTX_set_ex_data(ctx.get(), slots().ctx_config, config)) {
    delete config;
    return fail("SSL_CTX_set_ex_data");
  }
  return ctx;
}

}  // namespace

core::Result<std::shared_ptr<const ServerContext>> ServerContext::create(
    std::shared_ptr<const WorkloadCertificate> cert, TlsOptions options) {
  auto ctx = new_base_context(cert, options, PeerRole::kClient);
  if (!ctx) return ctx.error();
  SSL_CTX_set_num_tickets(ctx->get(), 0);  // TLS 1.3: never send NewSessionTicket
  SSL_CTX_set_select_certificate_cb(ctx->get(), select_certificate_cb);
  SSL_CTX_set_alpn_select_cb(ctx->get(), alpn_select_cb, nullptr);

  std::shared_ptr<ServerContext> out(new ServerContext());
  out->ctx_ = std::move(*ctx);
  out->cert_ = std::move(cert);
  return std::shared_ptr<const ServerContext>(std::move(out));
}

bssl::UniquePtr<SSL> ServerContext::new_ssl() const {
  bssl::UniquePtr<SSL> ssl(SSL_new(ctx_.get()));
  if (ssl) SSL_set_accept_state(ssl.get());
  return ssl;
}

core::Result<std::shared_ptr<const ClientContext>> ClientContext::create(
    std::shared_ptr<const WorkloadCertificate> cert, TlsOptions options) {
  auto ctx = new_base_context(cert, options, PeerRole::kServer);
  if (!ctx) return ctx.error();
  // Note the inverted convention: SSL_CTX_set_alpn_protos returns 0 on success.
  if (SSL_CTX_set_alpn_protos(ctx->get(), kAlpnWire, sizeof(kAlpnWire)) != 0) {
    return core::make_error("setting ALPN: " + ssl_error_text());
  }
  std::shared_ptr<ClientContext> out(new ClientContext());
  out->ctx_ = std::move(*ctx);
  out->cert_ = std::move(cert);
  return std::shared_ptr<const ClientContext>(std::move(out));
}

bssl::UniquePtr<SSL> ClientContext::new_ssl(std::vector<state::Identity> expected) const {
  bssl::UniquePtr<SSL> ssl(SSL_new(ctx_.get()));
  if (!ssl) return ssl;
  // No SSL_set_tlsext_host_name: HBONE sends no SNI, as Istio's ztunnel.
  SSL_set_connect_state(ssl.get());
  if (!set_expected_identities(ssl.get(), std::move(expected))) return nullptr;
  return ssl;
}

core::Result<std::shared_ptr<const ClientContext>> ClientContextCache::get(
    const std::shared_ptr<const WorkloadCertificate>& cert) {
  if (!cert) return core::make_error("no workload certificate");
  {
    std::lock_guard lock(mutex_);
    auto it = contexts_.find(cert->identity());
    if (it != contexts_.end() && it->second->certificate() == cert) return it->second;
  }
  // Built outside the lock: two threads racing on a rotation both build, and
  // the later one wins; either context is valid for the new certificate.
  auto context = ClientContext::create(cert, options_);
  if (!context) return context.error();
  const TimePoint now = options_.clock ? options_.clock() : std::chrono::system_clock::now();
  std::lock_guard lock(mutex_);
  std::erase_if(contexts_, [&](const auto& entry) {
    return entry.first != cert->identity() && entry.second->certificate()->expired(now);
  });
  contexts_[cert->identity()] = *context;
  return *context;
}

std::size_t ClientContextCache::size() const {
  std::lock_guard lock(mutex_);
  return contexts_.size();
}

bool set_expected_identities(SSL* ssl, std::vector<state::Identity> expected) {
  return replace_ex_data(ssl, slots().expected,
                         new std::vector<state::Identity>(std::move(expected)));
}

const state::Identity* peer_identity(const SSL* ssl) {
  return static_cast<const state::Identity*>(SSL_get_ex_data(ssl, slots().peer));
}

const Rejection* rejection(const SSL* ssl) {
  return static_cast<const Rejection*>(SSL_get_ex_data(ssl, slots().rejection));
}

std::string_view selected_alpn(const SSL* ssl) {
  const uint8_t* data = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl, &data, &len);
  return {reinterpret_cast<const char*>(data), len};
}

}  // namespace ztunnel::tls
