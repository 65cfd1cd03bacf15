// Unit tests for protobuf -> state conversion: defaults, full mappings and every rejection.
#include "state/convert.h"

#include "support/testing.h"

namespace ztunnel::state {
namespace {

namespace pb = istio::workload;
namespace sec = istio::security;

std::string v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return std::string{static_cast<char>(a), static_cast<char>(b), static_cast<char>(c),
                     static_cast<char>(d)};
}

IpAddress ip(const char* text) { return boost::asio::ip::make_address(text); }

pb::Workload minimal_workload() {
  pb::Workload w;
  w.set_uid("cluster1//Pod/default/pod-a");
  w.set_name("pod-a");
  w.set_namespace_("default");
  w.add_addresses(v4(10, 0, 0, 1));
  return w;
}

pb::Service minimal_service() {
  pb::Service s;
  s.set_name("svc");
  s.set_namespace_("default");
  s.set_hostname("svc.default.svc.cluster.local");
  auto* a = s.add_addresses();
  a->set_address(v4(10, 96, 0, 1));
  return s;
}

sec::Authorization minimal_policy() {
  sec::Authorization p;
  p.set_name("allow-all");
  p.set_namespace_("default");
  p.set_scope(sec::NAMESPACE);
  auto* m = p.add_rules()->add_clauses()->add_matches();
  m->add_destination_ports(8080);
  return p;
}

// The error names `field`.
template <class R>
void check_rejected(const R& result, std::string_view field) {
  REQUIRE_FALSE(result);
  CAPTURE(result.error().message);
  CHECK(result.error().message.find(field) != std::string::npos);
}

}  // namespace

TEST_CASE("an xDS workload gets Istio's defaults for trust domain, account, cluster and capacity") {
  auto w = workload_from_proto(minimal_workload());
  REQUIRE(w);
  CHECK(w->trust_domain == "cluster.local");
  CHECK(w->service_account == "default");
  CHECK(w->cluster_id == "Kubernetes");
  CHECK(w->capacity == 1);
  CHECK(w->protocol == Protocol::kTcp);
  CHECK(w->status == HealthStatus::kHealthy);
  CHECK(w->network_mode == NetworkMode::kStandard);
  CHECK(w->workload_type == WorkloadType::kDeployment);
  CHECK_FALSE(w->waypoint);
  CHECK_FALSE(w->application_tunnel);
  CHECK(w->identity().to_spiffe() == "spiffe://cluster.local/ns/default/sa/default");
}

TEST_CASE("every workload field is carried over") {
  pb::Workload in = minimal_workload();
  in.add_addresses(std::string("\xfd\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01", 16));
  in.set_hostname("pod-a.example");
  in.set_network("net1");
  in.set_tunnel_protocol(pb::HBONE);
  in.set_trust_domain("td");
  in.set_service_account("sa");
  in.mutable_waypoint()->mutable_hostname()->set_namespace_("default");
  in.mutable_waypoint()->mutable_hostname()->set_hostname("wp.default.svc.cluster.local");
  in.mutable_waypoint()->set_hbone_mtls_port(15008);
  in.mutable_network_gateway()->mutable_address()->set_network("net1");
  in.mutable_network_gateway()->mutable_address()->set_address(v4(1, 2, 3, 4));
  in.mutable_network_gateway()->set_hbone_mtls_port(15009);
  in.set_node("node-1");
  in.set_canonical_name("app");
  in.set_canonical_revision("v1");
  in.set_workload_type(pb::POD);
  in.set_workload_name("app-deploy");
  in.set_native_tunnel(true);
  in.mutable_application_tunnel()->set_protocol(pb::ApplicationTunnel::PROXY);
  in.mutable_application_tunnel()->set_port(15088);
  in.add_authorization_policies("default/p1");
  in.set_status(pb::UNHEALTHY);
  in.set_cluster_id("c1");
  in.mutable_locality()->set_region("r");
  in.mutable_locality()->set_zone("z");
  in.mutable_locality()->set_subzone("s");
  in.set_network_mode(pb::HOST_NETWORK);
  in.mutable_capacity()->set_value(0);
  auto* port = (*in.mutable_services())["default/svc.default.svc.cluster.local"].add_ports();
  port->set_service_port(80);
  port->set_target_port(8080);

  auto w = workload_from_proto(in);
  REQUIRE(w);
  CHECK(w->uid == "cluster1//Pod/default/pod-a");
  CHECK(w->name == "pod-a");
  CHECK(w->namespace_ == "default");
  REQUIRE(w->addresses.size() == 2);
  CHECK(w->addresses[0] == ip("10.0.0.1"));
  CHECK(w->addresses[1] == ip("fd00::1"));
  CHECK(w->hostname == "pod-a.example");
  CHECK(w->network == "net1");
  CHECK(w->protocol == Protocol::kHbone);
  CHECK(w->identity().to_spiffe() == "spiffe://td/ns/default/sa/sa");
  REQUIRE(w->waypoint);
  REQUIRE(w->waypoint->hostname());
  CHECK(w->waypoint->hostname()->hostname == "wp.default.svc.cluster.local");
  CHECK(w->waypoint->hbone_mtls_port == 15008);
  REQUIRE(w->network_gateway);
  REQUIRE(w->network_gateway->address());
  CHECK(*w->network_gateway->address() == NetworkAddress{"net1", ip("1.2.3.4")});
  CHECK(w->network_gateway->hbone_mtls_port == 15009);
  CHECK(w->node == "node-1");
  CHECK(w->canonical_name == "app");
  CHECK(w->canonical_revision == "v1");
  CHECK(w->workload_type == WorkloadType::kPod);
  CHECK(enum_name(w->workload_type) == "pod");
  CHECK(w->workload_name == "app-deploy");
  CHECK(w->native_tunnel);
  REQUIRE(w->application_tunnel);
  CHECK(w->application_tunnel->protocol == ApplicationTunnel::Protocol::kProxy);
  CHECK(w->application_tunnel->port == 15088);
  CHECK(w->authorization_policies == std::vector<std::string>{"default/p1"});
  CHECK(w->status == HealthStatus::kUnhealthy);
  CHECK(w->cluster_id == "c1");
  CHECK(w->locality == Locality{"r", "z", "s"});
  CHECK(w->network_mode == NetworkMode::kHostNetwork);
  CHECK(w->capacity == 0);  // present, so not defaulted
  CHECK(w->services.at("default/svc.default.svc.cluster.local") == PortMap{{80, 8080}});
  auto eps = endpoints_of(*w);
  REQUIRE(eps.size() == 1);
  CHECK(eps[0].second.status == HealthStatus::kUnhealthy);
}

TEST_CASE("an application tunnel without a port has none") {
  pb::Workload in = minimal_workload();
  in.mutable_application_tunnel()->set_protocol(pb::ApplicationTunnel::NONE);
  auto w = workload_from_proto(in);
  REQUIRE(w);
  REQUIRE(w->application_tunnel);
  CHECK_FALSE(w->application_tunnel->port);
}

TEST_CASE("a workload without a uid is rejected") {
  pb::Workload in = minimal_workload();
  in.clear_uid();
  check_rejected(workload_from_proto(in), "workload.uid");
}

TEST_CASE("workload addresses of the wrong length are rejected") {
  pb::Workload in = minimal_workload();
  in.add_addresses("not_an_ip");
  check_rejected(workload_from_proto(in), "workload.addresses[1]");
  pb::Workload empty = minimal_workload();
  empty.add_addresses("");
  check_rejected(workload_from_proto(empty), "4 or 16 bytes, got 0");
}

TEST_CASE("a legacy Istio mTLS tunnel protocol is rejected") {
  pb::Workload in = minimal_workload();
  in.set_tunnel_protocol(pb::LEGACY_ISTIO_MTLS);
  check_rejected(workload_from_proto(in), "LEGACY_ISTIO_MTLS");
}

TEST_CASE("unknown workload enum values are rejected, naming the field") {
  SUBCASE("tunnel protocol") {
    pb::Workload in = minimal_workload();
    in.set_tunnel_protocol(static_cast<pb::TunnelProtocol>(7));
    check_rejected(workload_from_proto(in), "workload.tunnel_protocol");
  }
  SUBCASE("status") {
    pb::Workload in = minimal_workload();
    in.set_status(static_cast<pb::WorkloadStatus>(5));
    check_rejected(workload_from_proto(in), "workload.status");
  }
  SUBCASE("network mode") {
    pb::Workload in = minimal_workload();
    in.set_network_mode(static_cast<pb::NetworkMode>(9));
    check_rejected(workload_from_proto(in), "workload.network_mode");
  }
  SUBCASE("application tunnel protocol") {
    pb::Workload in = minimal_workload();
    in.mutable_application_tunnel()->set_protocol(static_cast<pb::ApplicationTunnel_Protocol>(3));
    check_rejected(workload_from_proto(in), "workload.application_tunnel.protocol");
  }
}

TEST_CASE("an unknown workload type falls back to deployment as in Istio") {
  pb::Workload in = minimal_workload();
  in.set_workload_type(static_cast<pb::WorkloadType>(42));
  auto w = workload_from_proto(in);
  REQUIRE(w);
  CHECK(w->workload_type == WorkloadType::kDeployment);
}

TEST_CASE("a gateway address without a destination is rejected") {
  pb::Workload in = minimal_workload();
  in.mutable_waypoint()->set_hbone_mtls_port(15008);
  check_rejected(workload_from_proto(in), "workload.waypoint");
  pb::Workload gw = minimal_workload();
  gw.mutable_network_gateway()->set_hbone_mtls_port(15008);
  check_rejected(workload_from_proto(gw), "workload.network_gateway");
  pb::Workload bad_ip = minimal_workload();
  bad_ip.mutable_waypoint()->mutable_address()->set_address("abc");
  check_rejected(workload_from_proto(bad_ip), "workload.waypoint.address.address");
}

TEST_CASE("a workload service key that is not namespace/hostname is rejected") {
  for (const char* key : {"no-slash", "/host", "ns/", "ns/host/extra"}) {
    CAPTURE(key);
    pb::Workload in = minimal_workload();
    (*in.mutable_services())[key];
    check_rejected(workload_from_proto(in), "workload.services[");
  }
}

TEST_CASE("ports beyond 65535 are rejected wherever they appear") {
  SUBCASE("workload service target port") {
    pb::Workload in = minimal_workload();
    auto* p = (*in.mutable_services())["ns/h"].add_ports();
    p->set_service_port(80);
    p->set_target_port(70000);
    check_rejected(workload_from_proto(in), "workload.services[ns/h].ports[0].target_port");
  }
  SUBCASE("gateway HBONE port") {
    pb::Workload in = minimal_workload();
    in.mutable_waypoint()->mutable_address()->set_address(v4(1, 1, 1, 1));
    in.mutable_waypoint()->set_hbone_mtls_port(65536);
    check_rejected(workload_from_proto(in), "workload.waypoint.hbone_mtls_port");
  }
  SUBCASE("application tunnel port") {
    pb::Workload in = minimal_workload();
    in.mutable_application_tunnel()->set_port(100000);
    check_rejected(workload_from_proto(in), "workload.application_tunnel.port");
  }
  SUBCASE("service port") {
    pb::Service in = minimal_service();
    in.add_ports()->set_service_port(65536);
    check_rejected(service_from_proto(in), "service.ports[0].service_port");
  }
  SUBCASE("policy destination port") {
    sec::Authorization in = minimal_policy();
    in.mutable_rules(0)->mutable_clauses(0)->mutable_matches(0)->add_not_destination_ports(1 << 20);
    check_rejected(policy_from_proto(in), "not_destination_ports[0]");
  }
}

TEST_CASE("a service maps VIPs, CIDR VIPs, ports, waypoints and load balancing") {
  pb::Service in = minimal_service();
  auto* full = in.add_addresses();  // explicit full length: still an exact VIP
  full->set_network("net1");
  full->set_address(v4(10, 96, 0, 2));
  full->set_length(32);
  auto* range = in.add_addresses();
  range->set_address(v4(10, 200, 0, 0));
  range->set_length(16);
  auto* range6 = in.add_addresses();
  range6->set_address(std::string("\xfd\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16));
  range6->set_length(112);
  auto* port = in.add_ports();
  port->set_service_port(80);
  port->set_target_port(8080);
  in.add_subject_alt_names("spiffe://cluster.local/ns/default/sa/svc");
  in.mutable_waypoint()->mutable_address()->set_address(v4(10, 0, 0, 9));
  in.mutable_waypoint()->set_hbone_mtls_port(15008);
  auto* ww = in.add_weighted_waypoints();
  ww->mutable_destination()->mutable_hostname()->set_namespace_("default");
  ww->mutable_destination()->mutable_hostname()->set_hostname("wp2");
  ww->set_weight(20);
  auto* lb = in.mutable_load_balancing();
  lb->add_routing_preference(pb::LoadBalancing::NETWORK);
  lb->add_routing_preference(pb::LoadBalancing::ZONE);
  lb->set_mode(pb::LoadBalancing::FAILOVER);
  lb->set_health_policy(pb::LoadBalancing::ALLOW_ALL);
  in.set_ip_families(pb::DUAL);
  in.set_canonical(true);
  in.set_visibility(pb::Service::NAMESPACE);

  auto s = service_from_proto(in);
  REQUIRE(s);
  CHECK(s->key() == "default/svc.default.svc.cluster.local");
  REQUIRE(s->vips.size() == 2);
  CHECK(s->vips[0] == NetworkAddress{"", ip("10.96.0.1")});
  CHECK(s->vips[1] == NetworkAddress{"net1", ip("10.96.0.2")});
  REQUIRE(s->cidr_vips.size() == 2);
  CHECK(s->cidr_vips[0].cidr.to_string() == "10.200.0.0/16");
  CHECK(s->cidr_vips[1].cidr.prefix_len == 112);
  CHECK(s->ports == PortMap{{80, 8080}});
  CHECK(s->subject_alt_names.size() == 1);
  REQUIRE(s->waypoint);
  CHECK(s->waypoint->address()->ip == ip("10.0.0.9"));
  REQUIRE(s->weighted_waypoints.size() == 1);
  CHECK(s->weighted_waypoints[0].weight == 20);
  CHECK(s->weighted_waypoints[0].destination.hostname()->hostname == "wp2");
  REQUIRE(s->load_balancer);
  CHECK(s->load_balancer->routing_preferences ==
        std::vector<LoadBalancerScope>{LoadBalancerScope::kNetwork, LoadBalancerScope::kZone});
  CHECK(s->load_balancer->mode == LoadBalancerMode::kFailover);
  CHECK(s->load_balancer->health_policy == LoadBalancerHealthPolicy::kAllowAll);
  CHECK(s->ip_families == IpFamilies::kDual);
  CHECK(s->canonical);
  CHECK(s->visibility == Visibility::kNamespace);
  CHECK(s->endpoints.empty());
}

TEST_CASE("an unspecified load-balancing mode means standard and no LB means none") {
  pb::Service in = minimal_service();
  auto plain = service_from_proto(in);
  REQUIRE(plain);
  CHECK_FALSE(plain->load_balancer);
  CHECK(plain->ip_families == IpFamilies::kAutomatic);
  in.mutable_load_balancing();
  auto s = service_from_proto(in);
  REQUIRE(s);
  REQUIRE(s->load_balancer);
  CHECK(s->load_balancer->mode == LoadBalancerMode::kStandard);
  CHECK(s->load_balancer->health_policy == LoadBalancerHealthPolicy::kOnlyHealthy);
}

TEST_CASE("a service without namespace or hostname is rejected") {
  pb::Service no_ns = minimal_service();
  no_ns.clear_namespace_();
  check_rejected(service_from_proto(no_ns), "service.namespace");
  pb::Service no_host = minimal_service();
  no_host.clear_hostname();
  check_rejected(service_from_proto(no_host), "service.hostname");
}

TEST_CASE("service addresses with bad bytes or prefix lengths are rejected") {
  pb::Service bad_ip = minimal_service();
  bad_ip.add_addresses()->set_address("12345");
  check_rejected(service_from_proto(bad_ip), "service.addresses[1].address");
  pb::Service long_v4 = minimal_service();
  auto* a = long_v4.add_addresses();
  a->set_address(v4(10, 0, 0, 0));
  a->set_length(33);
  check_rejected(service_from_proto(long_v4), "service.addresses[1].length");
  pb::Service long_v6 = minimal_service();
  auto* b = long_v6.add_addresses();
  b->set_address(std::string(16, '\0'));
  b->set_length(129);
  check_rejected(service_from_proto(long_v6), "beyond 128");
}

TEST_CASE("an unspecified load-balancing scope is rejected") {
  pb::Service in = minimal_service();
  in.mutable_load_balancing()->add_routing_preference(pb::LoadBalancing::UNSPECIFIED_SCOPE);
  check_rejected(service_from_proto(in), "service.load_balancing.routing_preference[0]");
}

TEST_CASE("unknown service enum values are rejected, naming the field") {
  SUBCASE("scope") {
    pb::Service in = minimal_service();
    in.mutable_load_balancing()->add_routing_preference(static_cast<pb::LoadBalancing_Scope>(99));
    check_rejected(service_from_proto(in), "routing_preference[0]: unknown enum value 99");
  }
  SUBCASE("mode") {
    pb::Service in = minimal_service();
    in.mutable_load_balancing()->set_mode(static_cast<pb::LoadBalancing_Mode>(9));
    check_rejected(service_from_proto(in), "service.load_balancing.mode");
  }
  SUBCASE("health policy") {
    pb::Service in = minimal_service();
    in.mutable_load_balancing()->set_health_policy(static_cast<pb::LoadBalancing_HealthPolicy>(9));
    check_rejected(service_from_proto(in), "service.load_balancing.health_policy");
  }
  SUBCASE("ip families") {
    pb::Service in = minimal_service();
    in.set_ip_families(static_cast<pb::IPFamilies>(9));
    check_rejected(service_from_proto(in), "service.ip_families");
  }
}

TEST_CASE("an unknown service visibility fails open to public as in Istio") {
  pb::Service in = minimal_service();
  in.set_visibility(static_cast<pb::Service_Visibility>(7));
  auto s = service_from_proto(in);
  REQUIRE(s);
  CHECK(s->visibility == Visibility::kPublic);
}

TEST_CASE("a weighted waypoint without a destination is rejected") {
  pb::Service in = minimal_service();
  in.add_weighted_waypoints()->set_weight(10);
  check_rejected(service_from_proto(in), "service.weighted_waypoints[0].destination: missing");
  pb::Service empty_dest = minimal_service();
  empty_dest.add_weighted_waypoints()->mutable_destination();
  check_rejected(service_from_proto(empty_dest), "neither hostname nor address");
}

TEST_CASE("an Address resource converts to whichever of workload or service it holds") {
  pb::Address wa;
  *wa.mutable_workload() = minimal_workload();
  auto w = from_proto(wa);
  REQUIRE(w);
  CHECK(std::get<Workload>(*w).name == "pod-a");
  pb::Address sa;
  *sa.mutable_service() = minimal_service();
  auto s = from_proto(sa);
  REQUIRE(s);
  CHECK(std::get<Service>(*s).name == "svc");
  check_rejected(from_proto(pb::Address{}), "address.type");
  pb::Address bad;
  bad.mutable_workload();  // set, but no uid
  check_rejected(from_proto(bad), "workload.uid");
}

TEST_CASE("an authorization converts with its whole rule tree") {
  sec::Authorization in;
  in.set_name("deny-some");
  in.set_namespace_("ns1");
  in.set_scope(sec::WORKLOAD_SELECTOR);
  in.set_action(sec::DENY);
  in.set_dry_run(true);
  auto* clause = in.add_rules()->add_clauses();
  auto* m = clause->add_matches();
  m->add_namespaces()->set_exact("a");
  m->add_not_namespaces()->set_prefix("kube-");
  m->add_principals()->set_suffix("/sa/admin");
  m->add_not_principals()->mutable_presence();
  auto* src = m->add_source_ips();
  src->set_address(v4(10, 0, 0, 0));
  src->set_length(8);
  auto* nsrc = m->add_not_source_ips();
  nsrc->set_address(v4(10, 1, 0, 0));
  nsrc->set_length(16);
  auto* dst = m->add_destination_ips();
  dst->set_address(v4(192, 168, 0, 1));
  dst->set_length(32);
  auto* ndst = m->add_not_destination_ips();
  ndst->set_address(std::string(16, '\0'));
  ndst->set_length(0);
  m->add_destination_ports(80);
  m->add_not_destination_ports(9999);
  auto* sa = m->add_service_accounts();
  sa->set_namespace_("ns1");
  sa->set_serviceaccount("sa1");
  auto* nsa = m->add_not_service_accounts();
  nsa->set_namespace_("ns2");
  nsa->set_serviceaccount("sa2");
  clause->add_matches();  // an empty match is kept; evaluation skips it
  in.add_rules();         // and so is an empty rule

  auto p = policy_from_proto(in);
  REQUIRE(p);
  CHECK(p->key() == "ns1/deny-some");
  CHECK(p->scope == PolicyScope::kWorkloadSelector);
  CHECK(p->action == PolicyAction::kDeny);
  CHECK(p->dry_run);
  REQUIRE(p->rules.size() == 2);
  CHECK(p->rules[1].clauses.empty());
  REQUIRE(p->rules[0].clauses.size() == 1);
  REQUIRE(p->rules[0].clauses[0].matches.size() == 2);
  CHECK(p->rules[0].clauses[0].matches[1].empty());
  const Match& got = p->rules[0].clauses[0].matches[0];
  CHECK(got.namespaces == std::vector{StringMatch::exact("a")});
  CHECK(got.not_namespaces == std::vector{StringMatch::prefix("kube-")});
  CHECK(got.principals == std::vector{StringMatch::suffix("/sa/admin")});
  CHECK(got.not_principals == std::vector{StringMatch::presence()});
  CHECK(got.source_ips == std::vector{*Cidr::parse("10.0.0.0/8")});
  CHECK(got.not_source_ips == std::vector{*Cidr::parse("10.1.0.0/16")});
  CHECK(got.destination_ips == std::vector{*Cidr::parse("192.168.0.1/32")});
  CHECK(got.not_destination_ips == std::vector{*Cidr::parse("::/0")});
  CHECK(got.destination_ports == std::vector<uint16_t>{80});
  CHECK(got.not_destination_ports == std::vector<uint16_t>{9999});
  CHECK(got.service_accounts == std::vector{ServiceAccountMatch{"ns1", "sa1"}});
  CHECK(got.not_service_accounts == std::vector{ServiceAccountMatch{"ns2", "sa2"}});
}

TEST_CASE("an authorization's scope and action default to GLOBAL and ALLOW") {
  sec::Authorization in;
  in.set_name("p");
  auto p = policy_from_proto(in);
  REQUIRE(p);
  CHECK(p->scope == PolicyScope::kGlobal);
  CHECK(p->action == PolicyAction::kAllow);
  CHECK(p->rules.empty());
  CHECK(p->key() == "/p");
}

TEST_CASE("an authorization without a name is rejected") {
  sec::Authorization in = minimal_policy();
  in.clear_name();
  check_rejected(policy_from_proto(in), "authorization.name");
}

TEST_CASE("unknown authorization scope or action values are rejected") {
  sec::Authorization scope = minimal_policy();
  scope.set_scope(static_cast<sec::Scope>(3));
  check_rejected(policy_from_proto(scope), "authorization.scope");
  sec::Authorization action = minimal_policy();
  action.set_action(static_cast<sec::Action>(2));  // AUDIT/CUSTOM do not exist for ztunnel
  check_rejected(policy_from_proto(action), "authorization.action");
}

TEST_CASE("a string match with nothing set is rejected") {
  sec::Authorization in = minimal_policy();
  in.mutable_rules(0)->mutable_clauses(0)->mutable_matches(0)->add_not_principals();
  check_rejected(policy_from_proto(in),
                 "authorization.rules[0].clauses[0].matches[0].not_principals[0]");
}

TEST_CASE("policy addresses with bad bytes or prefix lengths are rejected") {
  sec::Authorization bytes = minimal_policy();
  bytes.mutable_rules(0)->mutable_clauses(0)->mutable_matches(0)->add_source_ips()->set_address(
      "x");
  check_rejected(policy_from_proto(bytes), "matches[0].source_ips[0].address");
  sec::Authorization length = minimal_policy();
  auto* a = length.mutable_rules(0)->mutable_clauses(0)->mutable_matches(0)->add_destination_ips();
  a->set_address(v4(10, 0, 0, 0));
  a->set_length(64);
  check_rejected(policy_from_proto(length), "matches[0].destination_ips[0].length");
}

}  // namespace ztunnel::state
