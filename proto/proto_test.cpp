// Wire-compatibility guard for Istio's schemas: descriptors, round trips and hand-built bytes.
#include <google/protobuf/any.pb.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/duration.pb.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/wrappers.pb.h>

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "authorization.pb.h"
#include "citadel.pb.h"
#include "support/testing.h"
#include "workload.pb.h"
#include "xds.pb.h"
#include "zds.pb.h"

namespace ztunnel::proto {
namespace {

namespace pb = google::protobuf;
namespace wl = istio::workload;
namespace sec = istio::security;
namespace zds = istio::workload::zds;
namespace ca = istio::v1::auth;
namespace xds = envoy::service::discovery::v3;

// ---------------------------------------------------------------------------
// Descriptor tables, written from Istio ztunnel's proto/ files.

// One field as it must look on the wire. The signature spells the label and
// type: "repeated ", "optional " (proto3 explicit presence) or "oneof <name> ",
// then the scalar type or the full message/enum name, " [packed]" last.
struct FieldRow {
  std::string_view message;
  std::string_view field;
  int number;
  std::string_view signature;
};

// clang-format off
constexpr FieldRow kFields[] = {
  // workload.proto
  {"istio.workload.Address", "workload", 1, "oneof type istio.workload.Workload"},
  {"istio.workload.Address", "service", 2, "oneof type istio.workload.Service"},

  {"istio.workload.Service", "name", 1, "string"},
  {"istio.workload.Service", "namespace", 2, "string"},
  {"istio.workload.Service", "hostname", 3, "string"},
  {"istio.workload.Service", "addresses", 4, "repeated istio.workload.NetworkAddress"},
  {"istio.workload.Service", "ports", 5, "repeated istio.workload.Port"},
  {"istio.workload.Service", "subject_alt_names", 6, "repeated string"},
  {"istio.workload.Service", "waypoint", 7, "istio.workload.GatewayAddress"},
  {"istio.workload.Service", "load_balancing", 8, "istio.workload.LoadBalancing"},
  {"istio.workload.Service", "ip_families", 9, "istio.workload.IPFamilies"},
  {"istio.workload.Service", "extensions", 10, "repeated istio.workload.Extension"},
  {"istio.workload.Service", "canonical", 11, "bool"},
  {"istio.workload.Service", "ingress_use_waypoint", 12, "bool"},
  {"istio.workload.Service", "weighted_waypoints", 13, "repeated istio.workload.WeightedWaypoint"},
  {"istio.workload.Service", "visibility", 14, "istio.workload.Service.Visibility"},

  {"istio.workload.LoadBalancing", "routing_preference", 1, "repeated istio.workload.LoadBalancing.Scope [packed]"},
  {"istio.workload.LoadBalancing", "mode", 2, "istio.workload.LoadBalancing.Mode"},
  {"istio.workload.LoadBalancing", "health_policy", 3, "istio.workload.LoadBalancing.HealthPolicy"},

  {"istio.workload.Workload", "name", 1, "string"},
  {"istio.workload.Workload", "namespace", 2, "string"},
  {"istio.workload.Workload", "addresses", 3, "repeated bytes"},
  {"istio.workload.Workload", "network", 4, "string"},
  {"istio.workload.Workload", "tunnel_protocol", 5, "istio.workload.TunnelProtocol"},
  {"istio.workload.Workload", "trust_domain", 6, "string"},
  {"istio.workload.Workload", "service_account", 7, "string"},
  {"istio.workload.Workload", "waypoint", 8, "istio.workload.GatewayAddress"},
  {"istio.workload.Workload", "node", 9, "string"},
  {"istio.workload.Workload", "canonical_name", 10, "string"},
  {"istio.workload.Workload", "canonical_revision", 11, "string"},
  {"istio.workload.Workload", "workload_type", 12, "istio.workload.WorkloadType"},
  {"istio.workload.Workload", "workload_name", 13, "string"},
  {"istio.workload.Workload", "native_tunnel", 14, "bool"},
  {"istio.workload.Workload", "authorization_policies", 16, "repeated string"},
  {"istio.workload.Workload", "status", 17, "istio.workload.WorkloadStatus"},
  {"istio.workload.Workload", "cluster_id", 18, "string"},
  {"istio.workload.Workload", "network_gateway", 19, "istio.workload.GatewayAddress"},
  {"istio.workload.Workload", "uid", 20, "string"},
  {"istio.workload.Workload", "hostname", 21, "string"},
  {"istio.workload.Workload", "services", 22, "map<string, istio.workload.PortList>"},
  {"istio.workload.Workload", "application_tunnel", 23, "istio.workload.ApplicationTunnel"},
  {"istio.workload.Workload", "locality", 24, "istio.workload.Locality"},
  {"istio.workload.Workload", "network_mode", 25, "istio.workload.NetworkMode"},
  {"istio.workload.Workload", "extensions", 26, "repeated istio.workload.Extension"},
  {"istio.workload.Workload", "capacity", 27, "google.protobuf.UInt32Value"},

  {"istio.workload.Locality", "region", 1, "string"},
  {"istio.workload.Locality", "zone", 2, "string"},
  {"istio.workload.Locality", "subzone", 3, "string"},

  {"istio.workload.PortList", "ports", 1, "repeated istio.workload.Port"},

  {"istio.workload.Port", "service_port", 1, "uint32"},
  {"istio.workload.Port", "target_port", 2, "uint32"},
  {"istio.workload.Port", "app_protocol", 3, "istio.workload.AppProtocol"},

  {"istio.workload.ApplicationTunnel", "protocol", 1, "istio.workload.ApplicationTunnel.Protocol"},
  {"istio.workload.ApplicationTunnel", "port", 2, "uint32"},

  {"istio.workload.GatewayAddress", "hostname", 1, "oneof destination istio.workload.NamespacedHostname"},
  {"istio.workload.GatewayAddress", "address", 2, "oneof destination istio.workload.NetworkAddress"},
  {"istio.workload.GatewayAddress", "hbone_mtls_port", 3, "uint32"},

  {"istio.workload.WeightedWaypoint", "destination", 1, "istio.workload.GatewayAddress"},
  {"istio.workload.WeightedWaypoint", "weight", 2, "uint32"},

  {"istio.workload.NetworkAddress", "network", 1, "string"},
  {"istio.workload.NetworkAddress", "address", 2, "bytes"},
  {"istio.workload.NetworkAddress", "length", 3, "optional uint32"},

  {"istio.workload.NamespacedHostname", "namespace", 1, "string"},
  {"istio.workload.NamespacedHostname", "hostname", 2, "string"},

  {"istio.workload.Extension", "name", 1, "string"},
  {"istio.workload.Extension", "config", 2, "google.protobuf.Any"},

  // authorization.proto
  {"istio.security.Authorization", "name", 1, "string"},
  {"istio.security.Authorization", "namespace", 2, "string"},
  {"istio.security.Authorization", "scope", 3, "istio.security.Scope"},
  {"istio.security.Authorization", "action", 4, "istio.security.Action"},
  {"istio.security.Authorization", "rules", 5, "repeated istio.security.Rule"},
  {"istio.security.Authorization", "dry_run", 6, "bool"},
  {"istio.security.Authorization", "extensions", 7, "repeated istio.workload.Extension"},

  {"istio.security.Rule", "clauses", 1, "repeated istio.security.Clause"},

  {"istio.security.Clause", "matches", 2, "repeated istio.security.Match"},

  {"istio.security.Match", "namespaces", 1, "repeated istio.security.StringMatch"},
  {"istio.security.Match", "not_namespaces", 2, "repeated istio.security.StringMatch"},
  {"istio.security.Match", "principals", 3, "repeated istio.security.StringMatch"},
  {"istio.security.Match", "not_principals", 4, "repeated istio.security.StringMatch"},
  {"istio.security.Match", "source_ips", 5, "repeated istio.security.Address"},
  {"istio.security.Match", "not_source_ips", 6, "repeated istio.security.Address"},
  {"istio.security.Match", "destination_ips", 7, "repeated istio.security.Address"},
  {"istio.security.Match", "not_destination_ips", 8, "repeated istio.security.Address"},
  {"istio.security.Match", "destination_ports", 9, "repeated uint32 [packed]"},
  {"istio.security.Match", "not_destination_ports", 10, "repeated uint32 [packed]"},
  {"istio.security.Match", "service_accounts", 11, "repeated istio.security.ServiceAccountMatch"},
  {"istio.security.Match", "not_service_accounts", 12, "repeated istio.security.ServiceAccountMatch"},
  {"istio.security.Match", "extensions", 13, "repeated istio.workload.Extension"},

  {"istio.security.Address", "address", 1, "bytes"},
  {"istio.security.Address", "length", 2, "uint32"},

  {"istio.security.ServiceAccountMatch", "namespace", 1, "string"},
  {"istio.security.ServiceAccountMatch", "serviceAccount", 2, "string"},

  {"istio.security.StringMatch", "exact", 1, "oneof match_type string"},
  {"istio.security.StringMatch", "prefix", 2, "oneof match_type string"},
  {"istio.security.StringMatch", "suffix", 3, "oneof match_type string"},
  {"istio.security.StringMatch", "presence", 4, "oneof match_type google.protobuf.Empty"},

  // citadel.proto
  {"istio.v1.auth.IstioCertificateRequest", "csr", 1, "string"},
  {"istio.v1.auth.IstioCertificateRequest", "validity_duration", 3, "int64"},
  {"istio.v1.auth.IstioCertificateRequest", "metadata", 4, "google.protobuf.Struct"},
  {"istio.v1.auth.IstioCertificateResponse", "cert_chain", 1, "repeated string"},

  // xds.proto
  {"envoy.service.discovery.v3.Status", "code", 1, "int32"},
  {"envoy.service.discovery.v3.Status", "message", 2, "string"},
  {"envoy.service.discovery.v3.Status", "details", 3, "repeated google.protobuf.Any"},

  {"envoy.service.discovery.v3.Node", "id", 1, "string"},
  {"envoy.service.discovery.v3.Node", "cluster", 2, "string"},
  {"envoy.service.discovery.v3.Node", "metadata", 3, "google.protobuf.Struct"},
  {"envoy.service.discovery.v3.Node", "build_version", 5, "string"},

  {"envoy.service.discovery.v3.DiscoveryRequest", "version_info", 1, "string"},
  {"envoy.service.discovery.v3.DiscoveryRequest", "node", 2, "envoy.service.discovery.v3.Node"},
  {"envoy.service.discovery.v3.DiscoveryRequest", "resource_names", 3, "repeated string"},
  {"envoy.service.discovery.v3.DiscoveryRequest", "type_url", 4, "string"},
  {"envoy.service.discovery.v3.DiscoveryRequest", "response_nonce", 5, "string"},
  {"envoy.service.discovery.v3.DiscoveryRequest", "error_detail", 6, "envoy.service.discovery.v3.Status"},

  {"envoy.service.discovery.v3.DiscoveryResponse", "version_info", 1, "string"},
  {"envoy.service.discovery.v3.DiscoveryResponse", "resources", 2, "repeated google.protobuf.Any"},
  {"envoy.service.discovery.v3.DiscoveryResponse", "canary", 3, "bool"},
  {"envoy.service.discovery.v3.DiscoveryResponse", "type_url", 4, "string"},
  {"envoy.service.discovery.v3.DiscoveryResponse", "nonce", 5, "string"},

  {"envoy.service.discovery.v3.DeltaDiscoveryRequest", "node", 1, "envoy.service.discovery.v3.Node"},
  {"envoy.service.discovery.v3.DeltaDiscoveryRequest", "type_url", 2, "string"},
  {"envoy.service.discovery.v3.DeltaDiscoveryRequest", "resource_names_subscribe", 3, "repeated string"},
  {"envoy.service.discovery.v3.DeltaDiscoveryRequest", "resource_names_unsubscribe", 4, "repeated string"},
  {"envoy.service.discovery.v3.DeltaDiscoveryRequest", "initial_resource_versions", 5, "map<string, string>"},
  {"envoy.service.discovery.v3.DeltaDiscoveryRequest", "response_nonce", 6, "string"},
  {"envoy.service.discovery.v3.DeltaDiscoveryRequest", "error_detail", 7, "envoy.service.discovery.v3.Status"},

  {"envoy.service.discovery.v3.DeltaDiscoveryResponse", "system_version_info", 1, "string"},
  {"envoy.service.discovery.v3.DeltaDiscoveryResponse", "resources", 2, "repeated envoy.service.discovery.v3.Resource"},
  {"envoy.service.discovery.v3.DeltaDiscoveryResponse", "type_url", 4, "string"},
  {"envoy.service.discovery.v3.DeltaDiscoveryResponse", "nonce", 5, "string"},
  {"envoy.service.discovery.v3.DeltaDiscoveryResponse", "removed_resources", 6, "repeated string"},

  {"envoy.service.discovery.v3.Resource", "version", 1, "string"},
  {"envoy.service.discovery.v3.Resource", "resource", 2, "google.protobuf.Any"},
  {"envoy.service.discovery.v3.Resource", "name", 3, "string"},
  {"envoy.service.discovery.v3.Resource", "aliases", 4, "repeated string"},
  {"envoy.service.discovery.v3.Resource", "ttl", 6, "google.protobuf.Duration"},
  {"envoy.service.discovery.v3.Resource", "cache_control", 7, "envoy.service.discovery.v3.Resource.CacheControl"},
  {"envoy.service.discovery.v3.Resource.CacheControl", "do_not_cache", 1, "bool"},

  // zds.proto
  {"istio.workload.zds.ZdsHello", "version", 1, "istio.workload.zds.Version"},
  {"istio.workload.zds.WorkloadInfo", "name", 1, "string"},
  {"istio.workload.zds.WorkloadInfo", "namespace", 2, "string"},
  {"istio.workload.zds.WorkloadInfo", "service_account", 3, "string"},
  {"istio.workload.zds.AddWorkload", "uid", 1, "string"},
  {"istio.workload.zds.AddWorkload", "workload_info", 2, "istio.workload.zds.WorkloadInfo"},
  {"istio.workload.zds.KeepWorkload", "uid", 1, "string"},
  {"istio.workload.zds.DelWorkload", "uid", 2, "string"},
  {"istio.workload.zds.Ack", "error", 1, "string"},
  {"istio.workload.zds.WorkloadRequest", "add", 1, "oneof payload istio.workload.zds.AddWorkload"},
  {"istio.workload.zds.WorkloadRequest", "del", 2, "oneof payload istio.workload.zds.DelWorkload"},
  {"istio.workload.zds.WorkloadRequest", "snapshot_sent", 3, "oneof payload istio.workload.zds.SnapshotSent"},
  {"istio.workload.zds.WorkloadRequest", "keep", 5, "oneof payload istio.workload.zds.KeepWorkload"},
  {"istio.workload.zds.WorkloadResponse", "ack", 1, "oneof payload istio.workload.zds.Ack"},
};

// Every message the five files define, nested ones included (map entries aside).
constexpr std::string_view kMessages[] = {
  "istio.workload.Address", "istio.workload.Service", "istio.workload.LoadBalancing",
  "istio.workload.Workload", "istio.workload.Locality", "istio.workload.PortList",
  "istio.workload.Port", "istio.workload.ApplicationTunnel", "istio.workload.GatewayAddress",
  "istio.workload.WeightedWaypoint", "istio.workload.NetworkAddress",
  "istio.workload.NamespacedHostname", "istio.workload.Extension",
  "istio.security.Authorization", "istio.security.Rule", "istio.security.Clause",
  "istio.security.Match", "istio.security.Address", "istio.security.ServiceAccountMatch",
  "istio.security.StringMatch",
  "istio.v1.auth.IstioCertificateRequest", "istio.v1.auth.IstioCertificateResponse",
  "envoy.service.discovery.v3.Status", "envoy.service.discovery.v3.Node",
  "envoy.service.discovery.v3.DiscoveryRequest", "envoy.service.discovery.v3.DiscoveryResponse",
  "envoy.service.discovery.v3.DeltaDiscoveryRequest",
  "envoy.service.discovery.v3.DeltaDiscoveryResponse", "envoy.service.discovery.v3.Resource",
  "envoy.service.discovery.v3.Resource.CacheControl",
  "istio.workload.zds.ZdsHello", "istio.workload.zds.WorkloadInfo",
  "istio.workload.zds.AddWorkload", "istio.workload.zds.KeepWorkload",
  "istio.workload.zds.DelWorkload", "istio.workload.zds.SnapshotSent", "istio.workload.zds.Ack",
  "istio.workload.zds.WorkloadRequest", "istio.workload.zds.WorkloadResponse",
};

struct EnumRow {
  std::string_view enum_name;
  std::string_view value;
  int number;
};

constexpr EnumRow kEnumValues[] = {
  {"istio.workload.Service.Visibility", "PUBLIC", 0},
  {"istio.workload.Service.Visibility", "NAMESPACE", 1},
  {"istio.workload.IPFamilies", "AUTOMATIC", 0},
  {"istio.workload.IPFamilies", "IPV4_ONLY", 1},
  {"istio.workload.IPFamilies", "IPV6_ONLY", 2},
  {"istio.workload.IPFamilies", "DUAL", 3},
  {"istio.workload.NetworkMode", "STANDARD", 0},
  {"istio.workload.NetworkMode", "HOST_NETWORK", 1},
  {"istio.workload.LoadBalancing.Scope", "UNSPECIFIED_SCOPE", 0},
  {"istio.workload.LoadBalancing.Scope", "REGION", 1},
  {"istio.workload.LoadBalancing.Scope", "ZONE", 2},
  {"istio.workload.LoadBalancing.Scope", "SUBZONE", 3},
  {"istio.workload.LoadBalancing.Scope", "NODE", 4},
  {"istio.workload.LoadBalancing.Scope", "CLUSTER", 5},
  {"istio.workload.LoadBalancing.Scope", "NETWORK", 6},
  {"istio.workload.LoadBalancing.Mode", "UNSPECIFIED_MODE", 0},
  {"istio.workload.LoadBalancing.Mode", "STRICT", 1},
  {"istio.workload.LoadBalancing.Mode", "FAILOVER", 2},
  {"istio.workload.LoadBalancing.Mode", "PASSTHROUGH", 3},
  {"istio.workload.LoadBalancing.HealthPolicy", "ONLY_HEALTHY", 0},
  {"istio.workload.LoadBalancing.HealthPolicy", "ALLOW_ALL", 1},
  {"istio.workload.WorkloadStatus", "HEALTHY", 0},
  {"istio.workload.WorkloadStatus", "UNHEALTHY", 1},
  {"istio.workload.WorkloadType", "DEPLOYMENT", 0},
  {"istio.workload.WorkloadType", "CRONJOB", 1},
  {"istio.workload.WorkloadType", "POD", 2},
  {"istio.workload.WorkloadType", "JOB", 3},
  {"istio.workload.AppProtocol", "UNKNOWN", 0},
  {"istio.workload.AppProtocol", "HTTP11", 1},
  {"istio.workload.AppProtocol", "HTTP2", 2},
  {"istio.workload.AppProtocol", "GRPC", 3},
  {"istio.workload.AppProtocol", "TCP", 4},
  {"istio.workload.AppProtocol", "TLS", 5},
  {"istio.workload.TunnelProtocol", "NONE", 0},
  {"istio.workload.TunnelProtocol", "HBONE", 1},
  {"istio.workload.TunnelProtocol", "LEGACY_ISTIO_MTLS", 2},
  {"istio.workload.ApplicationTunnel.Protocol", "NONE", 0},
  {"istio.workload.ApplicationTunnel.Protocol", "PROXY", 1},
  {"istio.security.Scope", "GLOBAL", 0},
  {"istio.security.Scope", "NAMESPACE", 1},
  {"istio.security.Scope", "WORKLOAD_SELECTOR", 2},
  {"istio.security.Action", "ALLOW", 0},
  {"istio.security.Action", "DENY", 1},
  {"istio.workload.zds.Version", "NOT_USED", 0},
  {"istio.workload.zds.Version", "V1", 1},
};
// clang-format on

struct FileRow {
  const pb::FileDescriptor* file;
  std::string_view name;
  std::string_view package;
};

std::vector<FileRow> files() {
  return {
      {wl::Address::descriptor()->file(), "workload.proto", "istio.workload"},
      {sec::Authorization::descriptor()->file(), "authorization.proto", "istio.security"},
      {ca::IstioCertificateRequest::descriptor()->file(), "citadel.proto", "istio.v1.auth"},
      {xds::DeltaDiscoveryRequest::descriptor()->file(), "xds.proto", "envoy.service.discovery.v3"},
      {zds::WorkloadRequest::descriptor()->file(), "zds.proto", "istio.workload.zds"},
  };
}

void collect(const pb::Descriptor* message, std::vector<const pb::Descriptor*>& messages,
             std::vector<const pb::EnumDescriptor*>& enums) {
  if (message->options().map_entry()) return;
  messages.push_back(message);
  for (int i = 0; i < message->enum_type_count(); ++i) enums.push_back(message->enum_type(i));
  for (int i = 0; i < message->nested_type_count(); ++i)
    collect(message->nested_type(i), messages, enums);
}

std::string type_of(const pb::FieldDescriptor* field) {
  if (field->is_map()) {
    const auto* entry = field->message_type();
    return "map<" + type_of(entry->map_key()) + ", " + type_of(entry->map_value()) + ">";
  }
  switch (field->type()) {
    case pb::FieldDescriptor::TYPE_MESSAGE:
    case pb::FieldDescriptor::TYPE_GROUP:
      return field->message_type()->full_name();
    case pb::FieldDescriptor::TYPE_ENUM:
      return field->enum_type()->full_name();
    default:
      return field->type_name();
  }
}

std::string signature_of(const pb::FieldDescriptor* field) {
  std::string s;
  if (field->is_map()) {
    // the map<> spelling says it all
  } else if (field->is_repeated()) {
    s += "repeated ";
  } else if (field->has_optional_keyword()) {
    s += "optional ";
  } else if (const auto* oneof = field->real_containing_oneof()) {
    s += "oneof " + oneof->name() + " ";
  }
  s += type_of(field);
  if (field->is_packed()) s += " [packed]";
  return s;
}

// ---------------------------------------------------------------------------
// Hand-built wire bytes. A tag is varint(field << 3 | wire type).

enum class WireType : std::uint8_t { kVarint = 0, kLen = 2 };

std::string varint(std::uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}

std::string tag(std::uint32_t field, WireType type) {
  return varint((std::uint64_t{field} << 3) | static_cast<std::uint8_t>(type));
}

std::string varint_field(std::uint32_t field, std::uint64_t value) {
  return tag(field, WireType::kVarint) + varint(value);
}

std::string len_field(std::uint32_t field, std::string_view payload) {
  return tag(field, WireType::kLen) + varint(payload.size()) + std::string(payload);
}

std::string bytes(std::initializer_list<std::uint8_t> octets) {
  return std::string(octets.begin(), octets.end());
}

std::string from_hex(std::string_view hex) {
  auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(nibble(hex[i]) << 4 | nibble(hex[i + 1])));
  return out;
}

std::string to_hex(std::string_view data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : data) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

// Sorted map keys and canonical field order, as the Python fixture encoder emits.
std::string deterministic(const pb::Message& message) {
  std::string out;
  {
    pb::io::StringOutputStream stream(&out);
    pb::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Fully populated messages for round trips.

std::string ipv4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return bytes({a, b, c, d});
}

std::string ipv6_fd00(std::uint8_t last) {
  return bytes({0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last});
}

wl::Extension extension(const std::string& name) {
  wl::Extension e;
  e.set_name(name);
  pb::StringValue config;
  config.set_value("config-of-" + name);
  e.mutable_config()->PackFrom(config);
  return e;
}

wl::NetworkAddress network_address(const std::string& ip, std::uint32_t length) {
  wl::NetworkAddress a;
  a.set_network("net1");
  a.set_address(ip);
  a.set_length(length);
  return a;
}

wl::GatewayAddress gateway_by_ip() {
  wl::GatewayAddress g;
  *g.mutable_address() = network_address(ipv4(10, 0, 0, 9), 32);
  g.set_hbone_mtls_port(15008);
  return g;
}

wl::GatewayAddress gateway_by_hostname() {
  wl::GatewayAddress g;
  g.mutable_hostname()->set_namespace_("istio-system");
  g.mutable_hostname()->set_hostname("eastwest.istio-system.svc.cluster.local");
  g.set_hbone_mtls_port(15008);
  return g;
}

wl::Port port(std::uint32_t service_port, std::uint32_t target_port, wl::AppProtocol protocol) {
  wl::Port p;
  p.set_service_port(service_port);
  p.set_target_port(target_port);
  p.set_app_protocol(protocol);
  return p;
}

wl::Workload full_workload() {
  wl::Workload w;
  w.set_name("pod-a");
  w.set_namespace_("ns1");
  w.add_addresses(ipv4(10, 0, 0, 5));
  w.add_addresses(ipv6_fd00(5));
  w.set_network("net1");
  w.set_tunnel_protocol(wl::HBONE);
  w.set_trust_domain("example.org");
  w.set_service_account("sa-a");
  *w.mutable_waypoint() = gateway_by_ip();
  w.set_node("node-1");
  w.set_canonical_name("app-a");
  w.set_canonical_revision("v1");
  w.set_workload_type(wl::POD);
  w.set_workload_name("app-a");
  w.set_native_tunnel(true);
  w.add_authorization_policies("ns1/allow-b");
  w.set_status(wl::UNHEALTHY);
  w.set_cluster_id("cluster-1");
  *w.mutable_network_gateway() = gateway_by_hostname();
  w.set_uid("cluster-1//Pod/ns1/pod-a");
  w.set_hostname("pod-a.example");
  *(*w.mutable_services())["ns1/svc.ns1.svc.cluster.local"].add_ports() =
      port(80, 8080, wl::HTTP11);
  w.mutable_application_tunnel()->set_protocol(wl::ApplicationTunnel::PROXY);
  w.mutable_application_tunnel()->set_port(15088);
  w.mutable_locality()->set_region("r1");
  w.mutable_locality()->set_zone("z1");
  w.mutable_locality()->set_subzone("s1");
  w.set_network_mode(wl::HOST_NETWORK);
  *w.add_extensions() = extension("workload-ext");
  w.mutable_capacity()->set_value(3);
  return w;
}

wl::Service full_service() {
  wl::Service s;
  s.set_name("svc");
  s.set_namespace_("ns1");
  s.set_hostname("svc.ns1.svc.cluster.local");
  *s.add_addresses() = network_address(ipv4(10, 96, 0, 10), 32);
  *s.add_addresses() = network_address(ipv6_fd00(10), 128);
  *s.add_ports() = port(443, 8443, wl::TLS);
  s.add_subject_alt_names("spiffe://example.org/ns/ns1/sa/svc");
  *s.mutable_waypoint() = gateway_by_hostname();
  s.mutable_load_balancing()->add_routing_preference(wl::LoadBalancing::NETWORK);
  s.mutable_load_balancing()->add_routing_preference(wl::LoadBalancing::ZONE);
  s.mutable_load_balancing()->set_mode(wl::LoadBalancing::FAILOVER);
  s.mutable_load_balancing()->set_health_policy(wl::LoadBalancing::ALLOW_ALL);
  s.set_ip_families(wl::DUAL);
  *s.add_extensions() = extension("service-ext");
  s.set_canonical(true);
  s.set_ingress_use_waypoint(true);
  auto* weighted = s.add_weighted_waypoints();
  *weighted->mutable_destination() = gateway_by_ip();
  weighted->set_weight(90);
  s.set_visibility(wl::Service::NAMESPACE);
  return s;
}

sec::Address cidr(const std::string& ip, std::uint32_t length) {
  sec::Address a;
  a.set_address(ip);
  a.set_length(length);
  return a;
}

sec::Authorization full_authorization() {
  sec::Authorization a;
  a.set_name("deny-b");
  a.set_namespace_("ns1");
  a.set_scope(sec::WORKLOAD_SELECTOR);
  a.set_action(sec::DENY);
  a.set_dry_run(true);
  *a.add_extensions() = extension("policy-ext");
  auto* m = a.add_rules()->add_clauses()->add_matches();
  m->add_namespaces()->set_exact("ns2");
  m->add_not_namespaces()->set_prefix("kube-");
  m->add_principals()->set_suffix("/sa/b");
  m->add_not_principals()->mutable_presence();
  *m->add_source_ips() = cidr(ipv4(10, 1, 0, 0), 16);
  *m->add_not_source_ips() = cidr(ipv4(10, 1, 2, 0), 24);
  *m->add_destination_ips() = cidr(ipv6_fd00(0), 64);
  *m->add_not_destination_ips() = cidr(ipv6_fd00(1), 128);
  m->add_destination_ports(443);
  m->add_not_destination_ports(8443);
  auto* sa = m->add_service_accounts();
  sa->set_namespace_("ns2");
  sa->set_serviceaccount("b");
  auto* not_sa = m->add_not_service_accounts();
  not_sa->set_namespace_("ns3");
  not_sa->set_serviceaccount("c");
  *m->add_extensions() = extension("match-ext");
  return a;
}

xds::Node full_node() {
  xds::Node n;
  n.set_id("ztunnel~10.0.0.2~ztunnel-abc.istio-system~istio-system.svc.cluster.local");
  n.set_cluster("Kubernetes");
  (*n.mutable_metadata()->mutable_fields())["NAMESPACE"].set_string_value("istio-system");
  n.set_build_version("0.1.0");
  return n;
}

xds::Status full_status() {
  xds::Status s;
  s.set_code(3);
  s.set_message("bad workload");
  pb::StringValue detail;
  detail.set_value("uid cluster-1//Pod/ns1/pod-a");
  s.add_details()->PackFrom(detail);
  return s;
}

// ---------------------------------------------------------------------------
// Reflection helpers.

// "Message.field" paths left unset in a message meant to have every field set:
// a real oneof counts once, and set submessages are checked recursively
// (well-known google.protobuf types excepted).
void collect_unset(const pb::Message& message, const std::string& path,
                   std::vector<std::string>& out) {
  const auto* descriptor = message.GetDescriptor();
  const auto* reflection = message.GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const auto* field = descriptor->field(i);
    if (const auto* oneof = field->real_containing_oneof()) {
      if (!reflection->HasOneof(message, oneof)) {
        if (oneof->field(0) == field) out.push_back(path + oneof->name());
        continue;
      }
      if (!reflection->HasField(message, field)) continue;
    }
    const bool set = field->is_repeated() ? reflection->FieldSize(message, field) > 0
                                          : reflection->HasField(message, field);
    if (!set) {
      out.push_back(path + field->name());
      continue;
    }
    if (field->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (field->message_type()->file()->package() == "google.protobuf") continue;
    if (field->is_repeated()) {
      for (int j = 0; j < reflection->FieldSize(message, field); ++j)
        collect_unset(reflection->GetRepeatedMessage(message, field, j),
                      path + field->name() + "[" + std::to_string(j) + "].", out);
    } else {
      collect_unset(reflection->GetMessage(message, field), path + field->name() + ".", out);
    }
  }
}

std::string unset_fields(const pb::Message& message) {
  std::vector<std::string> unset;
  collect_unset(message, "", unset);
  std::string joined;
  for (const auto& path : unset) joined += (joined.empty() ? "" : ", ") + path;
  return joined;
}

// Serializes, parses back into a fresh message and compares field by field.
void check_round_trip(const pb::Message& original) {
  INFO("message: ", original.GetTypeName());
  CHECK(unset_fields(original) == "");
  std::string wire;
  REQUIRE(original.SerializeToString(&wire));
  std::unique_ptr<pb::Message> parsed(original.New());
  REQUIRE(parsed->ParseFromString(wire));
  std::string report;
  pb::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&report);
  CHECK_MESSAGE(differencer.Compare(original, *parsed), report);
  CHECK(parsed->GetReflection()->GetUnknownFields(*parsed).empty());
}

// ---------------------------------------------------------------------------
// Encoded by tests/support/istio_wire_fixtures.py: pure-Python protobuf with
// schemas hand-written there from Istio's field numbers, not from our .proto files.

constexpr std::string_view kPyWorkloadAddress =
    "0ad0010a05706f642d6112036e73311a040a0000051a10fd00000000000000000000000000000528013a0473"
    "612d61420b120612040a00000918a0754a066e6f64652d3160028801019a01250a200a0c697374696f2d7379"
    "7374656d121065617374776573742e6578616d706c6518a075a201194b756265726e657465732f2f506f642f"
    "6e73312f706f642d61b2012a0a1d6e73312f7376632e6e73312e7376632e636c75737465722e6c6f63616c12"
    "090a07085010903f1801ba0105080110f075c201080a02723112027a31c80101da0100";
constexpr std::string_view kPyServiceAddress =
    "12630a0373766312036e73311a197376632e6e73312e7376632e636c75737465722e6c6f63616c220c0a046e"
    "65743112040a60000a220812040ac8000018182a0508bb03180542090a030601021002180148036a0e0a0a0a"
    "08120677702e6e7331105a7001";
constexpr std::string_view kPyAuthorization =
    "0a0664656e792d6212036e7331180220012a320a30122e0a050a036e73321a071a052f73612f62220222002a"
    "080a040a01000010104a04bb03fb415a080a036e73321201623001";
constexpr std::string_view kPyZdsAdd =
    "0a1f0a09706f642d7569642d3112120a05706f642d6112036e73311a0473612d61";
constexpr std::string_view kPyZdsDel = "120b1209706f642d7569642d31";
constexpr std::string_view kPyCertificateRequest =
    "0a232d2d2d2d2d424547494e20434552544946494341544520524551554553542d2d2d2d2d1880a30522410a"
    "3f0a14496d706572736f6e617465644964656e7469747912271a257370696666653a2f2f636c75737465722e"
    "6c6f63616c2f6e732f6e73312f73612f73612d61";
constexpr std::string_view kPyDeltaResponse =
    "0a02763712a3020a01331282020a2a747970652e676f6f676c65617069732e636f6d2f697374696f2e776f72"
    "6b6c6f61642e4164647265737312d3010ad0010a05706f642d6112036e73311a040a0000051a10fd00000000"
    "000000000000000000000528013a0473612d61420b120612040a00000918a0754a066e6f64652d3160028801"
    "019a01250a200a0c697374696f2d73797374656d121065617374776573742e6578616d706c6518a075a20119"
    "4b756265726e657465732f2f506f642f6e73312f706f642d61b2012a0a1d6e73312f7376632e6e73312e7376"
    "632e636c75737465722e6c6f63616c12090a07085010903f1801ba0105080110f075c201080a02723112027a"
    "31c80101da01001a194b756265726e657465732f2f506f642f6e73312f706f642d61222a747970652e676f6f"
    "676c65617069732e636f6d2f697374696f2e776f726b6c6f61642e416464726573732a036e2d31321e6e7331"
    "2f676f6e652e6e73312e7376632e636c75737465722e6c6f63616c";

// Parses a fixture, checks nothing was left unknown, and that re-encoding
// reproduces the other encoder's bytes exactly.
template <class M>
M parse_fixture(std::string_view hex) {
  const std::string wire = from_hex(hex);
  M message;
  REQUIRE(message.ParseFromString(wire));
  CHECK(message.GetReflection()->GetUnknownFields(message).empty());
  CHECK(to_hex(deterministic(message)) == hex);
  return message;
}

// The values workload_address() in the fixture script sets.
void check_python_workload(const wl::Workload& w) {
  CHECK(w.uid() == "Kubernetes//Pod/ns1/pod-a");
  CHECK(w.name() == "pod-a");
  CHECK(w.namespace_() == "ns1");
  REQUIRE(w.addresses_size() == 2);
  CHECK(w.addresses(0) == ipv4(10, 0, 0, 5));
  CHECK(w.addresses(1) == ipv6_fd00(5));
  CHECK(w.tunnel_protocol() == wl::HBONE);
  CHECK(w.service_account() == "sa-a");
  REQUIRE(w.waypoint().has_address());
  CHECK(w.waypoint().address().address() == ipv4(10, 0, 0, 9));
  CHECK_FALSE(w.waypoint().address().has_length());
  CHECK(w.waypoint().hbone_mtls_port() == 15008);
  CHECK(w.node() == "node-1");
  CHECK(w.workload_type() == wl::POD);
  CHECK(w.status() == wl::UNHEALTHY);
  REQUIRE(w.network_gateway().has_hostname());
  CHECK(w.network_gateway().hostname().namespace_() == "istio-system");
  CHECK(w.network_gateway().hostname().hostname() == "eastwest.example");
  REQUIRE(w.services().count("ns1/svc.ns1.svc.cluster.local") == 1);
  const auto& ports = w.services().at("ns1/svc.ns1.svc.cluster.local");
  REQUIRE(ports.ports_size() == 1);
  CHECK(ports.ports(0).service_port() == 80);
  CHECK(ports.ports(0).target_port() == 8080);
  CHECK(ports.ports(0).app_protocol() == wl::HTTP11);
  CHECK(w.application_tunnel().protocol() == wl::ApplicationTunnel::PROXY);
  CHECK(w.application_tunnel().port() == 15088);
  CHECK(w.locality().region() == "r1");
  CHECK(w.locality().zone() == "z1");
  CHECK(w.network_mode() == wl::HOST_NETWORK);
  // Present but zero: must not be mistaken for the absent default of 1.
  CHECK(w.has_capacity());
  CHECK(w.capacity().value() == 0);
}

}  // namespace

// ===========================================================================
// Descriptors

TEST_CASE("each schema file declares Istio's package") {
  for (const auto& row : files()) {
    CAPTURE(row.name);
    CHECK(row.file->name() == row.name);
    CHECK(row.file->package() == row.package);
    CHECK(row.file->syntax() == pb::FileDescriptor::SYNTAX_PROTO3);
  }
}

TEST_CASE("every field of every message has Istio's number, type and label") {
  std::vector<const pb::Descriptor*> messages;
  std::vector<const pb::EnumDescriptor*> enums;
  for (const auto& row : files())
    for (int i = 0; i < row.file->message_type_count(); ++i)
      collect(row.file->message_type(i), messages, enums);

  std::set<std::string> expected_messages(std::begin(kMessages), std::end(kMessages));
  std::set<std::string> defined_messages;
  for (const auto* m : messages) defined_messages.insert(m->full_name());
  CHECK(defined_messages == expected_messages);

  // Table -> descriptors: each row names an existing field with the right shape.
  std::set<std::pair<std::string, std::string>> rows;
  for (const auto& row : kFields) {
    CAPTURE(row.message);
    CAPTURE(row.field);
    CHECK(rows.emplace(std::string(row.message), std::string(row.field)).second);  // no dupes
    const auto* message =
        pb::DescriptorPool::generated_pool()->FindMessageTypeByName(std::string(row.message));
    REQUIRE(message != nullptr);
    const auto* field = message->FindFieldByName(std::string(row.field));
    REQUIRE(field != nullptr);
    CHECK(field->number() == row.number);
    CHECK(signature_of(field) == row.signature);
  }

  // Descriptors -> table: nothing defined that the table does not list.
  for (const auto* message : messages) {
    for (int i = 0; i < message->field_count(); ++i) {
      const auto* field = message->field(i);
      CAPTURE(field->full_name());
      CHECK(rows.count({message->full_name(), field->name()}) == 1);
    }
  }
}

TEST_CASE("every enum value has Istio's number") {
  std::vector<const pb::Descriptor*> messages;
  std::vector<const pb::EnumDescriptor*> enums;
  for (const auto& row : files()) {
    for (int i = 0; i < row.file->message_type_count(); ++i)
      collect(row.file->message_type(i), messages, enums);
    for (int i = 0; i < row.file->enum_type_count(); ++i) enums.push_back(row.file->enum_type(i));
  }

  std::set<std::pair<std::string, std::string>> rows;
  for (const auto& row : kEnumValues) {
    CAPTURE(row.enum_name);
    CAPTURE(row.value);
    rows.emplace(std::string(row.enum_name), std::string(row.value));
    const auto* e =
        pb::DescriptorPool::generated_pool()->FindEnumTypeByName(std::string(row.enum_name));
    REQUIRE(e != nullptr);
    const auto* value = e->FindValueByName(std::string(row.value));
    REQUIRE(value != nullptr);
    CHECK(value->number() == row.number);
  }
  for (const auto* e : enums) {
    for (int i = 0; i < e->value_count(); ++i) {
      CAPTURE(e->value(i)->full_name());
      CHECK(rows.count({e->full_name(), e->value(i)->name()}) == 1);
    }
  }
}

TEST_CASE("enums are nested where Istio nests them") {
  CHECK(wl::Service::Visibility_descriptor()->containing_type() == wl::Service::descriptor());
  CHECK(wl::LoadBalancing::Scope_descriptor()->containing_type() ==
        wl::LoadBalancing::descriptor());
  CHECK(wl::LoadBalancing::Mode_descriptor()->containing_type() == wl::LoadBalancing::descriptor());
  CHECK(wl::LoadBalancing::HealthPolicy_descriptor()->containing_type() ==
        wl::LoadBalancing::descriptor());
  CHECK(wl::ApplicationTunnel::Protocol_descriptor()->containing_type() ==
        wl::ApplicationTunnel::descriptor());
  CHECK(wl::TunnelProtocol_descriptor()->containing_type() == nullptr);
  CHECK(sec::Scope_descriptor()->containing_type() == nullptr);
  CHECK(xds::Resource::CacheControl::descriptor()->containing_type() ==
        xds::Resource::descriptor());
}

TEST_CASE("retired field numbers stay reserved") {
  CHECK(wl::Workload::descriptor()->IsReservedNumber(15));
  CHECK(wl::GatewayAddress::descriptor()->IsReservedNumber(4));
  CHECK(wl::GatewayAddress::descriptor()->IsReservedName("hbone_single_tls_port"));
  CHECK(zds::WorkloadInfo::descriptor()->IsReservedNumber(4));
  CHECK(zds::WorkloadInfo::descriptor()->IsReservedName("trust_domain"));
}

TEST_CASE("xDS resources get Istio's type URLs") {
  pb::Any any;
  any.PackFrom(wl::Address{});
  CHECK(any.type_url() == "type.googleapis.com/istio.workload.Address");
  any.PackFrom(sec::Authorization{});
  CHECK(any.type_url() == "type.googleapis.com/istio.security.Authorization");
}

TEST_CASE("the gRPC services have Istio's paths and streaming shapes") {
  const auto* ca_service = ca::IstioCertificateRequest::descriptor()->file()->FindServiceByName(
      "IstioCertificateService");
  REQUIRE(ca_service != nullptr);
  CHECK(ca_service->full_name() == "istio.v1.auth.IstioCertificateService");
  const auto* create = ca_service->FindMethodByName("CreateCertificate");
  REQUIRE(create != nullptr);
  CHECK(create->input_type() == ca::IstioCertificateRequest::descriptor());
  CHECK(create->output_type() == ca::IstioCertificateResponse::descriptor());
  CHECK_FALSE(create->client_streaming());
  CHECK_FALSE(create->server_streaming());
  CHECK(ca_service->method_count() == 1);

  const auto* ads = xds::DeltaDiscoveryRequest::descriptor()->file()->FindServiceByName(
      "AggregatedDiscoveryService");
  REQUIRE(ads != nullptr);
  CHECK(ads->full_name() == "envoy.service.discovery.v3.AggregatedDiscoveryService");
  CHECK(ads->method_count() == 2);
  const auto* delta = ads->FindMethodByName("DeltaAggregatedResources");
  REQUIRE(delta != nullptr);
  CHECK(delta->input_type() == xds::DeltaDiscoveryRequest::descriptor());
  CHECK(delta->output_type() == xds::DeltaDiscoveryResponse::descriptor());
  CHECK(delta->client_streaming());
  CHECK(delta->server_streaming());
  const auto* sotw = ads->FindMethodByName("StreamAggregatedResources");
  REQUIRE(sotw != nullptr);
  CHECK(sotw->input_type() == xds::DiscoveryRequest::descriptor());
  CHECK(sotw->output_type() == xds::DiscoveryResponse::descriptor());
  CHECK(sotw->client_streaming());
  CHECK(sotw->server_streaming());
}

// ===========================================================================
// Round trips

TEST_CASE("a workload Address with every field set survives a round trip") {
  wl::Address address;
  *address.mutable_workload() = full_workload();
  check_round_trip(address);
}

TEST_CASE("a service Address with every field set survives a round trip") {
  wl::Address address;
  *address.mutable_service() = full_service();
  check_round_trip(address);
}

TEST_CASE("an Authorization with every field set survives a round trip") {
  check_round_trip(full_authorization());
  // The other StringMatch alternatives, one per message so each oneof is full.
  for (auto set : {+[](sec::StringMatch& m) { m.set_exact("a"); },
                   +[](sec::StringMatch& m) { m.set_prefix("a"); },
                   +[](sec::StringMatch& m) { m.set_suffix("a"); },
                   +[](sec::StringMatch& m) { m.mutable_presence(); }}) {
    sec::StringMatch match;
    set(match);
    check_round_trip(match);
  }
}

TEST_CASE("CA requests and responses with every field set survive a round trip") {
  ca::IstioCertificateRequest request;
  request.set_csr("-----BEGIN CERTIFICATE REQUEST-----\n...");
  request.set_validity_duration(86400);
  (*request.mutable_metadata()->mutable_fields())["ImpersonatedIdentity"].set_string_value(
      "spiffe://cluster.local/ns/ns1/sa/sa-a");
  check_round_trip(request);

  ca::IstioCertificateResponse response;
  response.add_cert_chain("leaf");
  response.add_cert_chain("intermediate");
  response.add_cert_chain("root");
  check_round_trip(response);
}

TEST_CASE("delta xDS messages with every field set survive a round trip") {
  xds::DeltaDiscoveryRequest request;
  *request.mutable_node() = full_node();
  request.set_type_url("type.googleapis.com/istio.workload.Address");
  request.add_resource_names_subscribe("*");
  request.add_resource_names_unsubscribe("ns1/old.ns1.svc.cluster.local");
  (*request.mutable_initial_resource_versions())["cluster-1//Pod/ns1/pod-a"] = "7";
  request.set_response_nonce("n-1");
  *request.mutable_error_detail() = full_status();
  check_round_trip(request);

  xds::DeltaDiscoveryResponse response;
  response.set_system_version_info("v7");
  auto* resource = response.add_resources();
  resource->set_version("3");
  wl::Address address;
  *address.mutable_workload() = full_workload();
  resource->mutable_resource()->PackFrom(address);
  resource->set_name("cluster-1//Pod/ns1/pod-a");
  resource->add_aliases("net1/10.0.0.5");
  resource->mutable_ttl()->set_seconds(30);
  resource->mutable_cache_control()->set_do_not_cache(true);
  response.set_type_url("type.googleapis.com/istio.workload.Address");
  response.set_nonce("n-2");
  response.add_removed_resources("ns1/gone.ns1.svc.cluster.local");
  check_round_trip(response);
}

TEST_CASE("state-of-the-world xDS messages with every field set survive a round trip") {
  xds::DiscoveryRequest request;
  request.set_version_info("v1");
  *request.mutable_node() = full_node();
  request.add_resource_names("ns1/allow-b");
  request.set_type_url("type.googleapis.com/istio.security.Authorization");
  request.set_response_nonce("n-1");
  *request.mutable_error_detail() = full_status();
  check_round_trip(request);

  xds::DiscoveryResponse response;
  response.set_version_info("v2");
  response.add_resources()->PackFrom(full_authorization());
  response.set_canary(true);
  response.set_type_url("type.googleapis.com/istio.security.Authorization");
  response.set_nonce("n-2");
  check_round_trip(response);
}

TEST_CASE("ZDS messages with every field set survive a round trip") {
  zds::ZdsHello hello;
  hello.set_version(zds::V1);
  check_round_trip(hello);

  zds::WorkloadRequest add;
  add.mutable_add()->set_uid("pod-uid-1");
  add.mutable_add()->mutable_workload_info()->set_name("pod-a");
  add.mutable_add()->mutable_workload_info()->set_namespace_("ns1");
  add.mutable_add()->mutable_workload_info()->set_service_account("sa-a");
  check_round_trip(add);

  zds::WorkloadRequest keep;
  keep.mutable_keep()->set_uid("pod-uid-2");
  check_round_trip(keep);

  zds::WorkloadRequest del;
  del.mutable_del()->set_uid("pod-uid-3");
  check_round_trip(del);

  zds::WorkloadRequest snapshot_sent;
  snapshot_sent.mutable_snapshot_sent();
  check_round_trip(snapshot_sent);

  zds::WorkloadResponse nack;
  nack.mutable_ack()->set_error("netns gone");
  check_round_trip(nack);
}

// ===========================================================================
// Hand-built wire bytes, as istiod and istio-cni would send them

TEST_CASE("field numbers above 15 take two-byte tags") {
  // uid is field 20 (LEN): (20 << 3 | 2) = 162 = varint a2 01.
  CHECK(tag(20, WireType::kLen) == bytes({0xa2, 0x01}));
  // services is field 22 (LEN): 178 = b2 01; capacity is field 27 (LEN): 218 = da 01.
  CHECK(tag(22, WireType::kLen) == bytes({0xb2, 0x01}));
  CHECK(tag(27, WireType::kLen) == bytes({0xda, 0x01}));
}

TEST_CASE("an Address carrying a workload decodes uid, addresses, capacity and services") {
  // Port { service_port (1, VARINT) = 80, target_port (2, VARINT) = 8080 }
  const std::string port_bytes = varint_field(1, 80) + varint_field(2, 8080);
  // PortList { ports (1, LEN) }
  const std::string port_list = len_field(1, port_bytes);
  // Workload.ServicesEntry { key (1, LEN), value (2, LEN) }
  const std::string entry = len_field(1, "ns1/svc.ns1.svc.cluster.local") + len_field(2, port_list);
  const std::string workload_bytes =
      // uid (20, LEN): a2 01 <len> "uid-a"
      bytes({0xa2, 0x01, 0x05}) + "uid-a" +
      // addresses (3, LEN): 1a 04 <4 raw octets>
      bytes({0x1a, 0x04, 10, 0, 0, 5}) +
      // capacity (27, LEN): da 01 02 { value (1, VARINT) = 4: 08 04 }
      bytes({0xda, 0x01, 0x02, 0x08, 0x04}) +
      // services (22, LEN): one map entry
      len_field(22, entry);
  // Address { workload (1, LEN) }
  const std::string wire = len_field(1, workload_bytes);

  wl::Address address;
  REQUIRE(address.ParseFromString(wire));
  REQUIRE(address.has_workload());
  const auto& w = address.workload();
  CHECK(w.uid() == "uid-a");
  REQUIRE(w.addresses_size() == 1);
  CHECK(w.addresses(0) == ipv4(10, 0, 0, 5));
  CHECK(w.has_capacity());
  CHECK(w.capacity().value() == 4);
  REQUIRE(w.services().count("ns1/svc.ns1.svc.cluster.local") == 1);
  const auto& ports = w.services().at("ns1/svc.ns1.svc.cluster.local");
  REQUIRE(ports.ports_size() == 1);
  CHECK(ports.ports(0).service_port() == 80);
  CHECK(ports.ports(0).target_port() == 8080);
  CHECK(w.GetReflection()->GetUnknownFields(w).empty());
}

TEST_CASE("a Service Address decodes on field 2 of the oneof") {
  // Address { service (2, LEN) { hostname (3, LEN) "h", visibility (14, VARINT) = 1 } }
  const std::string wire = bytes({0x12, 0x05, 0x1a, 0x01, 'h', 0x70, 0x01});
  wl::Address address;
  REQUIRE(address.ParseFromString(wire));
  REQUIRE(address.has_service());
  CHECK(address.service().hostname() == "h");
  CHECK(address.service().visibility() == wl::Service::NAMESPACE);
}

TEST_CASE("a workload without capacity differs from one with capacity 0") {
  wl::Workload absent;
  REQUIRE(absent.ParseFromString(""));
  CHECK_FALSE(absent.has_capacity());

  wl::Workload zero;
  // capacity (27, LEN) holding an empty UInt32Value (value 0 is not encoded)
  REQUIRE(zero.ParseFromString(bytes({0xda, 0x01, 0x00})));
  CHECK(zero.has_capacity());
  CHECK(zero.capacity().value() == 0);
}

TEST_CASE("a DelWorkload carries its uid on field 2") {
  // DelWorkload { uid (2, LEN) "abc" }: 12 03 'a' 'b' 'c'
  const std::string wire = bytes({0x12, 0x03, 'a', 'b', 'c'});
  zds::DelWorkload del;
  REQUIRE(del.ParseFromString(wire));
  CHECK(del.uid() == "abc");

  zds::DelWorkload built;
  built.set_uid("abc");
  CHECK(built.SerializeAsString() == wire);

  // WorkloadRequest { del (2, LEN) { ... } }
  zds::WorkloadRequest request;
  REQUIRE(request.ParseFromString(len_field(2, wire)));
  REQUIRE(request.has_del());
  CHECK(request.del().uid() == "abc");
}

TEST_CASE("a uid on field 1 of a DelWorkload is not its uid") {
  // { 1 (LEN) "abc" }: a sender numbering uid like AddWorkload does
  zds::DelWorkload del;
  REQUIRE(del.ParseFromString(bytes({0x0a, 0x03, 'a', 'b', 'c'})));
  CHECK(del.uid().empty());
  CHECK_FALSE(del.GetReflection()->GetUnknownFields(del).empty());
}

TEST_CASE("ZDS requests decode add, keep and snapshot_sent on Istio's numbers") {
  // WorkloadRequest { add (1, LEN) { uid (1, LEN) "u", workload_info (2, LEN) {
  //   name (1) "p", namespace (2) "n", service_account (3) "s" } } }
  const std::string info = len_field(1, "p") + len_field(2, "n") + len_field(3, "s");
  zds::WorkloadRequest add;
  REQUIRE(add.ParseFromString(len_field(1, len_field(1, "u") + len_field(2, info))));
  REQUIRE(add.has_add());
  CHECK(add.add().uid() == "u");
  CHECK(add.add().workload_info().name() == "p");
  CHECK(add.add().workload_info().namespace_() == "n");
  CHECK(add.add().workload_info().service_account() == "s");

  // WorkloadRequest { keep (5, LEN) { uid (1, LEN) "k" } }: 2a 03 0a 01 'k'
  zds::WorkloadRequest keep;
  REQUIRE(keep.ParseFromString(bytes({0x2a, 0x03, 0x0a, 0x01, 'k'})));
  REQUIRE(keep.has_keep());
  CHECK(keep.keep().uid() == "k");

  // WorkloadRequest { snapshot_sent (3, LEN) {} }: 1a 00
  zds::WorkloadRequest snapshot;
  REQUIRE(snapshot.ParseFromString(bytes({0x1a, 0x00})));
  CHECK(snapshot.has_snapshot_sent());

  // ZdsHello { version (1, VARINT) = V1 }: 08 01
  zds::ZdsHello hello;
  hello.set_version(zds::V1);
  CHECK(hello.SerializeAsString() == bytes({0x08, 0x01}));
}

TEST_CASE("a Clause carries its matches on field 2") {
  // StringMatch { exact (1, LEN) "ns2" }
  const std::string exact = len_field(1, "ns2");
  // Match { namespaces (1, LEN), destination_ports (9, LEN, packed) [443, 8443] }
  const std::string ports = varint(443) + varint(8443);
  const std::string match = len_field(1, exact) + len_field(9, ports);
  // Clause { matches (2, LEN) }: 12 <len> ...
  const std::string wire = len_field(2, match);
  CHECK(wire[0] == 0x12);

  sec::Clause clause;
  REQUIRE(clause.ParseFromString(wire));
  REQUIRE(clause.matches_size() == 1);
  REQUIRE(clause.matches(0).namespaces_size() == 1);
  CHECK(clause.matches(0).namespaces(0).exact() == "ns2");
  REQUIRE(clause.matches(0).destination_ports_size() == 2);
  CHECK(clause.matches(0).destination_ports(0) == 443);
  CHECK(clause.matches(0).destination_ports(1) == 8443);
}

TEST_CASE("destination ports decode whether or not the sender packed them") {
  // Match { destination_ports (9, VARINT) = 443, (9, VARINT) = 8443 }: unpacked form
  sec::Match match;
  REQUIRE(match.ParseFromString(varint_field(9, 443) + varint_field(9, 8443)));
  REQUIRE(match.destination_ports_size() == 2);
  CHECK(match.destination_ports(0) == 443);
  CHECK(match.destination_ports(1) == 8443);
  // We send the packed form, as istiod does: 4a 04 bb 03 fb 41
  CHECK(match.SerializeAsString() == bytes({0x4a, 0x04, 0xbb, 0x03, 0xfb, 0x41}));
}

TEST_CASE("an Authorization decodes rules, service accounts and presence matches") {
  // StringMatch { presence (4, LEN) {} }: 22 00
  const std::string presence = bytes({0x22, 0x00});
  // ServiceAccountMatch { namespace (1, LEN) "ns2", serviceAccount (2, LEN) "b" }
  const std::string account = len_field(1, "ns2") + len_field(2, "b");
  // Match { not_principals (4, LEN), service_accounts (11, LEN), extensions (13, LEN) }
  const std::string match =
      len_field(4, presence) + len_field(11, account) + len_field(13, len_field(1, "ext"));
  // Authorization { name (1), namespace (2), scope (3) = 2, action (4) = 1,
  //   rules (5, LEN) { clauses (1, LEN) { matches (2, LEN) } }, dry_run (6) = true }
  const std::string wire = len_field(1, "p") + len_field(2, "ns1") + varint_field(3, 2) +
                           varint_field(4, 1) + len_field(5, len_field(1, len_field(2, match))) +
                           varint_field(6, 1);

  sec::Authorization policy;
  REQUIRE(policy.ParseFromString(wire));
  CHECK(policy.name() == "p");
  CHECK(policy.namespace_() == "ns1");
  CHECK(policy.scope() == sec::WORKLOAD_SELECTOR);
  CHECK(policy.action() == sec::DENY);
  CHECK(policy.dry_run());
  REQUIRE(policy.rules_size() == 1);
  REQUIRE(policy.rules(0).clauses_size() == 1);
  REQUIRE(policy.rules(0).clauses(0).matches_size() == 1);
  const auto& m = policy.rules(0).clauses(0).matches(0);
  REQUIRE(m.not_principals_size() == 1);
  CHECK(m.not_principals(0).has_presence());
  REQUIRE(m.service_accounts_size() == 1);
  CHECK(m.service_accounts(0).namespace_() == "ns2");
  CHECK(m.service_accounts(0).serviceaccount() == "b");
  REQUIRE(m.extensions_size() == 1);
  CHECK(m.extensions(0).name() == "ext");
}

TEST_CASE("a NetworkAddress tells an absent length from a present one") {
  // NetworkAddress { address (2, LEN) 10.96.0.0 }
  const std::string host = len_field(2, ipv4(10, 96, 0, 0));
  wl::NetworkAddress absent;
  REQUIRE(absent.ParseFromString(host));
  CHECK_FALSE(absent.has_length());

  // ... plus length (3, VARINT) = 24: 18 18
  wl::NetworkAddress cidr24;
  REQUIRE(cidr24.ParseFromString(host + bytes({0x18, 0x18})));
  CHECK(cidr24.has_length());
  CHECK(cidr24.length() == 24);

  // ... plus length (3, VARINT) = 0: 18 00, still present (a /0 range)
  wl::NetworkAddress zero;
  REQUIRE(zero.ParseFromString(host + bytes({0x18, 0x00})));
  CHECK(zero.has_length());
  CHECK(zero.length() == 0);
  CHECK(zero.SerializeAsString() == host + bytes({0x18, 0x00}));
}

TEST_CASE("an unknown TunnelProtocol survives as its number") {
  // Workload { tunnel_protocol (5, VARINT) = 7 }: 28 07
  const std::string wire = bytes({0x28, 0x07});
  wl::Workload w;
  REQUIRE(w.ParseFromString(wire));
  CHECK(static_cast<int>(w.tunnel_protocol()) == 7);
  CHECK_FALSE(wl::TunnelProtocol_IsValid(w.tunnel_protocol()));
  CHECK(w.SerializeAsString() == wire);
}

TEST_CASE("a GatewayAddress reads the mTLS port on 3 and ignores retired field 4") {
  // GatewayAddress { hostname (1, LEN) { namespace (1) "ns", hostname (2) "wp" },
  //   hbone_mtls_port (3, VARINT) = 15008, 4 (VARINT) = 15009 }
  const std::string wire = len_field(1, len_field(1, "ns") + len_field(2, "wp")) +
                           varint_field(3, 15008) + varint_field(4, 15009);
  wl::GatewayAddress gateway;
  REQUIRE(gateway.ParseFromString(wire));
  REQUIRE(gateway.has_hostname());
  CHECK(gateway.hostname().namespace_() == "ns");
  CHECK(gateway.hostname().hostname() == "wp");
  CHECK(gateway.hbone_mtls_port() == 15008);
  CHECK(gateway.GetReflection()->GetUnknownFields(gateway).field_count() == 1);
}

TEST_CASE("a CA request puts validity_duration on field 3") {
  ca::IstioCertificateRequest request;
  request.set_validity_duration(86400);
  // validity_duration (3, VARINT) = 86400: 18 80 a3 05
  CHECK(request.SerializeAsString() == bytes({0x18, 0x80, 0xa3, 0x05}));

  // IstioCertificateResponse { cert_chain (1, LEN) "a", cert_chain (1, LEN) "b" }
  ca::IstioCertificateResponse response;
  REQUIRE(response.ParseFromString(bytes({0x0a, 0x01, 'a', 0x0a, 0x01, 'b'})));
  REQUIRE(response.cert_chain_size() == 2);
  CHECK(response.cert_chain(1) == "b");
}

TEST_CASE("a delta response decodes nonce on 5 and removed resources on 6") {
  // Resource { version (1) "3", resource (2, LEN) Any { type_url (1), value (2) },
  //   name (3) "n", ttl (6, LEN) Duration { seconds (1) = 30 } }
  const std::string any = len_field(1, "type.googleapis.com/istio.workload.Address") +
                          len_field(2, len_field(1, len_field(20, "uid-a")));
  const std::string resource =
      len_field(1, "3") + len_field(2, any) + len_field(3, "n") + len_field(6, varint_field(1, 30));
  // DeltaDiscoveryResponse { system_version_info (1), resources (2), type_url (4),
  //   nonce (5), removed_resources (6) }
  const std::string wire = len_field(1, "v") + len_field(2, resource) + len_field(4, "t") +
                           len_field(5, "nonce-1") + len_field(6, "gone");

  xds::DeltaDiscoveryResponse response;
  REQUIRE(response.ParseFromString(wire));
  CHECK(response.system_version_info() == "v");
  CHECK(response.type_url() == "t");
  CHECK(response.nonce() == "nonce-1");
  REQUIRE(response.removed_resources_size() == 1);
  CHECK(response.removed_resources(0) == "gone");
  REQUIRE(response.resources_size() == 1);
  const auto& r = response.resources(0);
  CHECK(r.version() == "3");
  CHECK(r.name() == "n");
  CHECK(r.ttl().seconds() == 30);
  wl::Address address;
  REQUIRE(r.resource().UnpackTo(&address));
  CHECK(address.workload().uid() == "uid-a");
}

TEST_CASE("a delta request encodes initial versions as a map on field 5 and the NACK on 7") {
  xds::DeltaDiscoveryRequest request;
  (*request.mutable_initial_resource_versions())["k"] = "v";
  request.mutable_error_detail()->set_code(13);
  // initial_resource_versions (5, LEN) { key (1) "k", value (2) "v" }: 2a 06 0a 01 6b 12 01 76
  // error_detail (7, LEN) { code (1, VARINT) = 13 }: 3a 02 08 0d
  CHECK(request.SerializeAsString() ==
        bytes({0x2a, 0x06, 0x0a, 0x01, 'k', 0x12, 0x01, 'v', 0x3a, 0x02, 0x08, 0x0d}));
}

// ===========================================================================
// Bytes from an independent encoder (tests/support/istio_wire_fixtures.py)

TEST_CASE("a workload Address encoded by pure-Python protobuf decodes field for field") {
  const auto address = parse_fixture<wl::Address>(kPyWorkloadAddress);
  REQUIRE(address.has_workload());
  check_python_workload(address.workload());
}

TEST_CASE("a service Address encoded by pure-Python protobuf decodes field for field") {
  const auto address = parse_fixture<wl::Address>(kPyServiceAddress);
  REQUIRE(address.has_service());
  const auto& s = address.service();
  CHECK(s.name() == "svc");
  CHECK(s.namespace_() == "ns1");
  CHECK(s.hostname() == "svc.ns1.svc.cluster.local");
  REQUIRE(s.addresses_size() == 2);
  CHECK(s.addresses(0).network() == "net1");
  CHECK(s.addresses(0).address() == ipv4(10, 96, 0, 10));
  CHECK_FALSE(s.addresses(0).has_length());
  CHECK(s.addresses(1).address() == ipv4(10, 200, 0, 0));
  CHECK(s.addresses(1).has_length());
  CHECK(s.addresses(1).length() == 24);
  REQUIRE(s.ports_size() == 1);
  CHECK(s.ports(0).service_port() == 443);
  CHECK(s.ports(0).target_port() == 0);
  CHECK(s.ports(0).app_protocol() == wl::TLS);
  REQUIRE(s.load_balancing().routing_preference_size() == 3);
  CHECK(s.load_balancing().routing_preference(0) == wl::LoadBalancing::NETWORK);
  CHECK(s.load_balancing().routing_preference(1) == wl::LoadBalancing::REGION);
  CHECK(s.load_balancing().routing_preference(2) == wl::LoadBalancing::ZONE);
  CHECK(s.load_balancing().mode() == wl::LoadBalancing::FAILOVER);
  CHECK(s.load_balancing().health_policy() == wl::LoadBalancing::ALLOW_ALL);
  CHECK(s.ip_families() == wl::DUAL);
  REQUIRE(s.weighted_waypoints_size() == 1);
  CHECK(s.weighted_waypoints(0).weight() == 90);
  CHECK(s.weighted_waypoints(0).destination().hostname().hostname() == "wp.ns1");
  CHECK(s.visibility() == wl::Service::NAMESPACE);
}

TEST_CASE("an Authorization encoded by pure-Python protobuf decodes field for field") {
  const auto policy = parse_fixture<sec::Authorization>(kPyAuthorization);
  CHECK(policy.name() == "deny-b");
  CHECK(policy.namespace_() == "ns1");
  CHECK(policy.scope() == sec::WORKLOAD_SELECTOR);
  CHECK(policy.action() == sec::DENY);
  CHECK(policy.dry_run());
  REQUIRE(policy.rules_size() == 1);
  REQUIRE(policy.rules(0).clauses_size() == 1);
  REQUIRE(policy.rules(0).clauses(0).matches_size() == 1);
  const auto& m = policy.rules(0).clauses(0).matches(0);
  REQUIRE(m.namespaces_size() == 1);
  CHECK(m.namespaces(0).exact() == "ns2");
  REQUIRE(m.principals_size() == 1);
  CHECK(m.principals(0).suffix() == "/sa/b");
  REQUIRE(m.not_principals_size() == 1);
  CHECK(m.not_principals(0).has_presence());
  REQUIRE(m.source_ips_size() == 1);
  CHECK(m.source_ips(0).address() == ipv4(10, 1, 0, 0));
  CHECK(m.source_ips(0).length() == 16);
  REQUIRE(m.destination_ports_size() == 2);
  CHECK(m.destination_ports(1) == 8443);
  REQUIRE(m.service_accounts_size() == 1);
  CHECK(m.service_accounts(0).namespace_() == "ns2");
  CHECK(m.service_accounts(0).serviceaccount() == "b");
}

TEST_CASE("ZDS requests encoded by pure-Python protobuf decode field for field") {
  const auto add = parse_fixture<zds::WorkloadRequest>(kPyZdsAdd);
  REQUIRE(add.has_add());
  CHECK(add.add().uid() == "pod-uid-1");
  CHECK(add.add().workload_info().name() == "pod-a");
  CHECK(add.add().workload_info().namespace_() == "ns1");
  CHECK(add.add().workload_info().service_account() == "sa-a");

  const auto del = parse_fixture<zds::WorkloadRequest>(kPyZdsDel);
  REQUIRE(del.has_del());
  CHECK(del.del().uid() == "pod-uid-1");
}

TEST_CASE("a CA request encoded by pure-Python protobuf decodes field for field") {
  const auto request = parse_fixture<ca::IstioCertificateRequest>(kPyCertificateRequest);
  CHECK(request.csr() == "-----BEGIN CERTIFICATE REQUEST-----");
  CHECK(request.validity_duration() == 86400);
  REQUIRE(request.metadata().fields().count("ImpersonatedIdentity") == 1);
  CHECK(request.metadata().fields().at("ImpersonatedIdentity").string_value() ==
        "spiffe://cluster.local/ns/ns1/sa/sa-a");
}

TEST_CASE("a delta response encoded by pure-Python protobuf unpacks its Address") {
  const auto response = parse_fixture<xds::DeltaDiscoveryResponse>(kPyDeltaResponse);
  CHECK(response.system_version_info() == "v7");
  CHECK(response.type_url() == "type.googleapis.com/istio.workload.Address");
  CHECK(response.nonce() == "n-1");
  REQUIRE(response.removed_resources_size() == 1);
  CHECK(response.removed_resources(0) == "ns1/gone.ns1.svc.cluster.local");
  REQUIRE(response.resources_size() == 1);
  const auto& resource = response.resources(0);
  CHECK(resource.name() == "Kubernetes//Pod/ns1/pod-a");
  CHECK(resource.version() == "3");
  CHECK(resource.resource().type_url() == "type.googleapis.com/istio.workload.Address");
  wl::Address address;
  REQUIRE(resource.resource().UnpackTo(&address));
  REQUIRE(address.has_workload());
  check_python_workload(address.workload());
}

}  // namespace ztunnel::proto
