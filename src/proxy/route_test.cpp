// Unit tests for the outbound routing decision: the whole table against real store snapshots.
#include "proxy/route.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "proxy/headers.h"
#include "support/testing.h"

namespace ztunnel::proxy {
namespace {

using state::ApplicationTunnel;
using state::GatewayAddress;
using state::Identity;
using state::IpAddress;
using state::LoadBalancer;
using state::LoadBalancerMode;
using state::LoadBalancerScope;
using state::NamespacedHostname;
using state::NetworkAddress;
using state::PortMap;
using state::Protocol;
using state::Service;
using state::Workload;

IpAddress ip(const char* text) { return boost::asio::ip::make_address(text); }
tcp::endpoint ep(const char* text, uint16_t port) { return tcp::endpoint(ip(text), port); }

// Returns the given values in turn, then repeats them.
class ScriptedRandom final : public Random {
 public:
  explicit ScriptedRandom(std::vector<uint64_t> values = {0}) : values_(std::move(values)) {}
  uint64_t next_u64() override { return values_[next_++ % values_.size()]; }

 private:
  std::vector<uint64_t> values_;
  std::size_t next_ = 0;
};

constexpr const char* kSourceIp = "10.0.0.1";
constexpr const char* kSourceIp6 = "fd00::1";
constexpr const char* kWaypointIp = "10.0.0.100";
constexpr const char* kVip = "10.96.0.3";

Workload pod(const std::string& name, std::vector<const char*> ips,
             Protocol protocol = Protocol::kTcp, const std::string& ns = "ns") {
  Workload w;
  w.uid = "cluster1//v1/Pod/" + ns + "/" + name;
  w.name = name;
  w.namespace_ = ns;
  w.trust_domain = "cluster.local";
  w.service_account = name + "-sa";
  for (const char* a : ips) w.addresses.push_back(ip(a));
  w.protocol = protocol;
  return w;
}

Service service(const std::string& name, std::vector<const char*> vips,
                PortMap ports = {{80, 8080}}, const std::string& ns = "ns") {
  Service s;
  s.name = name;
  s.namespace_ = ns;
  s.hostname = name + "." + ns + ".svc.cluster.local";
  for (const char* v : vips) s.vips.push_back(NetworkAddress{"", ip(v)});
  s.ports = std::move(ports);
  return s;
}

// Makes `w` an endpoint of `s` with the given port mapping.
Workload in_service(Workload w, const Service& s, PortMap ports = {}) {
  w.services[s.key()] = std::move(ports);
  return w;
}

GatewayAddress waypoint_at(const char* address, uint16_t port = 15008, std::string network = "") {
  return GatewayAddress{NetworkAddress{std::move(network), ip(address)}, port};
}
GatewayAddress waypoint_named(const std::string& ns, const std::string& hostname) {
  return GatewayAddress{NamespacedHostname{ns, hostname}, 15008};
}

Identity id(const std::string& ns, const std::string& sa) {
  return Identity{"cluster.local", ns, sa};
}

LoadBalancer lb(LoadBalancerMode mode, std::vector<LoadBalancerScope> prefs = {}) {
  LoadBalancer l;
  l.mode = mode;
  l.routing_preferences = std::move(prefs);
  return l;
}

// A store holding the source workload (10.0.0.1 and fd00::1 in "ns") plus
// whatever a test adds, and a router from that source.
class World {
 public:
  explicit World(Workload source = pod("source", {kSourceIp, kSourceIp6}))
      : source_uid_(source.uid) {
    add(std::move(source));
  }

  World& add(Workload w) {
    state::Update u;
    u.upserted_workloads.push_back(std::move(w));
    store_.apply(std::move(u));
    return *this;
  }
  World& add(Service s) {
    state::Update u;
    u.upserted_services.push_back(std::move(s));
    store_.apply(std::move(u));
    return *this;
  }

  const Workload& source() {
    snapshot_ = store_.snapshot();
    source_ = snapshot_->workload_by_uid(source_uid_);
    REQUIRE(source_);
    return *source_;
  }
  std::shared_ptr<const state::Snapshot> snapshot() { return store_.snapshot(); }

  RouteResult route(const char* dst, uint16_t port, Random& random,
                    const RouteOptions& options = {}) {
    const Workload& src = source();
    return route_outbound(*snapshot_, src, ep(dst, port), options, random);
  }
  RouteResult route(const char* dst, uint16_t port) {
    ScriptedRandom zero;
    return route(dst, port, zero);
  }

 private:
  state::Store store_;
  std::string source_uid_;
  std::shared_ptr<const state::Snapshot> snapshot_;
  state::WorkloadPtr source_;
};

std::string describe(const RouteResult& r) {
  if (!r) return "error " + std::string(to_string(r.error().code)) + ": " + r.error().message;
  std::string s = std::string(to_string(r->kind)) + " " + format_endpoint(r->connect_to);
  if (r->authority) s += " authority " + r->authority->to_string();
  return s;
}

void check_error(const RouteResult& r, RouteErrorCode code) {
  CAPTURE(describe(r));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == code);
}

// --- unknown, TCP and HBONE destinations -------------------------------------

TEST_CASE("an unknown destination is passed through untouched") {
  World world;
  world.add(pod("other", {"10.0.0.2"}));
  auto r = world.route("1.2.3.4", 80);
  REQUIRE(r.has_value());
  CHECK(r->kind == RouteKind::kPassthrough);
  CHECK(r->connect_to == ep("1.2.3.4", 80));
  CHECK_FALSE(r->authority.has_value());
  CHECK(r->destination == nullptr);
  CHECK(r->service == nullptr);
  CHECK(r->expected_identities.empty());
}

TEST_CASE("a known TCP workload gets plain TCP to its IP, wherever it runs") {
  World world;
  Workload remote = pod("remote-tcp", {"10.0.0.2"});
  remote.node = "remote-node";
  Workload local = pod("local-tcp", {"10.0.0.3"});
  local.node = "local-node";
  world.add(remote).add(local);
  for (const char* dst : {"10.0.0.2", "10.0.0.3"}) {
    CAPTURE(dst);
    auto r = world.route(dst, 80);
    REQUIRE(r.has_value());
    CHECK(r->kind == RouteKind::kTcp);
    CHECK(r->connect_to == ep(dst, 80));
    CHECK_FALSE(r->authority.has_value());
    REQUIRE(r->destination);
    CHECK(r->destination->addresses.front() == ip(dst));
    CHECK_FALSE(r->via_waypoint);
  }
}

TEST_CASE("a known HBONE workload gets HBONE to port 15008 with its IP:port as authority") {
  World world;
  world.add(pod("server", {"10.0.0.2"}, Protocol::kHbone));
  auto r = world.route("10.0.0.2", 80);
  REQUIRE(r.has_value());
  CHECK(r->kind == RouteKind::kHbone);
  CHECK(r->connect_to == ep("10.0.0.2", 15008));
  REQUIRE(r->authority.has_value());
  CHECK(r->authority->to_string() == "10.0.0.2:80");
  CHECK(r->expected_identities == std::vector<Identity>{id("ns", "server-sa")});
  CHECK(r->destination->name == "server");
  CHECK(r->service == nullptr);
}

TEST_CASE("the HBONE port comes from the options") {
  World world;
  world.add(pod("server", {"10.0.0.2"}, Protocol::kHbone));
  RouteOptions options;
  options.hbone_port = 25008;
  ScriptedRandom random;
  auto r = world.route("10.0.0.2", 80, random, options);
  REQUIRE(r.has_value());
  CHECK(r->connect_to == ep("10.0.0.2", 25008));
}

TEST_CASE("an HBONE endpoint reached through a service expects the service SANs too") {
  World world;
  Service svc = service("reviews", {kVip});
  svc.subject_alt_names = {"spiffe://cluster.local/ns/ns/sa/reviews-canary", "not-a-spiffe-id"};
  world.add(svc).add(in_service(pod("server", {"10.0.0.2"}, Protocol::kHbone), svc));
  auto r = world.route(kVip, 80);
  REQUIRE(r.has_value());
  CHECK(r->kind == RouteKind::kHbone);
  CHECK(r->connect_to == ep("10.0.0.2", 15008));
  CHECK(r->authority->to_string() == "10.0.0.2:8080");
  // Valid SANs first, the invalid one skipped, then the workload's identity.
  CHECK(r->expected_identities ==
        std::vector<Identity>{id("ns", "reviews-canary"), id("ns", "server-sa")});
  REQUIRE(r->service);
  CHECK(r->service->hostname == "reviews.ns.svc.cluster.local");
  // The service goes into the forwarded header for the inbound side's metrics.
  CHECK(forwarded_header(ep(kSourceIp, 40000), r->service->hostname) ==
        R"(for="10.0.0.1:40000";host=reviews.ns.svc.cluster.local)");
}

TEST_CASE("a TCP endpoint reached through a service gets TCP to the target port") {
  World world;
  Service svc = service("reviews", {kVip});
  world.add(svc).add(in_service(pod("server", {"10.0.0.2"}), svc));
  auto r = world.route(kVip, 80);
  REQUIRE(r.has_value());
  CHECK(r->kind == RouteKind::kTcp);
  CHECK(r->connect_to == ep("10.0.0.2", 8080));
  CHECK(r->service->name == "reviews");
}

TEST_CASE("an IPv4-mapped original destination is routed as IPv4") {
  World world;
  world.add(pod("server", {"10.0.0.2"}));
  auto r = world.route("::ffff:10.0.0.2", 80);
  REQUIRE(r.has_value());
  CHECK(r->kind == RouteKind::kTcp);
  CHECK(r->connect_to == ep("10.0.0.2", 80));
}

TEST_CASE("host-network workloads are reached through their service, never by IP") {
  World world;
  Service svc = service("example", {kVip}, {{80, 80}});
  Workload pod1 = in_service(pod("pod1", {"10.0.0.2"}), svc);
  pod1.network_mode = state::NetworkMode::kHostNetwork;
  Workload pod2 = pod("pod2", {"10.0.0.2"});
  pod2.network_mode = state::NetworkMode::kHostNetwork;
  world.add(svc).add(pod1).add(pod2);

  auto via_service = world.route(kVip, 80);
  REQUIRE(via_service.has_value());
  CHECK(via_service->connect_to == ep("10.0.0.2", 80));
  CHECK(via_service->destination->name == "pod1");

  // The node's IP: forwarded, but not attributed to a random pod on it.
  auto direct = world.route("10.0.0.2", 80);
  REQUIRE(direct.has_value());
  CHECK(direct->kind == RouteKind::kPassthrough);
  CHECK(direct->destination == nullptr);
}

TEST_CASE("a service visible only in its namespace is unknown to other namespaces") {
  World world;
  Service svc = service("private", {kVip}, {{80, 8080}}, "other");
  svc.visibility = state::Visibility::kNamespace;
  world.add(svc).add(in_service(pod("server", {"10.0.0.2"}, Protocol::kTcp, "other"), svc));
  auto r = world.route(kVip, 80);
  REQUIRE(r.has_value());
  CHECK(r->kind == RouteKind::kPassthrough);
}

// --- load balancing ----------------------------------------------------------

TEST_CASE("service endpoints are picked by the random draw") {
  World world;
  Service svc = service("reviews", {kVip});
  world.add(svc)
      .add(in_service(pod("a", {"10.0.0.11"}), svc))
      .add(in_service(pod("b", {"10.0.0.12"}), svc))
      .add(in_service(pod("c", {"10.0.0.13"}), svc));
  // Endpoints are in uid order; each draw indexes them.
  ScriptedRandom random({0, 1, 2, 4});
  std::vector<std::string> picked;
  for (int i = 0; i < 4; ++i) {
    auto r = world.route(kVip, 80, random);
    REQUIRE(r.has_value());
    picked.push_back(r->destination->name);
  }
  CHECK(picked == std::vector<std::string>{"a", "b", "c", "b"});
}

TEST_CASE("endpoints are weighted by capacity") {
  World world;
  Service svc = service("reviews", {kVip});
  Workload light = in_service(pod("a-light", {"10.0.0.11"}), svc);
  Workload heavy = in_service(pod("b-heavy", {"10.0.0.12"}), svc);
  heavy.capacity = 3;
  world.add(svc).add(light).add(heavy);

  // Draws 0..3 over total weight 4: one lands on the light endpoint.
  ScriptedRandom scripted({0, 1, 2, 3});
  std::map<std::string, int> exact;
  for (int i = 0; i < 4; ++i) ++exact[world.route(kVip, 80, scripted)->destination->name];
  CHECK(exact["a-light"] == 1);
  CHECK(exact["b-heavy"] == 3);

  SplitMixRandom random(1);
  int heavy_picks = 0;
  constexpr int kPicks = 4000;
  for (int i = 0; i < kPicks; ++i) {
    if (world.route(kVip, 80, random)->destination->name == "b-heavy") ++heavy_picks;
  }
  double share = static_cast<double>(heavy_picks) / kPicks;
  CHECK(share > 0.70);
  CHECK(share < 0.80);
}

TEST_CASE("an endpoint with zero capacity is never picked") {
  World world;
  Service svc = service("reviews", {kVip});
  Workload zero = in_service(pod("a-zero", {"10.0.0.11"}), svc);
  zero.capacity = 0;
  world.add(svc).add(zero);
  check_error(world.route(kVip, 80), RouteErrorCode::kNoHealthyUpstream);
  world.add(in_service(pod("b-one", {"10.0.0.12"}), svc));
  SplitMixRandom random(3);
  for (int i = 0; i < 50; ++i) CHECK(world.route(kVip, 80, random)->destination->name == "b-one");
}

TEST_CASE("unhealthy endpoints are excluded unless the service allows all") {
  World world;
  Service svc = service("reviews", {kVip});
  Workload sick = in_service(pod("a-sick", {"10.0.0.11"}), svc);
  sick.status = state::HealthStatus::kUnhealthy;
  world.add(svc).add(sick);
  check_error(world.route(kVip, 80), RouteErrorCode::kNoHealthyUpstream);

  world.add(in_service(pod("b-well", {"10.0.0.12"}), svc));
  SplitMixRandom random(5);
  for (int i = 0; i < 50; ++i) CHECK(world.route(kVip, 80, random)->destination->name == "b-well");

  svc.load_balancer = LoadBalancer{};
  svc.load_balancer->health_policy = state::LoadBalancerHealthPolicy::kAllowAll;
  world.add(svc);
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) seen.insert(world.route(kVip, 80, random)->destination->name);
  CHECK(seen == std::set<std::string>{"a-sick", "b-well"});
}

TEST_CASE("an endpoint without any address is never picked on our network") {
  World world;
  Service svc = service("reviews", {kVip});
  world.add(svc).add(in_service(pod("nowhere", {}), svc));
  check_error(world.route(kVip, 80), RouteErrorCode::kNoHealthyUpstream);
}

TEST_CASE("a service with no endpoints is no healthy upstream") {
  World world;
  world.add(service("empty", {kVip}));
  auto r = world.route(kVip, 80);
  check_error(r, RouteErrorCode::kNoHealthyUpstream);
  CHECK(r.error().message == "no healthy upstream: 10.96.0.3:80");
}

// --- target ports ------------------------------------------------------------

TEST_CASE("a named port is resolved by the endpoint's own mapping") {
  World world;
  Service svc = service("example", {kVip}, {{80, 0}, {8080, 0}});
  world.add(svc)
      .add(in_service(pod("matching", {"10.0.0.2"}), svc, {{80, 1234}}))
      // This pod does not define port 80 at all.
      .add(in_service(pod("unmatching", {"10.0.0.4"}), svc, {{8080, 9999}}));
  SplitMixRandom random(9);
  for (int i = 0; i < 20; ++i) {
    auto r = world.route(kVip, 80, random);
    REQUIRE(r.has_value());
    CHECK(r->kind == RouteKind::kTcp);
    CHECK(r->connect_to == ep("10.0.0.2", 1234));
  }
}

TEST_CASE("an endpoint mapping wins over the service target port") {
  World world;
  Service svc = service("example", {kVip}, {{80, 8080}});
  world.add(svc).add(in_service(pod("server", {"10.0.0.2"}), svc, {{80, 9090}}));
  CHECK(world.route(kVip, 80)->connect_to == ep("10.0.0.2", 9090));
}

TEST_CASE("a port the service lacks, or a named port no endpoint maps, is no target port") {
  World world;
  Service svc = service("example", {kVip}, {{80, 8080}, {81, 0}});
  world.add(svc).add(in_service(pod("server", {"10.0.0.2"}), svc));
  auto missing = world.route(kVip, 82);
  check_error(missing, RouteErrorCode::kNoTargetPort);
  CHECK(missing.error().message ==
        "requested service example.ns.svc.cluster.local:82 found, but cannot resolve port");
  check_error(world.route(kVip, 81), RouteErrorCode::kNoTargetPort);
  CHECK(world.route(kVip, 80).has_value());
}

// --- PASSTHROUGH services ----------------------------------------------------

TEST_CASE("a PASSTHROUGH service forwards to the original destination") {
  World world;
  Service svc = service("example", {"1.2.3.4", "1.5.6.7"}, {{80, 80}});
  svc.load_balancer = lb(LoadBalancerMode::kPassthrough);
  world.add(svc);
  auto r = world.route("1.2.3.4", 80);
  REQUIRE(r.has_value());
  CHECK(r->kind == RouteKind::kPassthrough);
  CHECK(r->connect_to == ep("1.2.3.4", 80));
  CHECK(r->service == nullptr);
}

TEST_CASE("a PASSTHROUGH service with a waypoint still goes through the waypoint") {
  World world;
  Service svc = service("example", {"1.2.3.4", "1.5.6.7"}, {{80, 80}});
  svc.load_balancer = lb(LoadBalancerMode::kPassthrough);
  svc.waypoint = waypoint_at(kWaypointIp);
  world.add(svc).add(pod("waypoint", {kWaypointIp}));
  auto r = world.route("1.2.3.4", 80);
  REQUIRE(r.has_value());
  CHECK(r->kind == RouteKind::kHbone);
  CHECK(r->connect_to == ep(kWaypointIp, 15008));
  CHECK(r->authority->to_string() == "1.2.3.4:80");
  CHECK(r->via_waypoint);
}

// --- service waypoints -------------------------------------------------------

TEST_CASE("service traffic goes to the service's waypoint with the VIP as authority") {
  World world;
  Service svc = service("reviews", {kVip});
  svc.waypoint = waypoint_at(kWaypointIp);
  // The waypoint's own protocol does not matter: waypoints always take HBONE.
  world.add(svc)
      .add(in_service(pod("server", {"10.0.0.2"}, Protocol::kHbone), svc))
      .add(pod("waypoint", {kWaypointIp}));
  auto r = world.route(kVip, 80);
  REQUIRE(r.has_value());
  CHECK(r->kind == RouteKind::kHbone);
  CHECK(r->connect_to == ep(kWaypointIp, 15008));
  CHECK(r->authority->to_string() == "10.96.0.3:80");
  CHECK(r->expected_identities == std::vector<Identity>{id("ns", "waypoint-sa")});
  CHECK(r->destination->name == "waypoint");
  REQUIRE(r->service);
  CHECK(r->service->name == "reviews");  // the intended service, not the waypoint's
  CHECK(r->via_waypoint);
}

TEST_CASE("a waypoint referenced by hostname is load balanced and its SANs expected") {
  World world;
  Service wp_svc = service("waypoint", {"10.96.0.100"}, {{15008, 15008}});
  wp_svc.subject_alt_names = {"spiffe://cluster.local/ns/ns/sa/waypoint-extra"};
  Service svc = service("reviews", {kVip});
  svc.waypoint = waypoint_named("ns", wp_svc.hostname);
  world.add(wp_svc)
      .add(svc)
      .add(in_service(pod("waypoint", {kWaypointIp}, Protocol::kHbone), wp_svc))
      .add(in_service(pod("server", {"10.0.0.2"}, Protocol::kHbone), svc));
  auto r = world.route(kVip, 80);
  REQUIRE(r.has_value());
  CHECK(r->connect_to == ep(kWaypointIp, 15008));
  CHECK(r->authority->to_string() == "10.96.0.3:80");
  CHECK(r->expected_identities ==
        std::vector<Identity>{id("ns", "waypoint-extra"), id("ns", "waypoint-sa")});
  CHECK(r->service->name == "reviews");
}

TEST_CASE("a waypoint referenced by address uses that address and its HBONE port") {
  World world;
  Service svc = service("reviews", {kVip});
  svc.waypoint = waypoint_at(kWaypointIp, 15009);
  world.add(svc).add(pod("waypoint", {kWaypointIp}));
  auto r = world.route(kVip, 80);
  REQUIRE(r.has_value());
  CHECK(r->connect_to == ep(kWaypointIp, 15009));
}

TEST_CASE("a waypoint behind a VIP lacking the HBONE port needs an app tunnel") {
  World world;
  Service wp_svc = service("waypoint", {"10.96.0.100"}, {{15021, 15021}});
  Service svc = service("reviews", {kVip});
  svc.waypoint = waypoint_at("10.96.0.100");
  world.add(wp_svc).add(svc).add(in_service(pod("waypoint", {kWaypointIp}), wp_svc));
  auto r = world.route(kVip, 80);
  check_error(r, RouteErrorCode::kUnknownWaypoint);
  CHECK(r.error().message == "unknown waypoint: waypoint 10.96.0.100:15008 not found");

  Workload tunneled = in_service(pod("waypoint", {kWaypointIp}), wp_svc);
  tunneled.application_tunnel = ApplicationTunnel{ApplicationTunnel::Protocol::kProxy, 15088};
  world.add(tunneled);
  auto ok = world.route(kVip, 80);
  REQUIRE(ok.has_value());
  // The tunnel's port is the destination ztunnel's business; we still dial HBONE.
  CHECK(ok->connect_to == ep(kWaypointIp, 15008));
}

TEST_CASE("the service's waypoint sending to the service skips itself") {
  Workload waypoint = pod("waypoint", {kWaypointIp});
  World world(waypoint);
  Service svc = service("reviews", {kVip});
  svc.waypoint = waypoint_at(kWaypointIp);
  world.add(svc).add(in_service(pod("server", {"10.0.0.2"}, Protocol::kHbone), svc));
  auto r = world.route(kVip, 80);
  REQUIRE(r.has_value());
  CHECK_FALSE(r->via_waypoint);
  CHECK(r->connect_to == ep("10.0.0.2", 15008));
  CHECK(r->authority->to_string() == "10.0.0.2:8080");
  CHECK(r->service->name == "reviews");
}

TEST_CASE("weighted waypoints are sampled by weight and fall back to the single waypoint") {
  World world;
  world.add(pod("wp-a", {"10.0.0.100"})).add(pod("wp-b", {"10.0.0.101"}));
  Service svc = service("reviews", {kVip});

  svc.weighted_waypoints = {{waypoint_at("10.0.0.100"), 75}, {waypoint_at("10.0.0.101"), 25}};
  world.add(svc);
  ScriptedRandom draws({74, 75});
  CHECK(world.route(kVip, 80, draws)->destination->name == "wp-a");
  CHECK(world.route(kVip, 80, draws)->destination->name == "wp-b");

  // A zero weight is never chosen.
  svc.weighted_waypoints = {{waypoint_at("10.0.0.100"), 0}, {waypoint_at("10.0.0.101"), 100}};
  world.add(svc);
  SplitMixRandom random(11);
  for (int i = 0; i < 30; ++i) CHECK(world.route(kVip, 80, random)->destination->name == "wp-b");

  // All zero cannot be sampled: the single waypoint field applies.
  svc.weighted_waypoints = {{waypoint_at("10.0.0.100"), 0}, {waypoint_at("10.0.0.101"), 0}};
  svc.waypoint = waypoint_at("10.0.0.100");
  world.add(svc);
  CHECK(world.route(kVip, 80)->destination->name == "wp-a");
}

TEST_CASE("an unknown waypoint is an error, not a bypass") {
  World world;
  Service svc = service("reviews", {kVip});
  svc.waypoint = waypoint_named("ns", "missing.ns.svc.cluster.local");
  world.add(svc).add(in_service(pod("server", {"10.0.0.2"}), svc));
  auto by_name = world.route(kVip, 80);
  check_error(by_name, RouteErrorCode::kUnknownWaypoint);
  CHECK(by_name.error().message ==
        "unknown waypoint: waypoint missing.ns.svc.cluster.local not found");

  svc.waypoint = waypoint_at("10.0.0.250");
  world.add(svc);
  check_error(world.route(kVip, 80), RouteErrorCode::kUnknownWaypoint);
}

// --- workload waypoints ------------------------------------------------------

TEST_CASE("workload traffic goes to the workload's waypoint with the pod address as authority") {
  World world;
  Workload server = pod("server", {"10.0.0.2"}, Protocol::kHbone);
  server.waypoint = waypoint_at(kWaypointIp);
  world.add(server).add(pod("waypoint", {kWaypointIp}));
  auto r = world.route("10.0.0.2", 80);
  REQUIRE(r.has_value());
  CHECK(r->kind == RouteKind::kHbone);
  CHECK(r->connect_to == ep(kWaypointIp, 15008));
  CHECK(r->authority->to_string() == "10.0.0.2:80");
  CHECK(r->expected_identities == std::vector<Identity>{id("ns", "waypoint-sa")});
  CHECK(r->destination->name == "waypoint");
  CHECK(r->service == nullptr);
  CHECK(r->via_waypoint);
}

TEST_CASE("a workload waypoint in another family keeps the original IPv6 authority") {
  World world;
  Workload server = pod("server", {"10.0.0.2", "ff06::c3"});
  server.waypoint = waypoint_at(kWaypointIp);
  world.add(server).add(pod("waypoint", {kWaypointIp}));
  auto r = world.route("ff06::c3", 80);
  REQUIRE(r.has_value());
  CHECK(r->connect_to == ep(kWaypointIp, 15008));
  CHECK(r->authority->to_string() == "[ff06::c3]:80");
}

TEST_CASE("a workload waypoint by hostname resolves a service in the caller's family") {
  World world;
  Service wp_svc = service("waypoint", {"10.96.0.100", "fd00:96::100"}, {{15008, 15008}});
  Workload server = pod("server", {"10.0.0.2", "fd00::2"});
  server.waypoint = waypoint_named("ns", wp_svc.hostname);
  world.add(wp_svc)
      .add(in_service(pod("waypoint", {kWaypointIp, "fd00::100"}), wp_svc))
      .add(server);
  CHECK(world.route("10.0.0.2", 80)->connect_to == ep(kWaypointIp, 15008));
  auto v6 = world.route("fd00::2", 80);
  REQUIRE(v6.has_value());
  CHECK(v6->connect_to == ep("fd00::100", 15008));
  CHECK(v6->authority->to_string() == "[fd00::2]:80");
}

TEST_CASE("a workload waypoint by hostname can name a workload") {
  World world;
  Workload wp = pod("waypoint", {kWaypointIp});
  wp.hostname = "waypoint.example";
  Workload server = pod("server", {"10.0.0.2"});
  server.waypoint = waypoint_named("ns", "waypoint.example");
  world.add(wp).add(server);
  auto r = world.route("10.0.0.2", 80);
  REQUIRE(r.has_value());
  CHECK(r->connect_to == ep(kWaypointIp, 15008));
  CHECK(r->destination->name == "waypoint");
}

TEST_CASE("the workload's waypoint sending to it goes direct") {
  Workload waypoint = pod("waypoint", {kWaypointIp});
  World world(waypoint);
  Workload server = pod("server", {"10.0.0.2"}, Protocol::kHbone);
  server.waypoint = waypoint_at(kWaypointIp);
  world.add(server);
  auto r = world.route("10.0.0.2", 80);
  REQUIRE(r.has_value());
  CHECK_FALSE(r->via_waypoint);
  CHECK(r->connect_to == ep("10.0.0.2", 15008));
  CHECK(r->destination->name == "server");
}

TEST_CASE("a workload sharing the waypoint's identity but not its address is not the waypoint") {
  Workload impostor = pod("waypoint", {"10.0.0.50"});
  impostor.uid = "cluster1//v1/Pod/ns/impostor";
  World world(impostor);
  Workload server = pod("server", {"10.0.0.2"}, Protocol::kHbone);
  server.waypoint = waypoint_at(kWaypointIp);
  world.add(server).add(pod("waypoint", {kWaypointIp}));
  auto r = world.route("10.0.0.2", 80);
  REQUIRE(r.has_value());
  CHECK(r->via_waypoint);
}

TEST_CASE("service-addressed traffic skips the endpoint's workload waypoint") {
  World world;
  Service svc = service("reviews", {kVip});
  Workload server = in_service(pod("server", {"10.0.0.2"}, Protocol::kHbone), svc);
  server.waypoint = waypoint_at(kWaypointIp);
  world.add(svc).add(server).add(pod("waypoint", {kWaypointIp}));
  auto r = world.route(kVip, 80);
  REQUIRE(r.has_value());
  CHECK_FALSE(r->via_waypoint);
  CHECK(r->connect_to == ep("10.0.0.2", 15008));
  // The same pod addressed directly does use it.
  CHECK(world.route("10.0.0.2", 8080)->via_waypoint);
}

// --- other networks ----------------------------------------------------------

Workload remote_pod(const Service& svc, bool with_gateway) {
  Workload w = in_service(pod("remote", {"10.1.0.2"}), svc);
  w.network = "remote";
  if (with_gateway) w.network_gateway = waypoint_at("10.22.1.1", 15009, "remote");
  return w;
}

TEST_CASE("an endpoint on another network needs double HBONE, which is not implemented") {
  World world;
  Service svc = service("example", {kVip});
  world.add(svc).add(remote_pod(svc, true));
  auto r = world.route(kVip, 80);
  check_error(r, RouteErrorCode::kUnsupportedDoubleHbone);
  CHECK(r.error().message.find("not implemented") != std::string::npos);
}

TEST_CASE("an endpoint on another network without a gateway has no valid destination") {
  World world;
  Service svc = service("example", {kVip});
  world.add(svc).add(remote_pod(svc, false));
  check_error(world.route(kVip, 80), RouteErrorCode::kNoValidDestination);
}

TEST_CASE("NETWORK-first FAILOVER stays local while a local endpoint is healthy") {
  World world;
  Service svc = service("example", {kVip});
  svc.load_balancer = lb(LoadBalancerMode::kFailover, {LoadBalancerScope::kNetwork});
  Workload remote = in_service(pod("remote", {}), svc);
  remote.network = "remote";
  remote.network_gateway = waypoint_at("10.22.1.1", 15009, "remote");
  Workload local = in_service(pod("local", {"10.0.0.2"}, Protocol::kHbone), svc);
  world.add(svc).add(remote).add(local);
  SplitMixRandom random(13);
  for (int i = 0; i < 20; ++i) {
    auto r = world.route(kVip, 80, random);
    REQUIRE(r.has_value());
    CHECK(r->connect_to == ep("10.0.0.2", 15008));
    CHECK(r->authority->to_string() == "10.0.0.2:8080");
  }
  local.status = state::HealthStatus::kUnhealthy;
  world.add(local);
  check_error(world.route(kVip, 80), RouteErrorCode::kUnsupportedDoubleHbone);
}

TEST_CASE("a service waypoint on another network needs double HBONE") {
  World world;
  Service svc = service("example", {kVip});
  svc.waypoint = waypoint_at("10.1.0.100", 15008, "remote");
  Workload wp = pod("waypoint", {"10.1.0.100"});
  wp.network = "remote";
  wp.network_gateway = waypoint_at("10.22.1.1", 15009, "remote");
  world.add(svc).add(wp);
  check_error(world.route(kVip, 80), RouteErrorCode::kUnsupportedDoubleHbone);
}

// --- self calls --------------------------------------------------------------

TEST_CASE("calls to the proxy's own ports on loopback or the source's own IPs are refused") {
  World world;
  world.add(pod("other", {"10.0.0.2"}, Protocol::kHbone));
  struct Case {
    const char* ip;
    uint16_t port;
    bool self_call;
  };
  const Case cases[] = {
      {"127.0.0.1", 15001, true},  {"127.0.0.1", 15006, true}, {"127.0.0.1", 15008, true},
      {"127.0.0.53", 15006, true}, {"::1", 15008, true},       {"::ffff:127.0.0.1", 15001, true},
      {kSourceIp, 15008, true},    {kSourceIp6, 15001, true},  {"127.0.0.1", 80, false},
      {"127.0.0.1", 15080, false}, {kSourceIp, 80, false},     {"10.0.0.2", 15008, false},
      {"127.0.0.1", 15000, false},
  };
  for (const auto& c : cases) {
    CAPTURE(c.ip);
    CAPTURE(c.port);
    auto r = world.route(c.ip, c.port);
    if (c.self_call) {
      check_error(r, RouteErrorCode::kSelfCall);
      CHECK(r.error().message == "attempted recursive call to ourselves");
    } else {
      CHECK(r.has_value());
    }
  }
}

TEST_CASE("the SOCKS5 port is illegal only when that listener is on") {
  config::Config config;
  CHECK(RouteOptions::from_config(config).illegal_ports.size() == 3);
  config.socks5_enabled = true;
  config.network = "net-a";
  RouteOptions options = RouteOptions::from_config(config);
  CHECK(options.network == "net-a");
  CHECK(options.hbone_port == 15008);
  World world;
  ScriptedRandom random;
  check_error(world.route("127.0.0.1", 15080, random, options), RouteErrorCode::kSelfCall);
}

// --- dual stack --------------------------------------------------------------

TEST_CASE("a dual-stack workload is reached in the family it was addressed in") {
  World world;
  world.add(pod("dual", {"10.0.0.2", "ff06::c3"}));
  CHECK(world.route("10.0.0.2", 80)->connect_to == ep("10.0.0.2", 80));
  CHECK(world.route("ff06::c3", 80)->connect_to == ep("ff06::c3", 80));
}

TEST_CASE("a workload addressed at its second IP of a family is reached there") {
  World world;
  world.add(pod("multi", {"10.0.0.2", "10.0.0.3"}));
  CHECK(world.route("10.0.0.3", 80)->connect_to == ep("10.0.0.3", 80));
}

TEST_CASE("a service's IP families decide which endpoint address is used") {
  struct Case {
    state::IpFamilies families;
    const char* vip;
    const char* want;
  };
  const Case cases[] = {
      {state::IpFamilies::kIpv6Only, kVip, "ff06::c3"},
      {state::IpFamilies::kIpv4Only, kVip, "10.0.0.2"},
      {state::IpFamilies::kDual, kVip, "10.0.0.2"},
      {state::IpFamilies::kDual, "fd00:96::3", "ff06::c3"},
      {state::IpFamilies::kAutomatic, "fd00:96::3", "ff06::c3"},
      {state::IpFamilies::kIpv4Only, "fd00:96::3", "10.0.0.2"},
  };
  for (const auto& c : cases) {
    std::string families(state::enum_name(c.families));
    CAPTURE(c.vip);
    CAPTURE(families);
    World world;
    Service svc = service("example", {kVip, "fd00:96::3"}, {{80, 80}});
    svc.ip_families = c.families;
    world.add(svc).add(in_service(pod("dual", {"10.0.0.2", "ff06::c3"}, Protocol::kHbone), svc));
    auto r = world.route(c.vip, 80);
    REQUIRE(r.has_value());
    CHECK(r->connect_to == ep(c.want, 15008));
    CHECK(r->authority->to_string() == format_endpoint(ep(c.want, 80)));
  }
}

// --- workloads known by DNS name ---------------------------------------------

TEST_CASE("a workload known only by hostname leaves DNS to the caller") {
  World world;
  Service svc = service("external", {kVip});
  Workload ext = in_service(pod("ext", {}, Protocol::kHbone), svc);
  ext.hostname = "ext.example.com";
  world.add(svc).add(ext);
  auto r = world.route(kVip, 80);
  REQUIRE(r.has_value());
  REQUIRE(r->pending_dns.has_value());
  CHECK(r->pending_dns->hostname == "ext.example.com");
  CHECK_FALSE(r->pending_dns->prefer_ipv6);
  CHECK(r->connect_to.port() == 15008);
  CHECK(r->connect_to.address().is_unspecified());

  Route done = with_resolved_address(*r, ip("192.0.2.5"));
  CHECK_FALSE(done.pending_dns.has_value());
  CHECK(done.connect_to == ep("192.0.2.5", 15008));
  CHECK(done.authority->to_string() == "192.0.2.5:8080");

  ext.protocol = Protocol::kTcp;
  world.add(ext);
  Route tcp_route = with_resolved_address(*world.route(kVip, 80), ip("192.0.2.6"));
  CHECK(tcp_route.kind == RouteKind::kTcp);
  CHECK(tcp_route.connect_to == ep("192.0.2.6", 8080));
}

TEST_CASE("a waypoint known only by hostname keeps the original authority once resolved") {
  World world;
  Workload wp = pod("waypoint", {});
  wp.hostname = "waypoint.example";
  Workload server = pod("server", {"10.0.0.2"});
  server.waypoint = waypoint_named("ns", "waypoint.example");
  world.add(wp).add(server);
  auto r = world.route("10.0.0.2", 80);
  REQUIRE(r.has_value());
  REQUIRE(r->pending_dns.has_value());
  CHECK_FALSE(r->pending_dns->authority_too);
  Route done = with_resolved_address(*r, ip("10.0.0.200"));
  CHECK(done.connect_to == ep("10.0.0.200", 15008));
  CHECK(done.authority->to_string() == "10.0.0.2:80");
}

TEST_CASE("a DNS answer of the caller's family is preferred") {
  const std::vector<IpAddress> answers = {ip("192.0.2.1"), ip("2001:db8::1"), ip("192.0.2.2")};
  ScriptedRandom first;
  CHECK(choose_resolved_address(answers, true, first) == ip("2001:db8::1"));
  CHECK(choose_resolved_address(answers, false, first) == ip("192.0.2.1"));
  ScriptedRandom second({1});
  CHECK(choose_resolved_address(answers, false, second) == ip("192.0.2.2"));
  const std::vector<IpAddress> only_v6 = {ip("2001:db8::1")};
  CHECK(choose_resolved_address(only_v6, false, first) == ip("2001:db8::1"));
  CHECK_FALSE(choose_resolved_address({}, false, first).has_value());
}

// --- locality ----------------------------------------------------------------
// Istio's test_load_balance: endpoints ranked for [NETWORK, REGION, ZONE].

class LocalityWorld {
 public:
  LocalityWorld() {
    auto wl = [](const char* name, std::vector<const char*> ips, const char* network,
                 const char* region, const char* zone) {
      Workload w = pod(name, std::move(ips), Protocol::kTcp, "default");
      w.network = network;
      w.locality = {region, zone, ""};
      return w;
    };
    state::Update u;
    u.upserted_workloads = {
        wl("wl_no_locality", {"192.168.0.1"}, "network", "", ""),
        wl("wl_match", {"192.168.0.2"}, "network", "reg", "zone"),
        wl("wl_almost", {"192.168.0.3"}, "network", "reg", "not-zone"),
        wl("wl_other", {"192.168.0.5"}, "other", "reg", "zone"),
        wl("wl_empty_ip", {}, "network", "reg", "zone"),
    };
    store_.apply(std::move(u));
    for (const char* name :
         {"ep_almost", "wl_match", "wl_almost", "wl_no_locality", "wl_other", "wl_empty_ip"}) {
      std::string uid = std::string("cluster1//v1/Pod/default/") + name;
      endpoints_[uid] = std::make_shared<const state::Endpoint>(
          state::Endpoint{uid, PortMap{{80, 80}}, state::HealthStatus::kHealthy});
    }
  }

  Service svc(LoadBalancerMode mode, std::vector<LoadBalancerScope> prefs = {
                                         LoadBalancerScope::kNetwork, LoadBalancerScope::kRegion,
                                         LoadBalancerScope::kZone}) const {
    Service s = service("svc", {}, {{80, 80}}, "default");
    s.endpoints = endpoints_;
    s.load_balancer = lb(mode, std::move(prefs));
    return s;
  }

  // Every endpoint name picked over many draws.
  std::set<std::string> picks(const Workload& src, const Service& s) {
    auto snap = store_.snapshot();
    SplitMixRandom random(17);
    std::set<std::string> names;
    for (int i = 0; i < 100; ++i) {
      if (auto w = pick_service_endpoint(*snap, src, s, 80, random)) names.insert(w->name);
    }
    return names;
  }

 private:
  state::Store store_;
  state::EndpointMap endpoints_;
};

Workload client(const char* network, const char* region, const char* zone) {
  Workload w;
  w.network = network;
  w.locality = {region, zone, ""};
  return w;
}

using Names = std::set<std::string>;

TEST_CASE("STRICT locality picks only endpoints matching every scope") {
  LocalityWorld world;
  Service strict = world.svc(LoadBalancerMode::kStrict);
  CHECK(world.picks(client("", "", ""), strict) == Names{});
  CHECK(world.picks(client("network", "reg", "zone"), strict) == Names{"wl_match"});
}

TEST_CASE("FAILOVER locality keeps the best-ranked endpoints") {
  LocalityWorld world;
  Service failover = world.svc(LoadBalancerMode::kFailover);
  CHECK(world.picks(client("no-match", "no-match", "no-match"), failover) ==
        Names{"wl_match", "wl_almost", "wl_no_locality", "wl_other"});
  CHECK(world.picks(client("network", "reg", "zone"), failover) == Names{"wl_match"});
  CHECK(world.picks(client("network", "reg", ""), failover) == Names{"wl_match", "wl_almost"});
  CHECK(world.picks(client("network", "no-match", "no-match"), failover) ==
        Names{"wl_match", "wl_almost", "wl_no_locality"});
  // A different network skips the NETWORK scope instead of stopping the ranking.
  CHECK(world.picks(client("no-match", "reg", "zone"), failover) == Names{"wl_match", "wl_other"});
  // An endpoint without an address is never picked.
  CHECK_FALSE(world.picks(client("", "", ""), failover).contains("wl_empty_ip"));
}

TEST_CASE("FAILOVER without NETWORK first ranks by the leading scopes only") {
  LocalityWorld world;
  Service failover = world.svc(LoadBalancerMode::kFailover,
                               {LoadBalancerScope::kRegion, LoadBalancerScope::kZone});
  CHECK(world.picks(client("network", "reg", "zone"), failover) == Names{"wl_match", "wl_other"});
  CHECK(world.picks(client("network", "reg", "elsewhere"), failover) ==
        Names{"wl_match", "wl_almost", "wl_other"});
}

TEST_CASE("STRICT routing through the router is no healthy upstream when nothing matches") {
  World world;
  Service svc = service("example", {kVip});
  svc.load_balancer = lb(LoadBalancerMode::kStrict, {LoadBalancerScope::kZone});
  Workload far = in_service(pod("far", {"10.0.0.2"}), svc);
  far.locality.zone = "zone-b";
  world.add(svc).add(far);
  check_error(world.route(kVip, 80), RouteErrorCode::kNoHealthyUpstream);
  Workload near = in_service(pod("near", {"10.0.0.3"}), svc);  // same (empty) zone as the source
  world.add(near);
  CHECK(world.route(kVip, 80)->destination->name == "near");
}

}  // namespace
}  // namespace ztunnel::proxy
