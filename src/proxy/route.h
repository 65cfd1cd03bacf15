// The outbound routing decision for a captured connection: a pure function of a snapshot.
//
// This is Istio's `OutboundConnection::build_request` (src/proxy/outbound.rs)
// with the state lookups it calls (`fetch_upstream`, `load_balance`,
// `fetch_service_waypoint`, `fetch_workload_waypoint`,
// `pick_workload_destination_or_resolve`). The only I/O those do, DNS for
// workloads known by hostname, is left to the caller: such a route comes back
// with `pending_dns` set and is completed with `with_resolved_address`.
#pragma once

#include <boost/system/result.hpp>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "proxy/hbone_address.h"
#include "proxy/random.h"
#include "state/identity.h"
#include "state/store.h"

namespace ztunnel::proxy {

// Per-proxy settings the decision depends on.
struct RouteOptions {
  // NETWORK: the network this ztunnel's pods live on. Destination IPs are
  // looked up as service VIPs on it.
  std::string network;
  // Ports a workload may not reach on itself through the proxy (its own
  // listeners): 15001, 15006, 15008, plus 15080 when SOCKS5 is on.
  std::vector<uint16_t> illegal_ports{config::kIllegalPorts.begin(), config::kIllegalPorts.end()};
  // Where meshed workloads accept HBONE.
  uint16_t hbone_port = config::kInboundPort;

  static RouteOptions from_config(const config::Config& config);
};

enum class RouteKind {
  kHbone,        // mTLS HTTP/2 CONNECT to `connect_to`, carrying `authority`
  kTcp,          // plain TCP to a known workload that does not speak HBONE
  kPassthrough,  // plain TCP to the original destination; not a mesh destination
};
std::string_view to_string(RouteKind kind);

// A next hop known only by DNS name (a workload with a hostname and no IPs).
struct PendingDns {
  std::string hostname;
  // Prefer addresses of the original destination's family.
  bool prefer_ipv6 = false;
  // The HBONE authority is the resolved address too (direct to the workload;
  // not when the resolved host is a waypoint, whose authority is the
  // original destination).
  bool authority_too = false;
};

struct Route {
  RouteKind kind = RouteKind::kPassthrough;
  // The L4 next hop: ip:15008 (or the waypoint's HBONE port) for HBONE,
  // ip:target-port for TCP, the original destination for passthrough.
  tcp::endpoint connect_to;
  // The CONNECT :authority; set only for kHbone.
  std::optional<HboneAddress> authority;
  // SPIFFE identities the peer certificate may present (any one suffices):
  // the service's subject_alt_names that parse, then the workload identity.
  // Set only for kHbone (Istio fills them for TCP too, where nothing reads them).
  std::vector<state::Identity> expected_identities;
  // The workload connected to: the waypoint when `via_waypoint`; null for
  // passthrough.
  state::WorkloadPtr destination;
  // The service the client addressed (never the waypoint's own service), for
  // metrics and `forwarded: ...;host=`. Null when workload-addressed.
  state::ServicePtr service;
  bool via_waypoint = false;
  // Set when `connect_to` still needs an address from DNS; its address is
  // then unspecified (its port is final).
  std::optional<PendingDns> pending_dns;
};

enum class RouteErrorCode {
  kSelfCall,                // a workload calling the proxy's own ports
  kNoHealthyUpstream,       // a known service with no usable endpoint
  kNoTargetPort,            // a known service that does not define the port
  kUnknownWaypoint,         // a waypoint reference that resolves to nothing usable
  kUnsupportedDoubleHbone,  // the next hop is on another network (E/W gateway)
  kNoValidDestination,      // a workload with no address we can use
};
std::string_view to_string(RouteErrorCode code);

struct RouteError {
  RouteErrorCode code;
  std::string message;  // for the access log, in Istio's wording where it has one
};

// Needed by boost::system::result<T, RouteError>::value().
[[noreturn]] void throw_exception_from_error(const RouteError& e, const boost::source_location&);

using RouteResult = boost::system::result<Route, RouteError>;

// Decides how to forward a connection from `source` (the local workload the
// proxy runs for) to `original_dst` (from SO_ORIGINAL_DST). Only random
// choices use `random`: weighted waypoints and endpoint load balancing.
RouteResult route_outbound(const state::Snapshot& snapshot, const state::Workload& source,
                           const tcp::endpoint& original_dst, const RouteOptions& options,
                           Random& random);

// Loopback, or one of the source's own addresses, on an illegal port: the
// connection would come straight back into this proxy.
bool is_self_call(const state::Workload& source, const tcp::endpoint& dst,
                  std::span<const uint16_t> illegal_ports);

// The load-balancing step alone: the endpoint workload `source` would reach
// through `service`:`service_port` (health, port, reachability, locality,
// then capacity-weighted random), or null. For tests and diagnostics.
state::WorkloadPtr pick_service_endpoint(const state::Snapshot& snapshot,
                                         const state::Workload& source,
                                         const state::Service& service, uint16_t service_port,
                                         Random& random);

// Picks one DNS answer for a pending route, as Istio does: a random one of
// the preferred family, else a random one of the other.
std::optional<state::IpAddress> choose_resolved_address(std::span<const state::IpAddress> answers,
                                                        bool prefer_ipv6, Random& random);

// The route with its DNS-named next hop replaced by `ip`.
Route with_resolved_address(Route route, const state::IpAddress& ip);

}  // namespace ztunnel::proxy
