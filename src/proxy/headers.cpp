// Forwarded, baggage and traceparent header values.
#include "proxy/headers.h"

#include <fmt/format.h>

#include <vector>

namespace ztunnel::proxy {

namespace {

// What http::HeaderValue::to_str accepts: tab and visible ASCII.
bool visible_ascii(std::string_view s) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u != '\t' && (u < 0x20 || u >= 0x7f)) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n\v\f";
  auto first = s.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(kSpace) - first + 1);
}

}  // namespace

std::string forwarded_header(const tcp::endpoint& client,
                             std::optional<std::string_view> service_hostname) {
  std::string out = "for=\"";
  append_endpoint(out, client);
  out += '"';
  if (service_hostname) {
    out += ";host=";
    out += *service_hostname;
  }
  return out;
}

std::optional<std::string> parse_forwarded_host(std::string_view value) {
  for (char c : value) {
    if (static_cast<unsigned char>(c) >= 0x80) return std::nullopt;
  }
  constexpr std::string_view kHost = "host=";
  std::size_t start = 0;
  while (start <= value.size()) {
    std::size_t end = value.find(';', start);
    if (end == std::string_view::npos) end = value.size();
    std::string_view part = trim(value.substr(start, end - start));
    if (part.starts_with(kHost)) {
      // Only the first host= counts, even when it is empty.
      std::string_view host = part.substr(kHost.size());
      if (host.starts_with('"')) host.remove_prefix(1);
      if (host.ends_with('"')) host.remove_suffix(1);
      if (host.empty()) return std::nullopt;
      return std::string(host);
    }
    start = end + 1;
  }
  return std::nullopt;
}

Baggage baggage_of(const state::Workload& w) {
  return Baggage{w.cluster_id,         w.namespace_,      w.workload_name, w.canonical_name,
                 w.canonical_revision, w.locality.region, w.locality.zone};
}

std::string baggage_header(const state::Workload& workload) {
  // Straight from the workload's fields: this header is built for every
  // outbound connection.
  const std::string_view type = state::enum_name(workload.workload_type);
  const std::pair<std::string_view, const std::string*> entries[] = {
      {"k8s.cluster.name", &workload.cluster_id},
      {"k8s.namespace.name", &workload.namespace_},
      {{}, &workload.workload_name},  // k8s.<type>.name
      {"service.name", &workload.canonical_name},
      {"service.version", &workload.canonical_revision},
      {"cloud.region", &workload.locality.region},
      {"cloud.availability_zone", &workload.locality.zone},
  };
  std::string out;
  for (const auto& [key, value] : entries) {
    if (value->empty()) continue;
    if (!out.empty()) out += ',';
    if (key.empty()) {
      out += "k8s.";
      out += type;
      out += ".name";
    } else {
      out += key;
    }
    out += '=';
    out += *value;
  }
  return out;
}

Baggage parse_baggage(std::span<const std::string_view> values) {
  for (std::string_view v : values) {
    if (!visible_ascii(v)) return {};
  }
  Baggage b;
  for (std::string_view line : values) {
    std::size_t start = 0;
    while (start <= line.size()) {
      std::size_t end = line.find(',', start);
      if (end == std::string_view::npos) end = line.size();
      std::string_view entry = line.substr(start, end - start);
      start = end + 1;

      std::size_t eq = entry.find('=');
      if (eq == std::string_view::npos) continue;
      std::string_view key = entry.substr(0, eq);
      std::string_view value = entry.substr(eq + 1);
      // Istio keeps only the text up to a second '='.
      value = value.substr(0, value.find('='));

      std::string* field = nullptr;
      if (key == "k8s.cluster.name") {
        field = &b.cluster_id;
      } else if (key == "k8s.namespace.name") {
        field = &b.namespace_;
      } else if (key == "k8s.deployment.name" || key == "k8s.cronjob.name" ||
                 key == "k8s.pod.name" || key == "k8s.job.name") {
        field = &b.workload_name;
      } else if (key == "service.name") {
        field = &b.service_name;
      } else if (key == "service.version") {
        field = &b.revision;
      } else if (key == "cloud.region") {
        field = &b.region;
      } else if (key == "cloud.availability_zone") {
        field = &b.zone;
      }
      // An empty value clears an earlier one, as Istio's Option assignment does.
      if (field) field->assign(value);
    }
  }
  return b;
}

std::string traceparent_header(Random& random) {
  const uint64_t parts[] = {random.next_u64(), random.next_u64(), random.next_u64()};
  // "00-" trace id (32 hex) "-" parent id (16 hex) "-00", lower-case hex.
  std::string out(55, '0');
  const auto put_hex = [&out](std::size_t at, uint64_t value) {
    constexpr char kHex[] = "0123456789abcdef";
    for (std::size_t i = 0; i < 16; ++i) out[at + 15 - i] = kHex[(value >> (4 * i)) & 0xf];
  };
  out[2] = '-';
  put_hex(3, parts[0]);
  put_hex(19, parts[1]);
  out[35] = '-';
  put_hex(36, parts[2]);
  out[52] = '-';
  return out;
}

}  // namespace ztunnel::proxy
