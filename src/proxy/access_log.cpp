// The access-log line of a ConnectionRecord, in Istio's key=value shape.
#include "proxy/access_log.h"

#include "proxy/hbone_address.h"

namespace ztunnel::proxy {

namespace {

std::string join(const std::vector<state::Identity>& ids) {
  if (ids.empty()) return "-";
  std::string out;
  for (const auto& id : ids) {
    if (!out.empty()) out += ",";
    out += id.to_spiffe();
  }
  return out;
}

}  // namespace

ConnectionRecord::~ConnectionRecord() {
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start_);
  const auto line = fields(elapsed);
  log::logger().write(error.empty() ? log::Level::kInfo : log::Level::kWarn, "access",
                      "connection complete", std::span<const log::Field>(line));
}

void ConnectionRecord::record_copy(const net::CopyResult& result) {
  to_upstream = result.a_to_b;
  from_upstream = result.b_to_a;
  if (result.error) set_error(result.error.message());
}

std::vector<log::Field> ConnectionRecord::fields(std::chrono::milliseconds elapsed) const {
  // Istio reports bytes from the reporter's side: the source counts what the
  // client sent as "sent", the destination counts what went back to it.
  const bool outbound = direction == Direction::kOutbound;
  std::vector<log::Field> out;
  out.reserve(12);
  out.push_back({"direction", outbound ? "outbound" : "inbound"});
  out.push_back({"src.addr", format_endpoint(src)});
  out.push_back({"dst.addr", dst ? format_endpoint(*dst) : "-"});
  if (dst_hbone) out.push_back({"dst.hbone_addr", dst_hbone->empty() ? "-" : *dst_hbone});
  if (route) out.push_back({"route", *route});
  out.push_back({"src.identity", src_identity ? src_identity->to_spiffe() : "-"});
  out.push_back({"dst.identity", join(dst_identities)});
  if (status) out.push_back({"status", std::to_string(*status)});
  out.push_back({"bytes_sent", std::to_string(outbound ? to_upstream : from_upstream)});
  out.push_back({"bytes_recv", std::to_string(outbound ? from_upstream : to_upstream)});
  out.push_back({"duration", std::to_string(elapsed.count()) + "ms"});
  out.push_back({"error", error.empty() ? "-" : error});
  return out;
}

}  // namespace ztunnel::proxy
