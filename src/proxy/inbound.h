// The inbound HBONE listener (15008): mTLS, HTTP/2 CONNECT, Istio's request phases, byte copy.
//
// One coroutine per TLS connection (handshake, then ServerSession::run) and
// one per CONNECT stream (the session spawns it). Handshakes in progress are
// capped; a connection over the cap is closed at once.
// Threads: the listener and its connections live on one executor.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <memory>
#include <optional>

#include "h2/session.h"
#include "proxy/access_log.h"
#include "proxy/connection_tracker.h"
#include "proxy/inputs.h"
#include "tls/context.h"

namespace ztunnel::proxy {

struct InboundOptions {
  std::size_t max_handshakes_in_progress = 256;
  std::chrono::steady_clock::duration handshake_timeout = std::chrono::seconds(10);
};

class Inbound : public std::enable_shared_from_this<Inbound> {
 public:
  static std::shared_ptr<Inbound> create(ProxyInputs inputs, boost::asio::ip::tcp::acceptor acceptor,
                                         InboundOptions options = {});

  boost::asio::ip::tcp::endpoint local_endpoint() const;
  boost::asio::awaitable<void> run();
  void stop();

 private:
  Inbound(ProxyInputs inputs, boost::asio::ip::tcp::acceptor acceptor, InboundOptions options);
  // The server context for the local workload's current certificate.
  core::Result<std::shared_ptr<const tls::ServerContext>> server_context();
  // `client` is the peer address accept returned (no getpeername).
  static boost::asio::awaitable<void> serve(std::shared_ptr<Inbound> self,
                                            boost::asio::ip::tcp::socket socket,
                                            boost::asio::ip::tcp::endpoint client);
  static boost::asio::awaitable<void> serve_connect(std::shared_ptr<Inbound> self,
                                                    h2::IncomingRequest request,
                                                    state::Identity peer,
                                                    boost::asio::ip::tcp::endpoint client,
                                                    boost::asio::ip::tcp::endpoint local_dst);
  // Phases 1-3 of serve_connect: checks the request, authorizes it and
  // connects the upstream; on refusal it answers the stream and returns
  // nothing. A coroutine of its own so that its locals (snapshot, parsed
  // authority, upstream plan) do not stay in the frame of a tunnel that
  // may idle for hours. References: serve_connect awaits it at once.
  // The connected upstream and the connection's registration with the
  // tracker (made right after the decision, before any co_await).
  struct OpenedUpstream {
    boost::asio::ip::tcp::socket socket;
    ConnectionTracker::Registration tracked;
  };
  static boost::asio::awaitable<std::optional<OpenedUpstream>> open_upstream(
      Inbound& self, const h2::Request& request, h2::Stream& stream, ConnectionRecord& access,
      boost::asio::ip::tcp::endpoint local_dst);

  ProxyInputs inputs_;
  InboundOptions options_;
  boost::asio::ip::tcp::acceptor acceptor_;
  net::SocketFactory::AcceptedOptions accepted_options_;
  std::size_t handshakes_ = 0;
  std::shared_ptr<const tls::ServerContext> context_;
  std::vector<h2::ServerSession> sessions_;  // for stop(); pruned as they close
};

}  // namespace ztunnel::proxy
