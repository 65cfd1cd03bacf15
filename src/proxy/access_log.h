// One record per proxied connection: who, where, how many bytes, how long, how it ended.
//
// A listener fills the record in as the connection moves through its phases;
// the destructor writes the access-log line, so every exit path (early
// denial, failed connect, finished copy) logs exactly once. The same record
// is what connection metrics will count.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/log.h"
#include "net/copy.h"
#include "state/identity.h"

namespace ztunnel::proxy {

enum class Direction { kInbound, kOutbound };

class ConnectionRecord {
 public:
  explicit ConnectionRecord(Direction direction)
      : direction(direction), start_(std::chrono::steady_clock::now()) {}
  ~ConnectionRecord();
  ConnectionRecord(const ConnectionRecord&) = delete;
  ConnectionRecord& operator=(const ConnectionRecord&) = delete;

  const Direction direction;
  boost::asio::ip::tcp::endpoint src;
  std::optional<boost::asio::ip::tcp::endpoint> dst;
  // The HBONE target (outbound) or CONNECT authority (inbound); unset for plain TCP.
  std::optional<std::string> dst_hbone;
  std::optional<std::string> route;  // outbound: how the destination was reached
  // Unset: the peer proved no identity (plaintext inbound, or not known yet).
  std::optional<state::Identity> src_identity;
  std::vector<state::Identity> dst_identities;
  std::optional<int> status;  // inbound HBONE: the CONNECT response status
  uint64_t to_upstream = 0;   // bytes from the client towards the destination
  uint64_t from_upstream = 0;
  std::string error;  // empty: the connection ended cleanly

  // Takes the byte counts and the failure, if any, of a copy whose `a` side
  // was the client.
  void record_copy(const net::CopyResult& result);
  void set_error(std::string message) {
    if (error.empty()) error = std::move(message);
  }

  // Adds the access-log line's fields, in order; `elapsed` is the duration
  // logged. Values are written straight into the line (no string per field).
  void add_fields(log::LineBuilder& line, std::chrono::milliseconds elapsed) const;

 private:
  std::chrono::steady_clock::time_point start_;
};

}  // namespace ztunnel::proxy
