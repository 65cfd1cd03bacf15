// Strict SPIFFE ID parsing: the valid shape and each way a peer can bend it.
#include "tls/spiffe.h"

#include <string>

#include "support/testing.h"

namespace ztunnel::tls {
namespace {

TEST_CASE("a well-formed SPIFFE workload ID parses into its three parts") {
  auto id = parse_spiffe_id("spiffe://cluster.local/ns/bookinfo/sa/reviews-v1.sa_x");
  REQUIRE(id);
  CHECK(id->trust_domain == "cluster.local");
  CHECK(id->namespace_ == "bookinfo");
  CHECK(id->service_account == "reviews-v1.sa_x");
  CHECK(id->to_spiffe() == "spiffe://cluster.local/ns/bookinfo/sa/reviews-v1.sa_x");
}

TEST_CASE("a SPIFFE ID of exactly 2048 bytes is accepted and 2049 is not") {
  std::string prefix = "spiffe://td/ns/n/sa/";
  std::string exact = prefix + std::string(kMaxSpiffeIdLength - prefix.size(), 'a');
  CHECK(parse_spiffe_id(exact));
  CHECK_FALSE(parse_spiffe_id(exact + "a"));
}

TEST_CASE("each malformed SPIFFE ID is rejected with a reason naming the rule") {
  struct Case {
    std::string input;
    std::string reason;
  };
  const Case cases[] = {
      {"", "scheme"},
      {"https://cluster.local/ns/a/sa/b", "scheme"},
      {"SPIFFE://cluster.local/ns/a/sa/b", "scheme"},
      {"spiffe://", "empty trust domain"},
      {"spiffe:///ns/a/sa/b", "empty trust domain"},
      {"spiffe://Cluster.Local/ns/a/sa/b", "lowercase"},
      {"spiffe://cluster.local:443/ns/a/sa/b", "port"},
      {"spiffe://user@cluster.local/ns/a/sa/b", "userinfo"},
      {"spiffe://clu%73ter.local/ns/a/sa/b", "percent"},
      {"spiffe://cluster.local", "missing"},
      {"spiffe://cluster.local/", "empty path segment"},
      {"spiffe://cluster.local/ns/a/sa/b/extra", "extra path segments"},
      {"spiffe://cluster.local/ns/a/sa/b/", "extra path segments"},
      {"spiffe://cluster.local/ns/a/sa", "not /ns/<ns>/sa/<sa>"},
      {"spiffe://cluster.local/ns/a/sb/b", "not /ns/<ns>/sa/<sa>"},
      {"spiffe://cluster.local/NS/a/sa/b", "not /ns/<ns>/sa/<sa>"},
      {"spiffe://cluster.local/ns//sa/b", "empty path segment"},
      {"spiffe://cluster.local/ns/a/sa/", "empty path segment"},
      {"spiffe://cluster.local/ns/../sa/b", "'.' and '..'"},
      {"spiffe://cluster.local/ns/./sa/b", "'.' and '..'"},
      {"spiffe://cluster.local/ns/a..b/sa/b", "'..'"},
      {"spiffe://cluster.local/ns/a%2Fb/sa/b", "percent"},
      {"spiffe://cluster.local/ns/a/sa/b?x=1", "query or fragment"},
      {"spiffe://cluster.local/ns/a/sa/b#frag", "query or fragment"},
      {std::string("spiffe://cluster.local/ns/a/sa/b") + std::string("\0.evil", 6), "NUL"},
      {std::string("spiffe://cluster\0.local/ns/a/sa/b", 33), "trust domain"},
      {"spiffe://cluster.local/ns/a b/sa/b", "not allowed"},
      {"spiffe://cluster.local/ns/a/sa/" + std::string(3000, 'x'), "longer than 2048"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.input);
    auto id = parse_spiffe_id(c.input);
    REQUIRE_FALSE(id);
    CHECK(id.error().message.find(c.reason) != std::string::npos);
  }
}

TEST_CASE("rejection messages render control bytes and cap long input") {
  auto id = parse_spiffe_id(std::string("spiffe://td/ns/a/sa/b\0x", 23));
  REQUIRE_FALSE(id);
  CHECK(id.error().message.find("\\x00") != std::string::npos);
  auto long_id = parse_spiffe_id("spiffe://td/ns/a/sa/" + std::string(5000, 'y'));
  REQUIRE_FALSE(long_id);
  CHECK(long_id.error().message.size() < 400);
}

}  // namespace
}  // namespace ztunnel::tls
