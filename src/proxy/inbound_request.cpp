// Inbound HBONE request checks: method, authority, destination validation, upstream resolution.
#include "proxy/inbound_request.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace ztunnel::proxy {

using state::IpAddress;
using state::ServicePtr;
using state::WorkloadPtr;

namespace {

InboundError reject(uint16_t status, std::string message) {
  return InboundError{status, std::move(message)};
}

IpAddress canon(const IpAddress& ip) { return state::canonical_ip(ip); }

// Whether the service or workload at `target` names the local workload as
// its waypoint: the waypoint reference must resolve to a service the local
// workload is an endpoint of, or to a workload owning the address the client
// connected to.
bool is_waypoint_for(const state::Snapshot& snapshot, const state::Workload& local,
                     const tcp::endpoint& local_dst, const state::Address& target) {
  const state::GatewayAddress* waypoint = nullptr;
  if (const auto* svc = std::get_if<ServicePtr>(&target)) {
    if ((*svc)->waypoint) waypoint = &*(*svc)->waypoint;
  } else {
    const auto& wl = std::get<WorkloadPtr>(target);
    if (wl->waypoint) waypoint = &*wl->waypoint;
  }
  if (!waypoint) return false;
  std::optional<state::Address> resolved =
      waypoint->address() ? snapshot.find_address(*waypoint->address(), std::nullopt)
                          : snapshot.find_hostname(*waypoint->hostname());
  if (!resolved) return false;
  if (const auto* svc = std::get_if<ServicePtr>(&*resolved)) {
    return (*svc)->endpoints.contains(local.uid);
  }
  return workload_has_address(*std::get<WorkloadPtr>(*resolved), local_dst.address());
}

// The VIP to put in a PROXY header for a hostname authority: one on our
// network, IPv4 first; among equals the last listed (Istio's max_by_key).
std::optional<IpAddress> tunnel_vip(const state::Service& svc, std::string_view network) {
  std::optional<IpAddress> best;
  int best_rank = -1;
  for (const auto& vip : svc.vips) {
    int rank = vip.network == network ? (vip.ip.is_v4() ? 2 : 1) : 0;
    if (rank >= best_rank) {
      best = vip.ip;
      best_rank = rank;
    }
  }
  return best;
}

}  // namespace

void throw_exception_from_error(const InboundError& e, const boost::source_location&) {
  throw std::runtime_error(e.message);
}

bool workload_has_address(const state::Workload& workload, const IpAddress& ip) {
  IpAddress want = canon(ip);
  return std::any_of(workload.addresses.begin(), workload.addresses.end(),
                     [&](const IpAddress& a) { return canon(a) == want; });
}

InboundResult<WorkloadPtr> find_local_workload(const state::Snapshot& snapshot,
                                               const config::ProxyWorkloadInfo& info) {
  auto local = snapshot.find_workload(info.namespace_name, info.name, info.service_account);
  if (!local) {
    return reject(kStatusServiceUnavailable,
                  fmt::format("unknown local workload {}/{}", info.namespace_name, info.name));
  }
  return local;
}

InboundResult<WorkloadPtr> check_plaintext_destination(const state::Snapshot& snapshot,
                                                       const config::ProxyWorkloadInfo& info,
                                                       const tcp::endpoint& original_dst,
                                                       std::span<const uint16_t> illegal_ports) {
  if (std::find(illegal_ports.begin(), illegal_ports.end(), original_dst.port()) !=
      illegal_ports.end()) {
    return reject(kStatusServiceUnavailable, "attempted recursive call to ourselves");
  }
  auto local = find_local_workload(snapshot, info);
  if (!local) return local;
  if (!workload_has_address(**local, original_dst.address())) {
    return reject(kStatusServiceUnavailable,
                  fmt::format("destination {} is not an address of the local workload {}",
                              canon(original_dst.address()).to_string(), (*local)->uid));
  }
  return local;
}

InboundResult<void> check_connect_method(std::string_view method) {
  if (method == "CONNECT") return {};
  return reject(kStatusBadRequest, fmt::format("expected method CONNECT, got {}", method));
}

InboundResult<HboneAddress> parse_inbound_authority(std::string_view authority) {
  auto parsed = parse_authority(authority);
  if (!parsed) return reject(kStatusBadRequest, parsed.error().message);
  return std::move(*parsed);
}

InboundResult<void> validate_destination(const state::Snapshot& snapshot,
                                         const state::Workload& local,
                                         const tcp::endpoint& local_dst,
                                         std::string_view dst_network,
                                         const HboneAddress& authority) {
  const tcp::endpoint* target = authority.endpoint();
  if (!target) return {};  // a hostname: its service is looked up in find_inbound_upstream
  const IpAddress local_ip = canon(local_dst.address());
  const IpAddress target_ip = canon(target->address());
  if (local_ip == target_ip) return {};
  if (local.application_tunnel) return {};

  auto found = snapshot.find_address({std::string(dst_network), target_ip}, std::nullopt);
  if (found && is_waypoint_for(snapshot, local, local_dst, *found)) return {};
  return reject(kStatusBadRequest,
                fmt::format("ip mismatch: {} != {}", local_ip.to_string(), target_ip.to_string()));
}

InboundResult<InboundUpstream> find_inbound_upstream(const state::Snapshot& snapshot,
                                                     const state::Workload& local,
                                                     const tcp::endpoint& local_dst,
                                                     std::string_view dst_network,
                                                     const HboneAddress& authority,
                                                     std::span<const uint16_t> illegal_ports) {
  // The upstream is always the local workload at the IP the client reached;
  // only the port needs working out.
  const IpAddress local_ip = canon(local_dst.address());
  InboundUpstream up;

  if (const HostPort* hp = authority.host_port()) {
    ServicePtr svc = snapshot.best_service_by_hostname(hp->host, local.namespace_);
    if (!svc) {
      return reject(kStatusServiceUnavailable,
                    fmt::format("no service or workload for hostname: {}", hp->host));
    }
    uint16_t port = 0;
    auto ep = svc->endpoints.find(local.uid);
    if (ep != svc->endpoints.end()) {
      if (auto it = ep->second->ports.find(hp->port); it != ep->second->ports.end()) {
        port = it->second;
      }
    }
    if (port == 0) {
      // A service target port of 0 is a named port: only an endpoint entry knows it.
      if (auto it = svc->ports.find(hp->port); it != svc->ports.end()) port = it->second;
    }
    if (port == 0) {
      return reject(kStatusServiceUnavailable,
                    fmt::format("requested service {}:{} found, but cannot resolve port", hp->host,
                                hp->port));
    }
    up.address = tcp::endpoint(local_ip, port);
    up.services.push_back(std::move(svc));
  } else {
    up.address = tcp::endpoint(local_ip, authority.port());
    up.services = snapshot.services_of(local);
  }

  // Checked on the resolved port: a service port may map onto 15008 & co.
  if (std::find(illegal_ports.begin(), illegal_ports.end(), up.address.port()) !=
      illegal_ports.end()) {
    return reject(kStatusServiceUnavailable, "attempted recursive call to ourselves");
  }

  if (const auto& tunnel = local.application_tunnel) {
    TunnelRequest request;
    request.protocol = tunnel->protocol;
    if (const HostPort* hp = authority.host_port()) {
      // PROXY v2 carries addresses, not names.
      auto vip = tunnel_vip(*up.services.front(), dst_network);
      if (!vip) {
        return reject(kStatusServiceUnavailable,
                      fmt::format("requested service {} found, but has no IP addresses", hp->host));
      }
      request.target = tcp::endpoint(*vip, hp->port);
    } else {
      request.target = *authority.endpoint();
    }
    // A tunnel may ask for all its traffic on one port (e.g. 15088).
    if (tunnel->port) up.address.port(*tunnel->port);
    up.tunnel = request;
  }
  return up;
}

UpstreamConnect plan_upstream_connect(const InboundUpstream& upstream, const tcp::endpoint& client,
                                      bool localhost_app_tunnel, bool original_source,
                                      bool self_proxy) {
  const bool to_localhost = localhost_app_tunnel && upstream.tunnel &&
                            upstream.tunnel->protocol == state::ApplicationTunnel::Protocol::kProxy;
  if (to_localhost) {
    IpAddress loopback = upstream.address.address().is_v4()
                             ? IpAddress(boost::asio::ip::address_v4::loopback())
                             : IpAddress(boost::asio::ip::address_v6::loopback());
    return {loopback, tcp::endpoint(loopback, upstream.address.port())};
  }
  std::optional<IpAddress> bind;
  if (original_source && !self_proxy) bind = client.address();
  return {bind, upstream.address};
}

}  // namespace ztunnel::proxy
