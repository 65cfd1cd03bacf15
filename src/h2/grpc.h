// gRPC over HTTP/2 framing: 5-byte length-prefixed messages and grpc-status trailers.
#pragma once

#include <boost/system/result.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "h2/error.h"
#include "h2/headers.h"

namespace ztunnel::h2::grpc {

// 1 byte compressed flag + 4 bytes big-endian length (gRPC PROTOCOL-HTTP2).
inline constexpr std::size_t kPrefixBytes = 5;
// gRPC's default receive limit.
inline constexpr std::size_t kDefaultMaxMessageBytes = 4u << 20;

// Appends one uncompressed message, prefix included, to `out`.
void append_message(std::span<const std::uint8_t> message, std::vector<std::uint8_t>& out);

// Reassembles messages from DATA bytes as they arrive. Pure: no I/O.
class MessageReader {
 public:
  explicit MessageReader(std::size_t max_message_bytes = kDefaultMaxMessageBytes)
      : max_(max_message_bytes) {}

  void feed(std::span<const std::uint8_t> bytes);
  // The next complete message; nullopt when more bytes are needed. Fails on
  // a length above the maximum (checked from the prefix, before buffering
  // the body) or a compressed message (we never negotiate grpc-encoding).
  boost::system::result<std::optional<std::vector<std::uint8_t>>> next();
  // At end of stream: success only on a message boundary.
  boost::system::error_code finish() const;

 private:
  std::size_t max_;
  std::vector<std::uint8_t> buf_;
  std::size_t head_ = 0;
};

// gRPC status codes used by the control plane clients.
enum class StatusCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kUnauthenticated = 16,
};

struct Status {
  int code = 0;         // a StatusCode value (unknown codes are kept as-is)
  std::string message;  // grpc-message, percent-decoded
  bool ok() const { return code == 0; }
};

// Reads grpc-status / grpc-message from trailers (or from the headers of a
// trailers-only response). Fails with Errc::kGrpcMissingStatus when
// grpc-status is absent or not a non-negative integer.
boost::system::result<Status> parse_status(const Headers& fields);

// grpc-message is percent-encoded (RFC 3986 style); bad escapes are kept verbatim.
std::string percent_decode(std::string_view text);

}  // namespace ztunnel::h2::grpc
