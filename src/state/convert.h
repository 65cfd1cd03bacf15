// Conversion from Istio's xDS protobuf resources to state values, with Istio's defaults and checks.
//
// Every rejection names the offending field so it can go straight into a NACK
// or a config error. Defaults applied to Workloads (as Istio does for xDS):
// empty trust_domain -> "cluster.local", empty service_account -> "default",
// empty cluster_id -> "Kubernetes", absent capacity -> 1.
#pragma once

#include <variant>

#include "authorization.pb.h"
#include "core/error.h"
#include "state/policy.h"
#include "state/types.h"
#include "workload.pb.h"

namespace ztunnel::state {

inline constexpr std::string_view kDefaultTrustDomain = "cluster.local";
inline constexpr std::string_view kDefaultServiceAccount = "default";
inline constexpr std::string_view kDefaultClusterId = "Kubernetes";

// An xDS Address resource: one workload or one service. A workload's
// endpoints are its `services` entries (see endpoints_of); the store derives
// them, so nothing else needs carrying.
using AddressResource = std::variant<Workload, Service>;

core::Result<AddressResource> from_proto(const istio::workload::Address& address);
core::Result<Workload> workload_from_proto(const istio::workload::Workload& workload);
core::Result<Service> service_from_proto(const istio::workload::Service& service);
core::Result<Policy> policy_from_proto(const istio::security::Authorization& authorization);

// Pieces, for callers building values from other sources (local config).
core::Result<GatewayAddress> gateway_from_proto(const istio::workload::GatewayAddress& gateway,
                                                std::string_view field);
core::Result<NetworkAddress> network_address_from_proto(
    const istio::workload::NetworkAddress& address, std::string_view field);

}  // namespace ztunnel::state
