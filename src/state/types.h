// Workloads, endpoints and services as plain immutable values; the rest of
// the proxy sees these, never protobuf.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "state/address.h"
#include "state/identity.h"

namespace ztunnel::state {

// Service port -> target port. A target port of 0 means "named port": only an
// endpoint's own mapping can resolve it.
using PortMap = std::map<uint16_t, uint16_t>;

// How a workload accepts inbound traffic.
enum class Protocol { kTcp, kHbone };
enum class NetworkMode { kStandard, kHostNetwork };
enum class HealthStatus { kHealthy, kUnhealthy };
enum class WorkloadType { kDeployment, kCronJob, kPod, kJob };
enum class LoadBalancerMode { kStandard, kStrict, kFailover, kPassthrough };
enum class LoadBalancerScope { kRegion, kZone, kSubzone, kNode, kCluster, kNetwork };
enum class LoadBalancerHealthPolicy { kOnlyHealthy, kAllowAll };
// kAutomatic is Istio's "no preference" (its Option<IpFamily>::None).
enum class IpFamilies { kAutomatic, kIpv4Only, kIpv6Only, kDual };
enum class Visibility { kPublic, kNamespace };

// Lower-case names for logs and the config dump ("hbone", "host_network",
// "deployment", ...). Workload types match Istio's metric label values.
std::string_view enum_name(Protocol v);
std::string_view enum_name(NetworkMode v);
std::string_view enum_name(HealthStatus v);
std::string_view enum_name(WorkloadType v);
std::string_view enum_name(LoadBalancerMode v);
std::string_view enum_name(LoadBalancerScope v);
std::string_view enum_name(LoadBalancerHealthPolicy v);
std::string_view enum_name(IpFamilies v);
std::string_view enum_name(Visibility v);

struct Locality {
  std::string region;
  std::string zone;
  std::string subzone;

  friend bool operator==(const Locality&, const Locality&) = default;
};

// A workload that terminates HBONE itself (e.g. a waypoint) and wants inbound
// traffic on `port`, optionally prefixed with a PROXY v2 header.
struct ApplicationTunnel {
  enum class Protocol { kNone, kProxy };
  Protocol protocol = Protocol::kNone;
  std::optional<uint16_t> port;

  friend bool operator==(const ApplicationTunnel&, const ApplicationTunnel&) = default;
};

// Key of a service in Workload::services and the service index: "ns/hostname".
inline std::string service_key(std::string_view namespace_, std::string_view hostname) {
  std::string key;
  key.reserve(namespace_.size() + 1 + hostname.size());
  key.append(namespace_).append("/").append(hostname);
  return key;
}

struct Workload {
  std::string uid;  // the xDS resource name; unique
  std::string name;
  std::string namespace_;
  std::vector<IpAddress> addresses;
  std::string hostname;  // set instead of addresses for DNS-resolved workloads
  std::string network;
  Protocol protocol = Protocol::kTcp;
  std::string trust_domain;
  std::string service_account;
  std::optional<GatewayAddress> waypoint;
  std::optional<GatewayAddress> network_gateway;
  std::string node;
  std::string canonical_name;
  std::string canonical_revision;
  WorkloadType workload_type = WorkloadType::kDeployment;
  std::string workload_name;
  bool native_tunnel = false;
  std::optional<ApplicationTunnel> application_tunnel;
  std::vector<std::string> authorization_policies;  // policy keys "ns/name"
  HealthStatus status = HealthStatus::kHealthy;
  std::string cluster_id;
  Locality locality;
  NetworkMode network_mode = NetworkMode::kStandard;
  uint32_t capacity = 1;  // load-balancing weight
  // The services selecting this workload, "ns/hostname" -> its port mapping
  // there. The store turns each entry into an Endpoint of that service.
  std::map<std::string, PortMap> services;

  Identity identity() const { return Identity{trust_domain, namespace_, service_account}; }

  friend bool operator==(const Workload&, const Workload&) = default;
};

// A workload's membership in one service.
struct Endpoint {
  std::string workload_uid;
  PortMap ports;  // service port -> target port, for this workload
  HealthStatus status = HealthStatus::kHealthy;

  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// Shared so that a service's endpoint set can be copied (on every change to
// it) without copying each endpoint.
using EndpointPtr = std::shared_ptr<const Endpoint>;
using EndpointMap = std::map<std::string, EndpointPtr>;  // by workload uid

// The endpoints a workload contributes: one per entry of `services`, keyed
// by service key.
std::vector<std::pair<std::string, Endpoint>> endpoints_of(const Workload& workload);

struct LoadBalancer {
  std::vector<LoadBalancerScope> routing_preferences;
  LoadBalancerMode mode = LoadBalancerMode::kStandard;
  LoadBalancerHealthPolicy health_policy = LoadBalancerHealthPolicy::kOnlyHealthy;

  friend bool operator==(const LoadBalancer&, const LoadBalancer&) = default;
};

// One candidate of a weighted waypoint set (canary shifting between waypoints).
struct WeightedWaypoint {
  GatewayAddress destination;
  uint32_t weight = 0;

  friend bool operator==(const WeightedWaypoint&, const WeightedWaypoint&) = default;
};

struct Service {
  std::string name;
  std::string namespace_;
  std::string hostname;
  std::vector<NetworkAddress> vips;    // exact VIPs
  std::vector<NetworkCidr> cidr_vips;  // VIP ranges, matched by longest prefix
  PortMap ports;
  std::vector<std::string> subject_alt_names;
  std::optional<GatewayAddress> waypoint;
  std::vector<WeightedWaypoint> weighted_waypoints;  // when non-empty, preferred over waypoint
  std::optional<LoadBalancer> load_balancer;
  IpFamilies ip_families = IpFamilies::kAutomatic;
  bool canonical = false;  // preferred when several namespaces claim one VIP or hostname
  Visibility visibility = Visibility::kPublic;
  // By workload uid. Filled by the store from workloads' `services` entries
  // (health-filtered); a value passed to the store may carry its own, which
  // are kept as given.
  EndpointMap endpoints;

  std::string key() const { return service_key(namespace_, hostname); }
  NamespacedHostname namespaced_hostname() const { return {namespace_, hostname}; }
  // A NAMESPACE-visibility service exists only for callers in its namespace.
  bool visible_to(std::string_view caller_namespace) const {
    return visibility != Visibility::kNamespace || namespace_ == caller_namespace;
  }
  // Unhealthy endpoints are kept only when the service asks for ALLOW_ALL.
  bool accepts_endpoint(HealthStatus status) const {
    return status == HealthStatus::kHealthy ||
           (load_balancer && load_balancer->health_policy == LoadBalancerHealthPolicy::kAllowAll);
  }
};

}  // namespace ztunnel::state
