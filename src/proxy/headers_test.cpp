// Unit tests for CONNECT header values, endpoint formatting and Random.
#include "proxy/headers.h"

#include <set>
#include <vector>

#include "support/testing.h"

namespace ztunnel::proxy {
namespace {

tcp::endpoint ep(const char* ip, uint16_t port) {
  return tcp::endpoint(boost::asio::ip::make_address(ip), port);
}

// Returns the given values in turn, then repeats them.
class ScriptedRandom final : public Random {
 public:
  explicit ScriptedRandom(std::vector<uint64_t> values) : values_(std::move(values)) {}
  uint64_t next_u64() override { return values_[next_++ % values_.size()]; }

 private:
  std::vector<uint64_t> values_;
  std::size_t next_ = 0;
};

state::Workload full_workload() {
  state::Workload w;
  w.uid = "cluster1//v1/Pod/ns1/pod-1";
  w.namespace_ = "ns1";
  w.cluster_id = "K1";
  w.workload_name = "reviews-v1";
  w.workload_type = state::WorkloadType::kDeployment;
  w.canonical_name = "reviews";
  w.canonical_revision = "v1";
  w.locality.region = "us-east1";
  w.locality.zone = "us-east1-b";
  return w;
}

TEST_CASE("endpoints are formatted as Rust's SocketAddr prints them") {
  CHECK(format_endpoint(ep("10.0.0.1", 8080)) == "10.0.0.1:8080");
  CHECK(format_endpoint(ep("::1", 80)) == "[::1]:80");
  CHECK(format_endpoint(ep("fd00::1:2", 15008)) == "[fd00::1:2]:15008");
  // The digit-by-digit IPv4 path at its edges.
  CHECK(format_endpoint(ep("0.0.0.0", 0)) == "0.0.0.0:0");
  CHECK(format_endpoint(ep("255.255.255.255", 65535)) == "255.255.255.255:65535");
  CHECK(format_endpoint(ep("10.100.9.200", 9)) == "10.100.9.200:9");
  CHECK(format_endpoint(ep("::ffff:10.0.0.1", 80)) == "[::ffff:10.0.0.1]:80");
}

TEST_CASE("append_endpoint appends to what is already there") {
  std::string out = "for=";
  append_endpoint(out, ep("192.168.1.20", 443));
  append_endpoint(out, ep("fd00::7", 1));
  CHECK(out == "for=192.168.1.20:443[fd00::7]:1");
}

TEST_CASE("forwarded carries the client address, and the service host when service-addressed") {
  // The exact strings Istio's build_forwarded test expects.
  CHECK(forwarded_header(ep("127.0.0.1", 80)) == R"(for="127.0.0.1:80")");
  CHECK(forwarded_header(ep("::1", 80)) == R"(for="[::1]:80")");
  CHECK(forwarded_header(ep("127.0.0.1", 80), "example.com") ==
        R"(for="127.0.0.1:80";host=example.com)");
  CHECK(forwarded_header(ep("fd00::7", 41000), "reviews.ns.svc.cluster.local") ==
        R"(for="[fd00::7]:41000";host=reviews.ns.svc.cluster.local)");
}

TEST_CASE("the forwarded host parser finds host= as Istio does") {
  CHECK(parse_forwarded_host("by=identifier;for=identifier;host=example.com;proto=https") ==
        "example.com");
  CHECK(parse_forwarded_host(R"(by=identifier;for=identifier;host="example.com";proto=https)") ==
        "example.com");
  CHECK(parse_forwarded_host("by=identifier;for=identifier;proto=https") == std::nullopt);
  CHECK(parse_forwarded_host("by=identifier;for=identifier;host=;proto=https") == std::nullopt);
  CHECK(parse_forwarded_host("for=for;by=by;host=host;proto=\"pr\xc3\xb6to\"") == std::nullopt);
  // What our own outbound side sends.
  CHECK(parse_forwarded_host(forwarded_header(ep("10.0.0.1", 5000), "svc.ns.svc.cluster.local")) ==
        "svc.ns.svc.cluster.local");
  CHECK(parse_forwarded_host(" for=\"1.2.3.4:5\" ; host=a.b ") == "a.b");
}

TEST_CASE("baggage lists every non-empty field in Istio's order") {
  CHECK(baggage_header(full_workload()) ==
        "k8s.cluster.name=K1,k8s.namespace.name=ns1,k8s.deployment.name=reviews-v1,"
        "service.name=reviews,service.version=v1,cloud.region=us-east1,"
        "cloud.availability_zone=us-east1-b");
}

TEST_CASE("baggage names the workload by its lower-case type and leaves out empty fields") {
  state::Workload w;
  w.namespace_ = "batch";
  w.workload_name = "nightly";
  w.workload_type = state::WorkloadType::kCronJob;
  CHECK(baggage_header(w) == "k8s.namespace.name=batch,k8s.cronjob.name=nightly");
  w.workload_type = state::WorkloadType::kPod;
  CHECK(baggage_header(w) == "k8s.namespace.name=batch,k8s.pod.name=nightly");
  w.workload_type = state::WorkloadType::kJob;
  CHECK(baggage_header(w) == "k8s.namespace.name=batch,k8s.job.name=nightly");
  CHECK(baggage_header(state::Workload{}) == "");
}

TEST_CASE("baggage is parsed field by field") {
  Baggage b = parse_baggage(
      {"k8s.cluster.name=K1,k8s.namespace.name=NS1,k8s.deployment.name=N1,service.name=N2,"
       "service.version=V1"});
  CHECK(b.cluster_id == "K1");
  CHECK(b.namespace_ == "NS1");
  CHECK(b.workload_name == "N1");
  CHECK(b.service_name == "N2");
  CHECK(b.revision == "V1");
  CHECK(b.region == "");
  CHECK(b.zone == "");
}

TEST_CASE("baggage with empty values parses to nothing") {
  Baggage b =
      parse_baggage({"k8s.cluster.name=,k8s.namespace.name=,k8s.deployment.name=,service.name=,"
                     "service.version="});
  CHECK(b == Baggage{});
}

TEST_CASE("baggage spread over several header lines is merged") {
  Baggage b = parse_baggage({"k8s.cluster.name=K1", "k8s.namespace.name=NS1", "k8s.job.name=N1",
                             "service.name=N2", "service.version=V1",
                             "cloud.region=R,cloud.availability_zone=Z"});
  CHECK(b == Baggage{"K1", "NS1", "N1", "N2", "V1", "R", "Z"});
  CHECK(parse_baggage(std::span<const std::string_view>{}) == Baggage{});
}

TEST_CASE("baggage parsing ignores unknown keys and malformed entries, and rejects non-ASCII") {
  Baggage b = parse_baggage({"foo=bar,,novalue,k8s.pod.name=p=q,service.name=s"});
  CHECK(b.workload_name == "p");  // Istio keeps the text before a second '='
  CHECK(b.service_name == "s");
  CHECK(b.cluster_id == "");
  // Any line that is not visible ASCII discards everything, as Istio's to_str() failure does.
  CHECK(parse_baggage({"service.name=s", "k8s.cluster.name=\xc3\xa9"}) == Baggage{});
}

TEST_CASE("the baggage we send parses back to the same workload metadata") {
  state::Workload w = full_workload();
  CHECK(parse_baggage({baggage_header(w)}) == baggage_of(w));
  state::Workload partial;
  partial.cluster_id = "cluster";
  partial.namespace_ = "default";
  partial.workload_name = "workload";
  partial.canonical_name = "service";
  CHECK(parse_baggage({baggage_header(partial)}) == baggage_of(partial));
}

TEST_CASE("traceparent is version 00, a 128-bit trace id, a 64-bit parent id and no flags") {
  ScriptedRandom scripted({0x0123456789abcdefULL, 1, 0xfeedfacecafebeefULL});
  CHECK(traceparent_header(scripted) == "00-0123456789abcdef0000000000000001-feedfacecafebeef-00");

  SplitMixRandom random(7);
  std::string a = traceparent_header(random);
  std::string b = traceparent_header(random);
  CHECK(a.size() == 55);
  CHECK(a.starts_with("00-"));
  CHECK(a.ends_with("-00"));
  CHECK(a.substr(3, 32).find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(a[35] == '-');
  CHECK(a != b);
}

TEST_CASE("bounded random draws are exact for small values and reject biased ones") {
  ScriptedRandom small({0, 1, 2, 7});
  CHECK(small.below(3) == 0);
  CHECK(small.below(3) == 1);
  CHECK(small.below(3) == 2);
  CHECK(small.below(3) == 1);
  // The top of the range would favour low results for bound 3; it is redrawn.
  ScriptedRandom top({~uint64_t{0}, 5});
  CHECK(top.below(3) == 2);
}

TEST_CASE("SplitMix is deterministic per seed and roughly uniform") {
  SplitMixRandom a(42);
  SplitMixRandom b(42);
  for (int i = 0; i < 10; ++i) CHECK(a.next_u64() == b.next_u64());
  SplitMixRandom c(1);
  std::vector<int> counts(4, 0);
  for (int i = 0; i < 4000; ++i) ++counts[c.below(4)];
  for (int n : counts) {
    CHECK(n > 850);
    CHECK(n < 1150);
  }
}

}  // namespace
}  // namespace ztunnel::proxy
