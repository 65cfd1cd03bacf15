// What each proxy listener is handed: configuration, state, sockets, certificates, identity.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/system/result.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "config/config.h"
#include "identity/provider.h"
#include "net/socket.h"
#include "rbac/rbac.h"
#include "state/identity.h"
#include "state/store.h"

namespace ztunnel::proxy {

// Who may reach which local workload, asked by both inbound listeners
// (HBONE phase 6, plaintext before connecting). The App answers with
// rbac::authorize over the current snapshot; the default allows all.
struct AuthorizationRequest {
  // The client's verified identity; none for plaintext, which proves nothing.
  std::optional<state::Identity> source_identity;
  boost::asio::ip::tcp::endpoint source;       // the client's address
  boost::asio::ip::tcp::endpoint destination;  // the local workload's IP and port
  state::WorkloadPtr destination_workload;     // the local workload (never null)
};
// A denial carries Istio's reason ("explicitly denied by: ns/name", ...),
// which the listener puts in the access log; dry-run outcomes are logged.
using Authorize = std::function<rbac::Decision(const AuthorizationRequest&)>;

class ConnectionTracker;

// Where a redirected connection was going (SO_ORIGINAL_DST in production).
using OriginalDst =
    std::function<boost::system::result<boost::asio::ip::tcp::endpoint>(boost::asio::ip::tcp::socket&)>;

struct ProxyInputs {
  // Both outlive every listener (the App owns them).
  const config::Config* config = nullptr;
  const state::Store* store = nullptr;
  std::shared_ptr<const net::SocketFactory> sockets;
  std::shared_ptr<identity::CertificateProvider> certificates;
  // The workload this dedicated-mode proxy runs as (PROXY_WORKLOAD_INFO).
  config::ProxyWorkloadInfo workload;
  Authorize authorize = [](const AuthorizationRequest&) { return rbac::Decision{}; };
  // The worker's open inbound connections, re-checked when policy changes.
  // Listeners given none make their own (nothing re-checks it then).
  std::shared_ptr<ConnectionTracker> connections;
  // Where a captured connection was headed: SO_ORIGINAL_DST, which needs
  // iptables; in-process tests name the destination themselves.
  OriginalDst original_dst = net::original_dst;
};

}  // namespace ztunnel::proxy
