// Inbound plaintext: redirected connection -> checks -> authorize -> connect -> copy -> access log.
#include "proxy/inbound_plaintext.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <optional>
#include <string>

#include "core/log.h"
#include "proxy/accept_loop.h"
#include "net/copy.h"
#include "proxy/access_log.h"
#include "proxy/authorization.h"
#include "proxy/connection_tracker.h"
#include "proxy/inbound_request.h"

namespace ztunnel::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;

std::shared_ptr<InboundPlaintext> InboundPlaintext::create(ProxyInputs inputs,
                                                           tcp::acceptor acceptor) {
  return std::shared_ptr<InboundPlaintext>(
      new InboundPlaintext(std::move(inputs), std::move(acceptor)));
}

InboundPlaintext::InboundPlaintext(ProxyInputs inputs, tcp::acceptor acceptor)
    : inputs_(std::move(inputs)), acceptor_(std::move(acceptor)) {
  if (!inputs_.connections) inputs_.connections = std::make_shared<ConnectionTracker>();
}

tcp::endpoint InboundPlaintext::local_endpoint() const {
  boost::system::error_code ignored;
  return acceptor_.local_endpoint(ignored);
}

void InboundPlaintext::stop() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

asio::awaitable<void> InboundPlaintext::run() {
  co_await accept_loop(acceptor_, "inbound", [this](tcp::socket socket, tcp::endpoint client) {
    inputs_.sockets->prepare_accepted(socket, accepted_options_);
    asio::co_spawn(acceptor_.get_executor(), serve(shared_from_this(), std::move(socket), client),
                   asio::detached);
  });
}

asio::awaitable<void> InboundPlaintext::serve(std::shared_ptr<InboundPlaintext> self,
                                              tcp::socket downstream, tcp::endpoint client) {
  ConnectionRecord access(Direction::kInbound);
  access.src = client;

  auto dst = self->inputs_.original_dst(downstream);
  if (!dst) {
    access.error = "no original destination: " + dst.error().message();
    co_return;
  }
  access.dst = *dst;

  const config::Config& config = *self->inputs_.config;
  // Not kept: this frame lives as long as the connection, and a snapshot held
  // here would pin a whole replaced state (after a reload) for that long.
  auto local = check_plaintext_destination(*self->inputs_.store->snapshot(), self->inputs_.workload,
                                           *dst, config.illegal_ports());
  if (!local) {
    access.error = local.error().message;
    co_return;
  }
  access.dst_identities = {(*local)->identity()};

  AuthorizationRequest asked{std::nullopt, access.src, *dst, *local};
  const rbac::Decision decision = self->inputs_.authorize(asked);
  log_decision(decision, asked, config.authz_policy_info_logging);
  if (!decision.allowed) {
    access.error = std::string(kPolicyRejection) + decision.reason;
    net::abort(downstream);  // an RST: the client learns it was refused, not served
    co_return;
  }
  // Tracked before the next co_await (see ConnectionTracker::track).
  auto tracked = self->inputs_.connections->track(std::move(asked));

  // A plaintext connection is always for the address it was sent to; only
  // the source address is a choice.
  InboundUpstream upstream;
  upstream.address = *dst;
  const UpstreamConnect plan =
      plan_upstream_connect(upstream, access.src, config.localhost_app_tunnel,
                            config.enable_original_source.value_or(false), /*self_proxy=*/false);
  std::optional<asio::ip::address> bind;
  if (plan.bind) bind = *plan.bind;
  // The upstream is the local workload, in our own network namespace.
  auto upstream_socket = co_await self->inputs_.sockets->connect(
      plan.destination, bind, net::SocketFactory::Peer::kSameNamespace);
  if (!upstream_socket) {
    access.error =
        "connect " + format_endpoint(plan.destination) + ": " + upstream_socket.error().message();
    co_return;
  }
  if (tracked.is_revoked()) {
    // A policy change during the connect denied it: refuse before any byte moves.
    access.error = std::string(kPolicyRejection) + tracked.reason();
    net::abort(*upstream_socket);
    net::abort(downstream);
    co_return;
  }
  // The client's first bytes have usually arrived during the upstream connect.
  tracked.on_revoke([&downstream, &upstream = *upstream_socket] {
    net::abort(downstream);
    net::abort(upstream);
  });
  const net::CopyResult copied = co_await net::copy_bidirectional(
      downstream, *upstream_socket, net::CopyStart{.a_readable = true});
  if (tracked.is_revoked()) access.set_error(std::string(kPolicyChange));
  access.record_copy(copied);
}

}  // namespace ztunnel::proxy
