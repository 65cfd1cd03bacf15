// Unit tests for inbound HBONE request phases: authority, destination check, upstream.
#include "proxy/inbound_request.h"

#include <array>
#include <string>
#include <vector>

#include "config/config.h"
#include "support/testing.h"

namespace ztunnel::proxy {
namespace {

using state::ApplicationTunnel;
using state::GatewayAddress;
using state::IpAddress;
using state::NetworkAddress;
using state::PortMap;
using state::Service;
using state::Workload;

IpAddress ip(const char* text) { return boost::asio::ip::make_address(text); }
tcp::endpoint ep(const char* text, uint16_t port) { return tcp::endpoint(ip(text), port); }

const std::vector<uint16_t> kIllegal{config::kIllegalPorts.begin(), config::kIllegalPorts.end()};

// --- phase 1 and 2 -----------------------------------------------------------

TEST_CASE("only CONNECT is served") {
  CHECK(check_connect_method("CONNECT").has_value());
  auto get = check_connect_method("GET");
  REQUIRE_FALSE(get.has_value());
  CHECK(get.error().status == 400);
  CHECK(get.error().message == "expected method CONNECT, got GET");
  CHECK_FALSE(check_connect_method("connect").has_value());
}

TEST_CASE("authorities that are socket addresses parse to endpoints") {
  struct Case {
    const char* text;
    const char* ip;
    uint16_t port;
  };
  const Case cases[] = {
      {"1.2.3.4:80", "1.2.3.4", 80},
      {"10.0.0.2:8080", "10.0.0.2", 8080},
      {"[::1]:80", "::1", 80},
      {"[fd00::1:2]:15008", "fd00::1:2", 15008},
      {"[::ffff:1.2.3.4]:80", "::ffff:1.2.3.4", 80},
      {"255.255.255.255:65535", "255.255.255.255", 65535},
      {"1.2.3.4:1", "1.2.3.4", 1},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    auto parsed = parse_authority(c.text);
    REQUIRE(parsed.has_value());
    REQUIRE(parsed->endpoint() != nullptr);
    CHECK(*parsed->endpoint() == ep(c.ip, c.port));
    CHECK(parsed->port() == c.port);
  }
  CHECK(parse_authority("[::1]:80")->to_string() == "[::1]:80");
}

TEST_CASE("authorities that are hostnames parse to a host and port") {
  struct Case {
    const char* text;
    const char* host;
    uint16_t port;
  };
  const Case cases[] = {
      {"server.default.svc.cluster.local:80", "server.default.svc.cluster.local", 80},
      {"example.com:65535", "example.com", 65535},
      {"a:1", "a", 1},
      {"Mixed-Case.Example:443", "Mixed-Case.Example", 443},
      {"_srv.example.com:80", "_srv.example.com", 80},
      {"1host.example:80", "1host.example", 80},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    auto parsed = parse_authority(c.text);
    REQUIRE(parsed.has_value());
    REQUIRE(parsed->host_port() != nullptr);
    CHECK(parsed->host_port()->host == c.host);
    CHECK(parsed->port() == c.port);
    CHECK(parsed->to_string() == c.text);
  }
}

TEST_CASE("malformed authorities are rejected with a 400") {
  const char* cases[] = {
      "",                        // empty
      "1.2.3.4",                 // no port
      "example.com",             // no port
      "1.2.3.4:",                // empty port
      "1.2.3.4:0",               // port 0
      "1.2.3.4:65536",           // port too large
      "1.2.3.4:123456",          // too many digits
      "1.2.3.4:-1",              // signed
      "1.2.3.4:+80",             // signed
      "1.2.3.4:8a",              // not decimal
      "1.2.3.4:80:80",           // trailing garbage
      "1.2.3.4:80/path",         // trailing garbage
      "[::1",                    // unbalanced bracket
      "[::1]",                   // no port
      "[::1]80",                 // no colon
      "[::1]:",                  // empty port
      "[::1]:80x",               // trailing garbage
      "::1:80",                  // IPv6 without brackets
      "[]:80",                   // empty host
      ":80",                     // empty host
      "[1.2.3.4]:80",            // IPv4 in brackets
      "[fe80::1%eth0]:80",       // zone id
      "[not-v6]:80",             // not an address
      "a@1.2.3.4:80",            // userinfo
      "user:pw@example.com:80",  // userinfo
      " 1.2.3.4:80",             // spaces
      "1.2.3.4:80 ",
      "1.2.3.4 :80",
      "my host:80",
      "1.2.3.4:80\r\n",    // control characters
      "1.2.3.256:80",      // not an IPv4 address, not a hostname either
      "010.0.0.1:80",      // leading zero
      "1.2.3:80",          // short IPv4
      "host..example:80",  // empty label
      ".example:80",
      "example.:80",        // trailing dot
      "exa/mple:80",        // path characters
      "ns/svc.example:80",  // a namespaced name is not a hostname
      "h\xc3\xb3st:80",     // non-ASCII
  };
  for (const char* text : cases) {
    CAPTURE(text);
    auto parsed = parse_inbound_authority(text);
    REQUIRE_FALSE(parsed.has_value());
    CHECK(parsed.error().status == 400);
    CHECK(parsed.error().message.find("invalid CONNECT authority") != std::string::npos);
  }
  CHECK_FALSE(parse_authority(std::string(64, 'a') + ".example:80").has_value());  // label > 63
  CHECK(parse_authority(std::string(63, 'a') + ".example:80").has_value());
}

// --- phases 4 and 5 ----------------------------------------------------------
// The topology of Istio's inbound tests: a client, a server and a waypoint pod,
// and "server" and "waypoint" services, all HBONE, in namespace "default".

constexpr const char* kClientPod = "10.0.0.1";
constexpr const char* kServerPod = "10.0.0.2";
constexpr const char* kWaypointPod = "10.0.0.3";
constexpr const char* kServerVip = "10.10.0.1";
constexpr const char* kWaypointVip = "10.10.0.2";
constexpr const char* kServerHost = "server.default.svc.cluster.local";
constexpr uint16_t kServicePort = 80;
constexpr uint16_t kTargetPort = 8080;
constexpr uint16_t kTunnelPort = 15088;

std::string uid(const std::string& name) { return "cluster1//v1/Pod/default/" + name; }

GatewayAddress gateway(const char* address) {
  return GatewayAddress{NetworkAddress{"", ip(address)}, 15008};
}

enum class Attach { kNone, kService, kWorkload };

struct Topology {
  Attach attach = Attach::kNone;
  const char* waypoint_address = nullptr;   // the server's waypoint reference
  std::optional<ApplicationTunnel> tunnel;  // on the waypoint pod
};

class World {
 public:
  explicit World(const Topology& t) {
    state::Update u;
    for (auto [name, vip] :
         {std::pair{"waypoint", kWaypointVip}, std::pair{"server", kServerVip}}) {
      Service s;
      s.name = name;
      s.namespace_ = "default";
      s.hostname = std::string(name) + ".default.svc.cluster.local";
      s.vips.push_back({"", ip(vip)});
      s.ports[kServicePort] = kTargetPort;
      s.subject_alt_names.push_back(s.hostname);
      s.canonical = true;
      if (std::string(name) == "server" && t.attach == Attach::kService) {
        s.waypoint = gateway(t.waypoint_address);
      }
      u.upserted_services.push_back(std::move(s));
    }
    for (auto [name, pod] : {std::pair{"waypoint", kWaypointPod}, std::pair{"client", kClientPod},
                             std::pair{"server", kServerPod}}) {
      Workload w;
      w.uid = uid(name);
      w.name = std::string("workload-") + name;
      w.namespace_ = "default";
      w.service_account = std::string("service-account-") + name;
      w.addresses.push_back(ip(pod));
      w.protocol = state::Protocol::kHbone;
      if (std::string(name) != "client") {
        w.services[state::service_key(
            "default", std::string(name) + ".default.svc.cluster.local")] = PortMap{};
      }
      if (std::string(name) == "server" && t.attach == Attach::kWorkload) {
        w.waypoint = gateway(t.waypoint_address);
      }
      if (std::string(name) == "waypoint") w.application_tunnel = t.tunnel;
      u.upserted_workloads.push_back(std::move(w));
    }
    store_.apply(std::move(u));
  }

  void apply(state::Update u) { store_.apply(std::move(u)); }
  std::shared_ptr<const state::Snapshot> snapshot() const { return store_.snapshot(); }

  // Runs phases 2, 4 and 5 for a CONNECT that arrived at `connection_dst`:15008.
  InboundResult<InboundUpstream> request(const char* connection_dst, const std::string& authority,
                                         const std::vector<uint16_t>& illegal = kIllegal) const {
    auto snap = snapshot();
    auto local = snap->workload_by_address({"", ip(connection_dst)});
    REQUIRE(local);
    auto target = parse_inbound_authority(authority);
    if (!target) return target.error();
    tcp::endpoint dst = ep(connection_dst, 15008);
    auto valid = validate_destination(*snap, *local, dst, "", *target);
    if (!valid) return valid.error();
    return find_inbound_upstream(*snap, *local, dst, "", *target, illegal);
  }

 private:
  state::Store store_;
};

std::string socket_authority(const char* address, uint16_t port = kTargetPort) {
  return format_endpoint(ep(address, port));
}
std::string host_authority() {
  return std::string(kServerHost) + ":" + std::to_string(kServicePort);
}

const ApplicationTunnel kProxyTunnel{ApplicationTunnel::Protocol::kProxy, kTunnelPort};

TEST_CASE("a request for the local pod goes to the same port on it") {
  World world(Topology{});
  auto up = world.request(kServerPod, socket_authority(kServerPod));
  REQUIRE(up.has_value());
  CHECK(up->address == ep(kServerPod, kTargetPort));
  CHECK_FALSE(up->tunnel.has_value());
  // Every service of the local workload is a candidate for metrics.
  REQUIRE(up->services.size() == 1);
  CHECK(up->services[0]->hostname == kServerHost);
}

TEST_CASE("a service hostname authority maps the service port to the target port") {
  World world(Topology{});
  auto up = world.request(kServerPod, host_authority());
  REQUIRE(up.has_value());
  CHECK(up->address == ep(kServerPod, kTargetPort));
  REQUIRE(up->services.size() == 1);
  CHECK(up->services[0]->hostname == kServerHost);
}

TEST_CASE("a sandwiched waypoint accepts traffic for the workloads and services it serves") {
  struct Case {
    const char* name;
    Topology topology;
    const char* authority_ip;
    uint16_t want_port;
    const char* want_tunnel_ip;  // null: no tunnel
  };
  const Case cases[] = {
      {"to workload, waypoint referenced by pod",
       {Attach::kWorkload, kWaypointPod, {}},
       kServerPod,
       kTargetPort,
       nullptr},
      {"to workload, waypoint referenced by VIP",
       {Attach::kWorkload, kWaypointVip, {}},
       kServerPod,
       kTargetPort,
       nullptr},
      {"to workload, waypoint with a PROXY app tunnel",
       {Attach::kWorkload, kWaypointVip, kProxyTunnel},
       kServerPod,
       kTunnelPort,
       kServerPod},
      {"to service, waypoint referenced by pod",
       {Attach::kService, kWaypointPod, {}},
       kServerVip,
       kTargetPort,
       nullptr},
      {"to service, waypoint referenced by VIP",
       {Attach::kService, kWaypointVip, {}},
       kServerVip,
       kTargetPort,
       nullptr},
      {"to service, waypoint with a PROXY app tunnel",
       {Attach::kService, kWaypointVip, kProxyTunnel},
       kServerVip,
       kTunnelPort,
       kServerVip},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    World world(c.topology);
    auto up = world.request(kWaypointPod, socket_authority(c.authority_ip));
    REQUIRE(up.has_value());
    CHECK(up->address == ep(kWaypointPod, c.want_port));
    if (c.want_tunnel_ip) {
      REQUIRE(up->tunnel.has_value());
      CHECK(up->tunnel->protocol == ApplicationTunnel::Protocol::kProxy);
      CHECK(up->tunnel->target == ep(c.want_tunnel_ip, kTargetPort));
    } else {
      CHECK_FALSE(up->tunnel.has_value());
    }
  }
}

TEST_CASE("an authority for another IP is a 400 ip mismatch unless the pod is its waypoint") {
  struct Case {
    const char* name;
    Topology topology;
    const char* connection_dst;
    const char* authority_ip;
  };
  const Case cases[] = {
      {"to server, authority names the client", {}, kServerPod, kClientPod},
      {"to a waypoint nothing is attached to", {}, kWaypointPod, kClientPod},
      {"service-attached waypoint, authority names the pod",
       {Attach::kService, kWaypointPod, {}},
       kWaypointPod,
       kServerPod},
      {"workload-attached waypoint, authority names the service",
       {Attach::kWorkload, kWaypointPod, {}},
       kWaypointPod,
       kServerVip},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    World world(c.topology);
    auto up = world.request(c.connection_dst, socket_authority(c.authority_ip));
    REQUIRE_FALSE(up.has_value());
    CHECK(up.error().status == 400);
    CHECK(up.error().message ==
          std::string("ip mismatch: ") + c.connection_dst + " != " + c.authority_ip);
  }
}

TEST_CASE("an app tunnel workload accepts any authority IP") {
  World world(
      Topology{Attach::kNone, nullptr, ApplicationTunnel{ApplicationTunnel::Protocol::kNone, {}}});
  auto snap = world.snapshot();
  auto local = snap->workload_by_uid(uid("waypoint"));
  auto target = HboneAddress::socket(ep("192.168.9.9", 80));
  CHECK(validate_destination(*snap, *local, ep(kWaypointPod, 15008), "", target).has_value());
  auto up = find_inbound_upstream(*snap, *local, ep(kWaypointPod, 15008), "", target, kIllegal);
  REQUIRE(up.has_value());
  // A tunnel without a port keeps the requested one; the target goes in the tunnel request.
  CHECK(up->address == ep(kWaypointPod, 80));
  REQUIRE(up->tunnel.has_value());
  CHECK(up->tunnel->protocol == ApplicationTunnel::Protocol::kNone);
  CHECK(up->tunnel->target == ep("192.168.9.9", 80));
}

TEST_CASE("a waypoint referenced by hostname is recognised when validating") {
  World world(Topology{});
  state::Update u;
  Workload server = *world.snapshot()->workload_by_uid(uid("server"));
  server.waypoint = GatewayAddress{
      state::NamespacedHostname{"default", "waypoint.default.svc.cluster.local"}, 15008};
  u.upserted_workloads.push_back(server);
  world.apply(std::move(u));
  auto up = world.request(kWaypointPod, socket_authority(kServerPod));
  REQUIRE(up.has_value());
  CHECK(up->address == ep(kWaypointPod, kTargetPort));
}

TEST_CASE("the ip check compares an IPv4-mapped authority as IPv4") {
  World world(Topology{});
  auto up = world.request(kServerPod, "[::ffff:10.0.0.2]:8080");
  REQUIRE(up.has_value());
  CHECK(up->address == ep(kServerPod, kTargetPort));
}

TEST_CASE("an IPv6 mismatch names both addresses") {
  World world(Topology{});
  auto snap = world.snapshot();
  auto local = snap->workload_by_uid(uid("server"));
  auto v = validate_destination(*snap, *local, ep("fd00::2", 15008), "",
                                HboneAddress::socket(ep("fd00::1", 80)));
  REQUIRE_FALSE(v.has_value());
  CHECK(v.error().message == "ip mismatch: fd00::2 != fd00::1");
}

TEST_CASE("a hostname authority resolves a named port through the local endpoint") {
  World world(Topology{});
  auto snap = world.snapshot();
  Service svc = *snap->service_by_key(state::service_key("default", kServerHost));
  svc.ports[kServicePort] = 0;  // named port
  Workload server = *snap->workload_by_uid(uid("server"));
  server.services[svc.key()] = PortMap{{kServicePort, 9090}};
  state::Update u;
  svc.endpoints.clear();  // let the store derive them from the workload
  u.upserted_services.push_back(svc);
  u.upserted_workloads.push_back(server);
  world.apply(std::move(u));
  auto up = world.request(kServerPod, host_authority());
  REQUIRE(up.has_value());
  CHECK(up->address == ep(kServerPod, 9090));
}

TEST_CASE("a named port with no endpoint mapping is a 503") {
  World world(Topology{});
  Service svc = *world.snapshot()->service_by_key(state::service_key("default", kServerHost));
  svc.ports[kServicePort] = 0;
  svc.endpoints.clear();
  state::Update u;
  u.upserted_services.push_back(svc);
  world.apply(std::move(u));
  auto up = world.request(kServerPod, host_authority());
  REQUIRE_FALSE(up.has_value());
  CHECK(up.error().status == 503);
  CHECK(up.error().message ==
        "requested service server.default.svc.cluster.local:80 found, but cannot resolve port");
  // A port the service does not have at all fails the same way.
  auto other = world.request(kServerPod, std::string(kServerHost) + ":81");
  REQUIRE_FALSE(other.has_value());
  CHECK(other.error().status == 503);
}

TEST_CASE("an unknown or invisible hostname is a 503") {
  World world(Topology{});
  auto up = world.request(kServerPod, "nothing.default.svc.cluster.local:80");
  REQUIRE_FALSE(up.has_value());
  CHECK(up.error().status == 503);
  CHECK(up.error().message ==
        "no service or workload for hostname: nothing.default.svc.cluster.local");

  Service hidden;
  hidden.name = "hidden";
  hidden.namespace_ = "other";
  hidden.hostname = "hidden.other.svc.cluster.local";
  hidden.ports[80] = 8080;
  hidden.visibility = state::Visibility::kNamespace;
  state::Update u;
  u.upserted_services.push_back(hidden);
  world.apply(std::move(u));
  auto invisible = world.request(kServerPod, "hidden.other.svc.cluster.local:80");
  REQUIRE_FALSE(invisible.has_value());
  CHECK(invisible.error().status == 503);
}

TEST_CASE("a resolved port on one of the proxy's own listeners is a 503 self call") {
  World world(Topology{});
  for (uint16_t port : config::kIllegalPorts) {
    CAPTURE(port);
    auto up = world.request(kServerPod, socket_authority(kServerPod, port));
    REQUIRE_FALSE(up.has_value());
    CHECK(up.error().status == 503);
    CHECK(up.error().message == "attempted recursive call to ourselves");
  }
  // The SOCKS5 port only when that listener is on.
  CHECK(world.request(kServerPod, socket_authority(kServerPod, 15080)).has_value());
  std::vector<uint16_t> with_socks = kIllegal;
  with_socks.push_back(config::kSocks5Port);
  CHECK_FALSE(
      world.request(kServerPod, socket_authority(kServerPod, 15080), with_socks).has_value());

  // The check applies after mapping: a service port onto 15006 is refused too.
  Service svc = *world.snapshot()->service_by_key(state::service_key("default", kServerHost));
  svc.ports[kServicePort] = config::kInboundPlaintextPort;
  svc.endpoints.clear();
  state::Update u;
  u.upserted_services.push_back(svc);
  world.apply(std::move(u));
  auto mapped = world.request(kServerPod, host_authority());
  REQUIRE_FALSE(mapped.has_value());
  CHECK(mapped.error().message == "attempted recursive call to ourselves");
}

TEST_CASE("a PROXY tunnel target for a hostname is a VIP on our network, IPv4 first") {
  World world(Topology{Attach::kNone, nullptr, kProxyTunnel});
  auto snap = world.snapshot();
  Service svc =
      *snap->service_by_key(state::service_key("default", "waypoint.default.svc.cluster.local"));
  svc.vips = {{"", ip("fd00::10")}, {"elsewhere", ip("10.99.0.1")}, {"", ip("10.10.0.2")}};
  svc.endpoints.clear();
  state::Update u;
  u.upserted_services.push_back(svc);
  world.apply(std::move(u));
  auto up = world.request(kWaypointPod, "waypoint.default.svc.cluster.local:80");
  REQUIRE(up.has_value());
  CHECK(up->address == ep(kWaypointPod, kTunnelPort));
  REQUIRE(up->tunnel.has_value());
  CHECK(up->tunnel->target == ep("10.10.0.2", 80));

  svc.vips.clear();
  state::Update none;
  none.upserted_services.push_back(svc);
  world.apply(std::move(none));
  auto no_vip = world.request(kWaypointPod, "waypoint.default.svc.cluster.local:80");
  REQUIRE_FALSE(no_vip.has_value());
  CHECK(no_vip.error().status == 503);
  CHECK(no_vip.error().message ==
        "requested service waypoint.default.svc.cluster.local found, but has no IP addresses");
}

TEST_CASE("the upstream connect goes loopback to loopback for a PROXY tunnel") {
  InboundUpstream up;
  up.address = ep(kWaypointPod, kTunnelPort);
  up.tunnel = TunnelRequest{ApplicationTunnel::Protocol::kProxy, ep(kServerPod, 80)};
  tcp::endpoint client = ep(kClientPod, 40000);

  auto local = plan_upstream_connect(up, client, true, true, false);
  CHECK(local.bind == ip("127.0.0.1"));
  CHECK(local.destination == ep("127.0.0.1", kTunnelPort));

  // LOCALHOST_APP_TUNNEL=false: to the pod IP, spoofing the client when allowed.
  auto pod = plan_upstream_connect(up, client, false, true, false);
  CHECK(pod.bind == ip(kClientPod));
  CHECK(pod.destination == up.address);

  InboundUpstream v6;
  v6.address = ep("fd00::3", kTunnelPort);
  v6.tunnel = up.tunnel;
  CHECK(plan_upstream_connect(v6, client, true, true, false).destination == ep("::1", kTunnelPort));
}

TEST_CASE("the upstream connect keeps the client IP only with original source and not for self") {
  InboundUpstream up;
  up.address = ep(kServerPod, kTargetPort);
  tcp::endpoint client = ep(kClientPod, 40000);
  CHECK(plan_upstream_connect(up, client, true, true, false).bind == ip(kClientPod));
  CHECK_FALSE(plan_upstream_connect(up, client, true, false, false).bind.has_value());
  CHECK_FALSE(plan_upstream_connect(up, client, true, true, true).bind.has_value());
  // A NONE tunnel is not sent to localhost.
  up.tunnel = TunnelRequest{ApplicationTunnel::Protocol::kNone, ep(kServerPod, 80)};
  CHECK(plan_upstream_connect(up, client, true, true, false).destination == up.address);
}

// --- the plaintext listener's checks ------------------------------------------

TEST_CASE("plaintext: the local workload's own address and port pass and return it") {
  World world(Topology{});
  const config::ProxyWorkloadInfo server{"default", "workload-server", "service-account-server"};
  auto local = check_plaintext_destination(*world.snapshot(), server, ep(kServerPod, 8080), kIllegal);
  REQUIRE(local.has_value());
  CHECK((*local)->uid == uid("server"));
  // The IPv4-mapped form a dual-stack socket reports is the same address.
  std::string mapped = std::string("::ffff:") + kServerPod;
  CHECK(check_plaintext_destination(*world.snapshot(), server, ep(mapped.c_str(), 8080), kIllegal)
            .has_value());
}

TEST_CASE("plaintext: a destination port of ztunnel's own is a self call, checked first") {
  World world(Topology{});
  const config::ProxyWorkloadInfo unknown{"default", "nobody", "nobody"};
  for (uint16_t port : kIllegal) {
    CAPTURE(port);
    auto r = check_plaintext_destination(*world.snapshot(), unknown, ep(kServerPod, port), kIllegal);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message == "attempted recursive call to ourselves");
  }
}

TEST_CASE("plaintext: an unknown local workload or another workload's address is refused") {
  World world(Topology{});
  const config::ProxyWorkloadInfo unknown{"default", "nobody", "nobody"};
  auto missing = check_plaintext_destination(*world.snapshot(), unknown, ep(kServerPod, 80), kIllegal);
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().message == "unknown local workload default/nobody");

  const config::ProxyWorkloadInfo server{"default", "workload-server", "service-account-server"};
  auto other = check_plaintext_destination(*world.snapshot(), server, ep(kClientPod, 80), kIllegal);
  REQUIRE_FALSE(other.has_value());
  CHECK(other.error().message == std::string("destination ") + kClientPod +
                                     " is not an address of the local workload " + uid("server"));
}

}  // namespace
}  // namespace ztunnel::proxy
