// The inbound plaintext listener (15006): redirected TCP to the local workload, authorized
// without a peer identity, then relayed to its original destination.
//
// One coroutine per connection: original destination, self-call and
// local-address checks, authorization, upstream connect (from the client's
// IP when original source is on), byte copy; one access-log line when it
// ends. Nothing is said to a refused client: its connection is closed.
// Threads: the listener and its connections live on one executor.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <memory>

#include "proxy/inputs.h"

namespace ztunnel::proxy {

class InboundPlaintext : public std::enable_shared_from_this<InboundPlaintext> {
 public:
  // `acceptor` is listening already (SocketFactory::listen).
  static std::shared_ptr<InboundPlaintext> create(ProxyInputs inputs,
                                                  boost::asio::ip::tcp::acceptor acceptor);

  boost::asio::ip::tcp::endpoint local_endpoint() const;
  // Accepts until stop(); spawn it on the acceptor's executor.
  boost::asio::awaitable<void> run();
  // Closes the acceptor; connections already accepted finish their copy.
  void stop();

 private:
  InboundPlaintext(ProxyInputs inputs, boost::asio::ip::tcp::acceptor acceptor);
  // `client` is the peer address accept returned (no getpeername).
  static boost::asio::awaitable<void> serve(std::shared_ptr<InboundPlaintext> self,
                                            boost::asio::ip::tcp::socket downstream,
                                            boost::asio::ip::tcp::endpoint client);

  ProxyInputs inputs_;
  boost::asio::ip::tcp::acceptor acceptor_;
  net::SocketFactory::AcceptedOptions accepted_options_;
};

}  // namespace ztunnel::proxy
