// Error categories of the HTTP/2 layer.
#include "h2/error.h"

#include <nghttp2/nghttp2.h>

#include <string>

namespace ztunnel::h2 {
namespace {

class Category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "h2"; }
  std::string message(int ev) const override {
    switch (static_cast<Errc>(ev)) {
      case Errc::kConnectionClosed: return "HTTP/2 connection closed";
      case Errc::kGoaway: return "peer sent GOAWAY";
      case Errc::kNotUsable: return "HTTP/2 session is not usable";
      case Errc::kStreamLimit: return "no stream available under the peer's MAX_CONCURRENT_STREAMS";
      case Errc::kPingTimeout: return "no PING ACK within the keepalive timeout";
      case Errc::kHandshakeTimeout: return "peer sent no SETTINGS in time";
      case Errc::kProtocolError: return "HTTP/2 protocol error";
      case Errc::kFlood: return "HTTP/2 flood limit exceeded";
      case Errc::kStreamClosed: return "HTTP/2 stream closed";
      case Errc::kWriteShutdown: return "write after shutdown";
      case Errc::kNotOpen: return "stream not open for data";
      case Errc::kAlreadyResponded: return "response already sent";
      case Errc::kNotServerStream: return "respond() on a client stream";
      case Errc::kBadResponse: return "response without a valid :status";
      case Errc::kAlreadyRunning: return "session already running";
      case Errc::kViewPending: return "read while a read_view is not consumed";
      case Errc::kGrpcMessageTooLarge: return "gRPC message larger than allowed";
      case Errc::kGrpcCompressed: return "compressed gRPC message without negotiated encoding";
      case Errc::kGrpcTruncated: return "stream ended inside a gRPC message";
      case Errc::kGrpcMissingStatus: return "gRPC response without a valid grpc-status";
    }
    return "unknown h2 error " + std::to_string(ev);
  }
};

class WireCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "h2.wire"; }
  std::string message(int ev) const override {
    return nghttp2_http2_strerror(static_cast<std::uint32_t>(ev));
  }
};

}  // namespace

const boost::system::error_category& category() noexcept {
  static const Category c;
  return c;
}

const boost::system::error_category& wire_category() noexcept {
  static const WireCategory c;
  return c;
}

}  // namespace ztunnel::h2
