// The proxy's immutable configuration, built once from Istio ztunnel's environment variables.
//
// Names, defaults and derived rules follow Istio's `src/config.rs` so that the same
// DaemonSet works for either binary. Where this module is stricter than Istio (a typo
// that Istio silently ignores fails start-up here), the field's comment says so.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/log.h"

namespace ztunnel::config {

// Listener ports. Istio has no variables for these; only PROXY_CONFIG moves admin/stats.
inline constexpr uint16_t kAdminPort = 15000;
inline constexpr uint16_t kOutboundPort = 15001;
inline constexpr uint16_t kInboundPlaintextPort = 15006;
inline constexpr uint16_t kInboundPort = 15008;  // HBONE
inline constexpr uint16_t kStatsPort = 15020;
inline constexpr uint16_t kReadinessPort = 15021;
inline constexpr uint16_t kDnsProxyPort = 15053;
inline constexpr uint16_t kSocks5Port = 15080;

// Destinations a workload may not reach through ztunnel: calling its own listeners
// would loop traffic back into the proxy (and HBONE-in-HBONE is not supported).
inline constexpr std::array<uint16_t, 3> kIllegalPorts = {kInboundPort, kInboundPlaintextPort,
                                                          kOutboundPort};

// SO_MARK for pod sockets in shared mode; istio-cni's iptables match 0x539/0xfff.
inline constexpr uint32_t kDefaultPacketMark = 1337;

using Duration = std::chrono::nanoseconds;

// A snapshot of environment variables. Config reads only through this, so tests build
// one from a list and never touch the real process environment.
class Environment {
 public:
  using Map = std::map<std::string, std::string, std::less<>>;

  Environment() = default;
  Environment(std::initializer_list<std::pair<const std::string, std::string>> vars)
      : vars_(vars) {}
  explicit Environment(Map vars) : vars_(std::move(vars)) {}

  static Environment from_process();

  // Set-but-empty is a value (""), as with Rust's env::var: several rules depend on it.
  std::optional<std::string> get(std::string_view name) const;
  bool contains(std::string_view name) const { return vars_.find(name) != vars_.end(); }

  // (name without the prefix, value) for every variable starting with `prefix`, in name order.
  std::vector<std::pair<std::string, std::string>> with_prefix(std::string_view prefix) const;

  const Map& vars() const { return vars_; }

 private:
  Map vars_;
};

enum class ProxyMode { kShared, kDedicated };
std::string_view to_string(ProxyMode mode);

// The single workload a dedicated-mode ztunnel proxies for (PROXY_WORKLOAD_INFO).
struct ProxyWorkloadInfo {
  std::string namespace_name;
  std::string name;
  std::string service_account;
  bool operator==(const ProxyWorkloadInfo&) const = default;
};

// Trust anchors for the xDS or CA connection (XDS_ROOT_CA / CA_ROOT_CA).
struct RootCert {
  enum class Kind { kFile, kSystem, kInlinePem };
  Kind kind = Kind::kFile;
  std::string value;  // a path for kFile, the PEM text for kInlinePem, empty for kSystem
  bool operator==(const RootCert&) const = default;
};

// How to authenticate to the CA and istiod (AUTH_TOKEN).
struct AuthSource {
  enum class Kind { kNone, kTokenFile, kStaticToken };
  Kind kind = Kind::kNone;
  std::string value;  // a path (re-read on every request) or the token itself: a secret
  bool operator==(const AuthSource&) const = default;
};

// Workloads/services from YAML instead of (or besides) xDS: LOCAL_XDS_PATH or LOCAL_XDS.
struct LocalXds {
  enum class Kind { kFile, kInline };
  Kind kind = Kind::kFile;
  std::string value;  // a path or the YAML text
  bool operator==(const LocalXds&) const = default;
};

// Where the DNS proxy listens: `localhost:PORT` (127.0.0.1 and, when IPv6 works on lo,
// ::1) or one explicit `IP:PORT` / `[IPv6]:PORT`.
struct DnsProxyAddr {
  bool localhost = true;
  std::string ip;  // empty when localhost
  uint16_t port = kDnsProxyPort;
  std::string to_string() const;
  bool operator==(const DnsProxyAddr&) const = default;
};

// One extra gRPC metadata entry (XDS_HEADER_<K> / CA_HEADER_<K>); the name is lower-cased
// because HTTP/2 forbids upper-case field names.
struct Header {
  std::string name;
  std::string value;
  bool operator==(const Header&) const = default;
};

// Answers "does this path exist?" for the rules Istio bases on the filesystem
// (AUTH_TOKEN, XDS_ROOT_CA, CA_ROOT_CA); tests pass a fake.
using PathExists = std::function<bool(const std::string& path)>;

// Immutable after from_env(): the application builds it once and hands out const
// references; nothing writes to it afterwards.
struct Config {
  // --- proxy mode and listeners ---
  ProxyMode proxy_mode = ProxyMode::kShared;                 // PROXY_MODE
  std::optional<ProxyWorkloadInfo> proxy_workload_info;      // PROXY_WORKLOAD_INFO
  bool proxy_enabled = true;                                 // ENABLE_PROXY
  bool dns_proxy_enabled = true;                             // ISTIO_META_DNS_CAPTURE
  DnsProxyAddr dns_proxy_addr;                               // ISTIO_META_DNS_PROXY_ADDR
  std::string inpod_uds = "/var/run/ztunnel/ztunnel.sock";   // INPOD_UDS
  bool inpod_port_reuse = true;                              // INPOD_PORT_REUSE
  std::optional<uint32_t> packet_mark = kDefaultPacketMark;  // PACKET_MARK
  bool ipv6_enabled = true;                                  // IPV6_ENABLED
  std::optional<bool> enable_original_source;                // ENABLE_ORIG_SRC: unset = detect
  bool localhost_app_tunnel = true;                          // LOCALHOST_APP_TUNNEL
  bool enable_response_baggage = true;                       // ENABLE_RESPONSE_BAGGAGE
  bool socks5_enabled = false;                               // UNSTABLE_ENABLE_SOCKS5
  uint16_t admin_port = kAdminPort;                          // PROXY_CONFIG proxyAdminPort
  uint16_t stats_port = kStatsPort;                          // PROXY_CONFIG statsPort

  // --- control plane and identity ---
  std::optional<std::string> xds_address;                 // XDS_ADDRESS; none = no xDS
  std::optional<std::string> ca_address;                  // CA_ADDRESS; none = no CA
  bool fake_ca = false;                                   // FAKE_CA
  RootCert xds_root_cert;                                 // XDS_ROOT_CA
  RootCert ca_root_cert;                                  // CA_ROOT_CA
  std::optional<std::string> alt_xds_hostname;            // ALT_XDS_HOSTNAME
  std::optional<std::string> alt_ca_hostname;             // ALT_CA_HOSTNAME
  AuthSource auth;                                        // AUTH_TOKEN
  std::optional<LocalXds> local_xds;                      // LOCAL_XDS_PATH / LOCAL_XDS
  bool xds_on_demand = false;                             // XDS_ON_DEMAND
  std::vector<Header> xds_headers;                        // XDS_HEADER_<K>
  std::vector<Header> ca_headers;                         // CA_HEADER_<K>
  std::string cluster_id = "Kubernetes";                  // ISTIO_META_CLUSTER_ID, CLUSTER_ID
  std::string cluster_domain = "cluster.local";           // CLUSTER_DOMAIN
  std::string trust_domain = "cluster.local";             // TRUST_DOMAIN
  std::string network;                                    // NETWORK
  std::optional<std::string> pod_name;                    // POD_NAME
  std::optional<std::string> pod_namespace;               // POD_NAMESPACE
  std::optional<std::string> service_account;             // SERVICE_ACCOUNT
  std::optional<std::string> node_name;                   // NODE_NAME
  std::string instance_ip = "1.1.1.1";                    // INSTANCE_IP (Istio's xDS default)
  std::optional<std::string> prefered_service_namespace;  // PREFERED_SERVICE_NAMESPACE (sic)
  Duration secret_ttl = std::chrono::hours(24);           // SECRET_TTL
  std::optional<std::string> crl_path;                    // CRL_PATH; empty = off
  // ztunnel-cpp extensions for nodes without istiod (not in Istio):
  std::optional<std::string> ca_dir;    // ZTUNNEL_CA_DIR: built-in CA (ca-cert.pem, ca-key.pem)
  std::optional<std::string> cert_dir;  // ZTUNNEL_CERT_DIR: cert-chain.pem, key.pem, root-cert.pem
  std::map<std::string, std::string> proxy_metadata;      // ISTIO_META_<K> (+ PROXY_CONFIG)
  std::map<std::string, std::string> metadata_json;       // ISTIO_METAJSON_<K>, unparsed
  std::optional<std::string> istio_version;               // ISTIO_META_ISTIO_VERSION

  // --- performance ---
  uint32_t worker_threads = 2;                     // ZTUNNEL_WORKER_THREADS & co.
  uint32_t pool_max_streams_per_connection = 100;  // POOL_MAX_STREAMS_PER_CONNECTION
  Duration pool_unused_release_timeout = std::chrono::minutes(5);  // POOL_UNUSED_RELEASE_TIMEOUT
  uint32_t http2_stream_window_size = 4u << 20;                    // HTTP2_STREAM_WINDOW_SIZE
  uint32_t http2_connection_window_size = 16u << 20;               // HTTP2_CONNECTION_WINDOW_SIZE
  uint32_t http2_frame_size = 1u << 20;                            // HTTP2_FRAME_SIZE

  // --- sockets ---
  Duration keepalive_time = std::chrono::seconds(180);      // KEEPALIVE_TIME
  Duration keepalive_interval = std::chrono::seconds(180);  // KEEPALIVE_INTERVAL
  uint32_t keepalive_retries = 9;                           // KEEPALIVE_RETRIES
  bool keepalive_enabled = true;                            // KEEPALIVE_ENABLED
  bool user_timeout_enabled = false;                        // USER_TIMEOUT_ENABLED

  // --- shutdown, TLS, logging ---
  Duration drain_deadline = std::chrono::seconds(5);  // CONNECTION_TERMINATION_DEADLINE
  bool tls12_enabled = false;                         // TLS12_ENABLED
  bool authz_policy_info_logging = false;             // AUTHZ_POLICY_INFO_LOGGING
  std::string log_filter = "info";                    // RUST_LOG (valid log::Filter spec)
  log::Format log_format = log::Format::kPlain;       // LOG_FORMAT

  // Builds and validates the configuration. `cpu_count` is the machine's logical CPU
  // count (std::thread::hardware_concurrency in main); `path_exists` defaults to the
  // real filesystem. Every failure is one line naming the variable and its value.
  static core::Result<Config> from_env(const Environment& env, unsigned cpu_count,
                                       const PathExists& path_exists = {});

  // kIllegalPorts plus the SOCKS5 port when that listener is on.
  std::vector<uint16_t> illegal_ports() const;

  // ztunnel's own SPIFFE identity, when POD_NAMESPACE, SERVICE_ACCOUNT and POD_NAME are
  // all set (as Istio requires before it serves its own inbound listener).
  std::optional<std::string> self_identity() const;

  // The effective configuration as `key: value` lines, for the start-up log. Secrets
  // (a static AUTH_TOKEN, header values) are redacted.
  std::string describe() const;
};

// `ztunnel [proxy|version|help]` usage and one line per supported variable.
std::string help_text();

// --- value parsers, exposed for unit tests. Errors say what was expected; from_env
// prefixes them with `invalid NAME="value": `. ---

// Istio's duration strings (Rust crate duration-str, additive subset): one or more
// `<digits><unit>` terms, optionally separated by spaces or '+'; a bare number is
// seconds. Units, case-insensitive: ns, us/µs, ms, s, m/min, h/hr, d, w, mon (30d), y (365d),
// and their long forms (sec, minutes, hours, ...).
core::Result<Duration> parse_duration(std::string_view text);
// The inverse for display: "24h", "1h30m", "500ms", "0s".
std::string format_duration(Duration d);

// Exactly `true` or `false`, as Rust's bool parsing.
core::Result<bool> parse_bool(std::string_view text);

// Decimal digits only (no sign, no spaces), within [min, max].
core::Result<uint64_t> parse_unsigned(std::string_view text, uint64_t min, uint64_t max);

// A Kubernetes CPU quantity (`2`, `1.5`, `500m`) as whole CPUs, rounded up; must be > 0.
core::Result<uint32_t> parse_cpu_quantity(std::string_view text);

// `P%` of `total`, rounded up and at least 1; 0 < P <= 100, P may have a fraction.
core::Result<uint32_t> parse_percent_of(std::string_view text, uint32_t total);

// `localhost:PORT`, `IPv4:PORT` or `[IPv6]:PORT`.
core::Result<DnsProxyAddr> parse_dns_proxy_addr(std::string_view text);

// An xDS/CA address: `scheme://host[:port][/path]` or `host[:port]`, which gets `https://`.
core::Result<std::string> parse_control_plane_uri(std::string_view text);

// `namespace/name/service-account`, each part non-empty.
core::Result<ProxyWorkloadInfo> parse_workload_info(std::string_view text);

// The drain deadline Istio derives from TERMINATION_GRACE_PERIOD_SECONDS: leave a few
// seconds before Kubernetes' SIGKILL, never less than 1s (Istio underflows at 0).
Duration drain_deadline_from_grace_period(uint64_t grace_seconds);

}  // namespace ztunnel::config
