// BuiltinCa issues certificates our verifier accepts; the provider renews at half-life.
#include "identity/builtin_ca.h"

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include <vector>

#include "support/cert_fixtures.h"
#include "support/testing.h"
#include "tls/verify.h"
#include "tls/x509.h"

namespace ztunnel::identity {
namespace {

using namespace std::chrono_literals;
using testing::TestCa;
using TimePoint = std::chrono::system_clock::time_point;

const state::Identity kWorkload{"cluster.local", "bookinfo", "reviews"};
const state::Identity kPeer{"cluster.local", "bookinfo", "productpage"};

std::shared_ptr<const BuiltinCa> fresh_ca(TimePoint now = std::chrono::system_clock::now()) {
  auto ca = BuiltinCa::generate("cluster.local", now);
  REQUIRE(ca);
  return *ca;
}

tls::Checked<state::Identity> verify_as_server(const CertPtr& peer, const CertPtr& us,
                                               TimePoint now) {
  std::vector<X509*> chain{peer->leaf()};
  for (const auto& c : peer->intermediates()) chain.push_back(c.get());
  tls::VerifyPolicy policy;
  policy.peer_role = tls::PeerRole::kServer;
  policy.trust_store = us->trust_store();
  std::vector<state::Identity> expected{peer->identity()};
  policy.expected = expected;
  policy.now = now;
  return tls::verify_peer_chain(chain, policy);
}

TEST_CASE("a minted certificate verifies under our verifier with the right identity") {
  auto now = std::chrono::system_clock::now();
  auto ca = fresh_ca(now);
  auto cert = ca->issue(kWorkload, 24h, now);
  REQUIRE(cert);
  auto us = ca->issue(kPeer, 24h, now);
  REQUIRE(us);
  auto verdict = verify_as_server(*cert, *us, now);
  REQUIRE(verdict);
  CHECK(*verdict == kWorkload);
  CHECK((*cert)->identity() == kWorkload);
}

TEST_CASE("a minted certificate has Istio's shape") {
  auto now = std::chrono::system_clock::now();
  auto ca = fresh_ca(now);
  auto cert = ca->issue(kWorkload, 24h, now);
  REQUIRE(cert);
  X509* leaf = (*cert)->leaf();
  // P-256 key.
  bssl::UniquePtr<EVP_PKEY> key(X509_get_pubkey(leaf));
  REQUIRE(key != nullptr);
  CHECK(EVP_PKEY_id(key.get()) == EVP_PKEY_EC);
  CHECK(EVP_PKEY_bits(key.get()) == 256);
  // Critical URI SAN, empty subject.
  int critical = -1;
  bssl::UniquePtr<GENERAL_NAMES> names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(leaf, NID_subject_alt_name, &critical, nullptr)));
  CHECK(names != nullptr);
  CHECK(critical == 1);
  CHECK(tls::subject_of(*leaf) == "(empty)");
  // EKU serverAuth + clientAuth, KU digitalSignature only, not a CA.
  CHECK((X509_get_extended_key_usage(leaf) & (XKU_SSL_SERVER | XKU_SSL_CLIENT)) ==
        (XKU_SSL_SERVER | XKU_SSL_CLIENT));
  CHECK(X509_get_key_usage(leaf) == KU_DIGITAL_SIGNATURE);
  CHECK(X509_check_ca(leaf) == 0);
  // 128-bit serial (top bit clear to stay positive), backdated validity.
  CHECK(tls::serial_hex(*leaf).size() == 32);
  auto nb = (*cert)->not_before();
  CHECK(nb <= now - kBackdate + 1s);
  CHECK(nb >= now - kBackdate - 1s);
  CHECK((*cert)->not_after() - now <= 24h + 1s);
  CHECK((*cert)->not_after() - now >= 24h - 1s);
  // Two certificates never share a serial or a key.
  auto other = ca->issue(kWorkload, 24h, now);
  REQUIRE(other);
  CHECK(tls::serial_hex(*(*other)->leaf()) != tls::serial_hex(*leaf));
}

TEST_CASE("the CA refuses identities our verifier would reject") {
  auto ca = fresh_ca();
  auto now = std::chrono::system_clock::now();
  CHECK_FALSE(ca->issue({"Cluster.Local", "a", "b"}, 24h, now));
  CHECK_FALSE(ca->issue({"cluster.local", "", "b"}, 24h, now));
  CHECK_FALSE(ca->issue({"cluster.local", "a/extra", "b"}, 24h, now));
  CHECK_FALSE(ca->issue({"cluster.local", "a", ".."}, 24h, now));
  CHECK_FALSE(ca->issue(kWorkload, 0s, now));
}

TEST_CASE("issued validity is cut at the CA's own expiry") {
  auto now = std::chrono::system_clock::now();
  auto ca = BuiltinCa::generate("cluster.local", now, 2h);
  REQUIRE(ca);
  auto cert = (*ca)->issue(kWorkload, 24h, now);
  REQUIRE(cert);
  CHECK((*cert)->not_after() <= now + 2h + 1s);
  CHECK_FALSE((*ca)->issue(kWorkload, 24h, now + 3h));
}

TEST_CASE("a CA loads from PEM, and an intermediate CA sends itself in the chain") {
  TestCa root = TestCa::root();
  TestCa mid = root.intermediate();
  auto ca = BuiltinCa::from_pem(tls::to_pem(*mid.cert()) + root.root_pem(),
                                tls::to_pem(*mid.key()));
  REQUIRE(ca);
  auto now = std::chrono::system_clock::now();
  auto cert = (*ca)->issue(kWorkload, 1h, now);
  REQUIRE(cert);
  CHECK((*cert)->intermediates().size() == 1);
  CHECK((*cert)->roots().size() == 1);
  auto us = testing::workload(root, testing::spiffe("x", "y"));
  CHECK(verify_as_server(*cert, us, now));
}

TEST_CASE("a CA with a leaf certificate or a foreign key is refused") {
  TestCa root = TestCa::root();
  auto leaf = root.issue(testing::spiffe("a", "b"));
  auto not_ca = BuiltinCa::from_pem(leaf.cert_pem(), leaf.key_pem());
  REQUIRE_FALSE(not_ca);
  CHECK(not_ca.error().message.find("not a CA") != std::string::npos);
  auto wrong_key = BuiltinCa::from_pem(root.root_pem(), leaf.key_pem());
  REQUIRE_FALSE(wrong_key);
  CHECK(wrong_key.error().message.find("does not match") != std::string::npos);
}

struct FakeClock {
  TimePoint now = std::chrono::system_clock::now();
  BuiltinCaProvider::Clock fn() {
    return [this] { return now; };
  }
};

TEST_CASE("the provider caches per identity and renews at half-life") {
  FakeClock clock;
  auto provider = BuiltinCaProvider::create(fresh_ca(clock.now), 24h, clock.fn());
  std::vector<CertPtr> rotated;
  auto subscription = provider->on_rotation(
      [&](const state::Identity& id, const CertPtr& cert) {
        CHECK(id == kWorkload);
        rotated.push_back(cert);
      });

  auto first = provider->fetch(kWorkload);
  REQUIRE(first);
  auto other = provider->fetch(kPeer);
  REQUIRE(other);
  CHECK(*other != *first);

  clock.now += 11h;  // before half-life (12h after not_before, which is backdated)
  auto same = provider->fetch(kWorkload);
  REQUIRE(same);
  CHECK(*same == *first);
  CHECK(rotated.empty());

  clock.now += 1h;  // past half-life
  auto renewed = provider->fetch(kWorkload);
  REQUIRE(renewed);
  CHECK(*renewed != *first);
  CHECK((*renewed)->not_before() > (*first)->not_before());
  REQUIRE(rotated.size() == 1);
  CHECK(rotated[0] == *renewed);
  // The old certificate is still valid and usable by whoever holds it.
  CHECK_FALSE((*first)->expired(clock.now));
}

TEST_CASE("renew_due renews only certificates past their refresh time") {
  FakeClock clock;
  auto provider = BuiltinCaProvider::create(fresh_ca(clock.now), 24h, clock.fn());
  REQUIRE(provider->fetch(kWorkload));
  clock.now += 6h;
  REQUIRE(provider->fetch(kPeer));
  CHECK(provider->renew_due() == 0);
  clock.now += 6h + 1s;  // kWorkload is due, kPeer is not
  CHECK(provider->renew_due() == 1);
  CHECK(provider->renew_due() == 0);
  clock.now += 6h;
  CHECK(provider->renew_due() == 1);
}

TEST_CASE("a failed renewal keeps serving the old certificate until it expires") {
  FakeClock clock;
  auto ca = fresh_ca(clock.now);
  bool ca_up = true;
  auto provider = BuiltinCaProvider::create(
      [&](const state::Identity& id, std::chrono::seconds ttl, TimePoint now)
          -> core::Result<CertPtr> {
        if (!ca_up) return core::make_error("CA unavailable");
        return ca->issue(id, ttl, now);
      },
      24h, clock.fn());
  int rotations = 0;
  auto subscription = provider->on_rotation([&](const auto&, const auto&) { ++rotations; });

  auto first = provider->fetch(kWorkload);
  REQUIRE(first);
  ca_up = false;
  clock.now += 13h;  // due, but the CA is down: keep the old one
  auto kept = provider->fetch(kWorkload);
  REQUIRE(kept);
  CHECK(*kept == *first);
  CHECK(provider->renew_due() == 0);
  CHECK(rotations == 0);

  clock.now += 11h + 1min;  // the old one has expired: fail closed
  auto none = provider->fetch(kWorkload);
  REQUIRE_FALSE(none);
  CHECK(none.error().message.find("CA unavailable") != std::string::npos);

  ca_up = true;  // the CA is back
  auto renewed = provider->fetch(kWorkload);
  REQUIRE(renewed);
  CHECK(*renewed != *first);
  CHECK(rotations == 1);
}

TEST_CASE("an unsubscribed callback is not called") {
  FakeClock clock;
  auto provider = BuiltinCaProvider::create(fresh_ca(clock.now), 24h, clock.fn());
  int calls = 0;
  {
    auto subscription = provider->on_rotation([&](const auto&, const auto&) { ++calls; });
    REQUIRE(provider->fetch(kWorkload));
    clock.now += 13h;
    REQUIRE(provider->fetch(kWorkload));
    CHECK(calls == 1);
  }
  clock.now += 13h;
  REQUIRE(provider->fetch(kWorkload));
  CHECK(calls == 1);
}

}  // namespace
}  // namespace ztunnel::identity
