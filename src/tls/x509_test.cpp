// uri_sans / identity_from on fixture certificates, PEM parsing and WorkloadCertificate loading.
#include "tls/x509.h"

#include <string>

#include "support/cert_fixtures.h"
#include "support/testing.h"
#include "tls/certificate.h"

namespace ztunnel::tls {
namespace {

using testing::Defect;
using testing::spiffe;
using testing::TestCa;

TEST_CASE("uri_sans returns every URI SAN with its exact bytes") {
  TestCa ca = TestCa::root();
  auto two = ca.issue(spiffe("a", "b"), Defect::kTwoUriSans);
  auto sans = uri_sans(*two.cert);
  REQUIRE(sans);
  REQUIRE(sans->size() == 2);
  CHECK((*sans)[0] == spiffe("a", "b"));

  auto nul = ca.issue(spiffe("a", "b"), Defect::kEmbeddedNul);
  auto nul_sans = uri_sans(*nul.cert);
  REQUIRE(nul_sans);
  REQUIRE(nul_sans->size() == 1);
  CHECK(nul_sans->front().size() == spiffe("a", "b").size() + 6);

  auto none = ca.issue(spiffe("a", "b"), Defect::kNoUriSan);
  auto none_sans = uri_sans(*none.cert);
  REQUIRE(none_sans);
  CHECK(none_sans->empty());
}

TEST_CASE("identity_from accepts exactly one strict SPIFFE URI SAN") {
  TestCa ca = TestCa::root();
  auto ok = identity_from(*ca.issue(spiffe("bookinfo", "reviews")).cert);
  REQUIRE(ok);
  CHECK(ok->namespace_ == "bookinfo");
  CHECK(ok->service_account == "reviews");

  auto rsa = identity_from(*ca.issue(spiffe("a", "b"), Defect::kRsaKey).cert);
  CHECK(rsa);

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
  };
  for (const auto& c : cases) {
    CAPTURE(testing::defect_name(c.defect));
    auto id = identity_from(*ca.issue(spiffe("a", "b"), c.defect).cert);
    REQUIRE_FALSE(id);
    CHECK(id.error().reason == c.reason);
  }
}

TEST_CASE("an embedded NUL is reported with both the ASN.1 length and strlen") {
  TestCa ca = TestCa::root();
  auto id = identity_from(*ca.issue(spiffe("a", "b"), Defect::kEmbeddedNul).cert);
  REQUIRE_FALSE(id);
  CHECK(id.error().detail.find("NUL") != std::string::npos);
}

TEST_CASE("PEM bundles with several certificates parse in order") {
  TestCa root = TestCa::root();
  TestCa mid = root.intermediate();
  std::string pem = "comment line\n" + to_pem(*mid.cert()) + to_pem(*root.cert());
  auto certs = parse_pem_certificates(pem);
  REQUIRE(certs);
  REQUIRE(certs->size() == 2);
  CHECK(subject_of(*(*certs)[0]).find("intermediate") != std::string::npos);
  CHECK(subject_of(*(*certs)[1]).find("root") != std::string::npos);
}

TEST_CASE("PEM garbage, an empty input and a corrupt block are errors") {
  CHECK_FALSE(parse_pem_certificates(""));
  CHECK_FALSE(parse_pem_certificates("not a certificate at all"));
  CHECK_FALSE(parse_pem_certificates(
      "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"));
  CHECK_FALSE(parse_pem_private_key("garbage"));
}

TEST_CASE("a workload certificate loads from Istio's three PEM files") {
  TestCa root = TestCa::root();
  TestCa mid = root.intermediate();
  auto leaf = mid.issue(spiffe("ns1", "sa1"));
  std::string chain = leaf.cert_pem() + to_pem(*mid.cert());
  TestCa other_root = TestCa::root("second root");
  std::string roots = root.root_pem() + other_root.root_pem();

  auto cert = WorkloadCertificate::from_pem(chain, leaf.key_pem(), roots);
  REQUIRE(cert);
  CHECK((*cert)->identity().to_spiffe() == spiffe("ns1", "sa1"));
  CHECK((*cert)->intermediates().size() == 1);
  CHECK((*cert)->roots().size() == 2);
  CHECK((*cert)->trust_store() != nullptr);
  CHECK((*cert)->not_after() > (*cert)->not_before());
  // Round trip through the file layout.
  auto again = WorkloadCertificate::from_pem((*cert)->chain_pem(), (*cert)->key_pem(),
                                             (*cert)->roots_pem());
  REQUIRE(again);
  CHECK((*again)->identity() == (*cert)->identity());
}

TEST_CASE("refresh time is the half-life of the leaf's validity") {
  TestCa ca = TestCa::root();
  auto fields = TestCa::leaf_fields(spiffe("a", "b"));
  fields.not_before = TimePoint(std::chrono::seconds(1'700'000'000));
  fields.not_after = fields.not_before + std::chrono::hours(24);
  auto leaf = ca.issue(fields);
  auto cert = WorkloadCertificate::from_pem(leaf.cert_pem(), leaf.key_pem(), ca.root_pem());
  REQUIRE(cert);
  CHECK((*cert)->refresh_time() == fields.not_before + std::chrono::hours(12));
  CHECK((*cert)->expired(fields.not_after));
  CHECK_FALSE((*cert)->expired(fields.not_after - std::chrono::seconds(1)));
}

TEST_CASE("a workload certificate with a wrong key, no chain or no roots is refused") {
  TestCa ca = TestCa::root();
  auto leaf = ca.issue(spiffe("a", "b"));
  auto other = ca.issue(spiffe("a", "b"));
  auto mismatched = WorkloadCertificate::from_pem(leaf.cert_pem(), other.key_pem(), ca.root_pem());
  REQUIRE_FALSE(mismatched);
  CHECK(mismatched.error().message.find("does not match") != std::string::npos);

  auto empty_chain = WorkloadCertificate::from_pem("", leaf.key_pem(), ca.root_pem());
  REQUIRE_FALSE(empty_chain);
  CHECK(empty_chain.error().message.find("certificate chain") != std::string::npos);

  CHECK_FALSE(WorkloadCertificate::from_pem(leaf.cert_pem(), leaf.key_pem(), "garbage"));
  CHECK_FALSE(WorkloadCertificate::from_pem(leaf.cert_pem(), "garbage", ca.root_pem()));

  auto two_sans = ca.issue(spiffe("a", "b"), Defect::kTwoUriSans);
  CHECK_FALSE(WorkloadCertificate::from_pem(two_sans.cert_pem(), two_sans.key_pem(),
                                            ca.root_pem()));
}

}  // namespace
}  // namespace ztunnel::tls
