// Unit tests for the local YAML config reader.
#include "xds/local_config.h"

#include <string>

#include "rbac/rbac.h"
#include "support/testing.h"

namespace ztunnel::xds {
namespace {

namespace wl = istio::workload;
namespace sec = istio::security;

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int x : b) s.push_back(static_cast<char>(x));
  return s;
}

LocalConfig parse_ok(const std::string& yaml) {
  auto parsed = parse_local_config(yaml, "test.yaml");
  REQUIRE_MESSAGE(parsed.has_value(), (parsed ? "" : parsed.error().message));
  return *parsed;
}

std::string parse_error(const std::string& yaml) {
  auto parsed = parse_local_config(yaml, "test.yaml");
  REQUIRE_FALSE(parsed.has_value());
  return parsed.error().message;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("Istio's localhost example loads unchanged") {
  auto parsed = read_local_config(ZTUNNEL_TEST_DATA_DIR "/localhost.yaml");
  REQUIRE_MESSAGE(parsed.has_value(), (parsed ? "" : parsed.error().message));
  const LocalConfig& c = *parsed;
  REQUIRE(c.workloads.size() == 2);
  REQUIRE(c.services.size() == 2);
  REQUIRE(c.policies.size() == 1);

  const wl::Workload& local = c.workloads[0];
  CHECK(local.uid() == "cluster1//v1/Pod/default/local");
  CHECK(local.name() == "local");
  CHECK(local.namespace_() == "default");
  CHECK(local.service_account() == "default");
  CHECK(local.tunnel_protocol() == wl::HBONE);
  CHECK(local.node() == "local");
  REQUIRE(local.addresses_size() == 1);
  CHECK(local.addresses(0) == bytes({127, 0, 0, 1}));
  REQUIRE(local.services().count("default/example.com") == 1);
  const auto& ports = local.services().at("default/example.com").ports();
  REQUIRE(ports.size() == 1);
  CHECK(ports[0].service_port() == 80);
  CHECK(ports[0].target_port() == 8080);
  CHECK(c.workloads[1].tunnel_protocol() == wl::NONE);

  const wl::Service& remote = c.services[1];
  CHECK(remote.hostname() == "example2.com");
  REQUIRE(remote.addresses_size() == 1);
  CHECK(remote.addresses(0).network() == "remote");
  CHECK(remote.addresses(0).address() == bytes({127, 10, 0, 2}));
  CHECK_FALSE(remote.addresses(0).has_length());
  CHECK(c.services[0].subject_alt_names(0) == "spiffe://cluster.local/ns/default/sa/local");
  CHECK(c.services[0].canonical());

  const sec::Authorization& policy = c.policies[0];
  CHECK(policy.name() == "deny-9999");
  CHECK(policy.scope() == sec::NAMESPACE);
  CHECK(policy.action() == sec::ALLOW);
  CHECK_FALSE(policy.dry_run());
  REQUIRE(policy.rules_size() == 1);
  REQUIRE(policy.rules(0).clauses_size() == 1);
  REQUIRE(policy.rules(0).clauses(0).matches_size() == 1);
  CHECK(policy.rules(0).clauses(0).matches(0).not_destination_ports(0) == 9999);
}

TEST_CASE("an empty document is an empty config") {
  LocalConfig c = parse_ok("");
  CHECK(c.workloads.empty());
  CHECK(c.services.empty());
  CHECK(c.policies.empty());
  CHECK(parse_ok("# only a comment\n").workloads.empty());
}

TEST_CASE("an unknown top-level key names itself and its position") {
  std::string err = parse_error("workloads: []\nservice: []\n");
  CHECK(contains(err, "test.yaml:2:1"));
  CHECK(contains(err, "unknown key \"service\""));
}

TEST_CASE("a misspelt workload key is rejected with its line and column") {
  std::string err = parse_error(
      "workloads:\n"
      "- namespace: default\n"
      "  workloadIP: 10.0.0.1\n");
  CHECK(contains(err, "test.yaml:3:3"));
  CHECK(contains(err, "\"workloadIP\""));
  CHECK(contains(err, "workloadIps"));  // the message lists what is accepted
}

TEST_CASE("a workload without workloadIps or namespace is rejected") {
  CHECK(contains(parse_error("workloads:\n- namespace: default\n"), "missing required key \"workloadIps\""));
  CHECK(contains(parse_error("workloads:\n- workloadIps: [10.0.0.1]\n"), "missing required key \"namespace\""));
}

TEST_CASE("a bad workload IP names the value") {
  std::string err = parse_error("workloads:\n- namespace: a\n  workloadIps: [10.0.0.300]\n");
  CHECK(contains(err, "test.yaml:3:17"));
  CHECK(contains(err, "\"10.0.0.300\""));
}

TEST_CASE("IPv6 workload addresses become 16 bytes") {
  LocalConfig c = parse_ok("workloads:\n- namespace: a\n  workloadIps: ['fd00::1', 10.1.2.3]\n");
  CHECK(c.workloads[0].addresses(0).size() == 16);
  CHECK(c.workloads[0].addresses(1) == bytes({10, 1, 2, 3}));
}

TEST_CASE("enum values outside Istio's names list the accepted ones") {
  std::string err = parse_error("workloads:\n- namespace: a\n  workloadIps: []\n  protocol: hbone\n");
  CHECK(contains(err, "workload.protocol must be one of TCP, HBONE, got \"hbone\""));
  CHECK(contains(parse_error("workloads:\n- namespace: a\n  workloadIps: []\n  status: Sick\n"), "Healthy"));
  CHECK(contains(parse_error("workloads:\n- namespace: a\n  workloadIps: []\n  workloadType: daemonset\n"),
                 "deployment"));
}

TEST_CASE("every workload field reaches the xDS resource") {
  LocalConfig c = parse_ok(R"(
workloads:
- uid: cluster1//v1/Pod/ns1/pod-a
  name: pod-a
  namespace: ns1
  workloadIps: [10.0.0.5]
  protocol: HBONE
  networkMode: HostNetwork
  trustDomain: example.org
  serviceAccount: sa1
  network: net1
  workloadName: deploy-a
  workloadType: deployment
  canonicalName: app-a
  canonicalRevision: v2
  hostname: pod-a.example.com
  node: node-1
  nativeTunnel: true
  applicationTunnel: {protocol: PROXY, port: 15088}
  authorizationPolicies: [ns1/allow-a]
  status: Unhealthy
  clusterId: cluster1
  locality: {region: r1, zone: z1, subzone: s1}
  capacity: 7
  waypoint: {destination: "/10.0.0.9", hboneMtlsPort: 15008}
  networkGateway: {destination: "istio-system/gw.example.com", hboneMtlsPort: 15009}
)");
  const wl::Workload& w = c.workloads[0];
  CHECK(w.network_mode() == wl::HOST_NETWORK);
  CHECK(w.trust_domain() == "example.org");
  CHECK(w.service_account() == "sa1");
  CHECK(w.network() == "net1");
  CHECK(w.workload_name() == "deploy-a");
  CHECK(w.workload_type() == wl::DEPLOYMENT);
  CHECK(w.canonical_name() == "app-a");
  CHECK(w.canonical_revision() == "v2");
  CHECK(w.hostname() == "pod-a.example.com");
  CHECK(w.native_tunnel());
  CHECK(w.application_tunnel().protocol() == wl::ApplicationTunnel::PROXY);
  CHECK(w.application_tunnel().port() == 15088);
  CHECK(w.authorization_policies(0) == "ns1/allow-a");
  CHECK(w.status() == wl::UNHEALTHY);
  CHECK(w.cluster_id() == "cluster1");
  CHECK(w.locality().subzone() == "s1");
  CHECK(w.capacity().value() == 7);
  REQUIRE(w.waypoint().has_address());
  CHECK(w.waypoint().address().address() == bytes({10, 0, 0, 9}));
  CHECK(w.waypoint().hbone_mtls_port() == 15008);
  REQUIRE(w.network_gateway().has_hostname());
  CHECK(w.network_gateway().hostname().namespace_() == "istio-system");
  CHECK(w.network_gateway().hostname().hostname() == "gw.example.com");
}

TEST_CASE("a port beyond 65535 is rejected") {
  std::string err = parse_error(
      "services:\n- {name: s, namespace: n, hostname: h, vips: [], ports: {80: 70000}}\n");
  CHECK(contains(err, "service.ports target port"));
  CHECK(contains(err, "\"70000\""));
}

TEST_CASE("a VIP must be network/IP") {
  std::string err = parse_error("services:\n- {name: s, namespace: n, hostname: h, vips: [10.0.0.1], ports: {}}\n");
  CHECK(contains(err, "\"network/IP\""));
}

TEST_CASE("service fields, CIDR VIPs, waypoints and endpoints are read") {
  LocalConfig c = parse_ok(R"(
services:
- name: svc
  namespace: ns1
  hostname: svc.ns1.svc.cluster.local
  vips: ["/10.96.0.10", "net2/fd00::10"]
  cidrVips: [{network: "", cidr: "10.200.0.0/16"}, {cidr: "fd00:1::/64"}]
  ports: {80: 8080, 443: 0}
  subjectAltNames: [spiffe://cluster.local/ns/ns1/sa/svc]
  waypoint: {destination: "ns1/waypoint.ns1.svc.cluster.local", hboneMtlsPort: 15008}
  weightedWaypoints: [{destination: {destination: "/10.0.0.7", hboneMtlsPort: 15008}, weight: 3}]
  loadBalancer: {routingPreferences: [Network, Zone], mode: Failover, healthPolicy: AllowAll}
  ipFamilies: Dual
  canonical: true
  visibility: Namespace
  endpoints:
    uid-1: {workloadUid: uid-1, port: {80: 9090}, status: Unhealthy}
)");
  const wl::Service& s = c.services[0];
  REQUIRE(s.addresses_size() == 4);
  CHECK(s.addresses(1).network() == "net2");
  CHECK(s.addresses(1).address().size() == 16);
  CHECK(s.addresses(2).length() == 16);
  CHECK(s.addresses(2).address() == bytes({10, 200, 0, 0}));
  CHECK(s.addresses(3).length() == 64);
  REQUIRE(s.ports_size() == 2);
  CHECK(s.waypoint().hostname().hostname() == "waypoint.ns1.svc.cluster.local");
  CHECK(s.weighted_waypoints(0).weight() == 3);
  CHECK(s.weighted_waypoints(0).destination().address().address() == bytes({10, 0, 0, 7}));
  CHECK(s.load_balancing().routing_preference(0) == wl::LoadBalancing::NETWORK);
  CHECK(s.load_balancing().mode() == wl::LoadBalancing::FAILOVER);
  CHECK(s.load_balancing().health_policy() == wl::LoadBalancing::ALLOW_ALL);
  CHECK(s.ip_families() == wl::DUAL);
  CHECK(s.visibility() == wl::Service::NAMESPACE);
  REQUIRE(c.endpoints.size() == 1);
  CHECK(c.endpoints[0].service_key == "ns1/svc.ns1.svc.cluster.local");
  CHECK(c.endpoints[0].workload_uid == "uid-1");
  CHECK(c.endpoints[0].ports == std::vector<std::pair<uint32_t, uint32_t>>{{80, 9090}});
  CHECK_FALSE(c.endpoints[0].healthy);
}

TEST_CASE("a CIDR prefix longer than the address is rejected") {
  std::string err = parse_error(
      "services:\n- {name: s, namespace: n, hostname: h, vips: [], ports: {}, cidrVips: [{cidr: 10.0.0.0/33}]}\n");
  CHECK(contains(err, "prefix length"));
  CHECK(contains(err, "10.0.0.0/33"));
}

TEST_CASE("policies carry every match field in Istio's nesting") {
  LocalConfig c = parse_ok(R"(
policies:
- name: p
  namespace: ns1
  scope: WorkloadSelector
  action: Deny
  dryRun: true
  rules:
  - - - namespaces: [{Exact: ns2}]
        notNamespaces: [{Prefix: kube-}]
        principals: [{Suffix: /sa/admin}, {Presence: []}]
        notPrincipals: [{Presence: }]
        serviceAccounts: [{namespace: ns2, serviceAccount: sa2}]
        notServiceAccounts: [{namespace: ns3, serviceAccount: sa3}]
        sourceIps: [10.0.0.0/8, 192.168.1.1]
        notSourceIps: ["fd00::/8"]
        destinationIps: [10.1.0.0/16]
        notDestinationIps: [10.1.2.3/32]
        destinationPorts: [80, 443]
        notDestinationPorts: [9999]
    - - {}
    - []
  - []
)");
  const sec::Authorization& p = c.policies[0];
  CHECK(p.scope() == sec::WORKLOAD_SELECTOR);
  CHECK(p.action() == sec::DENY);
  CHECK(p.dry_run());
  REQUIRE(p.rules_size() == 2);
  CHECK(p.rules(1).clauses_size() == 0);
  REQUIRE(p.rules(0).clauses_size() == 3);
  const sec::Match& m = p.rules(0).clauses(0).matches(0);
  CHECK(m.namespaces(0).exact() == "ns2");
  CHECK(m.not_namespaces(0).prefix() == "kube-");
  CHECK(m.principals(0).suffix() == "/sa/admin");
  CHECK(m.principals(1).has_presence());
  CHECK(m.not_principals(0).has_presence());
  CHECK(m.service_accounts(0).serviceaccount() == "sa2");
  CHECK(m.not_service_accounts(0).namespace_() == "ns3");
  CHECK(m.source_ips(0).length() == 8);
  CHECK(m.source_ips(1).length() == 32);  // a bare IP is the whole address
  CHECK(m.not_source_ips(0).address().size() == 16);
  CHECK(m.destination_ips(0).address() == bytes({10, 1, 0, 0}));
  CHECK(m.not_destination_ips(0).length() == 32);
  CHECK(m.destination_ports_size() == 2);
  CHECK(m.not_destination_ports(0) == 9999);
  CHECK(p.rules(0).clauses(1).matches_size() == 1);  // `- {}`: one empty match
  CHECK(p.rules(0).clauses(2).matches_size() == 0);  // `- []`: a clause with no matches
}

TEST_CASE("a string match must name exactly one kind") {
  std::string base = "policies:\n- {name: p, namespace: n, scope: Global, action: Allow, rules: [[[{principals: [";
  CHECK(contains(parse_error(base + "{Exact: a, Prefix: b}]}]]]}\n"), "exactly one"));
  CHECK(contains(parse_error(base + "{Regex: a}]}]]]}\n"), "unknown key \"Regex\""));
  CHECK(contains(parse_error(base + "{Presence: yes}]}]]]}\n"), "Presence takes no value"));
}

TEST_CASE("rules must nest as lists of lists of matches") {
  std::string err = parse_error(
      "policies:\n- {name: p, namespace: n, scope: Global, action: Allow, rules: [{namespaces: []}]}\n");
  CHECK(contains(err, "policy.rules entry"));
  CHECK(contains(err, "must be a list"));
}

TEST_CASE("a policy needs name, namespace, scope and action") {
  CHECK(contains(parse_error("policies:\n- {name: p, namespace: n, action: Allow}\n"), "\"scope\""));
  CHECK(contains(parse_error("policies:\n- {name: p, namespace: n, scope: Global, action: Audit}\n"),
                 "Allow, Deny"));
}

TEST_CASE("invalid YAML syntax reports where it broke") {
  std::string err = parse_error("workloads:\n  - namespace: [unclosed\n");
  CHECK(contains(err, "test.yaml"));
  CHECK(contains(err, "invalid YAML"));
  CHECK(contains(err, "line"));
}

TEST_CASE("a missing file is an error naming the path") {
  auto parsed = read_local_config("/nonexistent/ztunnel.yaml");
  REQUIRE_FALSE(parsed.has_value());
  CHECK(contains(parsed.error().message, "/nonexistent/ztunnel.yaml"));
}

}  // namespace ztunnel::xds

namespace ztunnel::xds {
namespace {

std::shared_ptr<const state::Snapshot> load_into_store(const std::string& yaml) {
  auto parsed = parse_local_config(yaml, "test.yaml");
  REQUIRE_MESSAGE(parsed.has_value(), (parsed ? "" : parsed.error().message));
  auto update = to_state_update(*parsed);
  REQUIRE_MESSAGE(update.has_value(), (update ? "" : update.error().message));
  state::Store store;
  store.apply(std::move(*update));
  return store.snapshot();  // a snapshot outlives the store that made it
}

std::string update_error(const std::string& yaml) {
  auto parsed = parse_local_config(yaml, "test.yaml");
  REQUIRE_MESSAGE(parsed.has_value(), (parsed ? "" : parsed.error().message));
  auto update = to_state_update(*parsed);
  REQUIRE_FALSE(update.has_value());
  return update.error().message;
}

state::NetworkAddress addr(const char* text) { return *state::NetworkAddress::parse(text); }

}  // namespace

TEST_CASE("the localhost example fills the store as Istio's local client does") {
  auto parsed = read_local_config(ZTUNNEL_TEST_DATA_DIR "/localhost.yaml");
  REQUIRE(parsed.has_value());
  auto update = to_state_update(*parsed);
  REQUIRE_MESSAGE(update.has_value(), (update ? "" : update.error().message));
  CHECK(update->replace_all);
  state::Store store;
  store.apply(std::move(*update));
  auto snap = store.snapshot();
  CHECK(snap->workload_count() == 2);
  CHECK(snap->service_count() == 2);
  CHECK(snap->policy_count() == 1);

  auto local = snap->workload_by_address(addr("/127.0.0.1"));
  REQUIRE(local);
  CHECK(local->uid == "cluster1//v1/Pod/default/local");
  CHECK(local->protocol == state::Protocol::kHbone);
  CHECK(local->identity().to_spiffe() == "spiffe://cluster.local/ns/default/sa/default");

  auto remote = snap->best_service_by_vip(addr("remote/127.10.0.2"), "default");
  REQUIRE(remote);
  CHECK(remote->hostname == "example2.com");
  CHECK_FALSE(snap->best_service_by_vip(addr("/127.10.0.2"), "default"));  // other network

  auto example = snap->service_by_key("default/example.com");
  REQUIRE(example);
  CHECK(example->endpoints.size() == 2);  // both workloads list it
  CHECK(example->endpoints.at("cluster1//v1/Pod/default/local-tcp")->ports.at(80) == 8080);

  auto policies = snap->policies_for(*local);
  REQUIRE(policies.size() == 1);
  CHECK(policies[0]->key() == "default/deny-9999");
}

TEST_CASE("a local workload without uid gets a stable derived one") {
  auto snap = load_into_store("workloads:\n- {name: web, namespace: shop, workloadIps: [10.0.0.1]}\n"
                              "- {namespace: shop, workloadIps: [10.0.0.2]}\n");
  CHECK(snap->workload_by_uid("local//v1/Pod/shop/web"));
  CHECK(snap->workload_by_uid("local//v1/Pod/shop/10.0.0.2"));
}

TEST_CASE("local identities get Istio's xDS defaults when left empty") {
  auto snap = load_into_store("workloads:\n- {uid: u1, namespace: shop, workloadIps: [10.0.0.1]}\n");
  auto w = snap->workload_by_uid("u1");
  REQUIRE(w);
  CHECK(w->identity().to_spiffe() == "spiffe://cluster.local/ns/shop/sa/default");
}

TEST_CASE("two workloads with one uid are rejected with both positions") {
  std::string err = update_error("workloads:\n- {uid: u1, namespace: a, workloadIps: [10.0.0.1]}\n"
                                 "- {uid: u1, namespace: a, workloadIps: [10.0.0.2]}\n");
  CHECK(err.find("test.yaml:3:3") != std::string::npos);
  CHECK(err.find("test.yaml:2:3") != std::string::npos);
  CHECK(err.find("\"u1\"") != std::string::npos);
}

TEST_CASE("a service or policy defined twice is rejected") {
  CHECK(update_error("services:\n- {name: s, namespace: n, hostname: h, vips: [], ports: {}}\n"
                     "- {name: s2, namespace: n, hostname: h, vips: [], ports: {}}\n")
            .find("defined twice") != std::string::npos);
  CHECK(update_error("policies:\n- {name: p, namespace: n, scope: Global, action: Allow}\n"
                     "- {name: p, namespace: n, scope: Global, action: Deny}\n")
            .find("already defined at test.yaml:2:3") != std::string::npos);
}

TEST_CASE("endpoints written under a service reach the store as given") {
  auto snap = load_into_store(
      "services:\n- name: s\n  namespace: n\n  hostname: h.example\n  vips: [/10.96.0.1]\n  ports: {80: 8080}\n"
      "  endpoints:\n    w1: {workloadUid: w1, port: {80: 9090}, status: Healthy}\n");
  auto s = snap->service_by_key("n/h.example");
  REQUIRE(s);
  REQUIRE(s->endpoints.count("w1") == 1);
  CHECK(s->endpoints.at("w1")->ports.at(80) == 9090);
}

TEST_CASE("a policy scoped to a workload applies only when the workload lists it") {
  auto snap = load_into_store(R"(
workloads:
- {uid: a, namespace: ns1, workloadIps: [10.0.0.1], authorizationPolicies: [ns1/only-a]}
- {uid: b, namespace: ns1, workloadIps: [10.0.0.2]}
policies:
- {name: only-a, namespace: ns1, scope: WorkloadSelector, action: Deny, rules: [[[{destinationPorts: [22]}]]]}
- {name: everyone, namespace: istio-system, scope: Global, action: Allow}
)");
  CHECK(snap->policies_for(*snap->workload_by_uid("a")).size() == 2);
  CHECK(snap->policies_for(*snap->workload_by_uid("b")).size() == 1);
}

TEST_CASE("each of Istio's scope names is read, and dryRun defaults to false") {
  LocalConfig c = parse_ok(R"(
policies:
- {name: g, namespace: istio-system, scope: Global, action: Deny, dryRun: true, rules: []}
- {name: n, namespace: ns1, scope: Namespace, action: Allow, dryRun: false, rules: [[]]}
- {name: w, namespace: ns1, scope: WorkloadSelector, action: Allow, rules: [[[]]]}
)");
  REQUIRE(c.policies.size() == 3);
  CHECK(c.policies[0].scope() == sec::GLOBAL);
  CHECK(c.policies[0].dry_run());
  CHECK(c.policies[0].rules_size() == 0);  // no rules: matches nothing
  CHECK(c.policies[1].scope() == sec::NAMESPACE);
  CHECK_FALSE(c.policies[1].dry_run());
  REQUIRE(c.policies[1].rules_size() == 1);  // one rule with no clauses: matches everything
  CHECK(c.policies[1].rules(0).clauses_size() == 0);
  CHECK(c.policies[2].scope() == sec::WORKLOAD_SELECTOR);
  CHECK_FALSE(c.policies[2].dry_run());
  REQUIRE(c.policies[2].rules(0).clauses_size() == 1);  // one clause with no matches
  CHECK(c.policies[2].rules(0).clauses(0).matches_size() == 0);
}

TEST_CASE("several rules, clauses and matches keep their nesting") {
  LocalConfig c = parse_ok(R"(
policies:
- name: p
  namespace: ns1
  scope: Namespace
  action: Allow
  rules:
  - - - namespaces: [{Exact: a}]
      - namespaces: [{Exact: b}]
    - - destinationPorts: [80]
  - - - principals: [{Prefix: cluster.local/ns/c/}]
)");
  const sec::Authorization& p = c.policies[0];
  REQUIRE(p.rules_size() == 2);
  REQUIRE(p.rules(0).clauses_size() == 2);
  CHECK(p.rules(0).clauses(0).matches_size() == 2);
  CHECK(p.rules(0).clauses(0).matches(1).namespaces(0).exact() == "b");
  CHECK(p.rules(0).clauses(1).matches(0).destination_ports(0) == 80);
  CHECK(p.rules(1).clauses(0).matches(0).principals(0).prefix() == "cluster.local/ns/c/");
}

TEST_CASE("an unknown policy field, a bad action or a bad dryRun is a clear error") {
  CHECK(contains(
      parse_error("policies:\n- {name: p, namespace: n, scope: Global, action: Allow, selector: {app: a}}\n"),
      "unknown key \"selector\" in policy"));
  CHECK(contains(parse_error("policies:\n- {name: p, namespace: n, scope: Global, action: Allow, "
                             "rules: [[[{ports: [80]}]]]}\n"),
                 "unknown key \"ports\" in policy match"));
  std::string action = parse_error("policies:\n- {name: p, namespace: n, scope: Global, action: ALLOW}\n");
  CHECK(contains(action, "policy.action"));
  CHECK(contains(action, "Allow, Deny"));
  CHECK(contains(parse_error("policies:\n- {name: p, namespace: n, scope: Cluster, action: Allow}\n"),
                 "Global, Namespace, WorkloadSelector"));
  CHECK(contains(parse_error("policies:\n- {name: p, namespace: n, scope: Global, action: Allow, dryRun: maybe}\n"),
                 "policy.dryRun must be true or false"));
}

TEST_CASE("istiod's STRICT and port-exception policies, written in YAML, decide connections") {
  // A STRICT workload with port 9000 PERMISSIVE lists only its converted
  // policy; the other workload lists the static STRICT one.
  auto snap = load_into_store(R"(
workloads:
- {uid: a, namespace: ns1, workloadIps: [10.0.0.1], authorizationPolicies: [ns1/converted_peer_authentication_pa]}
- {uid: b, namespace: ns1, workloadIps: [10.0.0.2], authorizationPolicies: [istio-system/istio_converted_static_strict]}
policies:
- name: istio_converted_static_strict
  namespace: istio-system
  scope: WorkloadSelector
  action: Deny
  dryRun: false
  rules:
  - - - notPrincipals: [{Presence: []}]
- name: converted_peer_authentication_pa
  namespace: ns1
  scope: WorkloadSelector
  action: Deny
  dryRun: false
  rules:
  - - - notPrincipals: [{Presence: []}]
    - - notDestinationPorts: [9000]
)");
  auto a = snap->workload_by_uid("a");
  auto b = snap->workload_by_uid("b");
  REQUIRE(a);
  REQUIRE(b);
  auto ip = [](const char* text) { return boost::asio::ip::make_address(text); };
  const rbac::Connection plain_8080{std::nullopt, ip("10.9.0.1"), ip("10.0.0.1"), 8080};
  const rbac::Connection plain_9000{std::nullopt, ip("10.9.0.1"), ip("10.0.0.1"), 9000};
  const rbac::Connection mtls_8080{state::Identity{"cluster.local", "ns2", "sa"}, ip("10.9.0.1"), ip("10.0.0.1"),
                                   8080};
  CHECK(rbac::authorize(*snap, *a, plain_8080).reason == "explicitly denied by: ns1/converted_peer_authentication_pa");
  CHECK(rbac::authorize(*snap, *a, plain_9000).allowed);
  CHECK(rbac::authorize(*snap, *a, mtls_8080).allowed);
  CHECK(rbac::authorize(*snap, *b, plain_9000).reason ==
        "explicitly denied by: istio-system/istio_converted_static_strict");
  CHECK(rbac::authorize(*snap, *b, mtls_8080).allowed);
}

}  // namespace ztunnel::xds
