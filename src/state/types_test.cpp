// Unit tests for addresses, CIDRs, identities and the small value helpers.
#include "state/types.h"

#include <unordered_set>

#include "state/policy.h"
#include "support/testing.h"

namespace ztunnel::state {
namespace {

IpAddress ip(const char* text) { return boost::asio::ip::make_address(text); }

}  // namespace

TEST_CASE("an identity prints as a SPIFFE URI and parses back") {
  Identity id{"cluster.local", "ns1", "sa1"};
  CHECK(id.to_spiffe() == "spiffe://cluster.local/ns/ns1/sa/sa1");
  auto parsed = Identity::parse(id.to_spiffe());
  REQUIRE(parsed);
  CHECK(*parsed == id);
  auto dotted = Identity::parse("spiffe://td.with.dots/ns/ns.with.dots/sa/sa.with.dots");
  REQUIRE(dotted);
  CHECK(dotted->trust_domain == "td.with.dots");
  CHECK(dotted->service_account == "sa.with.dots");
}

TEST_CASE("the identity parser rejects anything but spiffe://TD/ns/NS/sa/SA") {
  for (const char* bad :
       {"", "cluster.local/ns/a/sa/b", "http://td/ns/a/sa/b", "spiffe://td/ns/a",
        "spiffe://td/ns/a/sa", "spiffe://td/ns/a/sa/b/c", "spiffe://td/ns/a/sa/b/",
        "spiffe://td/namespace/a/sa/b", "spiffe://td/ns/a/serviceaccount/b",
        "spiffe://td/ns/a/sa/b?x=1", "spiffe://td/ns/a/sa/b#frag", "SPIFFE://td/ns/a/sa/b"}) {
    CAPTURE(bad);
    auto r = Identity::parse(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("SPIFFE") != std::string::npos);
  }
}

TEST_CASE("the identity parser accepts empty segments as Istio does") {
  auto r = Identity::parse("spiffe://td/ns//sa/");
  REQUIRE(r);
  CHECK(r->trust_domain == "td");
  CHECK(r->namespace_.empty());
  CHECK(r->service_account.empty());
}

TEST_CASE("an IPv4 CIDR contains exactly its range") {
  auto c = Cidr::parse("10.1.0.0/16");
  REQUIRE(c);
  CHECK(c->contains(ip("10.1.0.0")));
  CHECK(c->contains(ip("10.1.255.255")));
  CHECK_FALSE(c->contains(ip("10.0.255.255")));
  CHECK_FALSE(c->contains(ip("10.2.0.0")));
  auto odd = Cidr::parse("192.168.1.128/25");
  REQUIRE(odd);
  CHECK(odd->contains(ip("192.168.1.128")));
  CHECK(odd->contains(ip("192.168.1.255")));
  CHECK_FALSE(odd->contains(ip("192.168.1.127")));
  auto all = Cidr::parse("0.0.0.0/0");
  REQUIRE(all);
  CHECK(all->contains(ip("255.255.255.255")));
  CHECK_FALSE(all->contains(ip("fd00::1")));
  auto host = Cidr::parse("10.0.0.1");
  REQUIRE(host);
  CHECK(host->prefix_len == 32);
  CHECK(host->contains(ip("10.0.0.1")));
  CHECK_FALSE(host->contains(ip("10.0.0.2")));
}

TEST_CASE("an IPv6 CIDR contains exactly its range") {
  auto c = Cidr::parse("fd00::/112");
  REQUIRE(c);
  CHECK(c->contains(ip("fd00::")));
  CHECK(c->contains(ip("fd00::ffff")));
  CHECK_FALSE(c->contains(ip("fd00::1:0")));
  CHECK_FALSE(c->contains(ip("fd01::5")));
  CHECK_FALSE(c->contains(ip("10.0.0.1")));
  auto odd = Cidr::parse("2001:db8::/33");
  REQUIRE(odd);
  CHECK(odd->contains(ip("2001:db8:7fff::1")));
  CHECK_FALSE(odd->contains(ip("2001:db8:8000::1")));
  auto host = Cidr::parse("::1/128");
  REQUIRE(host);
  CHECK(host->contains(ip("::1")));
  CHECK_FALSE(host->contains(ip("::2")));
}

TEST_CASE("IPv4-mapped IPv6 addresses match IPv4 prefixes and vice versa") {
  auto v4 = Cidr::parse("10.0.0.0/8");
  REQUIRE(v4);
  CHECK(v4->contains(ip("::ffff:10.2.3.4")));
  CHECK_FALSE(v4->contains(ip("::ffff:11.2.3.4")));
  // Not mapped: the IPv4-compatible form is a different address.
  CHECK_FALSE(v4->contains(ip("::10.2.3.4")));
  auto mapped = Cidr::parse("::ffff:10.0.0.0/104");
  REQUIRE(mapped);
  CHECK(mapped->contains(ip("10.9.9.9")));
  CHECK_FALSE(mapped->contains(ip("11.0.0.1")));
  CHECK(canonical_ip(ip("::ffff:1.2.3.4")) == ip("1.2.3.4"));
  CHECK(canonical_ip(ip("fd00::1")) == ip("fd00::1"));
}

TEST_CASE("prefix lengths beyond the address width are rejected") {
  CHECK_FALSE(Cidr::parse("10.0.0.0/33"));
  CHECK_FALSE(Cidr::parse("fd00::/129"));
  CHECK_FALSE(Cidr::parse("10.0.0.0/"));
  CHECK_FALSE(Cidr::parse("10.0.0.0/8x"));
  CHECK_FALSE(Cidr::parse("nonsense/8"));
  CHECK(Cidr::parse("fd00::/128"));
  auto r = Cidr::make(ip("10.0.0.0"), 40);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("40") != std::string::npos);
}

TEST_CASE("IP bytes must be 4 or 16 long") {
  auto v4 = ip_from_bytes(std::string("\x7f\x00\x00\x01", 4), "f");
  REQUIRE(v4);
  CHECK(*v4 == ip("127.0.0.1"));
  auto unspecified = ip_from_bytes(std::string(4, '\0'), "f");
  REQUIRE(unspecified);
  CHECK(unspecified->is_unspecified());
  auto v6 = ip_from_bytes(
      std::string("\x20\x01\x0d\xb8\x85\xa3\0\0\0\0\x8a\x2e\x03\x70\x73\x34", 16), "f");
  REQUIRE(v6);
  CHECK(v6->to_string() == "2001:db8:85a3::8a2e:370:7334");
  for (std::size_t n : {0, 3, 5, 15, 17}) {
    auto r = ip_from_bytes(std::string(n, '\1'), "workload.addresses[0]");
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("workload.addresses[0]") != std::string::npos);
  }
}

TEST_CASE("network addresses print, parse, compare and hash by network and IP") {
  NetworkAddress a{"", ip("10.0.0.1")};
  CHECK(a.to_string() == "/10.0.0.1");
  auto parsed = NetworkAddress::parse("/10.0.0.1");
  REQUIRE(parsed);
  CHECK(*parsed == a);
  auto remote = NetworkAddress::parse("remote/fd00::1");
  REQUIRE(remote);
  CHECK(remote->network == "remote");
  CHECK_FALSE(NetworkAddress::parse("10.0.0.1"));
  CHECK_FALSE(NetworkAddress::parse("net/not-an-ip"));
  std::unordered_set<NetworkAddress> set{a, {"other", ip("10.0.0.1")}, {"", ip("10.0.0.2")}};
  CHECK(set.size() == 3);
  CHECK(set.contains(NetworkAddress{"", ip("10.0.0.1")}));
}

TEST_CASE("namespaced hostnames need exactly one slash and both parts") {
  auto ok = NamespacedHostname::parse("ns/svc.ns.svc.cluster.local");
  REQUIRE(ok);
  CHECK(ok->namespace_ == "ns");
  CHECK(ok->hostname == "svc.ns.svc.cluster.local");
  CHECK(ok->to_string() == "ns/svc.ns.svc.cluster.local");
  for (const char* bad : {"", "nohost", "/host", "ns/", "a/b/c"}) {
    CAPTURE(bad);
    CHECK_FALSE(NamespacedHostname::parse(bad));
  }
}

TEST_CASE("a workload's services become endpoints carrying its uid and health") {
  Workload w;
  w.uid = "cluster1//Pod/ns/p";
  w.status = HealthStatus::kUnhealthy;
  w.services["ns/a.example"] = PortMap{{80, 8080}};
  w.services["ns/b.example"] = PortMap{{443, 0}};
  auto eps = endpoints_of(w);
  REQUIRE(eps.size() == 2);
  CHECK(eps[0].first == "ns/a.example");
  CHECK(eps[0].second ==
        Endpoint{"cluster1//Pod/ns/p", PortMap{{80, 8080}}, HealthStatus::kUnhealthy});
  CHECK(eps[1].second.ports.at(443) == 0);
  CHECK(w.identity().to_spiffe() == "spiffe:///ns//sa/");
}

TEST_CASE("string matches follow exact, prefix, suffix and presence semantics") {
  CHECK(StringMatch::exact("a").matches("a"));
  CHECK_FALSE(StringMatch::exact("a").matches("ab"));
  CHECK(StringMatch::prefix("td/ns/").matches("td/ns/x"));
  CHECK(StringMatch::suffix("/sa/x").matches("td/ns/a/sa/x"));
  CHECK(StringMatch::presence().matches("x"));
  CHECK_FALSE(StringMatch::presence().matches(""));
  Match m;
  CHECK(m.empty());
  m.not_destination_ports.push_back(9999);
  CHECK_FALSE(m.empty());
  Policy p;
  p.name = "allow";
  p.namespace_ = "ns";
  CHECK(p.key() == "ns/allow");
}

TEST_CASE("a service is visible outside its namespace unless scoped to it") {
  Service s;
  s.namespace_ = "a";
  CHECK(s.visible_to("b"));
  s.visibility = Visibility::kNamespace;
  CHECK(s.visible_to("a"));
  CHECK_FALSE(s.visible_to("b"));
  CHECK_FALSE(s.accepts_endpoint(HealthStatus::kUnhealthy));
  s.load_balancer.emplace().health_policy = LoadBalancerHealthPolicy::kAllowAll;
  CHECK(s.accepts_endpoint(HealthStatus::kUnhealthy));
}

}  // namespace ztunnel::state
