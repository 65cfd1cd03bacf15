// Error codes of the HTTP/2 layer: session/stream failures and RFC 9113 wire codes.
#pragma once

#include <boost/system/error_code.hpp>

#include <cstdint>
#include <type_traits>

namespace ztunnel::h2 {

// Failures the h2 module reports on its data path. Peer-sent RST_STREAM and
// GOAWAY codes are not here: they use wire_category() so callers can tell
// REFUSED_STREAM from INTERNAL_ERROR.
enum class Errc : int {
  kConnectionClosed = 1,  // the connection ended (peer closed, transport error, local close)
  kGoaway,                // the peer sent GOAWAY: no new streams on this session
  kNotUsable,             // the session is draining, closing or closed
  kStreamLimit,           // no stream slot left under the peer's MAX_CONCURRENT_STREAMS
  kPingTimeout,           // no PING ACK within the keepalive timeout
  kHandshakeTimeout,      // the peer sent no SETTINGS in time
  kProtocolError,         // the peer broke HTTP/2 (or nghttp2 reported a fatal error)
  kFlood,                 // a flood limit tripped; GOAWAY ENHANCE_YOUR_CALM was sent
  kStreamClosed,          // the stream was closed or reset locally
  kWriteShutdown,         // write after shutdown_write()
  kNotOpen,               // data before the tunnel opened (server: before respond(200))
  kAlreadyResponded,      // respond() called twice
  kNotServerStream,       // respond() on a client stream
  kBadResponse,           // response HEADERS without a usable :status
  kAlreadyRunning,        // run() called twice
  kViewPending,           // read_some while bytes from read_view are not yet consumed
  // gRPC framing (grpc.h).
  kGrpcMessageTooLarge,   // a length prefix above the configured maximum
  kGrpcCompressed,        // compressed-flag set; no grpc-encoding is negotiated
  kGrpcTruncated,         // the stream ended inside a message
  kGrpcMissingStatus,     // trailers without a valid grpc-status
};

const boost::system::error_category& category() noexcept;

// RFC 9113 §7 error codes (NO_ERROR = 0 ... HTTP_1_1_REQUIRED = 13) carried
// by RST_STREAM or GOAWAY, as an error_code whose value is the wire code.
const boost::system::error_category& wire_category() noexcept;

inline boost::system::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), category()};
}

inline boost::system::error_code make_wire_error(std::uint32_t h2_code) noexcept {
  return {static_cast<int>(h2_code), wire_category()};
}

}  // namespace ztunnel::h2

template <>
struct boost::system::is_error_code_enum<ztunnel::h2::Errc> : std::true_type {};
