// Transport adapters for plain TCP and Unix stream sockets.
#include "h2/transport.h"

namespace ztunnel::h2 {

template class StreamTransport<boost::asio::ip::tcp::socket>;
template class StreamTransport<boost::asio::local::stream_protocol::socket>;

std::unique_ptr<Transport> make_transport(boost::asio::ip::tcp::socket socket) {
  return std::make_unique<StreamTransport<boost::asio::ip::tcp::socket>>(std::move(socket));
}

std::unique_ptr<Transport> make_transport(boost::asio::local::stream_protocol::socket socket) {
  return std::make_unique<StreamTransport<boost::asio::local::stream_protocol::socket>>(
      std::move(socket));
}

}  // namespace ztunnel::h2
