// verify_peer_chain: every defect maps to its reason; valid chains yield the peer identity.
#include "tls/verify.h"

#include <vector>

#include "support/cert_fixtures.h"
#include "support/testing.h"
#include "tls/certificate.h"

namespace ztunnel::tls {
namespace {

using namespace std::chrono_literals;
using testing::Defect;
using testing::Leaf;
using testing::spiffe;
using testing::TestCa;

// Holds the certificates a peer would send, plus our trust bundle.
struct Peer {
  std::vector<X509Ptr> owned;
  std::vector<X509*> chain;

  void add(X509Ptr c) {
    chain.push_back(c.get());
    owned.push_back(std::move(c));
  }
};

Peer peer_of(const TestCa& ca, Leaf leaf, bool send_intermediates = true) {
  Peer p;
  p.add(std::move(leaf.cert));
  if (send_intermediates) {
    for (auto& c : ca.chain_above_leaf()) p.add(std::move(c));
  }
  return p;
}

struct Us {
  std::shared_ptr<const WorkloadCertificate> cert;
  std::vector<state::Identity> expected;

  VerifyPolicy inbound() const {
    VerifyPolicy p;
    p.peer_role = PeerRole::kClient;
    p.trust_store = cert->trust_store();
    p.local_trust_domain = cert->identity().trust_domain;
    p.now = std::chrono::system_clock::now();
    return p;
  }
  VerifyPolicy outbound() const {
    VerifyPolicy p = inbound();
    p.peer_role = PeerRole::kServer;
    p.expected = expected;
    return p;
  }
};

state::Identity id(std::string_view ns, std::string_view sa) {
  return state::Identity{"cluster.local", std::string(ns), std::string(sa)};
}

TEST_CASE("a valid client chain verifies inbound and yields the client identity") {
  TestCa ca = TestCa::root();
  Us us{testing::workload(ca, spiffe("server", "srv")), {}};
  Peer peer = peer_of(ca, ca.issue(spiffe("client", "cli")));
  auto r = verify_peer_chain(peer.chain, us.inbound());
  REQUIRE(r);
  CHECK(*r == id("client", "cli"));
}

TEST_CASE("a chain through an intermediate verifies, sent in either order") {
  TestCa root = TestCa::root();
  TestCa mid = root.intermediate("mid 1");
  TestCa low = mid.intermediate("mid 2");
  Us us{testing::workload(root, spiffe("server", "srv")), {}};
  Peer peer = peer_of(low, low.issue(spiffe("client", "cli")));
  REQUIRE(peer.chain.size() == 3);
  CHECK(verify_peer_chain(peer.chain, us.inbound()));
  std::swap(peer.chain[1], peer.chain[2]);  // intermediates reversed
  CHECK(verify_peer_chain(peer.chain, us.inbound()));
}

TEST_CASE("a chain with the leaf not first is rejected as a CA leaf") {
  TestCa root = TestCa::root();
  TestCa mid = root.intermediate();
  Us us{testing::workload(root, spiffe("server", "srv")), {}};
  Peer peer = peer_of(mid, mid.issue(spiffe("client", "cli")));
  std::swap(peer.chain[0], peer.chain[1]);
  auto r = verify_peer_chain(peer.chain, us.inbound());
  REQUIRE_FALSE(r);
  CHECK(r.error().reason == Errc::kLeafIsCa);
}

TEST_CASE("a chain missing its intermediate is rejected as unknown CA") {
  TestCa root = TestCa::root();
  TestCa mid = root.intermediate();
  Us us{testing::workload(root, spiffe("server", "srv")), {}};
  Peer peer = peer_of(mid, mid.issue(spiffe("client", "cli")), /*send_intermediates=*/false);
  auto r = verify_peer_chain(peer.chain, us.inbound());
  REQUIRE_FALSE(r);
  CHECK(r.error().reason == Errc::kUnknownCa);
}

TEST_CASE("a certificate from another CA is rejected as unknown CA") {
  TestCa ours = TestCa::root("ours");
  TestCa theirs = TestCa::root("theirs");
  Us us{testing::workload(ours, spiffe("server", "srv")), {}};
  Peer peer = peer_of(theirs, theirs.issue(spiffe("client", "cli")));
  auto r = verify_peer_chain(peer.chain, us.inbound());
  REQUIRE_FALSE(r);
  CHECK(r.error().reason == Errc::kUnknownCa);
}

TEST_CASE("an intermediate violating its pathLen breaks the chain") {
  TestCa root = TestCa::root();
  auto fields = TestCa::leaf_fields("");
  fields.uri_sans.clear();
  fields.common_name = "pathlen 0";
  fields.is_ca = true;
  fields.path_len = 0;
  fields.key_usage = kKeyCertSign | kCrlSign;
  fields.server_auth = fields.client_auth = false;
  TestCa limited = root.intermediate_with(fields);
  TestCa below = limited.intermediate("below pathlen 0");
  Us us{testing::workload(root, spiffe("server", "srv")), {}};
  Peer peer = peer_of(below, below.issue(spiffe("client", "cli")));
  auto r = verify_peer_chain(peer.chain, us.inbound());
  REQUIRE_FALSE(r);
  CHECK(r.error().reason == Errc::kInvalidChain);
}

TEST_CASE("each leaf defect is rejected inbound with its precise reason") {
  TestCa ca = TestCa::root();
  Us us{testing::workload(ca, spiffe("server", "srv")), {}};
  struct Case {
    Defect defect;
    Errc reason;
  };
  const Case cases[] = {
      {Defect::kTwoUriSans, Errc::kMultipleUriSans},
      {Defect::kNoUriSan, Errc::kNoUriSan},
      {Defect::kNonSpiffeUri, Errc::kInvalidSpiffeId},
      {Defect::kExtraPathSegment, Errc::kInvalidSpiffeId},
      {Defect::kDotDot, Errc::kInvalidSpiffeId},
      {Defect::kPercentEncoding, Errc::kInvalidSpiffeId},
      {Defect::kUppercaseTrustDomain, Errc::kInvalidSpiffeId},
      {Defect::kEmbeddedNul, Errc::kInvalidSpiffeId},
      {Defect::kOversizedSan, Errc::kInvalidSpiffeId},
      {Defect::kCaLeaf, Errc::kLeafIsCa},
      {Defect::kKeyCertSignLeaf, Errc::kLeafCanSignCertificates},
      {Defect::kExpired, Errc::kCertificateExpired},
      {Defect::kNotYetValid, Errc::kCertificateNotYetValid},
  };
  for (const auto& c : cases) {
    CAPTURE(testing::defect_name(c.defect));
    Peer peer = peer_of(ca, ca.issue(spiffe("client", "cli"), c.defect));
    auto r = verify_peer_chain(peer.chain, us.inbound());
    REQUIRE_FALSE(r);
    CHECK(r.error().reason == c.reason);
    CHECK_FALSE(r.error().detail.empty());
  }
}

TEST_CASE("an RSA leaf from the trusted CA is accepted") {
  TestCa ca = TestCa::root();
  Us us{testing::workload(ca, spiffe("server", "srv")), {}};
  Peer peer = peer_of(ca, ca.issue(spiffe("client", "cli"), Defect::kRsaKey));
  CHECK(verify_peer_chain(peer.chain, us.inbound()));
}

TEST_CASE("a cRLSign leaf is rejected") {
  TestCa ca = TestCa::root();
  Us us{testing::workload(ca, spiffe("server", "srv")), {}};
  auto fields = TestCa::leaf_fields(spiffe("client", "cli"));
  fields.key_usage |= kCrlSign;
  Peer peer = peer_of(ca, ca.issue(fields));
  auto r = verify_peer_chain(peer.chain, us.inbound());
  REQUIRE_FALSE(r);
  CHECK(r.error().reason == Errc::kLeafCanSignCertificates);
}

TEST_CASE("a leaf without clientAuth is rejected inbound by the X509 purpose check") {
  TestCa ca = TestCa::root();
  Us us{testing::workload(ca, spiffe("server", "srv")), {}};
  auto fields = TestCa::leaf_fields(spiffe("client", "cli"));
  fields.client_auth = false;
  Peer peer = peer_of(ca, ca.issue(fields));
  auto r = verify_peer_chain(peer.chain, us.inbound());
  REQUIRE_FALSE(r);
  CHECK(r.error().reason == Errc::kInvalidChain);
}

TEST_CASE("validity is judged at the policy's clock, not the machine's") {
  TestCa ca = TestCa::root();
  Us us{testing::workload(ca, spiffe("server", "srv")), {}};
  Peer peer = peer_of(ca, ca.issue(spiffe("client", "cli")));
  VerifyPolicy policy = us.inbound();
  policy.now += 48h;
  auto r = verify_peer_chain(peer.chain, policy);
  REQUIRE_FALSE(r);
  CHECK(r.error().reason == Errc::kCertificateExpired);
}

TEST_CASE("a client from another trust domain is rejected inbound") {
  TestCa ca = TestCa::root();
  Us us{testing::workload(ca, spiffe("server", "srv")), {}};
  Peer peer = peer_of(ca, ca.issue(spiffe("client", "cli", "other.domain")));
  auto r = verify_peer_chain(peer.chain, us.inbound());
  REQUIRE_FALSE(r);
  CHECK(r.error().reason == Errc::kTrustDomainMismatch);
}

TEST_CASE("outbound accepts only an expected server identity") {
  TestCa ca = TestCa::root();
  Us us{testing::workload(ca, spiffe("client", "cli")), {id("server", "srv"), id("svc", "san")}};
  Peer good = peer_of(ca, ca.issue(spiffe("svc", "san")));
  auto ok = verify_peer_chain(good.chain, us.outbound());
  REQUIRE(ok);
  CHECK(*ok == id("svc", "san"));

  Peer wrong = peer_of(ca, ca.issue(spiffe("server", "impostor")));
  auto r = verify_peer_chain(wrong.chain, us.outbound());
  REQUIRE_FALSE(r);
  CHECK(r.error().reason == Errc::kIdentityNotExpected);
  CHECK(r.error().detail.find("peer did not present the expected SAN") != std::string::npos);

  // A server in another trust domain is fine outbound if it is expected.
  us.expected = {state::Identity{"other.domain", "server", "srv"}};
  Peer foreign = peer_of(ca, ca.issue(spiffe("server", "srv", "other.domain")));
  CHECK(verify_peer_chain(foreign.chain, us.outbound()));
}

TEST_CASE("outbound with no expected identities accepts nobody") {
  TestCa ca = TestCa::root();
  Us us{testing::workload(ca, spiffe("client", "cli")), {}};
  Peer peer = peer_of(ca, ca.issue(spiffe("server", "srv")));
  auto r = verify_peer_chain(peer.chain, us.outbound());
  REQUIRE_FALSE(r);
  CHECK(r.error().reason == Errc::kIdentityNotExpected);
}

TEST_CASE("an empty chain is rejected as no peer certificate") {
  TestCa ca = TestCa::root();
  Us us{testing::workload(ca, spiffe("server", "srv")), {}};
  auto r = verify_peer_chain({}, us.inbound());
  REQUIRE_FALSE(r);
  CHECK(r.error().reason == Errc::kNoPeerCertificate);
}

TEST_CASE("either of two roots in the trust bundle is trusted") {
  TestCa old_root = TestCa::root("old root");
  TestCa new_root = TestCa::root("new root");
  auto leaf = old_root.issue(spiffe("server", "srv"));
  auto cert = WorkloadCertificate::from_pem(leaf.cert_pem(), leaf.key_pem(),
                                            old_root.root_pem() + new_root.root_pem());
  REQUIRE(cert);
  Us us{*cert, {}};
  Peer from_old = peer_of(old_root, old_root.issue(spiffe("client", "a")));
  Peer from_new = peer_of(new_root, new_root.issue(spiffe("client", "b")));
  CHECK(verify_peer_chain(from_old.chain, us.inbound()));
  CHECK(verify_peer_chain(from_new.chain, us.inbound()));
}

}  // namespace
}  // namespace ztunnel::tls

namespace ztunnel::tls {
namespace {

TEST_CASE("a verified chain's window is where every certificate on its path is valid") {
  TestCa root = TestCa::root();
  TestCa mid = root.intermediate();
  Us us{testing::workload(root, spiffe("server", "srv")), {}};
  Leaf leaf = mid.issue(spiffe("client", "cli"));
  const TimePoint leaf_from = not_before(*leaf.cert);
  const TimePoint leaf_until = not_after(*leaf.cert);
  Peer peer = peer_of(mid, std::move(leaf));
  auto r = verify_chain_identity(peer.chain, us.inbound());
  REQUIRE(r);
  CHECK(r->identity == id("client", "cli"));
  CHECK(r->not_before >= leaf_from);
  CHECK(r->not_before >= not_before(*mid.cert()));
  CHECK(r->not_before >= not_before(*root.cert()));
  CHECK(r->not_after <= leaf_until);
  CHECK(r->not_after <= not_after(*mid.cert()));
  CHECK(r->not_after <= not_after(*root.cert()));
  CHECK(r->not_before <= us.inbound().now);
  CHECK(us.inbound().now < r->not_after);
}

TEST_CASE("the verified-chain cache answers only for its key and inside the window") {
  VerifiedChainCache cache;
  const TimePoint t0 = std::chrono::system_clock::now();
  VerifiedChainCache::Key key{};
  key[0] = 1;
  VerifiedChainCache::Key other{};
  other[0] = 2;
  cache.insert(key, {id("ns", "sa"), t0, t0 + 1h});
  CHECK(cache.find(key, t0) == id("ns", "sa"));
  CHECK(cache.find(key, t0 + 59min) == id("ns", "sa"));
  CHECK_FALSE(cache.find(key, t0 - 1s));
  CHECK_FALSE(cache.find(key, t0 + 1h));
  CHECK_FALSE(cache.find(other, t0));
}

TEST_CASE("the verified-chain cache stays bounded") {
  VerifiedChainCache cache;
  const TimePoint t0 = std::chrono::system_clock::now();
  for (std::size_t i = 0; i <= VerifiedChainCache::kCapacity; ++i) {
    VerifiedChainCache::Key key{};
    key[0] = static_cast<std::uint8_t>(i);
    key[1] = static_cast<std::uint8_t>(i >> 8);
    cache.insert(key, {id("ns", "sa"), t0, t0 + 1h});
  }
  CHECK(cache.size() <= VerifiedChainCache::kCapacity);
  CHECK(cache.size() >= 1);
}

}  // namespace
}  // namespace ztunnel::tls
