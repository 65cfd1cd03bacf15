// Builds test CAs and leaves with tls::build_certificate; every failure here is a test bug.
#include "support/cert_fixtures.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <stdexcept>

namespace ztunnel::testing {
namespace {

using namespace std::chrono_literals;

template <class T>
T must(core::Result<T> r, std::string_view what) {
  if (!r) throw std::runtime_error(fmt::format("fixture {}: {}", what, r.error().message));
  return std::move(*r);
}

tls::CertificateFields ca_fields(std::string common_name) {
  tls::CertificateFields f;
  f.common_name = std::move(common_name);
  f.is_ca = true;
  f.key_usage = tls::kKeyCertSign | tls::kCrlSign | tls::kDigitalSignature;
  f.server_auth = f.client_auth = false;
  auto now = std::chrono::system_clock::now();
  f.not_before = now - 24h;
  f.not_after = now + 24h * 365;
  return f;
}

}  // namespace

std::string spiffe(std::string_view ns, std::string_view sa, std::string_view trust_domain) {
  return fmt::format("spiffe://{}/ns/{}/sa/{}", trust_domain, ns, sa);
}

std::string_view defect_name(Defect defect) {
  switch (defect) {
    case Defect::kNone: return "none";
    case Defect::kTwoUriSans: return "two URI SANs";
    case Defect::kNoUriSan: return "no URI SAN";
    case Defect::kNonSpiffeUri: return "non-spiffe URI";
    case Defect::kExtraPathSegment: return "extra path segment";
    case Defect::kDotDot: return "dot-dot segment";
    case Defect::kPercentEncoding: return "percent-encoding";
    case Defect::kUppercaseTrustDomain: return "uppercase trust domain";
    case Defect::kEmbeddedNul: return "embedded NUL";
    case Defect::kOversizedSan: return "3000-byte SAN";
    case Defect::kCaLeaf: return "CA:TRUE leaf";
    case Defect::kKeyCertSignLeaf: return "keyCertSign leaf";
    case Defect::kExpired: return "expired";
    case Defect::kNotYetValid: return "not yet valid";
    case Defect::kRsaKey: return "RSA key";
  }
  return "?";
}

tls::X509Ptr copy(X509* cert) {
  X509_up_ref(cert);
  return tls::X509Ptr(cert);
}

TestCa TestCa::root(std::string common_name) {
  auto state = std::make_shared<State>();
  state->key = must(tls::generate_key(tls::KeyType::kEcdsaP256), "root key");
  state->cert = must(tls::build_certificate(ca_fields(std::move(common_name)), *state->key,
                                            nullptr, *state->key),
                     "root certificate");
  state->root = copy(state->cert.get());
  return TestCa(std::move(state));
}

TestCa TestCa::intermediate(std::string common_name) const {
  return intermediate_with(ca_fields(std::move(common_name)));
}

TestCa TestCa::intermediate_with(tls::CertificateFields fields) const {
  auto state = std::make_shared<State>();
  state->key = must(tls::generate_key(tls::KeyType::kEcdsaP256), "intermediate key");
  state->cert = must(tls::build_certificate(fields, *state->key, cert(), *key()),
                     "intermediate certificate");
  state->root = copy(root_cert());
  state->intermediates.push_back(copy(state->cert.get()));
  for (const auto& c : state_->intermediates) state->intermediates.push_back(copy(c.get()));
  return TestCa(std::move(state));
}

tls::CertificateFields TestCa::leaf_fields(std::string_view spiffe_id) {
  tls::CertificateFields f;
  f.uri_sans = {std::string(spiffe_id)};
  auto now = std::chrono::system_clock::now();
  f.not_before = now - 1h;
  f.not_after = now + 24h;
  return f;
}

Leaf TestCa::issue(std::string_view spiffe_id, Defect defect) const {
  tls::CertificateFields f = leaf_fields(spiffe_id);
  auto now = std::chrono::system_clock::now();
  std::string id(spiffe_id);
  tls::KeyType key_type = tls::KeyType::kEcdsaP256;
  switch (defect) {
    case Defect::kNone: break;
    case Defect::kTwoUriSans: f.uri_sans.push_back(spiffe("other", "intruder")); break;
    case Defect::kNoUriSan:
      f.uri_sans.clear();
      f.dns_sans = {"workload.example.com"};
      break;
    case Defect::kNonSpiffeUri: f.uri_sans = {"https://cluster.local/ns/default/sa/default"}; break;
    case Defect::kExtraPathSegment: f.uri_sans = {id + "/extra"}; break;
    case Defect::kDotDot: f.uri_sans = {"spiffe://cluster.local/ns/../sa/default"}; break;
    case Defect::kPercentEncoding: f.uri_sans = {"spiffe://cluster.local/ns/a%2Fb/sa/default"}; break;
    case Defect::kUppercaseTrustDomain:
      f.uri_sans = {"spiffe://Cluster.Local/ns/default/sa/default"};
      break;
    case Defect::kEmbeddedNul: f.uri_sans = {id + std::string("\0.evil", 6)}; break;
    case Defect::kOversizedSan:
      f.uri_sans = {"spiffe://cluster.local/ns/default/sa/" + std::string(3000, 'x')};
      break;
    case Defect::kCaLeaf: f.is_ca = true; break;
    case Defect::kKeyCertSignLeaf: f.key_usage |= tls::kKeyCertSign; break;
    case Defect::kExpired:
      f.not_before = now - 48h;
      f.not_after = now - 24h;
      break;
    case Defect::kNotYetValid:
      f.not_before = now + 24h;
      f.not_after = now + 48h;
      break;
    case Defect::kRsaKey: key_type = tls::KeyType::kRsa2048; break;
  }
  return issue(f, key_type);
}

Leaf TestCa::issue(const tls::CertificateFields& fields, tls::KeyType key_type) const {
  Leaf leaf;
  leaf.key = must(tls::generate_key(key_type), "leaf key");
  leaf.cert = must(tls::build_certificate(fields, *leaf.key, cert(), *key()), "leaf certificate");
  return leaf;
}

std::vector<tls::X509Ptr> TestCa::chain_above_leaf() const {
  std::vector<tls::X509Ptr> out;
  for (const auto& c : state_->intermediates) out.push_back(copy(c.get()));
  return out;
}

std::shared_ptr<const tls::WorkloadCertificate> workload(const TestCa& issuer,
                                                         std::string_view spiffe_id,
                                                         const TestCa& trust,
                                                         bool send_intermediates) {
  Leaf leaf = issuer.issue(spiffe_id);
  std::vector<tls::X509Ptr> roots;
  roots.push_back(copy(trust.root_cert()));
  return must(tls::WorkloadCertificate::from_parts(
                  std::move(leaf.cert),
                  send_intermediates ? issuer.chain_above_leaf() : std::vector<tls::X509Ptr>{},
                  std::move(leaf.key), std::move(roots)),
              "workload certificate");
}

TempDir::TempDir() {
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() /
          fmt::format("ztunnel-test-{}-{:08x}", ::getpid(), rd());
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::filesystem::path TempDir::write(std::string_view name, std::string_view content) const {
  auto p = path_ / name;
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  if (!out) throw std::runtime_error("cannot write " + p.string());
  return p;
}

}  // namespace ztunnel::testing
