// Outbound: captured connection -> route -> HBONE / TCP / passthrough -> copy -> access log.
#include "proxy/outbound.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "core/log.h"
#include "proxy/accept_loop.h"
#include "net/copy.h"
#include "proxy/access_log.h"
#include "proxy/h2_stream_io.h"
#include "proxy/headers.h"
#include "proxy/random.h"

namespace ztunnel::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;
namespace {
// Most clients write first; their request has usually arrived while the
// tunnel was being set up, so the copy reads it without an epoll round trip.
constexpr net::CopyStart kClientWroteFirst{.a_readable = true};
// Early data sent with a CONNECT: a request's first bytes. Within the peer's
// initial stream window (64 KiB), so it never waits for a WINDOW_UPDATE.
constexpr std::size_t kEarlyDataMax = 16 * 1024;
}  // namespace

std::shared_ptr<Outbound> Outbound::create(ProxyInputs inputs, tcp::acceptor acceptor,
                                           HboneConnector connector) {
  return std::shared_ptr<Outbound>(
      new Outbound(std::move(inputs), std::move(acceptor), std::move(connector)));
}

Outbound::Outbound(ProxyInputs inputs, tcp::acceptor acceptor, HboneConnector connector)
    : inputs_(std::move(inputs)),
      route_options_(RouteOptions::from_config(*inputs_.config)),
      acceptor_(std::move(acceptor)),
      pool_(acceptor_.get_executor(),
            PoolOptions{inputs_.config->pool_max_streams_per_connection,
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            inputs_.config->pool_unused_release_timeout)},
            std::move(connector)) {}

tcp::endpoint Outbound::local_endpoint() const {
  boost::system::error_code ignored;
  return acceptor_.local_endpoint(ignored);
}

void Outbound::stop() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  pool_.shutdown();
}

asio::awaitable<void> Outbound::run() {
  co_await accept_loop(acceptor_, "outbound", [this](tcp::socket socket, tcp::endpoint client) {
    inputs_.sockets->prepare_accepted(socket, accepted_options_);
    asio::co_spawn(acceptor_.get_executor(), serve(shared_from_this(), std::move(socket), client),
                   asio::detached);
  });
}

asio::awaitable<void> Outbound::serve(std::shared_ptr<Outbound> self, tcp::socket downstream,
                                      tcp::endpoint client) {
  ConnectionRecord access(Direction::kOutbound);
  access.route = "-";
  access.dst_hbone = "";
  access.src = client;
  std::size_t early_size = 0;
  Upstream upstream = co_await open_upstream(*self, downstream, access, early_size);
  if (auto* stream = std::get_if<h2::Stream>(&upstream)) {
    // When the early read found the client's bytes, it most likely took all
    // of them: wait for readiness rather than make a read that would fail.
    const net::CopyStart start{.a_readable = early_size == 0};
    auto copied = co_await net::copy_bidirectional(downstream, *stream, start);
    copied.a_to_b += early_size;
    access.record_copy(copied);
  } else if (auto* socket = std::get_if<tcp::socket>(&upstream)) {
    access.record_copy(co_await net::copy_bidirectional(downstream, *socket, kClientWroteFirst));
  }
}

asio::awaitable<Outbound::Upstream> Outbound::open_upstream(Outbound& self,
                                                            tcp::socket& downstream,
                                                            ConnectionRecord& access,
                                                            std::size_t& early_size) {
  auto dst = self.inputs_.original_dst(downstream);
  if (!dst) {
    access.error = "no original destination: " + dst.error().message();
    co_return Upstream{};
  }
  access.dst = *dst;

  auto snapshot = self.inputs_.store->snapshot();
  const auto& info = self.inputs_.workload;
  auto source = snapshot->find_workload(info.namespace_name, info.name, info.service_account);
  if (!source) {
    access.error = "unknown source workload " + info.namespace_name + "/" + info.name;
    co_return Upstream{};
  }
  access.src_identity = source->identity();

  auto route = route_outbound(*snapshot, *source, *dst, self.route_options_, thread_random());
  if (!route) {
    access.error = route.error().message;
    co_return Upstream{};
  }
  if (route->pending_dns) {
    access.error = "DNS-named destinations are not supported yet: " + route->pending_dns->hostname;
    co_return Upstream{};
  }
  access.route = std::string(to_string(route->kind));

  if (route->kind == RouteKind::kHbone) {
    access.dst_hbone = format_endpoint(route->connect_to);
    access.dst_identities = route->expected_identities;
    h2::Headers headers;
    std::optional<std::string_view> host;
    if (route->service) host = route->service->hostname;
    headers.push_back({std::string(kForwardedHeader), forwarded_header(access.src, host)});
    headers.push_back({std::string(kBaggageHeader), baggage_header(*source)});
    headers.push_back({std::string(kTraceparentHeader), traceparent_header(thread_random())});
    auto key = make_pool_key(source->identity(), route->expected_identities, route->connect_to);
    // Early data (where we differ from Istio, which sends the client's bytes
    // only after the CONNECT's 200): whatever the client has already written
    // goes right behind the HEADERS, saving a tunnel round trip before the
    // server sees its first byte. Safe because the peer is already
    // authenticated (TLS), and the inbound keeps these bytes in the stream's
    // flow-control window until it has authorized the request and connected
    // its upstream, and drops them on any refusal (h2::Stream reads fail
    // before respond(200); Istio's h2 server holds them likewise). One
    // non-blocking read: nothing is waited for, a server-first protocol just
    // sends none. The buffer lives only until the response.
    std::string early;
    {
      auto scratch = std::make_unique_for_overwrite<char[]>(kEarlyDataMax);
      auto [early_ec, early_read] =
          net::try_read_some(downstream, asio::buffer(scratch.get(), kEarlyDataMax));
      early_size = early_ec ? 0 : early_read;  // nothing yet (or EOF, an error): the copy will see it
      // Kept at its size, not 16 KiB: it waits out a pooled connect and
      // handshake, and a connect storm has many such waits at once.
      early.assign(scratch.get(), early_size);
    }
    auto response = co_await self.pool_.open(std::move(key), route->authority->to_string(),
                                              std::move(headers),
                                              asio::buffer(early));
    early = std::string();
    if (!response) {
      access.error = response.error().message;
      co_return Upstream{};
    }
    if (response->status != 200) {
      access.error = "HBONE CONNECT answered " + std::to_string(response->status);
      co_return Upstream{};
    }
    co_return Upstream{std::move(response->stream)};
  }

  auto upstream = co_await self.inputs_.sockets->connect(route->connect_to);
  if (!upstream) {
    access.error = "connect " + format_endpoint(route->connect_to) + ": " + upstream.error().message();
    co_return Upstream{};
  }
  co_return Upstream{std::move(*upstream)};
}

}  // namespace ztunnel::proxy
