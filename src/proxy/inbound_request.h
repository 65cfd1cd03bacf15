// Inbound HBONE CONNECT decisions that need no I/O: method, authority, destination, upstream.
//
// The HBONE server runs these phases for every CONNECT stream, in this order
// (Istio's Inbound::serve_connect / build_inbound_request). The first failure
// is answered with its status in a HEADERS frame with END_STREAM and no body.
//   1. check_connect_method(:method)                                  400
//   2. parse_inbound_authority(:authority)                            400
//   3. the local workload (the proxy's own, from the state store)     503
//   4. validate_destination                                           400
//   5. find_inbound_upstream                                          503
//   6. authorization policy on {client, upstream address, peer id}    401
//   7. TCP connect to the upstream (plan_upstream_connect says from
//      and to where)                                                  503
//   8. 200 (with the local workload's baggage when enabled), then the
//      PROXY v2 header if the tunnel asks for one, then the byte copy.
// The 200 goes out only after the upstream connect succeeded, so a dead
// upstream is a 503, never a reset after a 200.
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
#include "state/store.h"

namespace ztunnel::proxy {

inline constexpr uint16_t kStatusOk = 200;
inline constexpr uint16_t kStatusBadRequest = 400;
inline constexpr uint16_t kStatusUnauthorized = 401;
inline constexpr uint16_t kStatusServiceUnavailable = 503;

// A rejected phase: the HTTP status to answer with and a message for the log.
struct InboundError {
  uint16_t status = kStatusServiceUnavailable;
  std::string message;
};

// Needed by boost::system::result<T, InboundError>::value().
[[noreturn]] void throw_exception_from_error(const InboundError& e, const boost::source_location&);

template <class T>
using InboundResult = boost::system::result<T, InboundError>;

// Phase 1: only CONNECT is served (400 otherwise).
InboundResult<void> check_connect_method(std::string_view method);

// Phase 2: parse_authority with a 400 on failure.
InboundResult<HboneAddress> parse_inbound_authority(std::string_view authority);

// Phase 3, shared with the plaintext listener: the workload this
// dedicated-mode proxy serves (PROXY_WORKLOAD_INFO), 503 when the state
// store does not have it.
InboundResult<state::WorkloadPtr> find_local_workload(const state::Snapshot& snapshot,
                                                      const config::ProxyWorkloadInfo& info);

// Whether `ip` is one of the workload's addresses (IPv4-mapped IPv6 equals IPv4).
bool workload_has_address(const state::Workload& workload, const state::IpAddress& ip);

// Phase 4. A socket authority must name the IP the client connected to
// (`local_dst`, on network `dst_network`), so a peer cannot use this pod's
// proxy to reach another address. Exceptions: the local workload has an
// application tunnel (it receives the target in a PROXY header and decides
// itself), or it is the waypoint of the service or workload the authority
// names (a "sandwiched" waypoint without a tunnel). A hostname authority
// passes here and is checked when its service is looked up. Failure: 400
// "ip mismatch: <local_dst ip> != <authority ip>".
InboundResult<void> validate_destination(const state::Snapshot& snapshot,
                                         const state::Workload& local,
                                         const tcp::endpoint& local_dst,
                                         std::string_view dst_network,
                                         const HboneAddress& authority);

// What an app-tunnel workload is told about the original target.
struct TunnelRequest {
  state::ApplicationTunnel::Protocol protocol = state::ApplicationTunnel::Protocol::kNone;
  // Written as the PROXY header's destination: the authority's socket
  // address, or for a hostname authority a VIP of the service.
  tcp::endpoint target;
};

struct InboundUpstream {
  // Always the local workload's IP (the one the client connected to); the
  // port is the authority's, the service's target port for a hostname, or
  // the app tunnel's port.
  tcp::endpoint address;
  std::optional<TunnelRequest> tunnel;
  // Services the request may be for, to label metrics: the hostname's
  // service, or every service the local workload belongs to.
  std::vector<state::ServicePtr> services;
};

// Phase 5. Socket authority: same port on the local IP. Hostname authority:
// the service visible from the local workload's namespace with that
// hostname; its port maps to a target port through the local workload's
// endpoint entry, else the service's port map (0 = named port needs the
// endpoint entry). A resolved port in `illegal_ports` is a self call. Every
// failure is a 503.
InboundResult<InboundUpstream> find_inbound_upstream(const state::Snapshot& snapshot,
                                                     const state::Workload& local,
                                                     const tcp::endpoint& local_dst,
                                                     std::string_view dst_network,
                                                     const HboneAddress& authority,
                                                     std::span<const uint16_t> illegal_ports);

// Phase 7's addresses.
struct UpstreamConnect {
  std::optional<state::IpAddress> bind;  // source IP to bind (spoof), if any
  tcp::endpoint destination;
};

// A PROXY app tunnel with LOCALHOST_APP_TUNNEL goes loopback to loopback (the
// real client is in the PROXY header; binding the client IP to reach
// loopback would be dropped). Otherwise the client IP is kept when original
// source is enabled and this is not ztunnel's own self-proxy listener.
UpstreamConnect plan_upstream_connect(const InboundUpstream& upstream, const tcp::endpoint& client,
                                      bool localhost_app_tunnel, bool original_source,
                                      bool self_proxy);

// The inbound plaintext listener (15006) checks, in Istio's order
// (inbound_passthrough): a destination port in `illegal_ports` is a self call
// (checked first: nothing about ourselves is worth looking up for it), then
// the local workload must exist, then (stricter than Istio, which forwards to
// whatever address was redirected) the destination must be one of its
// addresses, so the listener never relays to another host. Returns the local
// workload. The status in an error is meaningless here (plaintext has no
// response to carry it); the message is for the log.
InboundResult<state::WorkloadPtr> check_plaintext_destination(
    const state::Snapshot& snapshot, const config::ProxyWorkloadInfo& info,
    const tcp::endpoint& original_dst, std::span<const uint16_t> illegal_ports);

}  // namespace ztunnel::proxy
