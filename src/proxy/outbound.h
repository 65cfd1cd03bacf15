// The outbound listener (15001): captured connections from the local workload, sent on via HBONE.
//
// One coroutine per connection: original destination, source workload,
// route_outbound, then an HBONE stream from the pool (or plain TCP, or
// passthrough), then the byte copy; one access-log line when it ends.
// Threads: the listener, its pool and its connections live on one executor.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <memory>
#include <variant>

#include "h2/session.h"
#include "proxy/access_log.h"
#include "proxy/inputs.h"
#include "proxy/pool.h"
#include "proxy/route.h"

namespace ztunnel::proxy {

class Outbound : public std::enable_shared_from_this<Outbound> {
 public:
  // `acceptor` is listening already (SocketFactory::listen).
  static std::shared_ptr<Outbound> create(ProxyInputs inputs, boost::asio::ip::tcp::acceptor acceptor,
                                          HboneConnector connector);

  boost::asio::ip::tcp::endpoint local_endpoint() const;
  // Accepts until stop(); spawn it on the acceptor's executor.
  boost::asio::awaitable<void> run();
  void stop();

  HbonePool& pool() { return pool_; }

 private:
  Outbound(ProxyInputs inputs, boost::asio::ip::tcp::acceptor acceptor, HboneConnector connector);
  // `client` is the peer address accept returned (no getpeername).
  static boost::asio::awaitable<void> serve(std::shared_ptr<Outbound> self,
                                            boost::asio::ip::tcp::socket downstream,
                                            boost::asio::ip::tcp::endpoint client);
  // What serve copies to: an HBONE stream or a plain TCP upstream; empty
  // when the connection was refused (the reason is in the record).
  using Upstream = std::variant<std::monostate, h2::Stream, boost::asio::ip::tcp::socket>;
  // Routes and connects. A coroutine of its own so that its locals (the
  // snapshot, route, CONNECT headers) do not stay in the frame of a
  // connection that may idle for hours. References: serve awaits it at once.
  // `early_size`: how many of the client's bytes went out with the CONNECT.
  static boost::asio::awaitable<Upstream> open_upstream(Outbound& self,
                                                        boost::asio::ip::tcp::socket& downstream,
                                                        ConnectionRecord& access,
                                                        std::size_t& early_size);

  ProxyInputs inputs_;
  RouteOptions route_options_;
  boost::asio::ip::tcp::acceptor acceptor_;
  net::SocketFactory::AcceptedOptions accepted_options_;
  HbonePool pool_;
};

}  // namespace ztunnel::proxy
