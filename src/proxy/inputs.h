// What each proxy listener is handed: configuration, state, sockets, certificates, identity.
#pragma once

#include <boost/asio/ip/tcp.hpp>

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
  // Tests only: without iptables there is no SO_ORIGINAL_DST, so use the
  // address the connection arrived on.
  bool original_dst_fallback = false;
  // Tests only: a loopback test of the plaintext listener names the
  // destination itself (falling back to the listener's own address would
  // loop).
  OriginalDst original_dst = net::original_dst;
};

// The connection's original destination through the test seams above.
inline boost::system::result<boost::asio::ip::tcp::endpoint> original_destination(
    const ProxyInputs& inputs, boost::asio::ip::tcp::socket& socket) {
  auto dst = inputs.original_dst(socket);
  if (!dst && inputs.original_dst_fallback) {
    boost::system::error_code ec;
    auto local = socket.local_endpoint(ec);
    if (!ec) return local;
  }
  return dst;
}

}  // namespace ztunnel::proxy
