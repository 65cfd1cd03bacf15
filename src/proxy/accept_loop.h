// The accept loop the proxy listeners share.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <string_view>
#include <utility>

#include "core/log.h"

namespace ztunnel::proxy {

// Accepts until the acceptor is closed (stop()), handing every connection
// and its client address to `on_accepted(socket, client)`, which prepares
// the socket and spawns the connection's coroutine (or drops it). A failed
// accept (e.g. out of file descriptors) is logged under `target` and the
// loop goes on.
template <class OnAccepted>
boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& acceptor,
                                         std::string_view target, OnAccepted on_accepted) {
  for (;;) {
    boost::asio::ip::tcp::endpoint client;
    auto [ec, socket] = co_await acceptor.async_accept(
        client, boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec == boost::asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      log::warn(target, "accept failed: {}", ec.message());
      continue;
    }
    on_accepted(std::move(socket), client);
  }
}

}  // namespace ztunnel::proxy
