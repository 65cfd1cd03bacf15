// Inbound: TLS server handshake, ServerSession, and per-CONNECT phases (400/503/401/503, then 200).
#include "proxy/inbound.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>

#include "core/log.h"
#include "proxy/accept_loop.h"
#include "net/copy.h"
#include "proxy/access_log.h"
#include "proxy/authorization.h"
#include "proxy/connection_tracker.h"
#include "proxy/h2_stream_io.h"
#include "proxy/headers.h"
#include "proxy/inbound_request.h"
#include "h2/tls_transport.h"

namespace ztunnel::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;

std::shared_ptr<Inbound> Inbound::create(ProxyInputs inputs, tcp::acceptor acceptor,
                                         InboundOptions options) {
  return std::shared_ptr<Inbound>(new Inbound(std::move(inputs), std::move(acceptor), options));
}

Inbound::Inbound(ProxyInputs inputs, tcp::acceptor acceptor, InboundOptions options)
    : inputs_(std::move(inputs)), options_(options), acceptor_(std::move(acceptor)) {
  if (!inputs_.connections) inputs_.connections = std::make_shared<ConnectionTracker>();
}

tcp::endpoint Inbound::local_endpoint() const {
  boost::system::error_code ignored;
  return acceptor_.local_endpoint(ignored);
}

void Inbound::stop() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  for (auto& s : sessions_) s.close();
  sessions_.clear();
}

core::Result<std::shared_ptr<const tls::ServerContext>> Inbound::server_context() {
  auto local = find_local_workload(*inputs_.store->snapshot(), inputs_.workload);
  if (!local) return core::make_error(local.error().message);
  auto cert = inputs_.certificates->fetch((*local)->identity());
  if (!cert) return cert.error();
  // Rebuild only when the provider rotated the certificate.
  if (!context_ || context_->certificate() != *cert) {
    tls::TlsOptions options;
    options.tls12_enabled = inputs_.config->tls12_enabled;
    auto context = tls::make_server_context(*cert, options);
    if (!context) return context.error();
    context_ = *context;
  }
  return context_;
}

asio::awaitable<void> Inbound::run() {
  co_await accept_loop(acceptor_, "inbound", [this](tcp::socket socket, tcp::endpoint client) {
    if (handshakes_ >= options_.max_handshakes_in_progress) {
      log::warn("inbound", "too many TLS handshakes in progress ({}); closing a connection",
                handshakes_);
      return;  // the socket closes as it goes out of scope
    }
    inputs_.sockets->prepare_accepted(socket, accepted_options_);
    ++handshakes_;  // counted from accept; serve() gives it back after the handshake
    asio::co_spawn(acceptor_.get_executor(), serve(shared_from_this(), std::move(socket), client),
                   asio::detached);
  });
}

asio::awaitable<void> Inbound::serve(std::shared_ptr<Inbound> self, tcp::socket socket,
                                     tcp::endpoint client) {
  boost::system::error_code ec;
  const tcp::endpoint local_dst = socket.local_endpoint(ec);
  auto context = self->server_context();
  if (!context) {
    --self->handshakes_;
    log::warn("inbound", "no server certificate: {}", context.error().message);
    co_return;
  }
  auto transport = std::make_unique<h2::TlsTransport>(std::move(socket), (*context)->new_ssl());
  auto handshake = co_await transport->handshake(h2::TlsTransport::Role::kServer,
                                                 self->options_.handshake_timeout);
  --self->handshakes_;
  if (!handshake) {
    log::warn("inbound", "TLS handshake from {} failed: {}", format_endpoint(client),
              handshake.detail);
    co_return;
  }
  state::Identity peer = handshake.peer_identity;
  h2::SessionOptions session_options = h2::SessionOptions::server_defaults();
  session_options.stream_window = self->inputs_.config->http2_stream_window_size;
  session_options.connection_window = self->inputs_.config->http2_connection_window_size;
  session_options.max_frame_size = self->inputs_.config->http2_frame_size;
  std::weak_ptr<Inbound> weak = self;
  h2::ServerSession session(
      std::move(transport),
      // Not a coroutine itself: serve_connect's frame is the only one a
      // tunnel keeps for its handler.
      [weak, peer, client, local_dst](h2::IncomingRequest request) -> asio::awaitable<void> {
        auto inbound = weak.lock();
        if (!inbound) {
          request.stream.respond(kStatusServiceUnavailable);
          return []() -> asio::awaitable<void> { co_return; }();
        }
        return serve_connect(std::move(inbound), std::move(request), peer, client, local_dst);
      },
      session_options);
  std::erase_if(self->sessions_, [](const h2::ServerSession& s) { return s.is_closed(); });
  self->sessions_.push_back(session);
  auto ended = co_await session.run();
  // Drop our handle now (with the others that closed): the session keeps its
  // TLS state until the last handle goes, and another HBONE connection may never come.
  std::erase_if(self->sessions_, [](const h2::ServerSession& s) { return s.is_closed(); });
  if (ended) log::debug("inbound", "HBONE connection from {} ended: {}", format_endpoint(client),
                        ended.message());
}

asio::awaitable<void> Inbound::serve_connect(std::shared_ptr<Inbound> self,
                                             h2::IncomingRequest request, state::Identity peer,
                                             tcp::endpoint client, tcp::endpoint local_dst) {
  ConnectionRecord access(Direction::kInbound);
  access.src = client;
  access.src_identity = std::move(peer);
  access.dst_hbone = request.request.authority;
  access.status = 0;
  auto upstream = co_await open_upstream(*self, request.request, request.stream, access, local_dst);
  if (!upstream) co_return;
  // The request's fields (headers, authority) are not needed while the tunnel lives.
  request.request = h2::Request{};
  upstream->tracked.on_revoke([&stream = request.stream, &socket = upstream->socket] {
    // Cut both ends: the copy's reads fail and it ends, and neither peer
    // waits on a tunnel that policy no longer allows.
    stream.reset();
    net::abort(socket);
  });
  const net::CopyResult copied = co_await net::copy_bidirectional(request.stream, upstream->socket);
  if (upstream->tracked.is_revoked()) access.set_error(std::string(kPolicyChange));
  access.record_copy(copied);
}

asio::awaitable<std::optional<Inbound::OpenedUpstream>> Inbound::open_upstream(Inbound& self,
                                                                  const h2::Request& request,
                                                                  h2::Stream& stream,
                                                                  ConnectionRecord& access,
                                                                  tcp::endpoint local_dst) {
  const auto reject = [&](const InboundError& e) {
    access.status = e.status;
    access.error = e.message;
    stream.respond(e.status);
    return std::optional<OpenedUpstream>();
  };
  const tcp::endpoint client = access.src;
  const state::Identity& peer = *access.src_identity;

  if (auto ok = check_connect_method(request.method); !ok) co_return reject(ok.error());
  auto authority = parse_inbound_authority(request.authority);
  if (!authority) co_return reject(authority.error());

  const config::Config& config = *self.inputs_.config;
  auto snapshot = self.inputs_.store->snapshot();
  auto local = find_local_workload(*snapshot, self.inputs_.workload);
  if (!local) co_return reject(local.error());
  access.dst_identities = {(*local)->identity()};

  if (auto ok = validate_destination(*snapshot, **local, local_dst, config.network, *authority);
      !ok) {
    co_return reject(ok.error());
  }
  auto upstream = find_inbound_upstream(*snapshot, **local, local_dst, config.network, *authority,
                                        config.illegal_ports());
  if (!upstream) co_return reject(upstream.error());
  access.dst = upstream->address;

  AuthorizationRequest asked{peer, client, upstream->address, *local};
  const rbac::Decision decision = self.inputs_.authorize(asked);
  log_decision(decision, asked, config.authz_policy_info_logging);
  if (!decision.allowed) {
    co_return reject({kStatusUnauthorized, std::string(kPolicyRejection) + decision.reason});
  }
  // Tracked before the next co_await: a policy published after the decision
  // is re-checked against this stream (see ConnectionTracker::track).
  auto tracked = self.inputs_.connections->track(std::move(asked));

  const UpstreamConnect plan =
      plan_upstream_connect(*upstream, client, config.localhost_app_tunnel,
                            config.enable_original_source.value_or(false), /*self_proxy=*/false);
  std::optional<asio::ip::address> bind;
  if (plan.bind) bind = *plan.bind;
  // The upstream is the local workload, in our own network namespace.
  auto upstream_socket = co_await self.inputs_.sockets->connect(
      plan.destination, bind, net::SocketFactory::Peer::kSameNamespace);
  if (!upstream_socket) {
    co_return reject({kStatusServiceUnavailable,
                      "connect " + format_endpoint(plan.destination) + ": " +
                          upstream_socket.error().message()});
  }
  if (tracked.is_revoked()) {
    // A policy change during the connect denied it: refuse before any byte moves.
    net::abort(*upstream_socket);
    co_return reject({kStatusUnauthorized, std::string(kPolicyRejection) + tracked.reason()});
  }

  h2::Headers response_headers;
  if (config.enable_response_baggage) {
    response_headers.push_back({std::string(kBaggageHeader), baggage_header(**local)});
  }
  if (auto ec = stream.respond(kStatusOk, response_headers)) {
    access.error = "respond: " + ec.message();
    co_return std::nullopt;
  }
  access.status = kStatusOk;
  co_return OpenedUpstream{std::move(*upstream_socket), std::move(tracked)};
}

}  // namespace ztunnel::proxy
