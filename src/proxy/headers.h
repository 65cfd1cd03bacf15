// Values of the headers an HBONE CONNECT carries (forwarded, baggage, traceparent), and parsers.
#pragma once

#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "proxy/hbone_address.h"
#include "proxy/random.h"
#include "state/types.h"

namespace ztunnel::proxy {

inline constexpr std::string_view kForwardedHeader = "forwarded";
inline constexpr std::string_view kBaggageHeader = "baggage";
inline constexpr std::string_view kTraceparentHeader = "traceparent";
// Only on the inner CONNECT of double HBONE (not implemented yet).
inline constexpr std::string_view kForwardedNetworkHeader = "x-forwarded-network";

// `for="<client ip:port>"`, plus `;host=<hostname>` when the client addressed
// a service, which the inbound side uses as a hint for metrics.
std::string forwarded_header(const tcp::endpoint& client,
                             std::optional<std::string_view> service_hostname = std::nullopt);

// The `host=` parameter of a Forwarded header (quotes stripped), if present
// and non-empty. Non-ASCII input yields nothing, as in Istio.
std::optional<std::string> parse_forwarded_host(std::string_view value);

// Workload metadata exchanged in `baggage` (W3C Baggage with OpenTelemetry
// attribute names). An empty field means "not sent".
struct Baggage {
  std::string cluster_id;
  std::string namespace_;
  std::string workload_name;
  std::string service_name;  // the canonical service name
  std::string revision;      // the canonical revision
  std::string region;
  std::string zone;

  friend bool operator==(const Baggage&, const Baggage&) = default;
};

Baggage baggage_of(const state::Workload& workload);

// `k8s.cluster.name=..,k8s.namespace.name=..,k8s.<type>.name=..,service.name=..,
// service.version=..,cloud.region=..,cloud.availability_zone=..`, in that
// order, leaving out empty values; <type> is the lower-case workload type.
std::string baggage_header(const state::Workload& workload);

// Merges every `baggage` header line, later keys overriding earlier ones.
// Like Istio: entries are split on ',' and '=' with no trimming, unknown keys
// and empty values are ignored, and if any line is not visible ASCII the
// whole result is empty.
Baggage parse_baggage(std::span<const std::string_view> values);
inline Baggage parse_baggage(std::initializer_list<std::string_view> values) {
  return parse_baggage(std::span<const std::string_view>(values.begin(), values.size()));
}

// A fresh W3C trace context, `00-<32 hex trace id>-<16 hex parent id>-00`:
// ztunnel starts a trace per connection and never samples it.
std::string traceparent_header(Random& random);

}  // namespace ztunnel::proxy
