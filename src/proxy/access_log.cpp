// The access-log line of a ConnectionRecord, in Istio's key=value shape.
#include "proxy/access_log.h"

#include "proxy/hbone_address.h"

#include <charconv>
#include <cstdint>

namespace ztunnel::proxy {

namespace {

constexpr std::string_view kAccessTarget = "access";

void append_identities(std::string& out, const std::vector<state::Identity>& ids) {
  if (ids.empty()) {
    out += '-';
    return;
  }
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i != 0) out += ',';
    ids[i].append_spiffe(out);
  }
}

template <class Integer>
void append_number(std::string& out, Integer value) {
  char digits[24];
  out.append(digits, std::to_chars(digits, digits + sizeof digits, value).ptr);
}

}  // namespace

ConnectionRecord::~ConnectionRecord() {
  const log::Level level = error.empty() ? log::Level::kInfo : log::Level::kWarn;
  log::Logger& logger = log::logger();
  // RUST_LOG=access=off (or a level above this line's) turns the lines off.
  if (!logger.enabled(level, kAccessTarget)) return;
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start_);
  logger.write_with(level, kAccessTarget, "connection complete",
                    [&](log::LineBuilder& line) { add_fields(line, elapsed); });
}

void ConnectionRecord::record_copy(const net::CopyResult& result) {
  to_upstream = result.a_to_b;
  from_upstream = result.b_to_a;
  if (result.error) set_error(result.error.message());
}

void ConnectionRecord::add_fields(log::LineBuilder& line, std::chrono::milliseconds elapsed) const {
  // Istio reports bytes from the reporter's side: the source counts what the
  // client sent as "sent", the destination counts what went back to it.
  const bool outbound = direction == Direction::kOutbound;
  line.add("direction", outbound ? "outbound" : "inbound");
  line.add_with("src.addr", [&](std::string& out) { append_endpoint(out, src); });
  if (dst) {
    line.add_with("dst.addr", [&](std::string& out) { append_endpoint(out, *dst); });
  } else {
    line.add("dst.addr", "-");
  }
  if (dst_hbone) line.add("dst.hbone_addr", dst_hbone->empty() ? "-" : *dst_hbone);
  if (route) line.add("route", *route);
  if (src_identity) {
    line.add_with("src.identity", [&](std::string& out) { src_identity->append_spiffe(out); });
  } else {
    line.add("src.identity", "-");
  }
  line.add_with("dst.identity", [&](std::string& out) { append_identities(out, dst_identities); });
  if (status) line.add_with("status", [&](std::string& out) { append_number(out, *status); });
  line.add_with("bytes_sent",
                [&](std::string& out) { append_number(out, outbound ? to_upstream : from_upstream); });
  line.add_with("bytes_recv",
                [&](std::string& out) { append_number(out, outbound ? from_upstream : to_upstream); });
  line.add_with("duration", [&](std::string& out) {
    append_number(out, elapsed.count());
    out += "ms";
  });
  line.add("error", error.empty() ? "-" : error);
}

}  // namespace ztunnel::proxy
