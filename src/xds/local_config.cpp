// Local YAML config: a strict reader from Istio ztunnel's camelCase schema to
// xDS protobuf resources.
#include "xds/local_config.h"

#include <fmt/format.h>

#include <boost/asio/ip/address.hpp>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <limits>
#include <optional>
#include <sstream>

#include "core/log.h"
#include "state/convert.h"
#include "xds/yaml_tree.h"

namespace ztunnel::xds {
namespace {

namespace wl = istio::workload;
namespace sec = istio::security;

// Thrown only inside this file and caught by parse_local_config: a config
// file is read once at start-up, and unwinding out of a deep walk keeps every
// check a single line.
struct ParseError {
  std::string message;
};

using Keys = std::initializer_list<std::string_view>;

std::string join(Keys keys) {
  std::string out;
  for (std::string_view k : keys) {
    if (!out.empty()) out += ", ";
    out += k;
  }
  return out;
}

// Walks YAML nodes and turns every mistake into "origin:line:column: ...".
class Reader {
 public:
  explicit Reader(std::string_view origin) : origin_(origin) {}

  std::string where(const yaml::Node& node) const {
    const yaml::Mark mark = node.mark();
    if (mark.is_null()) return std::string(origin_);
    return fmt::format("{}:{}:{}", origin_, mark.line + 1, mark.column + 1);
  }

  [[noreturn]] void fail(const yaml::Node& node, std::string_view message) const {
    throw ParseError{fmt::format("{}: {}", where(node), message)};
  }

  static bool absent(const yaml::Node& node) { return !node.defined() || node.is_null(); }

  void expect_map(const yaml::Node& node, std::string_view what) const {
    if (!node.is_map()) fail(node, fmt::format("{} must be a mapping", what));
  }

  void expect_seq(const yaml::Node& node, std::string_view what) const {
    if (!node.is_sequence()) fail(node, fmt::format("{} must be a list", what));
  }

  // Rejects any key outside `allowed`, as Istio's deny_unknown_fields does;
  // a misspelt key silently ignored is how a policy ends up not applying.
  void check_keys(const yaml::Node& map, Keys allowed, std::string_view what) const {
    expect_map(map, what);
    for (const auto& entry : map.entries()) {
      if (!entry.first.is_scalar()) fail(entry.first, fmt::format("{} has a non-string key", what));
      const std::string_view key = entry.first.scalar();
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        fail(entry.first, fmt::format("unknown key \"{}\" in {} (expected one of: {})", key, what,
                                      join(allowed)));
      }
    }
  }

  void require(const yaml::Node& map, std::string_view key, std::string_view what) const {
    if (absent(map[key])) fail(map, fmt::format("{} is missing required key \"{}\"", what, key));
  }

  std::string str(const yaml::Node& node, std::string_view what) const {
    if (!node.is_scalar()) fail(node, fmt::format("{} must be a string", what));
    return std::string(node.scalar());
  }

  bool boolean(const yaml::Node& node, std::string_view what) const {
    const std::string s = str(node, what);
    if (s == "true") return true;
    if (s == "false") return false;
    fail(node, fmt::format("{} must be true or false, got \"{}\"", what, s));
  }

  uint32_t uint(const yaml::Node& node, std::string_view what, uint64_t max) const {
    const std::string s = str(node, what);
    uint64_t value = 0;
    bool ok = !s.empty() && s.size() <= 20;
    for (char c : s) {
      if (c < '0' || c > '9') {
        ok = false;
        break;
      }
      value = value * 10 + static_cast<uint64_t>(c - '0');
      if (value > max) {
        ok = false;
        break;
      }
    }
    if (!ok) fail(node, fmt::format("{} must be an integer from 0 to {}, got \"{}\"", what, max, s));
    return static_cast<uint32_t>(value);
  }

  uint32_t port(const yaml::Node& node, std::string_view what) const { return uint(node, what, 65535); }

  // An IP address as the 4 or 16 bytes xDS carries.
  std::string ip_bytes(const yaml::Node& node, std::string_view what) const {
    return ip_bytes_of(node, str(node, what), what);
  }

  std::string ip_bytes_of(const yaml::Node& node, const std::string& text, std::string_view what) const {
    boost::system::error_code ec;
    auto ip = boost::asio::ip::make_address(text, ec);
    if (ec) fail(node, fmt::format("{} must be an IP address, got \"{}\"", what, text));
    if (ip.is_v4()) {
      auto b = ip.to_v4().to_bytes();
      return std::string(b.begin(), b.end());
    }
    auto b = ip.to_v6().to_bytes();
    return std::string(b.begin(), b.end());
  }

  // "network/IP": the network may be empty, the IP may be v4 or v6.
  void network_address(const yaml::Node& node, std::string_view what, wl::NetworkAddress* out) const {
    const std::string s = str(node, what);
    const size_t slash = s.find('/');
    if (slash == std::string::npos) {
      fail(node, fmt::format("{} must be \"network/IP\" (e.g. \"/10.0.0.1\"), got \"{}\"", what, s));
    }
    out->set_network(s.substr(0, slash));
    out->set_address(ip_bytes_of(node, s.substr(slash + 1), what));
  }

  // "10.0.0.0/8", or a bare IP meaning the whole address.
  void cidr(const yaml::Node& node, std::string_view what, std::string* address, uint32_t* length) const {
    const std::string s = str(node, what);
    const size_t slash = s.find('/');
    *address = ip_bytes_of(node, s.substr(0, slash), what);
    const uint32_t max = address->size() == 4 ? 32 : 128;
    if (slash == std::string::npos) {
      *length = max;
      return;
    }
    const std::string len_text = s.substr(slash + 1);
    uint64_t len = 0;
    bool ok = !len_text.empty() && len_text.size() <= 3;
    for (char c : len_text) {
      if (c < '0' || c > '9') ok = false;
      len = len * 10 + static_cast<uint64_t>(c - '0');
    }
    if (!ok || len > max) {
      fail(node, fmt::format("{} has an invalid prefix length in \"{}\" (expected 0 to {})", what, s, max));
    }
    *length = static_cast<uint32_t>(len);
  }

  // Picks the enum value whose name matches; the error lists the choices.
  template <class E>
  E choice(const yaml::Node& node, std::string_view what,
           std::initializer_list<std::pair<std::string_view, E>> choices) const {
    const std::string s = str(node, what);
    std::string names;
    for (const auto& [name, value] : choices) {
      if (name == s) return value;
      if (!names.empty()) names += ", ";
      names += name;
    }
    fail(node, fmt::format("{} must be one of {}, got \"{}\"", what, names, s));
  }

 private:
  std::string_view origin_;
};

void read_gateway(const Reader& r, const yaml::Node& node, std::string_view what, wl::GatewayAddress* out) {
  r.check_keys(node, {"destination", "hboneMtlsPort"}, what);
  r.require(node, "destination", what);
  r.require(node, "hboneMtlsPort", what);
  const yaml::Node dest = node["destination"];
  const std::string s = r.str(dest, fmt::format("{}.destination", what));
  const size_t slash = s.find('/');
  if (slash == std::string::npos) {
    r.fail(dest, fmt::format("{}.destination must be \"network/IP\" or \"namespace/hostname\", got \"{}\"",
                             what, s));
  }
  // Like Istio, an IP after the slash makes it an address, anything else a hostname.
  boost::system::error_code ec;
  boost::asio::ip::make_address(s.substr(slash + 1), ec);
  if (!ec) {
    r.network_address(dest, fmt::format("{}.destination", what), out->mutable_address());
  } else {
    out->mutable_hostname()->set_namespace_(s.substr(0, slash));
    out->mutable_hostname()->set_hostname(s.substr(slash + 1));
  }
  out->set_hbone_mtls_port(r.port(node["hboneMtlsPort"], fmt::format("{}.hboneMtlsPort", what)));
}

void read_port_map(const Reader& r, const yaml::Node& node, std::string_view what,
                   google::protobuf::RepeatedPtrField<wl::Port>* out) {
  r.expect_map(node, what);
  for (const auto& entry : node.entries()) {
    wl::Port* port = out->Add();
    port->set_service_port(r.port(entry.first, fmt::format("{} service port", what)));
    port->set_target_port(r.port(entry.second, fmt::format("{} target port", what)));
  }
}

void read_workload(const Reader& r, const yaml::Node& node, wl::Workload* w) {
  constexpr std::string_view what = "workload";
  r.check_keys(node,
               {"workloadIps", "waypoint", "networkGateway", "protocol", "networkMode", "uid", "name",
                "namespace", "trustDomain", "serviceAccount", "network", "workloadName", "workloadType",
                "canonicalName", "canonicalRevision", "hostname", "node", "nativeTunnel",
                "applicationTunnel", "authorizationPolicies", "status", "clusterId", "locality",
                "services", "capacity"},
               what);
  r.require(node, "workloadIps", what);
  r.require(node, "namespace", what);

  const yaml::Node ips = node["workloadIps"];
  r.expect_seq(ips, "workload.workloadIps");
  for (const auto& ip : ips.elements()) w->add_addresses(r.ip_bytes(ip, "workload.workloadIps entry"));

  auto text = [&](const char* key) -> std::optional<std::string> {
    const yaml::Node v = node[key];
    if (Reader::absent(v)) return std::nullopt;
    return r.str(v, fmt::format("workload.{}", key));
  };
  if (auto v = text("uid")) w->set_uid(*v);
  if (auto v = text("name")) w->set_name(*v);
  if (auto v = text("namespace")) w->set_namespace_(*v);
  if (auto v = text("trustDomain")) w->set_trust_domain(*v);
  if (auto v = text("serviceAccount")) w->set_service_account(*v);
  if (auto v = text("network")) w->set_network(*v);
  if (auto v = text("workloadName")) w->set_workload_name(*v);
  if (auto v = text("canonicalName")) w->set_canonical_name(*v);
  if (auto v = text("canonicalRevision")) w->set_canonical_revision(*v);
  if (auto v = text("hostname")) w->set_hostname(*v);
  if (auto v = text("node")) w->set_node(*v);
  if (auto v = text("clusterId")) w->set_cluster_id(*v);

  if (auto v = node["protocol"]; !Reader::absent(v)) {
    w->set_tunnel_protocol(r.choice<wl::TunnelProtocol>(v, "workload.protocol", {{"TCP", wl::NONE}, {"HBONE", wl::HBONE}}));
  }
  if (auto v = node["networkMode"]; !Reader::absent(v)) {
    w->set_network_mode(r.choice<wl::NetworkMode>(v, "workload.networkMode",
                                                  {{"Standard", wl::STANDARD}, {"HostNetwork", wl::HOST_NETWORK}}));
  }
  if (auto v = node["status"]; !Reader::absent(v)) {
    w->set_status(r.choice<wl::WorkloadStatus>(v, "workload.status",
                                               {{"Healthy", wl::HEALTHY}, {"Unhealthy", wl::UNHEALTHY}}));
  }
  if (auto v = node["workloadType"]; !Reader::absent(v)) {
    w->set_workload_type(r.choice<wl::WorkloadType>(
        v, "workload.workloadType",
        {{"deployment", wl::DEPLOYMENT}, {"cronjob", wl::CRONJOB}, {"pod", wl::POD}, {"job", wl::JOB}}));
  }
  if (auto v = node["nativeTunnel"]; !Reader::absent(v)) w->set_native_tunnel(r.boolean(v, "workload.nativeTunnel"));
  if (auto v = node["capacity"]; !Reader::absent(v)) {
    w->mutable_capacity()->set_value(r.uint(v, "workload.capacity", std::numeric_limits<uint32_t>::max()));
  }
  if (auto v = node["waypoint"]; !Reader::absent(v)) read_gateway(r, v, "workload.waypoint", w->mutable_waypoint());
  if (auto v = node["networkGateway"]; !Reader::absent(v)) {
    read_gateway(r, v, "workload.networkGateway", w->mutable_network_gateway());
  }
  if (auto v = node["applicationTunnel"]; !Reader::absent(v)) {
    r.check_keys(v, {"protocol", "port"}, "workload.applicationTunnel");
    r.require(v, "protocol", "workload.applicationTunnel");
    auto* tunnel = w->mutable_application_tunnel();
    tunnel->set_protocol(r.choice<wl::ApplicationTunnel::Protocol>(
        v["protocol"], "workload.applicationTunnel.protocol",
        {{"NONE", wl::ApplicationTunnel::NONE}, {"PROXY", wl::ApplicationTunnel::PROXY}}));
    if (auto p = v["port"]; !Reader::absent(p)) tunnel->set_port(r.port(p, "workload.applicationTunnel.port"));
  }
  if (auto v = node["authorizationPolicies"]; !Reader::absent(v)) {
    r.expect_seq(v, "workload.authorizationPolicies");
    for (const auto& p : v.elements()) w->add_authorization_policies(r.str(p, "workload.authorizationPolicies entry"));
  }
  if (auto v = node["locality"]; !Reader::absent(v)) {
    r.check_keys(v, {"region", "zone", "subzone"}, "workload.locality");
    auto* loc = w->mutable_locality();
    if (auto x = v["region"]; !Reader::absent(x)) loc->set_region(r.str(x, "workload.locality.region"));
    if (auto x = v["zone"]; !Reader::absent(x)) loc->set_zone(r.str(x, "workload.locality.zone"));
    if (auto x = v["subzone"]; !Reader::absent(x)) loc->set_subzone(r.str(x, "workload.locality.subzone"));
  }
  if (auto v = node["services"]; !Reader::absent(v)) {
    r.expect_map(v, "workload.services");
    for (const auto& entry : v.entries()) {
      const std::string key = r.str(entry.first, "workload.services key");
      if (key.find('/') == std::string::npos) {
        r.fail(entry.first, fmt::format("workload.services key must be \"namespace/hostname\", got \"{}\"", key));
      }
      read_port_map(r, entry.second, fmt::format("workload.services[\"{}\"]", key),
                    (*w->mutable_services())[key].mutable_ports());
    }
  }
}

void read_service(const Reader& r, const yaml::Node& node, wl::Service* s, std::vector<LocalEndpoint>* endpoints) {
  constexpr std::string_view what = "service";
  r.check_keys(node,
               {"name", "namespace", "hostname", "vips", "cidrVips", "ports", "endpoints", "subjectAltNames",
                "waypoint", "weightedWaypoints", "loadBalancer", "ipFamilies", "canonical", "visibility"},
               what);
  for (const char* key : {"name", "namespace", "hostname", "vips", "ports"}) r.require(node, key, what);
  s->set_name(r.str(node["name"], "service.name"));
  s->set_namespace_(r.str(node["namespace"], "service.namespace"));
  s->set_hostname(r.str(node["hostname"], "service.hostname"));

  const yaml::Node vips = node["vips"];
  r.expect_seq(vips, "service.vips");
  for (const auto& vip : vips.elements()) r.network_address(vip, "service.vips entry", s->add_addresses());

  if (auto v = node["cidrVips"]; !Reader::absent(v)) {
    r.expect_seq(v, "service.cidrVips");
    for (const auto& entry : v.elements()) {
      r.check_keys(entry, {"network", "cidr"}, "service.cidrVips entry");
      r.require(entry, "cidr", "service.cidrVips entry");
      wl::NetworkAddress* address = s->add_addresses();
      if (auto n = entry["network"]; !Reader::absent(n)) address->set_network(r.str(n, "service.cidrVips.network"));
      uint32_t length = 0;
      r.cidr(entry["cidr"], "service.cidrVips.cidr", address->mutable_address(), &length);
      address->set_length(length);
    }
  }
  read_port_map(r, node["ports"], "service.ports", s->mutable_ports());

  if (auto v = node["subjectAltNames"]; !Reader::absent(v)) {
    r.expect_seq(v, "service.subjectAltNames");
    for (const auto& san : v.elements()) s->add_subject_alt_names(r.str(san, "service.subjectAltNames entry"));
  }
  if (auto v = node["waypoint"]; !Reader::absent(v)) read_gateway(r, v, "service.waypoint", s->mutable_waypoint());
  if (auto v = node["weightedWaypoints"]; !Reader::absent(v)) {
    r.expect_seq(v, "service.weightedWaypoints");
    for (const auto& entry : v.elements()) {
      r.check_keys(entry, {"destination", "weight"}, "service.weightedWaypoints entry");
      r.require(entry, "destination", "service.weightedWaypoints entry");
      wl::WeightedWaypoint* ww = s->add_weighted_waypoints();
      read_gateway(r, entry["destination"], "service.weightedWaypoints.destination", ww->mutable_destination());
      if (auto w = entry["weight"]; !Reader::absent(w)) {
        ww->set_weight(r.uint(w, "service.weightedWaypoints.weight", std::numeric_limits<uint32_t>::max()));
      }
    }
  }
  if (auto v = node["loadBalancer"]; !Reader::absent(v)) {
    r.check_keys(v, {"routingPreferences", "mode", "healthPolicy"}, "service.loadBalancer");
    auto* lb = s->mutable_load_balancing();
    if (auto prefs = v["routingPreferences"]; !Reader::absent(prefs)) {
      r.expect_seq(prefs, "service.loadBalancer.routingPreferences");
      for (const auto& p : prefs.elements()) {
        lb->add_routing_preference(r.choice<wl::LoadBalancing::Scope>(
            p, "service.loadBalancer.routingPreferences entry",
            {{"Region", wl::LoadBalancing::REGION},
             {"Zone", wl::LoadBalancing::ZONE},
             {"Subzone", wl::LoadBalancing::SUBZONE},
             {"Node", wl::LoadBalancing::NODE},
             {"Cluster", wl::LoadBalancing::CLUSTER},
             {"Network", wl::LoadBalancing::NETWORK}}));
      }
    }
    if (auto m = v["mode"]; !Reader::absent(m)) {
      lb->set_mode(r.choice<wl::LoadBalancing::Mode>(m, "service.loadBalancer.mode",
                                                     {{"Standard", wl::LoadBalancing::UNSPECIFIED_MODE},
                                                      {"Strict", wl::LoadBalancing::STRICT},
                                                      {"Failover", wl::LoadBalancing::FAILOVER},
                                                      {"Passthrough", wl::LoadBalancing::PASSTHROUGH}}));
    }
    if (auto h = v["healthPolicy"]; !Reader::absent(h)) {
      lb->set_health_policy(r.choice<wl::LoadBalancing::HealthPolicy>(
          h, "service.loadBalancer.healthPolicy",
          {{"OnlyHealthy", wl::LoadBalancing::ONLY_HEALTHY}, {"AllowAll", wl::LoadBalancing::ALLOW_ALL}}));
    }
  }
  if (auto v = node["ipFamilies"]; !Reader::absent(v)) {
    s->set_ip_families(r.choice<wl::IPFamilies>(
        v, "service.ipFamilies", {{"Dual", wl::DUAL}, {"IPv4", wl::IPV4_ONLY}, {"IPv6", wl::IPV6_ONLY}}));
  }
  if (auto v = node["canonical"]; !Reader::absent(v)) s->set_canonical(r.boolean(v, "service.canonical"));
  if (auto v = node["visibility"]; !Reader::absent(v)) {
    s->set_visibility(r.choice<wl::Service::Visibility>(
        v, "service.visibility", {{"Public", wl::Service::PUBLIC}, {"Namespace", wl::Service::NAMESPACE}}));
  }
  if (auto v = node["endpoints"]; !Reader::absent(v)) {
    r.expect_map(v, "service.endpoints");
    const std::string service_key = s->namespace_() + "/" + s->hostname();
    for (const auto& entry : v.entries()) {
      r.check_keys(entry.second, {"workloadUid", "port", "status"}, "service.endpoints entry");
      LocalEndpoint ep;
      ep.service_key = service_key;
      ep.workload_uid = r.str(entry.first, "service.endpoints key");
      if (auto u = entry.second["workloadUid"]; !Reader::absent(u)) {
        ep.workload_uid = r.str(u, "service.endpoints.workloadUid");
      }
      if (auto ports = entry.second["port"]; !Reader::absent(ports)) {
        r.expect_map(ports, "service.endpoints.port");
        for (const auto& p : ports.entries()) {
          ep.ports.emplace_back(r.port(p.first, "service.endpoints.port service port"),
                                r.port(p.second, "service.endpoints.port target port"));
        }
      }
      if (auto st = entry.second["status"]; !Reader::absent(st)) {
        ep.healthy = r.choice<bool>(st, "service.endpoints.status", {{"Healthy", true}, {"Unhealthy", false}});
      }
      endpoints->push_back(std::move(ep));
    }
  }
}

void read_string_matches(const Reader& r, const yaml::Node& node, std::string_view what,
                         google::protobuf::RepeatedPtrField<sec::StringMatch>* out) {
  r.expect_seq(node, what);
  for (const auto& entry : node.elements()) {
    // Istio's serde form: a one-key mapping naming the kind, e.g. {Prefix: "spiffe"}.
    r.check_keys(entry, {"Exact", "Prefix", "Suffix", "Presence"}, fmt::format("{} entry", what));
    if (entry.size() != 1) r.fail(entry, fmt::format("{} entry must have exactly one of Exact, Prefix, Suffix, Presence", what));
    sec::StringMatch* m = out->Add();
    const auto kv = *entry.entries().begin();
    const std::string kind(kv.first.scalar());
    if (kind == "Presence") {
      // Presence carries no value; accept `[]`, `{}` or null.
      if (!(Reader::absent(kv.second) || ((kv.second.is_sequence() || kv.second.is_map()) && kv.second.size() == 0))) {
        r.fail(kv.second, fmt::format("{} Presence takes no value (write `Presence: []`)", what));
      }
      m->mutable_presence();
    } else {
      const std::string value = r.str(kv.second, fmt::format("{} {}", what, kind));
      if (kind == "Exact") m->set_exact(value);
      if (kind == "Prefix") m->set_prefix(value);
      if (kind == "Suffix") m->set_suffix(value);
    }
  }
}

void read_addresses(const Reader& r, const yaml::Node& node, std::string_view what,
                    google::protobuf::RepeatedPtrField<sec::Address>* out) {
  r.expect_seq(node, what);
  for (const auto& entry : node.elements()) {
    sec::Address* a = out->Add();
    uint32_t length = 0;
    r.cidr(entry, fmt::format("{} entry", what), a->mutable_address(), &length);
    a->set_length(length);
  }
}

void read_match(const Reader& r, const yaml::Node& node, sec::Match* m) {
  constexpr std::string_view what = "policy match";
  r.check_keys(node,
               {"namespaces", "notNamespaces", "principals", "notPrincipals", "serviceAccounts",
                "notServiceAccounts", "sourceIps", "notSourceIps", "destinationIps", "notDestinationIps",
                "destinationPorts", "notDestinationPorts"},
               what);
  auto strings = [&](const char* key, google::protobuf::RepeatedPtrField<sec::StringMatch>* out) {
    if (auto v = node[key]; !Reader::absent(v)) read_string_matches(r, v, fmt::format("{}.{}", what, key), out);
  };
  strings("namespaces", m->mutable_namespaces());
  strings("notNamespaces", m->mutable_not_namespaces());
  strings("principals", m->mutable_principals());
  strings("notPrincipals", m->mutable_not_principals());
  auto addresses = [&](const char* key, google::protobuf::RepeatedPtrField<sec::Address>* out) {
    if (auto v = node[key]; !Reader::absent(v)) read_addresses(r, v, fmt::format("{}.{}", what, key), out);
  };
  addresses("sourceIps", m->mutable_source_ips());
  addresses("notSourceIps", m->mutable_not_source_ips());
  addresses("destinationIps", m->mutable_destination_ips());
  addresses("notDestinationIps", m->mutable_not_destination_ips());
  auto ports = [&](const char* key, google::protobuf::RepeatedField<uint32_t>* out) {
    if (auto v = node[key]; !Reader::absent(v)) {
      r.expect_seq(v, fmt::format("{}.{}", what, key));
      for (const auto& p : v.elements()) out->Add(r.port(p, fmt::format("{}.{} entry", what, key)));
    }
  };
  ports("destinationPorts", m->mutable_destination_ports());
  ports("notDestinationPorts", m->mutable_not_destination_ports());
  auto accounts = [&](const char* key, google::protobuf::RepeatedPtrField<sec::ServiceAccountMatch>* out) {
    if (auto v = node[key]; !Reader::absent(v)) {
      const std::string field = fmt::format("{}.{}", what, key);
      r.expect_seq(v, field);
      for (const auto& entry : v.elements()) {
        r.check_keys(entry, {"namespace", "serviceAccount"}, field + " entry");
        r.require(entry, "namespace", field + " entry");
        r.require(entry, "serviceAccount", field + " entry");
        sec::ServiceAccountMatch* sa = out->Add();
        sa->set_namespace_(r.str(entry["namespace"], field + ".namespace"));
        sa->set_serviceaccount(r.str(entry["serviceAccount"], field + ".serviceAccount"));
      }
    }
  };
  accounts("serviceAccounts", m->mutable_service_accounts());
  accounts("notServiceAccounts", m->mutable_not_service_accounts());
}

void read_policy(const Reader& r, const yaml::Node& node, sec::Authorization* p) {
  constexpr std::string_view what = "policy";
  r.check_keys(node, {"name", "namespace", "scope", "action", "rules", "dryRun"}, what);
  for (const char* key : {"name", "namespace", "scope", "action"}) r.require(node, key, what);
  p->set_name(r.str(node["name"], "policy.name"));
  p->set_namespace_(r.str(node["namespace"], "policy.namespace"));
  p->set_scope(r.choice<sec::Scope>(
      node["scope"], "policy.scope",
      {{"Global", sec::GLOBAL}, {"Namespace", sec::NAMESPACE}, {"WorkloadSelector", sec::WORKLOAD_SELECTOR}}));
  p->set_action(r.choice<sec::Action>(node["action"], "policy.action", {{"Allow", sec::ALLOW}, {"Deny", sec::DENY}}));
  if (auto v = node["dryRun"]; !Reader::absent(v)) p->set_dry_run(r.boolean(v, "policy.dryRun"));
  if (auto rules = node["rules"]; !Reader::absent(rules)) {
    // rules -> clauses -> matches: [[[match]]]
    r.expect_seq(rules, "policy.rules");
    for (const auto& rule : rules.elements()) {
      r.expect_seq(rule, "policy.rules entry (a list of clauses)");
      sec::Rule* out_rule = p->add_rules();
      for (const auto& clause : rule.elements()) {
        r.expect_seq(clause, "policy clause (a list of matches)");
        sec::Clause* out_clause = out_rule->add_clauses();
        for (const auto& match : clause.elements()) read_match(r, match, out_clause->add_matches());
      }
    }
  }
}

LocalConfig parse_or_throw(std::string_view text, std::string_view origin) {
  const Reader r(origin);
  auto doc = yaml::Document::load(text);
  if (!doc) throw ParseError{fmt::format("{}: invalid YAML: {}", origin, doc.error().message)};
  const yaml::Node root = doc->root();
  LocalConfig config;
  if (Reader::absent(root)) return config;  // an empty file is an empty config
  r.check_keys(root, {"workloads", "policies", "services"}, "local config");

  if (auto v = root["workloads"]; !Reader::absent(v)) {
    r.expect_seq(v, "workloads");
    for (const auto& node : v.elements()) {
      read_workload(r, node, &config.workloads.emplace_back());
      config.workload_origins.push_back(r.where(node));
    }
  }
  if (auto v = root["services"]; !Reader::absent(v)) {
    r.expect_seq(v, "services");
    for (const auto& node : v.elements()) {
      read_service(r, node, &config.services.emplace_back(), &config.endpoints);
      config.service_origins.push_back(r.where(node));
    }
  }
  if (auto v = root["policies"]; !Reader::absent(v)) {
    r.expect_seq(v, "policies");
    for (const auto& node : v.elements()) {
      read_policy(r, node, &config.policies.emplace_back());
      config.policy_origins.push_back(r.where(node));
    }
  }
  return config;
}

}  // namespace

core::Result<LocalConfig> parse_local_config(std::string_view text, std::string_view origin) {
  try {
    return parse_or_throw(text, origin);
  } catch (const ParseError& e) {
    return core::Error{e.message};
  }
}

core::Result<LocalConfig> read_local_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::Error{fmt::format("cannot read local config {}: {}", path, std::strerror(errno))};
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return parse_local_config(buffer.str(), path);
}

}  // namespace ztunnel::xds

namespace ztunnel::xds {
namespace {

// The text form of 4 or 16 address bytes (the reader produced them).
std::string ip_text(const std::string& bytes) {
  if (bytes.size() == 4) {
    boost::asio::ip::address_v4::bytes_type b;
    std::copy(bytes.begin(), bytes.end(), b.begin());
    return boost::asio::ip::address_v4(b).to_string();
  }
  boost::asio::ip::address_v6::bytes_type b{};
  std::copy_n(bytes.begin(), std::min(bytes.size(), b.size()), b.begin());
  return boost::asio::ip::address_v6(b).to_string();
}

}  // namespace

core::Result<state::Update> to_state_update(const LocalConfig& config) {
  state::Update update;
  update.replace_all = true;  // a local config is the whole state, as in Istio

  std::map<std::string, std::string> seen_uids;  // uid -> origin
  for (size_t i = 0; i < config.workloads.size(); ++i) {
    istio::workload::Workload proto = config.workloads[i];
    const std::string& origin = config.workload_origins[i];
    if (proto.uid().empty()) {
      // Istio lets local workloads omit the uid; xDS requires one, so derive
      // a stable one shaped like a Kubernetes Pod uid.
      std::string who = proto.name();
      if (who.empty() && proto.addresses_size() > 0) who = ip_text(proto.addresses(0));
      proto.set_uid(fmt::format("local//v1/Pod/{}/{}", proto.namespace_(), who));
    }
    auto [it, inserted] = seen_uids.emplace(proto.uid(), origin);
    if (!inserted) {
      return core::Error{fmt::format("{}: workload uid \"{}\" is already used by the workload at {}", origin,
                                     proto.uid(), it->second)};
    }
    auto workload = state::workload_from_proto(proto);
    if (!workload) return core::Error{fmt::format("{}: workload: {}", origin, workload.error().message)};
    update.upserted_workloads.push_back(std::move(*workload));
  }

  std::map<std::string, size_t> service_index;  // key -> position in upserted_services
  for (size_t i = 0; i < config.services.size(); ++i) {
    const std::string& origin = config.service_origins[i];
    auto service = state::service_from_proto(config.services[i]);
    if (!service) return core::Error{fmt::format("{}: service: {}", origin, service.error().message)};
    if (!service_index.emplace(service->key(), update.upserted_services.size()).second) {
      return core::Error{fmt::format("{}: service \"{}\" is defined twice", origin, service->key())};
    }
    update.upserted_services.push_back(std::move(*service));
  }
  for (const LocalEndpoint& ep : config.endpoints) {
    auto it = service_index.find(ep.service_key);
    if (it == service_index.end()) continue;  // cannot happen: endpoints come from a service
    state::Endpoint endpoint;
    endpoint.workload_uid = ep.workload_uid;
    for (auto [service_port, target_port] : ep.ports) {
      endpoint.ports[static_cast<uint16_t>(service_port)] = static_cast<uint16_t>(target_port);
    }
    endpoint.status = ep.healthy ? state::HealthStatus::kHealthy : state::HealthStatus::kUnhealthy;
    update.upserted_services[it->second].endpoints[ep.workload_uid] =
        std::make_shared<const state::Endpoint>(std::move(endpoint));
  }

  std::map<std::string, std::string> seen_policies;
  for (size_t i = 0; i < config.policies.size(); ++i) {
    const std::string& origin = config.policy_origins[i];
    auto policy = state::policy_from_proto(config.policies[i]);
    if (!policy) return core::Error{fmt::format("{}: policy: {}", origin, policy.error().message)};
    auto [it, inserted] = seen_policies.emplace(policy->key(), origin);
    if (!inserted) {
      return core::Error{fmt::format("{}: policy \"{}\" is already defined at {}", origin, policy->key(),
                                     it->second)};
    }
    update.upserted_policies.push_back(std::move(*policy));
  }
  return update;
}

}  // namespace ztunnel::xds
