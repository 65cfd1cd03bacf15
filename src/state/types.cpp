// Identity parsing and the small helpers of the workload, service and policy values.
#include "state/types.h"

#include <fmt/format.h>

#include <algorithm>

#include "state/policy.h"

namespace ztunnel::state {

std::string Identity::to_spiffe() const {
  std::string out;
  append_spiffe(out);
  return out;
}

void Identity::append_spiffe(std::string& out) const {
  out.reserve(out.size() + 17 + trust_domain.size() + namespace_.size() + service_account.size());
  out += "spiffe://";
  out += trust_domain;
  out += "/ns/";
  out += namespace_;
  out += "/sa/";
  out += service_account;
}

core::Result<Identity> Identity::parse(std::string_view text) {
  constexpr std::string_view kScheme = "spiffe://";
  auto bad = [text](std::string_view why) {
    return core::make_error(fmt::format("'{}' is not a SPIFFE workload identity: {}", text, why));
  };
  if (!text.starts_with(kScheme)) return bad("missing spiffe:// prefix");
  std::string_view rest = text.substr(kScheme.size());
  if (rest.find_first_of("?#") != std::string_view::npos) return bad("query or fragment present");
  std::string_view parts[5];
  for (int i = 0; i < 5; ++i) {
    auto slash = rest.find('/');
    if (i < 4 && slash == std::string_view::npos) return bad("expected TD/ns/NS/sa/SA");
    if (i == 4 && slash != std::string_view::npos) return bad("too many path segments");
    parts[i] = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  }
  if (parts[1] != "ns" || parts[3] != "sa") return bad("expected TD/ns/NS/sa/SA");
  return Identity{std::string(parts[0]), std::string(parts[2]), std::string(parts[4])};
}

std::string_view enum_name(Protocol v) { return v == Protocol::kHbone ? "hbone" : "tcp"; }
std::string_view enum_name(NetworkMode v) {
  return v == NetworkMode::kHostNetwork ? "host_network" : "standard";
}
std::string_view enum_name(HealthStatus v) {
  return v == HealthStatus::kUnhealthy ? "unhealthy" : "healthy";
}
std::string_view enum_name(WorkloadType v) {
  switch (v) {
    case WorkloadType::kDeployment:
      return "deployment";
    case WorkloadType::kCronJob:
      return "cronjob";
    case WorkloadType::kPod:
      return "pod";
    case WorkloadType::kJob:
      return "job";
  }
  return "unknown";
}
std::string_view enum_name(LoadBalancerMode v) {
  switch (v) {
    case LoadBalancerMode::kStandard:
      return "standard";
    case LoadBalancerMode::kStrict:
      return "strict";
    case LoadBalancerMode::kFailover:
      return "failover";
    case LoadBalancerMode::kPassthrough:
      return "passthrough";
  }
  return "unknown";
}
std::string_view enum_name(LoadBalancerScope v) {
  switch (v) {
    case LoadBalancerScope::kRegion:
      return "region";
    case LoadBalancerScope::kZone:
      return "zone";
    case LoadBalancerScope::kSubzone:
      return "subzone";
    case LoadBalancerScope::kNode:
      return "node";
    case LoadBalancerScope::kCluster:
      return "cluster";
    case LoadBalancerScope::kNetwork:
      return "network";
  }
  return "unknown";
}
std::string_view enum_name(LoadBalancerHealthPolicy v) {
  return v == LoadBalancerHealthPolicy::kAllowAll ? "allow_all" : "only_healthy";
}
std::string_view enum_name(IpFamilies v) {
  switch (v) {
    case IpFamilies::kAutomatic:
      return "automatic";
    case IpFamilies::kIpv4Only:
      return "ipv4_only";
    case IpFamilies::kIpv6Only:
      return "ipv6_only";
    case IpFamilies::kDual:
      return "dual";
  }
  return "unknown";
}
std::string_view enum_name(Visibility v) {
  return v == Visibility::kNamespace ? "namespace" : "public";
}
std::string_view enum_name(PolicyScope v) {
  switch (v) {
    case PolicyScope::kGlobal:
      return "global";
    case PolicyScope::kNamespace:
      return "namespace";
    case PolicyScope::kWorkloadSelector:
      return "workload_selector";
  }
  return "unknown";
}
std::string_view enum_name(PolicyAction v) { return v == PolicyAction::kDeny ? "deny" : "allow"; }

std::vector<std::pair<std::string, Endpoint>> endpoints_of(const Workload& workload) {
  std::vector<std::pair<std::string, Endpoint>> out;
  out.reserve(workload.services.size());
  for (const auto& [key, ports] : workload.services) {
    out.emplace_back(key, Endpoint{workload.uid, ports, workload.status});
  }
  return out;
}

bool StringMatch::matches(std::string_view candidate) const {
  switch (kind) {
    case Kind::kExact:
      return candidate == value;
    case Kind::kPrefix:
      return candidate.starts_with(value);
    case Kind::kSuffix:
      return candidate.ends_with(value);
    case Kind::kPresence:
      return !candidate.empty();
  }
  return false;
}

bool Match::empty() const {
  return namespaces.empty() && not_namespaces.empty() && principals.empty() &&
         not_principals.empty() && source_ips.empty() && not_source_ips.empty() &&
         destination_ips.empty() && not_destination_ips.empty() && destination_ports.empty() &&
         not_destination_ports.empty() && service_accounts.empty() && not_service_accounts.empty();
}

}  // namespace ztunnel::state
