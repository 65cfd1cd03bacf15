// What each proxy listener is handed: configuration, state, sockets, certificates, identity.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/system/result.hpp>

#include <functional>
#include <memory>
#include <string>

#include "config/config.h"
#include "identity/provider.h"
#include "net/socket.h"
#include "state/identity.h"
#include "state/store.h"

namespace ztunnel::proxy {

// Phase 6 of the inbound request: who may reach which upstream. The policy
// issue fills this with the authorization engine; until then it allows all.
struct AuthorizationRequest {
  state::Identity peer;                     // verified client identity
  boost::asio::ip::tcp::endpoint client;    // the HBONE peer's address
  boost::asio::ip::tcp::endpoint upstream;  // where the tunnel would go
};
using Authorize = std::function<bool(const AuthorizationRequest&)>;

struct ProxyInputs {
  // Both outlive every listener (the App owns them).
  const config::Config* config = nullptr;
  const state::Store* store = nullptr;
  std::shared_ptr<const net::SocketFactory> sockets;
  std::shared_ptr<identity::CertificateProvider> certificates;
  // The workload this dedicated-mode proxy runs as (PROXY_WORKLOAD_INFO).
  config::ProxyWorkloadInfo workload;
  Authorize authorize = [](const AuthorizationRequest&) { return true; };
  // Where a captured connection was headed. Empty: SO_ORIGINAL_DST, which
  // needs iptables; in-process tests supply the destination themselves.
  std::function<boost::system::result<boost::asio::ip::tcp::endpoint>(boost::asio::ip::tcp::socket&)>
      original_dst;
};

}  // namespace ztunnel::proxy
