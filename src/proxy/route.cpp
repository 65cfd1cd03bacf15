// Outbound routing: service waypoints, load balancing, workload waypoints, HBONE/TCP/passthrough.
#include "proxy/route.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "core/log.h"

namespace ztunnel::proxy {

using state::Endpoint;
using state::GatewayAddress;
using state::Identity;
using state::IpAddress;
using state::NetworkAddress;
using state::Service;
using state::ServicePtr;
using state::Snapshot;
using state::Workload;
using state::WorkloadPtr;

namespace {

constexpr std::string_view kLog = "outbound";

// Service lookups for a name the caller gave us (a VIP) versus one the mesh
// gave us (a waypoint address): the latter may target a service port the
// service does not declare, as long as the waypoint has an app tunnel.
enum class Resolution { kStandard, kWaypoint };

IpAddress canon(const IpAddress& ip) { return state::canonical_ip(ip); }

bool has_address(const Workload& w, const IpAddress& ip) {
  IpAddress want = canon(ip);
  return std::any_of(w.addresses.begin(), w.addresses.end(),
                     [&](const IpAddress& a) { return canon(a) == want; });
}

bool shares_address(const Workload& a, const Workload& b) {
  return std::any_of(a.addresses.begin(), a.addresses.end(),
                     [&](const IpAddress& ip) { return has_address(b, ip); });
}

RouteError fail(RouteErrorCode code, std::string message) {
  return RouteError{code, std::move(message)};
}

RouteError no_valid_destination(const Workload& w) {
  return fail(RouteErrorCode::kNoValidDestination,
              fmt::format("no valid routing destination for workload: {}", w.uid));
}

std::string describe(const GatewayAddress& gw) {
  if (const auto* h = gw.hostname())
    return fmt::format("{}:{}", h->to_string(), gw.hbone_mtls_port);
  const auto* a = gw.address();
  std::string endpoint = format_endpoint(tcp::endpoint(a->ip, gw.hbone_mtls_port));
  return a->network.empty() ? endpoint : fmt::format("{}/{}", a->network, endpoint);
}

// Index of a draw weighted by `weight(item)`; nothing when all weights are 0
// (Istio's choose_weighted fails the same way).
template <class T, class Weight>
std::optional<std::size_t> pick_weighted(const std::vector<T>& items, Weight weight,
                                         Random& random) {
  uint64_t total = 0;
  for (const auto& item : items) total += weight(item);
  if (total == 0) return std::nullopt;
  uint64_t r = random.below(total);
  for (std::size_t i = 0; i < items.size(); ++i) {
    uint64_t w = weight(items[i]);
    if (r < w) return i;
    r -= w;
  }
  return std::nullopt;  // unreachable: r < total
}

// --- load balancing (Istio's ProxyState::load_balance) ----------------------

struct Candidate {
  const Endpoint* endpoint;
  WorkloadPtr workload;
};

// Keeps only the endpoints with the best locality rank for `src`. The rank
// counts how many leading routing preferences match; with NETWORK first, a
// same-network endpoint outranks every other combination, and a different
// network just skips that scope. STRICT drops anything not matching all.
std::vector<Candidate> best_locality(const Workload& src, const state::LoadBalancer& lb,
                                     const std::vector<Candidate>& candidates) {
  using Scope = state::LoadBalancerScope;
  const auto& prefs = lb.routing_preferences;
  const bool network_first = !prefs.empty() && prefs.front() == Scope::kNetwork;

  std::vector<std::pair<std::size_t, Candidate>> ranked;
  for (const auto& c : candidates) {
    const Workload& wl = *c.workload;
    std::size_t rank = 0;
    std::size_t network_bonus = 0;
    for (Scope scope : prefs) {
      bool match = false;
      switch (scope) {
        case Scope::kRegion:
          match = src.locality.region == wl.locality.region;
          break;
        case Scope::kZone:
          match = src.locality.zone == wl.locality.zone;
          break;
        case Scope::kSubzone:
          match = src.locality.subzone == wl.locality.subzone;
          break;
        case Scope::kNode:
          match = src.node == wl.node;
          break;
        case Scope::kCluster:
          match = src.cluster_id == wl.cluster_id;
          break;
        case Scope::kNetwork:
          match = src.network == wl.network;
          break;
      }
      if (scope == Scope::kNetwork && network_first) {
        if (!match) continue;  // rank the remaining scopes anyway
        network_bonus = prefs.size() - 1;
      }
      if (!match) break;
      ++rank;
    }
    if (lb.mode == state::LoadBalancerMode::kStrict && rank != prefs.size()) continue;
    ranked.emplace_back(rank + network_bonus, c);
  }
  std::vector<Candidate> best;
  if (ranked.empty()) return best;
  std::size_t max_rank = 0;
  for (const auto& [rank, c] : ranked) max_rank = std::max(max_rank, rank);
  for (const auto& [rank, c] : ranked) {
    if (rank == max_rank) best.push_back(c);
  }
  return best;
}

struct Balanced {
  std::optional<Candidate> pick;
  // Nothing was picked because the port cannot be mapped (the service lacks
  // it, or every otherwise usable endpoint lacks the named port).
  bool missing_port = false;
};

Balanced load_balance(const Snapshot& snapshot, const Workload& src, const Service& svc,
                      uint16_t svc_port, Resolution mode, Random& random) {
  auto port_it = svc.ports.find(svc_port);
  const bool svc_has_port = port_it != svc.ports.end();
  if (mode == Resolution::kStandard && !svc_has_port) {
    log::debug(kLog, "service {} does not have port {}", svc.hostname, svc_port);
    return {std::nullopt, true};
  }
  const uint16_t svc_target_port = svc_has_port ? port_it->second : 0;

  std::vector<Candidate> candidates;
  std::size_t dropped_for_port = 0;
  // The store keeps only endpoints the service's health policy accepts.
  for (const auto& [uid, ep] : svc.endpoints) {
    WorkloadPtr wl = snapshot.workload_by_uid(uid);
    if (!wl) continue;
    const bool in_network = wl->network == src.network;
    const bool addressable = !wl->addresses.empty() || !wl->hostname.empty();
    // Without an address a workload is reachable only through its network's
    // gateway, which xDS sends even for our own network; never use it there.
    if (!addressable && (in_network || !wl->network_gateway)) continue;
    if (mode == Resolution::kStandard) {
      if (svc_target_port == 0 && !ep->ports.contains(svc_port)) {
        ++dropped_for_port;  // a named port this endpoint does not define
        continue;
      }
    } else if (!svc_has_port && !wl->application_tunnel) {
      // Only an app tunnel lets a waypoint take a port its service lacks.
      ++dropped_for_port;
      continue;
    }
    candidates.push_back({ep.get(), std::move(wl)});
  }
  if (candidates.empty()) return {std::nullopt, dropped_for_port > 0};

  if (svc.load_balancer && svc.load_balancer->mode != state::LoadBalancerMode::kStandard) {
    candidates = best_locality(src, *svc.load_balancer, candidates);
  }
  auto index = pick_weighted(
      candidates, [](const Candidate& c) { return uint64_t{c.workload->capacity}; }, random);
  if (!index) return {};
  return {candidates[*index], false};
}

// --- upstream lookup (Istio's find_upstream / find_upstream_from_service) ---

struct UpstreamParts {
  WorkloadPtr workload;
  uint16_t port = 0;   // the target port on the workload
  ServicePtr service;  // when reached through a service
};

struct Lookup {
  enum class Kind { kNone, kOriginalDestination, kParts };
  Kind kind = Kind::kNone;
  UpstreamParts parts;
  bool missing_port = false;
};

Lookup from_service(const Snapshot& snapshot, const Workload& src, uint16_t svc_port,
                    Resolution mode, ServicePtr svc, Random& random) {
  Balanced b = load_balance(snapshot, src, *svc, svc_port, mode, random);
  if (!b.pick) {
    log::debug(kLog, "service {} has no usable endpoint for port {}", svc->hostname, svc_port);
    return {Lookup::Kind::kNone, {}, b.missing_port};
  }
  const Endpoint& ep = *b.pick->endpoint;
  const Workload& wl = *b.pick->workload;
  uint16_t target = 0;
  auto svc_it = svc->ports.find(svc_port);
  uint16_t svc_target = svc_it == svc->ports.end() ? 0 : svc_it->second;
  if (auto it = ep.ports.find(svc_port); it != ep.ports.end()) {
    target = it->second;  // the endpoint's own mapping wins (named ports)
  } else if (svc_target > 0) {
    target = svc_target;
  } else if (wl.application_tunnel && wl.application_tunnel->port) {
    target = svc_port;  // the tunnel carries the port; the service need not know it
  } else {
    return {Lookup::Kind::kNone, {}, true};
  }
  return {Lookup::Kind::kParts, {b.pick->workload, target, std::move(svc)}, false};
}

// A VIP first (PASSTHROUGH services hand back the original destination),
// then a workload IP, both on `network`.
Lookup find_upstream(const Snapshot& snapshot, const std::string& network, const Workload& src,
                     const tcp::endpoint& addr, Resolution mode, Random& random) {
  NetworkAddress key{network, addr.address()};
  if (ServicePtr svc = snapshot.best_service_by_vip(key, src.namespace_)) {
    if (svc->load_balancer && svc->load_balancer->mode == state::LoadBalancerMode::kPassthrough) {
      return {Lookup::Kind::kOriginalDestination, {}, false};
    }
    return from_service(snapshot, src, addr.port(), mode, std::move(svc), random);
  }
  if (WorkloadPtr wl = snapshot.workload_by_address(key)) {
    return {Lookup::Kind::kParts, {std::move(wl), addr.port(), nullptr}, false};
  }
  return {};
}

// --- address choice (Istio's pick_workload_destination_or_resolve) ---------

struct Upstream {
  WorkloadPtr workload;
  std::optional<IpAddress> ip;  // none: needs DNS, or only a gateway reaches it
  bool needs_dns = false;
  bool prefer_ipv6 = false;  // the family the caller used
  uint16_t port = 0;
  ServicePtr service;

  // Service SANs (those that parse), then the workload's own identity.
  std::vector<Identity> identities() const {
    std::vector<Identity> out;
    if (service) {
      for (const auto& san : service->subject_alt_names) {
        auto id = Identity::parse(san);
        if (id) {
          out.push_back(std::move(*id));
        } else {
          log::warn(kLog, "ignoring invalid SAN {}: {}", san, id.error().message);
        }
      }
    }
    out.push_back(workload->identity());
    return out;
  }
};

bool family_allowed(state::IpFamilies families, const IpAddress& ip) {
  switch (families) {
    case state::IpFamilies::kIpv4Only:
      return ip.is_v4();
    case state::IpFamilies::kIpv6Only:
      return ip.is_v6();
    case state::IpFamilies::kAutomatic:
    case state::IpFamilies::kDual:
      return true;
  }
  return true;
}

boost::system::result<Upstream, RouteError> finalize(const tcp::endpoint& original,
                                                     UpstreamParts parts) {
  const Workload& wl = *parts.workload;
  const IpAddress target_ip = canon(original.address());
  Upstream us{parts.workload,    std::nullopt, false,
              target_ip.is_v6(), parts.port,   std::move(parts.service)};
  const auto families = us.service ? us.service->ip_families : state::IpFamilies::kAutomatic;

  if (has_address(wl, target_ip)) {
    us.ip = target_ip;  // the caller named this very address
    return us;
  }
  // Among the addresses the service's families allow, the caller's family
  // first, else the first allowed.
  std::optional<IpAddress> first_allowed;
  for (const auto& raw : wl.addresses) {
    IpAddress ip = canon(raw);
    if (!family_allowed(families, ip)) continue;
    if (ip.is_v6() == target_ip.is_v6()) {
      us.ip = ip;
      return us;
    }
    if (!first_allowed) first_allowed = ip;
  }
  if (first_allowed) {
    us.ip = first_allowed;
    return us;
  }
  if (!wl.hostname.empty()) {
    us.needs_dns = true;
    return us;
  }
  if (!wl.network_gateway) {
    log::debug(kLog, "workload {} has no suitable address for routing", wl.name);
    return no_valid_destination(wl);
  }
  return us;  // reachable only through its network gateway
}

// Where to connect for `us` at `port`: its address, or a placeholder of the
// caller's family plus the name to resolve. Nothing when only a gateway
// reaches it.
std::optional<std::pair<tcp::endpoint, std::optional<PendingDns>>> next_hop(const Upstream& us,
                                                                            uint16_t port,
                                                                            bool authority_too) {
  if (us.ip) return std::pair{tcp::endpoint(*us.ip, port), std::optional<PendingDns>()};
  if (!us.needs_dns) return std::nullopt;
  IpAddress placeholder = us.prefer_ipv6 ? IpAddress(boost::asio::ip::address_v6::any())
                                         : IpAddress(boost::asio::ip::address_v4::any());
  return std::pair{
      tcp::endpoint(placeholder, port),
      std::optional<PendingDns>(PendingDns{us.workload->hostname, us.prefer_ipv6, authority_too})};
}

// --- waypoints ---------------------------------------------------------------

// A weighted waypoint set (canary shifting) wins over the single waypoint
// unless it cannot be sampled (all weights 0).
const GatewayAddress* service_waypoint(const Service& svc, Random& random) {
  if (!svc.weighted_waypoints.empty()) {
    auto index = pick_weighted(
        svc.weighted_waypoints, [](const state::WeightedWaypoint& w) { return uint64_t{w.weight}; },
        random);
    if (index) return &svc.weighted_waypoints[*index].destination;
  }
  return svc.waypoint ? &*svc.waypoint : nullptr;
}

// Whether `source` is (one of the workloads behind) the waypoint `gw`: same
// identity and a shared address. Istio compares against the connection's
// client IP; captured traffic leaves from the source workload's own
// addresses, so checking those is the same test without a per-connection
// input.
bool source_is_waypoint(const Snapshot& snapshot, const Workload& source,
                        const GatewayAddress* gw) {
  if (!gw) return false;
  auto is_source = [&](const Workload& w) {
    return w.identity() == source.identity() && shares_address(w, source);
  };
  std::optional<state::Address> found = gw->address()
                                            ? snapshot.find_address(*gw->address(), std::nullopt)
                                            : snapshot.find_hostname(*gw->hostname());
  if (!found) return false;
  if (const auto* w = std::get_if<WorkloadPtr>(&*found)) return is_source(**w);
  const auto& svc = std::get<ServicePtr>(*found);
  for (const auto& [uid, ep] : svc->endpoints) {
    if (WorkloadPtr w = snapshot.workload_by_uid(uid); w && is_source(*w)) return true;
  }
  return false;
}

// Resolves a waypoint reference to the workload to connect to. By address:
// a VIP (load balanced) or a workload at that address, connecting to that
// address. By hostname: a service (load balanced) or a workload with that
// hostname, keeping the caller's IP family.
boost::system::result<Upstream, RouteError> fetch_waypoint(const Snapshot& snapshot,
                                                           const GatewayAddress& gw,
                                                           const Workload& source,
                                                           const tcp::endpoint& target,
                                                           Random& random) {
  Lookup lookup;
  tcp::endpoint original = target;
  if (const auto* addr = gw.address()) {
    original = tcp::endpoint(canon(addr->ip), gw.hbone_mtls_port);
    lookup =
        find_upstream(snapshot, addr->network, source, original, Resolution::kWaypoint, random);
  } else {
    const auto* host = gw.hostname();
    auto found = snapshot.find_hostname(*host);
    if (!found) {
      return fail(RouteErrorCode::kUnknownWaypoint,
                  fmt::format("unknown waypoint: waypoint {} not found", host->hostname));
    }
    if (const auto* svc = std::get_if<ServicePtr>(&*found)) {
      lookup =
          from_service(snapshot, source, gw.hbone_mtls_port, Resolution::kWaypoint, *svc, random);
    } else {
      lookup = {Lookup::Kind::kParts,
                {std::get<WorkloadPtr>(*found), gw.hbone_mtls_port, nullptr},
                false};
    }
  }
  if (lookup.kind != Lookup::Kind::kParts) {
    return fail(RouteErrorCode::kUnknownWaypoint,
                fmt::format("unknown waypoint: waypoint {} not found", describe(gw)));
  }
  return finalize(original, std::move(lookup.parts));
}

// --- building routes ---------------------------------------------------------

// Istio would open an outer HBONE to the remote network's E/W gateway and an
// inner one to the destination. Not implemented yet; the errors keep Istio's
// distinction between "no gateway at all" and "gateway needed".
RouteError cross_network(const Workload& next_hop_workload) {
  if (!next_hop_workload.network_gateway) return no_valid_destination(next_hop_workload);
  return fail(RouteErrorCode::kUnsupportedDoubleHbone,
              fmt::format("unsupported feature: workload {} is on network \"{}\"; reaching it "
                          "through an east/west gateway (double HBONE) is not implemented yet",
                          next_hop_workload.uid, next_hop_workload.network));
}

RouteResult via_waypoint(const Upstream& waypoint, const tcp::endpoint& target,
                         ServicePtr intended_service) {
  auto hop = next_hop(waypoint, waypoint.port, /*authority_too=*/false);
  if (!hop) return no_valid_destination(*waypoint.workload);
  Route r;
  r.kind = RouteKind::kHbone;
  r.connect_to = hop->first;
  r.pending_dns = std::move(hop->second);
  // The waypoint needs the original target (VIP or pod IP), not itself.
  r.authority = HboneAddress::socket(target);
  r.expected_identities = waypoint.identities();
  r.destination = waypoint.workload;
  r.service = std::move(intended_service);
  r.via_waypoint = true;
  return r;
}

RouteResult direct(const Upstream& us, const RouteOptions& options) {
  const bool hbone = us.workload->protocol == state::Protocol::kHbone;
  auto hop = next_hop(us, hbone ? options.hbone_port : us.port, /*authority_too=*/hbone);
  if (!hop) return no_valid_destination(*us.workload);
  Route r;
  r.connect_to = hop->first;
  r.pending_dns = std::move(hop->second);
  if (hbone) {
    r.kind = RouteKind::kHbone;
    r.authority = HboneAddress::socket(tcp::endpoint(hop->first.address(), us.port));
    r.expected_identities = us.identities();
  } else {
    r.kind = RouteKind::kTcp;
  }
  r.destination = us.workload;
  r.service = us.service;
  return r;
}

Route passthrough(const tcp::endpoint& target) {
  Route r;
  r.kind = RouteKind::kPassthrough;
  r.connect_to = target;
  return r;
}

}  // namespace

RouteOptions RouteOptions::from_config(const config::Config& config) {
  RouteOptions o;
  o.network = config.network;
  o.illegal_ports = config.illegal_ports();
  return o;
}

std::string_view to_string(RouteKind kind) {
  switch (kind) {
    case RouteKind::kHbone:
      return "hbone";
    case RouteKind::kTcp:
      return "tcp";
    case RouteKind::kPassthrough:
      return "passthrough";
  }
  return "unknown";
}

std::string_view to_string(RouteErrorCode code) {
  switch (code) {
    case RouteErrorCode::kSelfCall:
      return "self_call";
    case RouteErrorCode::kNoHealthyUpstream:
      return "no_healthy_upstream";
    case RouteErrorCode::kNoTargetPort:
      return "no_target_port";
    case RouteErrorCode::kUnknownWaypoint:
      return "unknown_waypoint";
    case RouteErrorCode::kUnsupportedDoubleHbone:
      return "unsupported_double_hbone";
    case RouteErrorCode::kNoValidDestination:
      return "no_valid_destination";
  }
  return "unknown";
}

void throw_exception_from_error(const RouteError& e, const boost::source_location&) {
  throw std::runtime_error(e.message);
}

bool is_self_call(const Workload& source, const tcp::endpoint& dst,
                  std::span<const uint16_t> illegal_ports) {
  if (std::find(illegal_ports.begin(), illegal_ports.end(), dst.port()) == illegal_ports.end()) {
    return false;
  }
  IpAddress ip = canon(dst.address());
  return ip.is_loopback() || has_address(source, ip);
}

RouteResult route_outbound(const Snapshot& snapshot, const Workload& source,
                           const tcp::endpoint& original_dst, const RouteOptions& options,
                           Random& random) {
  // Dual-stack sockets report IPv4 destinations as ::ffff:a.b.c.d.
  const tcp::endpoint target(canon(original_dst.address()), original_dst.port());
  if (is_self_call(source, target, options.illegal_ports)) {
    return fail(RouteErrorCode::kSelfCall, "attempted recursive call to ourselves");
  }

  // 1. Service-addressed: a VIP on our network (a workload IP takes
  //    precedence). Its waypoint, if any, sees the traffic first.
  ServicePtr service;
  if (auto found = snapshot.find_address({options.network, target.address()}, source.namespace_)) {
    if (auto* svc = std::get_if<ServicePtr>(&*found)) service = *svc;
  }
  if (service) {
    const GatewayAddress* gw = service_waypoint(*service, random);
    // A waypoint calling the service it fronts would otherwise be sent to
    // itself again.
    if (gw && source_is_waypoint(snapshot, source, gw)) {
      log::debug(kLog, "source is the waypoint of {}; going to the service directly",
                 service->hostname);
    } else if (gw) {
      auto waypoint = fetch_waypoint(snapshot, *gw, source, target, random);
      if (!waypoint) return waypoint.error();
      if (waypoint->workload->network != source.network) return cross_network(*waypoint->workload);
      return via_waypoint(*waypoint, target, service);
    }
  }

  // 2. Pick the upstream workload: through the VIP's endpoints, else the
  //    workload owning the IP.
  Lookup lookup =
      find_upstream(snapshot, source.network, source, target, Resolution::kStandard, random);
  if (lookup.kind != Lookup::Kind::kParts) {
    const bool passthrough_service =
        service && service->load_balancer &&
        service->load_balancer->mode == state::LoadBalancerMode::kPassthrough;
    if (service && !passthrough_service) {
      if (lookup.missing_port) {
        return fail(RouteErrorCode::kNoTargetPort,
                    fmt::format("requested service {}:{} found, but cannot resolve port",
                                service->hostname, target.port()));
      }
      return fail(RouteErrorCode::kNoHealthyUpstream,
                  fmt::format("no healthy upstream: {}", format_endpoint(target)));
    }
    // Not a mesh destination (or a PASSTHROUGH service): leave it as it was.
    return passthrough(target);
  }
  auto upstream = finalize(target, std::move(lookup.parts));
  if (!upstream) return upstream.error();

  // 3. Another network needs its E/W gateway. Only service-addressed traffic
  //    can get here: workload lookups are confined to our network.
  if (upstream->workload->network != source.network) {
    if (!service) {
      return fail(RouteErrorCode::kNoValidDestination,
                  fmt::format("no service for target address: {}", format_endpoint(target)));
    }
    return cross_network(*upstream->workload);
  }

  // 4. The workload's own waypoint, for workload-addressed traffic only, and
  //    not when the waypoint itself is sending (it already processed it).
  if (!service && upstream->workload->waypoint) {
    const GatewayAddress& gw = *upstream->workload->waypoint;
    if (!source_is_waypoint(snapshot, source, &gw)) {
      auto waypoint = fetch_waypoint(snapshot, gw, source, target, random);
      if (!waypoint) return waypoint.error();
      return via_waypoint(*waypoint, target, upstream->service);
    }
  }

  // 5. Straight to the workload: HBONE if it is meshed, else plain TCP.
  return direct(*upstream, options);
}

WorkloadPtr pick_service_endpoint(const Snapshot& snapshot, const Workload& source,
                                  const Service& service, uint16_t service_port, Random& random) {
  Balanced b = load_balance(snapshot, source, service, service_port, Resolution::kStandard, random);
  return b.pick ? b.pick->workload : nullptr;
}

std::optional<IpAddress> choose_resolved_address(std::span<const IpAddress> answers,
                                                 bool prefer_ipv6, Random& random) {
  std::vector<IpAddress> preferred;
  std::vector<IpAddress> other;
  for (const auto& raw : answers) {
    IpAddress ip = canon(raw);
    (ip.is_v6() == prefer_ipv6 ? preferred : other).push_back(ip);
  }
  const auto& pool = preferred.empty() ? other : preferred;
  if (pool.empty()) return std::nullopt;
  return pool[random.below(pool.size())];
}

Route with_resolved_address(Route route, const IpAddress& ip) {
  if (!route.pending_dns) return route;
  route.connect_to.address(ip);
  if (route.pending_dns->authority_too && route.authority) {
    if (const auto* e = route.authority->endpoint()) {
      route.authority = HboneAddress::socket(tcp::endpoint(ip, e->port()));
    }
  }
  route.pending_dns.reset();
  return route;
}

}  // namespace ztunnel::proxy
