// Protobuf -> state values. Checks are Istio's, plus range checks where Istio truncates silently.
#include "state/convert.h"

#include <fmt/format.h>

#include <limits>
#include <string>

namespace ztunnel::state {

namespace pb = istio::workload;
namespace sec = istio::security;

namespace {

core::Error field_error(std::string_view field, std::string_view what) {
  return core::make_error(fmt::format("{}: {}", field, what));
}

// Istio casts these to u16 and keeps the low bits; a port that does not fit
// is a control-plane bug better refused than silently redirected.
core::Result<uint16_t> port_from(uint32_t value, std::string_view field) {
  if (value > std::numeric_limits<uint16_t>::max()) {
    return field_error(field, fmt::format("port {} is beyond 65535", value));
  }
  return static_cast<uint16_t>(value);
}

core::Error unknown_enum(std::string_view field, int value) {
  return field_error(field, fmt::format("unknown enum value {}", value));
}

core::Result<PortMap> ports_from(const google::protobuf::RepeatedPtrField<pb::Port>& ports,
                                 std::string_view field) {
  PortMap out;
  for (int i = 0; i < ports.size(); ++i) {
    auto service_port =
        port_from(ports[i].service_port(), fmt::format("{}[{}].service_port", field, i));
    if (!service_port) return service_port.error();
    auto target_port =
        port_from(ports[i].target_port(), fmt::format("{}[{}].target_port", field, i));
    if (!target_port) return target_port.error();
    out.insert_or_assign(*service_port, *target_port);
  }
  return out;
}

core::Result<ApplicationTunnel> tunnel_from(const pb::ApplicationTunnel& tunnel) {
  ApplicationTunnel out;
  int protocol = tunnel.protocol();
  if (!pb::ApplicationTunnel_Protocol_IsValid(protocol)) {
    return unknown_enum("workload.application_tunnel.protocol", protocol);
  }
  out.protocol = protocol == pb::ApplicationTunnel::PROXY ? ApplicationTunnel::Protocol::kProxy
                                                          : ApplicationTunnel::Protocol::kNone;
  if (tunnel.port() != 0) {
    auto port = port_from(tunnel.port(), "workload.application_tunnel.port");
    if (!port) return port.error();
    out.port = *port;
  }
  return out;
}

core::Result<LoadBalancer> load_balancer_from(const pb::LoadBalancing& lb) {
  LoadBalancer out;
  for (int i = 0; i < lb.routing_preference_size(); ++i) {
    int scope = lb.routing_preference(i);
    std::string field = fmt::format("service.load_balancing.routing_preference[{}]", i);
    if (!pb::LoadBalancing_Scope_IsValid(scope)) return unknown_enum(field, scope);
    switch (scope) {
      case pb::LoadBalancing::REGION:
        out.routing_preferences.push_back(LoadBalancerScope::kRegion);
        break;
      case pb::LoadBalancing::ZONE:
        out.routing_preferences.push_back(LoadBalancerScope::kZone);
        break;
      case pb::LoadBalancing::SUBZONE:
        out.routing_preferences.push_back(LoadBalancerScope::kSubzone);
        break;
      case pb::LoadBalancing::NODE:
        out.routing_preferences.push_back(LoadBalancerScope::kNode);
        break;
      case pb::LoadBalancing::CLUSTER:
        out.routing_preferences.push_back(LoadBalancerScope::kCluster);
        break;
      case pb::LoadBalancing::NETWORK:
        out.routing_preferences.push_back(LoadBalancerScope::kNetwork);
        break;
      default:
        return field_error(field, "UNSPECIFIED_SCOPE is not a routing preference");
    }
  }
  int mode = lb.mode();
  if (!pb::LoadBalancing_Mode_IsValid(mode))
    return unknown_enum("service.load_balancing.mode", mode);
  switch (mode) {
    case pb::LoadBalancing::STRICT:
      out.mode = LoadBalancerMode::kStrict;
      break;
    case pb::LoadBalancing::FAILOVER:
      out.mode = LoadBalancerMode::kFailover;
      break;
    case pb::LoadBalancing::PASSTHROUGH:
      out.mode = LoadBalancerMode::kPassthrough;
      break;
    default:
      out.mode = LoadBalancerMode::kStandard;
      break;  // UNSPECIFIED_MODE
  }
  int health = lb.health_policy();
  if (!pb::LoadBalancing_HealthPolicy_IsValid(health)) {
    return unknown_enum("service.load_balancing.health_policy", health);
  }
  out.health_policy = health == pb::LoadBalancing::ALLOW_ALL
                          ? LoadBalancerHealthPolicy::kAllowAll
                          : LoadBalancerHealthPolicy::kOnlyHealthy;
  return out;
}

core::Result<StringMatch> string_match_from(const sec::StringMatch& m, std::string_view field) {
  switch (m.match_type_case()) {
    case sec::StringMatch::kExact:
      return StringMatch::exact(m.exact());
    case sec::StringMatch::kPrefix:
      return StringMatch::prefix(m.prefix());
    case sec::StringMatch::kSuffix:
      return StringMatch::suffix(m.suffix());
    case sec::StringMatch::kPresence:
      return StringMatch::presence();
    default:
      break;
  }
  // Istio drops these; dropping one from a not_* list would widen a DENY or
  // narrow nothing, so refuse the policy instead.
  return field_error(field, "string match has none of exact, prefix, suffix, presence");
}

core::Result<std::vector<StringMatch>> string_matches_from(
    const google::protobuf::RepeatedPtrField<sec::StringMatch>& list, std::string_view field) {
  std::vector<StringMatch> out;
  out.reserve(list.size());
  for (int i = 0; i < list.size(); ++i) {
    auto m = string_match_from(list[i], fmt::format("{}[{}]", field, i));
    if (!m) return m.error();
    out.push_back(std::move(*m));
  }
  return out;
}

core::Result<std::vector<Cidr>> cidrs_from(
    const google::protobuf::RepeatedPtrField<sec::Address>& list, std::string_view field) {
  std::vector<Cidr> out;
  out.reserve(list.size());
  for (int i = 0; i < list.size(); ++i) {
    std::string item = fmt::format("{}[{}]", field, i);
    auto ip = ip_from_bytes(list[i].address(), item + ".address");
    if (!ip) return ip.error();
    auto cidr = Cidr::make(*ip, list[i].length());
    if (!cidr) return field_error(item + ".length", cidr.error().message);
    out.push_back(*cidr);
  }
  return out;
}

core::Result<std::vector<uint16_t>> ports_list_from(
    const google::protobuf::RepeatedField<uint32_t>& list, std::string_view field) {
  std::vector<uint16_t> out;
  out.reserve(list.size());
  for (int i = 0; i < list.size(); ++i) {
    auto port = port_from(list[i], fmt::format("{}[{}]", field, i));
    if (!port) return port.error();
    out.push_back(*port);
  }
  return out;
}

std::vector<ServiceAccountMatch> service_accounts_from(
    const google::protobuf::RepeatedPtrField<sec::ServiceAccountMatch>& list) {
  std::vector<ServiceAccountMatch> out;
  out.reserve(list.size());
  for (const auto& m : list) out.push_back({m.namespace_(), m.serviceaccount()});
  return out;
}

core::Result<Match> match_from(const sec::Match& m, const std::string& field) {
  Match out;
  // Each field's conversion can fail; stop at the first with its reason.
  auto take = [](auto result, auto& into) -> std::optional<core::Error> {
    if (!result) return result.error();
    into = std::move(*result);
    return std::nullopt;
  };
  if (auto e = take(string_matches_from(m.namespaces(), field + ".namespaces"), out.namespaces))
    return *e;
  if (auto e = take(string_matches_from(m.not_namespaces(), field + ".not_namespaces"),
                    out.not_namespaces))
    return *e;
  if (auto e = take(string_matches_from(m.principals(), field + ".principals"), out.principals))
    return *e;
  if (auto e = take(string_matches_from(m.not_principals(), field + ".not_principals"),
                    out.not_principals))
    return *e;
  if (auto e = take(cidrs_from(m.source_ips(), field + ".source_ips"), out.source_ips)) return *e;
  if (auto e = take(cidrs_from(m.not_source_ips(), field + ".not_source_ips"), out.not_source_ips))
    return *e;
  if (auto e =
          take(cidrs_from(m.destination_ips(), field + ".destination_ips"), out.destination_ips))
    return *e;
  if (auto e = take(cidrs_from(m.not_destination_ips(), field + ".not_destination_ips"),
                    out.not_destination_ips))
    return *e;
  if (auto e = take(ports_list_from(m.destination_ports(), field + ".destination_ports"),
                    out.destination_ports))
    return *e;
  if (auto e = take(ports_list_from(m.not_destination_ports(), field + ".not_destination_ports"),
                    out.not_destination_ports))
    return *e;
  out.service_accounts = service_accounts_from(m.service_accounts());
  out.not_service_accounts = service_accounts_from(m.not_service_accounts());
  return out;
}

}  // namespace

core::Result<NetworkAddress> network_address_from_proto(const pb::NetworkAddress& address,
                                                        std::string_view field) {
  auto ip = ip_from_bytes(address.address(), fmt::format("{}.address", field));
  if (!ip) return ip.error();
  return NetworkAddress{address.network(), *ip};
}

core::Result<GatewayAddress> gateway_from_proto(const pb::GatewayAddress& gateway,
                                                std::string_view field) {
  auto port = port_from(gateway.hbone_mtls_port(), fmt::format("{}.hbone_mtls_port", field));
  if (!port) return port.error();
  switch (gateway.destination_case()) {
    case pb::GatewayAddress::kHostname:
      return GatewayAddress{
          NamespacedHostname{gateway.hostname().namespace_(), gateway.hostname().hostname()},
          *port};
    case pb::GatewayAddress::kAddress: {
      auto address =
          network_address_from_proto(gateway.address(), fmt::format("{}.address", field));
      if (!address) return address.error();
      return GatewayAddress{std::move(*address), *port};
    }
    default:
      break;
  }
  return field_error(field, "gateway address has neither hostname nor address");
}

core::Result<Workload> workload_from_proto(const pb::Workload& in) {
  Workload w;
  if (in.uid().empty()) return field_error("workload.uid", "missing");
  w.uid = in.uid();
  w.name = in.name();
  w.namespace_ = in.namespace_();
  for (int i = 0; i < in.addresses_size(); ++i) {
    auto ip = ip_from_bytes(in.addresses(i), fmt::format("workload.addresses[{}]", i));
    if (!ip) return ip.error();
    w.addresses.push_back(*ip);
  }
  w.hostname = in.hostname();
  w.network = in.network();

  int protocol = in.tunnel_protocol();
  if (!pb::TunnelProtocol_IsValid(protocol))
    return unknown_enum("workload.tunnel_protocol", protocol);
  if (protocol == pb::LEGACY_ISTIO_MTLS) {
    return field_error("workload.tunnel_protocol", "LEGACY_ISTIO_MTLS is not supported");
  }
  w.protocol = protocol == pb::HBONE ? Protocol::kHbone : Protocol::kTcp;

  w.trust_domain = in.trust_domain().empty() ? std::string(kDefaultTrustDomain) : in.trust_domain();
  w.service_account =
      in.service_account().empty() ? std::string(kDefaultServiceAccount) : in.service_account();
  if (in.has_waypoint()) {
    auto gw = gateway_from_proto(in.waypoint(), "workload.waypoint");
    if (!gw) return gw.error();
    w.waypoint = std::move(*gw);
  }
  if (in.has_network_gateway()) {
    auto gw = gateway_from_proto(in.network_gateway(), "workload.network_gateway");
    if (!gw) return gw.error();
    w.network_gateway = std::move(*gw);
  }
  w.node = in.node();
  w.canonical_name = in.canonical_name();
  w.canonical_revision = in.canonical_revision();

  // Istio reads this through prost's lenient getter: an unknown type is a
  // Deployment. It only feeds metric labels, so it is not worth a NACK.
  switch (static_cast<int>(in.workload_type())) {
    case pb::CRONJOB:
      w.workload_type = WorkloadType::kCronJob;
      break;
    case pb::POD:
      w.workload_type = WorkloadType::kPod;
      break;
    case pb::JOB:
      w.workload_type = WorkloadType::kJob;
      break;
    default:
      w.workload_type = WorkloadType::kDeployment;
      break;
  }
  w.workload_name = in.workload_name();
  w.native_tunnel = in.native_tunnel();
  if (in.has_application_tunnel()) {
    auto tunnel = tunnel_from(in.application_tunnel());
    if (!tunnel) return tunnel.error();
    w.application_tunnel = *tunnel;
  }
  w.authorization_policies.assign(in.authorization_policies().begin(),
                                  in.authorization_policies().end());

  int status = in.status();
  if (!pb::WorkloadStatus_IsValid(status)) return unknown_enum("workload.status", status);
  w.status = status == pb::UNHEALTHY ? HealthStatus::kUnhealthy : HealthStatus::kHealthy;

  w.cluster_id = in.cluster_id().empty() ? std::string(kDefaultClusterId) : in.cluster_id();
  if (in.has_locality()) {
    w.locality = Locality{in.locality().region(), in.locality().zone(), in.locality().subzone()};
  }
  int mode = in.network_mode();
  if (!pb::NetworkMode_IsValid(mode)) return unknown_enum("workload.network_mode", mode);
  w.network_mode = mode == pb::HOST_NETWORK ? NetworkMode::kHostNetwork : NetworkMode::kStandard;
  w.capacity = in.has_capacity() ? in.capacity().value() : 1;

  for (const auto& [key, port_list] : in.services()) {
    std::string field = fmt::format("workload.services[{}]", key);
    auto name = NamespacedHostname::parse(key);
    if (!name) return field_error(field, "key is not namespace/hostname");
    auto ports = ports_from(port_list.ports(), field + ".ports");
    if (!ports) return ports.error();
    w.services.emplace(key, std::move(*ports));
  }
  return w;
}

core::Result<Service> service_from_proto(const pb::Service& in) {
  Service s;
  if (in.namespace_().empty()) return field_error("service.namespace", "missing");
  if (in.hostname().empty()) return field_error("service.hostname", "missing");
  s.name = in.name();
  s.namespace_ = in.namespace_();
  s.hostname = in.hostname();
  for (int i = 0; i < in.addresses_size(); ++i) {
    const auto& a = in.addresses(i);
    std::string field = fmt::format("service.addresses[{}]", i);
    auto address = network_address_from_proto(a, field);
    if (!address) return address.error();
    // A length that is not the full width makes the address a CIDR VIP.
    uint32_t max = address->ip.is_v4() ? 32 : 128;
    if (a.has_length() && a.length() != max) {
      auto cidr = Cidr::make(address->ip, a.length());
      if (!cidr) return field_error(field + ".length", cidr.error().message);
      s.cidr_vips.push_back(NetworkCidr{address->network, *cidr});
    } else {
      s.vips.push_back(std::move(*address));
    }
  }
  auto ports = ports_from(in.ports(), "service.ports");
  if (!ports) return ports.error();
  s.ports = std::move(*ports);
  s.subject_alt_names.assign(in.subject_alt_names().begin(), in.subject_alt_names().end());
  if (in.has_waypoint()) {
    auto gw = gateway_from_proto(in.waypoint(), "service.waypoint");
    if (!gw) return gw.error();
    s.waypoint = std::move(*gw);
  }
  for (int i = 0; i < in.weighted_waypoints_size(); ++i) {
    const auto& ww = in.weighted_waypoints(i);
    std::string field = fmt::format("service.weighted_waypoints[{}].destination", i);
    if (!ww.has_destination()) return field_error(field, "missing");
    auto gw = gateway_from_proto(ww.destination(), field);
    if (!gw) return gw.error();
    s.weighted_waypoints.push_back(WeightedWaypoint{std::move(*gw), ww.weight()});
  }
  if (in.has_load_balancing()) {
    auto lb = load_balancer_from(in.load_balancing());
    if (!lb) return lb.error();
    s.load_balancer = std::move(*lb);
  }
  int families = in.ip_families();
  if (!pb::IPFamilies_IsValid(families)) return unknown_enum("service.ip_families", families);
  switch (families) {
    case pb::IPV4_ONLY:
      s.ip_families = IpFamilies::kIpv4Only;
      break;
    case pb::IPV6_ONLY:
      s.ip_families = IpFamilies::kIpv6Only;
      break;
    case pb::DUAL:
      s.ip_families = IpFamilies::kDual;
      break;
    default:
      s.ip_families = IpFamilies::kAutomatic;
      break;
  }
  s.canonical = in.canonical();
  // Istio fails open here on purpose: an unknown visibility from a newer
  // control plane keeps the service PUBLIC rather than dropping it.
  s.visibility =
      in.visibility() == pb::Service::NAMESPACE ? Visibility::kNamespace : Visibility::kPublic;
  return s;
}

core::Result<AddressResource> from_proto(const pb::Address& address) {
  switch (address.type_case()) {
    case pb::Address::kWorkload: {
      auto w = workload_from_proto(address.workload());
      if (!w) return w.error();
      return AddressResource(std::move(*w));
    }
    case pb::Address::kService: {
      auto s = service_from_proto(address.service());
      if (!s) return s.error();
      return AddressResource(std::move(*s));
    }
    default:
      break;
  }
  return field_error("address.type", "neither workload nor service is set");
}

core::Result<Policy> policy_from_proto(const sec::Authorization& in) {
  Policy p;
  if (in.name().empty()) return field_error("authorization.name", "missing");
  p.name = in.name();
  p.namespace_ = in.namespace_();
  int scope = in.scope();
  if (!sec::Scope_IsValid(scope)) return unknown_enum("authorization.scope", scope);
  switch (scope) {
    case sec::NAMESPACE:
      p.scope = PolicyScope::kNamespace;
      break;
    case sec::WORKLOAD_SELECTOR:
      p.scope = PolicyScope::kWorkloadSelector;
      break;
    default:
      p.scope = PolicyScope::kGlobal;
      break;
  }
  int action = in.action();
  if (!sec::Action_IsValid(action)) return unknown_enum("authorization.action", action);
  p.action = action == sec::DENY ? PolicyAction::kDeny : PolicyAction::kAllow;
  p.dry_run = in.dry_run();
  p.rules.reserve(in.rules_size());
  for (int r = 0; r < in.rules_size(); ++r) {
    Rule rule;
    const auto& clauses = in.rules(r).clauses();
    for (int c = 0; c < clauses.size(); ++c) {
      Clause clause;
      for (int m = 0; m < clauses[c].matches_size(); ++m) {
        auto match =
            match_from(clauses[c].matches(m),
                       fmt::format("authorization.rules[{}].clauses[{}].matches[{}]", r, c, m));
        if (!match) return match.error();
        clause.matches.push_back(std::move(*match));
      }
      rule.clauses.push_back(std::move(clause));
    }
    p.rules.push_back(std::move(rule));
  }
  return p;
}

}  // namespace ztunnel::state
