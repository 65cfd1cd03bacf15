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
#include "state/identity.h"
#include "state/store.h"

namespace ztunnel::proxy {

// Who may reach which local workload, asked by both inbound listeners
// (HBONE phase 6, plaintext before connecting). The policy issue fills this
// with the authorization engine; until then it allows all.
struct AuthorizationRequest {
  // The client's verified identity; none for plaintext, which proves nothing.
  std::optional<state::Identity> source_identity;
  boost::asio::ip::tcp::endpoint source;       // the client's address
  boost::asio::ip::tcp::endpoint destination;  // the local workload's IP and port
  state::WorkloadPtr destination_workload;     // the local workload (never null)
};
using Authorize = std::function<bool(const AuthorizationRequest&)>;

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
  Authorize authorize = [](const AuthorizationRequest&) { return true; };
  // Where a captured connection was headed: SO_ORIGINAL_DST, which needs
  // iptables; in-process tests name the destination themselves.
  OriginalDst original_dst = net::original_dst;
};

}  // namespace ztunnel::proxy
