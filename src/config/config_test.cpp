// Unit tests for Config::from_env, its derived rules and its value parsers.
#include "config/config.h"

#include <fmt/format.h>

#include <set>
#include <string>
#include <vector>

#include "support/testing.h"

namespace ztunnel::config {
namespace {

using namespace std::chrono_literals;

// Builds a Config against a fake filesystem holding only `files`, on an 8-CPU machine
// unless told otherwise.
core::Result<Config> build(const Environment& env, unsigned cpus = 8,
                           std::set<std::string> files = {}) {
  return Config::from_env(env, cpus, [files](const std::string& p) { return files.count(p) > 0; });
}

// The error message for `env`, or "" when it builds.
std::string error_of(const Environment& env, unsigned cpus = 8) {
  auto r = build(env, cpus);
  return r ? std::string() : r.error().message;
}

Config must_build(const Environment& env, unsigned cpus = 8, std::set<std::string> files = {}) {
  auto r = build(env, cpus, std::move(files));
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  return *r;
}

uint32_t threads(const Environment& env, unsigned cpus = 8) {
  return must_build(env, cpus).worker_threads;
}

}  // namespace

// --- Environment ---

TEST_CASE("an environment snapshot answers get, contains and prefix queries") {
  Environment env{
      {"XDS_HEADER_B", "2"}, {"XDS_HEADER_A", "1"}, {"XDS_HEADERX", "no"}, {"EMPTY", ""}};
  CHECK(env.get("XDS_HEADER_A") == "1");
  CHECK_FALSE(env.get("MISSING").has_value());
  CHECK(env.get("EMPTY") == "");  // set-but-empty is a value
  CHECK(env.contains("EMPTY"));
  auto headers = env.with_prefix("XDS_HEADER_");
  REQUIRE(headers.size() == 2);
  CHECK(headers[0] == std::pair<std::string, std::string>{"A", "1"});
  CHECK(headers[1] == std::pair<std::string, std::string>{"B", "2"});
  CHECK(env.with_prefix("NOPE_").empty());
}

// --- defaults ---

TEST_CASE("an empty environment gives Istio's defaults for every field") {
  Config c = must_build(Environment{}, 8);
  CHECK(c.proxy_mode == ProxyMode::kShared);
  CHECK_FALSE(c.proxy_workload_info.has_value());
  CHECK(c.proxy_enabled);
  CHECK(c.dns_proxy_enabled);
  CHECK(c.dns_proxy_addr == DnsProxyAddr{true, "", 15053});
  CHECK(c.inpod_uds == "/var/run/ztunnel/ztunnel.sock");
  CHECK(c.inpod_port_reuse);
  CHECK(c.packet_mark == 1337u);
  CHECK(c.ipv6_enabled);
  CHECK_FALSE(c.enable_original_source.has_value());
  CHECK(c.localhost_app_tunnel);
  CHECK(c.enable_response_baggage);
  CHECK_FALSE(c.socks5_enabled);
  CHECK(c.admin_port == 15000);
  CHECK(c.stats_port == 15020);
  CHECK(c.xds_address == "https://localhost:15012");
  CHECK(c.ca_address == "https://localhost:15012");
  CHECK_FALSE(c.fake_ca);
  CHECK(c.xds_root_cert ==
        RootCert{RootCert::Kind::kFile, "./var/run/secrets/istio/root-cert.pem"});
  CHECK(c.ca_root_cert == RootCert{RootCert::Kind::kFile, "./var/run/secrets/istio/root-cert.pem"});
  CHECK_FALSE(c.alt_xds_hostname.has_value());
  CHECK_FALSE(c.alt_ca_hostname.has_value());
  CHECK(c.auth == AuthSource{});
  CHECK_FALSE(c.local_xds.has_value());
  CHECK_FALSE(c.xds_on_demand);
  CHECK(c.xds_headers.empty());
  CHECK(c.ca_headers.empty());
  CHECK(c.cluster_id == "Kubernetes");
  CHECK(c.cluster_domain == "cluster.local");
  CHECK(c.trust_domain == "cluster.local");
  CHECK(c.network == "");
  CHECK_FALSE(c.pod_name.has_value());
  CHECK_FALSE(c.pod_namespace.has_value());
  CHECK_FALSE(c.service_account.has_value());
  CHECK_FALSE(c.node_name.has_value());
  CHECK(c.instance_ip == "1.1.1.1");
  CHECK_FALSE(c.prefered_service_namespace.has_value());
  CHECK(c.secret_ttl == 24h);
  CHECK_FALSE(c.crl_path.has_value());
  CHECK(c.proxy_metadata.empty());
  CHECK(c.metadata_json.empty());
  CHECK_FALSE(c.istio_version.has_value());
  CHECK(c.worker_threads == 2);
  CHECK(c.pool_max_streams_per_connection == 100);
  CHECK(c.pool_unused_release_timeout == 5min);
  CHECK(c.http2_stream_window_size == 4194304);
  CHECK(c.http2_connection_window_size == 16777216);
  CHECK(c.http2_frame_size == 1048576);
  CHECK(c.keepalive_time == 180s);
  CHECK(c.keepalive_interval == 180s);
  CHECK(c.keepalive_retries == 9);
  CHECK(c.keepalive_enabled);
  CHECK_FALSE(c.user_timeout_enabled);
  CHECK(c.drain_deadline == 5s);
  CHECK_FALSE(c.tls12_enabled);
  CHECK_FALSE(c.authz_policy_info_logging);
  CHECK(c.log_filter == "info");
  CHECK(c.log_format == log::Format::kPlain);
  CHECK(c.illegal_ports() == std::vector<uint16_t>{15008, 15006, 15001});
  CHECK_FALSE(c.self_identity().has_value());
}

TEST_CASE("fixed ports are Istio's") {
  CHECK(kOutboundPort == 15001);
  CHECK(kInboundPlaintextPort == 15006);
  CHECK(kInboundPort == 15008);
  CHECK(kReadinessPort == 15021);
  CHECK(kStatsPort == 15020);
  CHECK(kAdminPort == 15000);
  CHECK(kDnsProxyPort == 15053);
  CHECK(kSocks5Port == 15080);
}

TEST_CASE("every variable takes a valid value") {
  Config c = must_build(Environment{
      {"ENABLE_PROXY", "false"},
      {"INPOD_UDS", "/tmp/zds.sock"},
      {"INPOD_PORT_REUSE", "false"},
      {"PACKET_MARK", "42"},
      {"IPV6_ENABLED", "false"},
      {"ENABLE_ORIG_SRC", "false"},
      {"LOCALHOST_APP_TUNNEL", "false"},
      {"ENABLE_RESPONSE_BAGGAGE", "false"},
      {"UNSTABLE_ENABLE_SOCKS5", "true"},
      {"ALT_XDS_HOSTNAME", "istiod.example.com"},
      {"ALT_CA_HOSTNAME", "ca.example.com"},
      {"CLUSTER_ID", "east"},
      {"CLUSTER_DOMAIN", "corp.example"},
      {"TRUST_DOMAIN", "example.org"},
      {"NETWORK", "net-1"},
      {"POD_NAME", "ztunnel-abc"},
      {"POD_NAMESPACE", "istio-system"},
      {"SERVICE_ACCOUNT", "ztunnel"},
      {"NODE_NAME", "node-1"},
      {"INSTANCE_IP", "fd00::5"},
      {"PREFERED_SERVICE_NAMESPACE", "shared"},
      {"SECRET_TTL", "12h"},
      {"CRL_PATH", "/etc/crl.pem"},
      {"ISTIO_META_ISTIO_VERSION", "1.27.0"},
      {"ISTIO_META_DNS_PROXY_ADDR", "127.0.0.1:5353"},
      {"POOL_MAX_STREAMS_PER_CONNECTION", "50"},
      {"POOL_UNUSED_RELEASE_TIMEOUT", "30s"},
      {"HTTP2_STREAM_WINDOW_SIZE", "65535"},
      {"HTTP2_CONNECTION_WINDOW_SIZE", "1048576"},
      {"HTTP2_FRAME_SIZE", "16384"},
      {"KEEPALIVE_TIME", "60s"},
      {"KEEPALIVE_INTERVAL", "10s"},
      {"KEEPALIVE_RETRIES", "3"},
      {"KEEPALIVE_ENABLED", "false"},
      {"USER_TIMEOUT_ENABLED", "true"},
      {"TLS12_ENABLED", "true"},
      {"AUTHZ_POLICY_INFO_LOGGING", "true"},
      {"RUST_LOG", "warn,xds=debug"},
      {"LOG_FORMAT", "json"},
  });
  CHECK_FALSE(c.proxy_enabled);
  CHECK(c.inpod_uds == "/tmp/zds.sock");
  CHECK_FALSE(c.inpod_port_reuse);
  CHECK(c.packet_mark == 42u);
  CHECK_FALSE(c.ipv6_enabled);
  CHECK(c.enable_original_source == false);
  CHECK_FALSE(c.localhost_app_tunnel);
  CHECK_FALSE(c.enable_response_baggage);
  CHECK(c.socks5_enabled);
  CHECK(c.illegal_ports() == std::vector<uint16_t>{15008, 15006, 15001, 15080});
  CHECK(c.alt_xds_hostname == "istiod.example.com");
  CHECK(c.alt_ca_hostname == "ca.example.com");
  CHECK(c.cluster_id == "east");
  CHECK(c.cluster_domain == "corp.example");
  CHECK(c.trust_domain == "example.org");
  CHECK(c.network == "net-1");
  CHECK(c.pod_name == "ztunnel-abc");
  CHECK(c.pod_namespace == "istio-system");
  CHECK(c.service_account == "ztunnel");
  CHECK(c.node_name == "node-1");
  CHECK(c.instance_ip == "fd00::5");
  CHECK(c.prefered_service_namespace == "shared");
  CHECK(c.secret_ttl == 12h);
  CHECK(c.crl_path == "/etc/crl.pem");
  CHECK(c.istio_version == "1.27.0");
  CHECK(c.dns_proxy_addr == DnsProxyAddr{false, "127.0.0.1", 5353});
  CHECK(c.pool_max_streams_per_connection == 50);
  CHECK(c.pool_unused_release_timeout == 30s);
  CHECK(c.http2_stream_window_size == 65535);
  CHECK(c.http2_connection_window_size == 1048576);
  CHECK(c.http2_frame_size == 16384);
  CHECK(c.keepalive_time == 60s);
  CHECK(c.keepalive_interval == 10s);
  CHECK(c.keepalive_retries == 3);
  CHECK_FALSE(c.keepalive_enabled);
  CHECK(c.user_timeout_enabled);
  CHECK(c.tls12_enabled);
  CHECK(c.authz_policy_info_logging);
  CHECK(c.log_filter == "warn,xds=debug");
  CHECK(c.log_format == log::Format::kJson);
  CHECK(c.self_identity() == "spiffe://example.org/ns/istio-system/sa/ztunnel");
}

// --- bad values ---

TEST_CASE("every variable rejects a bad value in one line naming the variable and the value") {
  struct Case {
    Environment env;
    std::string var;
    std::string value;
  };
  const std::vector<Case> cases = {
      {{{"PROXY_MODE", "sidecar"}}, "PROXY_MODE", "sidecar"},
      {{{"PROXY_MODE", "dedicated"}, {"PROXY_WORKLOAD_INFO", "ns/name"}},
       "PROXY_WORKLOAD_INFO",
       "ns/name"},
      {{{"ENABLE_PROXY", "1"}}, "ENABLE_PROXY", "1"},
      {{{"INPOD_UDS", ""}}, "INPOD_UDS", ""},
      {{{"INPOD_PORT_REUSE", "yes"}}, "INPOD_PORT_REUSE", "yes"},
      {{{"PACKET_MARK", "0x539"}}, "PACKET_MARK", "0x539"},
      {{{"PACKET_MARK", "4294967296"}}, "PACKET_MARK", "4294967296"},
      {{{"IPV6_ENABLED", "TRUE"}}, "IPV6_ENABLED", "TRUE"},
      {{{"ENABLE_ORIG_SRC", "auto"}}, "ENABLE_ORIG_SRC", "auto"},
      {{{"LOCALHOST_APP_TUNNEL", "on"}}, "LOCALHOST_APP_TUNNEL", "on"},
      {{{"ENABLE_RESPONSE_BAGGAGE", "no"}}, "ENABLE_RESPONSE_BAGGAGE", "no"},
      {{{"UNSTABLE_ENABLE_SOCKS5", "1"}}, "UNSTABLE_ENABLE_SOCKS5", "1"},
      {{{"XDS_ADDRESS", "https://bad host:15012"}}, "XDS_ADDRESS", "https://bad host:15012"},
      {{{"CA_ADDRESS", "https://"}}, "CA_ADDRESS", "https://"},
      {{{"FAKE_CA", "yes"}}, "FAKE_CA", "yes"},
      {{{"XDS_ROOT_CA", "/missing/root.pem"}}, "XDS_ROOT_CA", "/missing/root.pem"},
      {{{"CA_ROOT_CA", ""}}, "CA_ROOT_CA", ""},
      {{{"ALT_XDS_HOSTNAME", "bad host"}}, "ALT_XDS_HOSTNAME", "bad host"},
      {{{"ALT_CA_HOSTNAME", ""}}, "ALT_CA_HOSTNAME", ""},
      {{{"AUTH_TOKEN", ""}}, "AUTH_TOKEN", ""},
      {{{"LOCAL_XDS_PATH", "/a.yaml"}, {"LOCAL_XDS", "workloads: []"}},
       "LOCAL_XDS_PATH",
       "/a.yaml"},
      {{{"LOCAL_XDS_PATH", ""}}, "LOCAL_XDS_PATH", ""},
      {{{"XDS_ON_DEMAND", "on"}}, "XDS_ON_DEMAND", "on"},
      {{{"CLUSTER_ID", "a\x01"}}, "CLUSTER_ID", "a\\x01"},
      {{{"ISTIO_META_CLUSTER_ID", "a\x7f"}}, "ISTIO_META_CLUSTER_ID", "a\\x7f"},
      {{{"CLUSTER_DOMAIN", "cluster local"}}, "CLUSTER_DOMAIN", "cluster local"},
      {{{"TRUST_DOMAIN", "spiffe://td"}}, "TRUST_DOMAIN", "spiffe://td"},
      {{{"NETWORK", "net\n1"}}, "NETWORK", "net\\n1"},
      {{{"POD_NAME", ""}}, "POD_NAME", ""},
      {{{"POD_NAMESPACE", "a/b"}}, "POD_NAMESPACE", "a/b"},
      {{{"SERVICE_ACCOUNT", "my sa"}}, "SERVICE_ACCOUNT", "my sa"},
      {{{"NODE_NAME", "node/1"}}, "NODE_NAME", "node/1"},
      {{{"INSTANCE_IP", "10.0.0.300"}}, "INSTANCE_IP", "10.0.0.300"},
      {{{"SECRET_TTL", "-1h"}}, "SECRET_TTL", "-1h"},
      {{{"SECRET_TTL", "0s"}}, "SECRET_TTL", "0s"},
      {{{"ISTIO_META_DNS_PROXY_ADDR", "not-an-address"}},
       "ISTIO_META_DNS_PROXY_ADDR",
       "not-an-address"},
      {{{"PROXY_CONFIG", "{proxyAdminPort: abc}"}}, "PROXY_CONFIG", "{proxyAdminPort: abc}"},
      {{{"ZTUNNEL_WORKER_THREADS", "many"}}, "ZTUNNEL_WORKER_THREADS", "many"},
      {{{"ZTUNNEL_WORKER_THREADS", "150%"}}, "ZTUNNEL_WORKER_THREADS", "150%"},
      {{{"ZTUNNEL_WORKER_THREADS", "-1"}}, "ZTUNNEL_WORKER_THREADS", "-1"},
      {{{"ZTUNNEL_CPU_LIMIT", "0"}}, "ZTUNNEL_CPU_LIMIT", "0"},
      {{{"ZTUNNEL_CPU_LIMIT", "2.5"}}, "ZTUNNEL_CPU_LIMIT", "2.5"},
      {{{"ZTUNNEL_RESOURCE_CPU_LIMIT", "1Gi"}}, "ZTUNNEL_RESOURCE_CPU_LIMIT", "1Gi"},
      {{{"ZTUNNEL_RESOURCE_CPU_LIMIT", "0m"}}, "ZTUNNEL_RESOURCE_CPU_LIMIT", "0m"},
      {{{"ZTUNNEL_RESOURCE_CPU_REQUEST", "lots"}}, "ZTUNNEL_RESOURCE_CPU_REQUEST", "lots"},
      {{{"POOL_MAX_STREAMS_PER_CONNECTION", "abc"}}, "POOL_MAX_STREAMS_PER_CONNECTION", "abc"},
      {{{"POOL_MAX_STREAMS_PER_CONNECTION", "0"}}, "POOL_MAX_STREAMS_PER_CONNECTION", "0"},
      {{{"POOL_MAX_STREAMS_PER_CONNECTION", "65536"}}, "POOL_MAX_STREAMS_PER_CONNECTION", "65536"},
      {{{"POOL_UNUSED_RELEASE_TIMEOUT", "forever"}}, "POOL_UNUSED_RELEASE_TIMEOUT", "forever"},
      {{{"HTTP2_STREAM_WINDOW_SIZE", "2147483648"}}, "HTTP2_STREAM_WINDOW_SIZE", "2147483648"},
      {{{"HTTP2_CONNECTION_WINDOW_SIZE", "big"}}, "HTTP2_CONNECTION_WINDOW_SIZE", "big"},
      {{{"HTTP2_FRAME_SIZE", "16383"}}, "HTTP2_FRAME_SIZE", "16383"},
      {{{"HTTP2_FRAME_SIZE", "16777216"}}, "HTTP2_FRAME_SIZE", "16777216"},
      {{{"KEEPALIVE_TIME", "500ms"}}, "KEEPALIVE_TIME", "500ms"},
      {{{"KEEPALIVE_INTERVAL", "10h"}}, "KEEPALIVE_INTERVAL", "10h"},
      {{{"KEEPALIVE_RETRIES", "0"}}, "KEEPALIVE_RETRIES", "0"},
      {{{"KEEPALIVE_RETRIES", "128"}}, "KEEPALIVE_RETRIES", "128"},
      {{{"KEEPALIVE_ENABLED", "False"}}, "KEEPALIVE_ENABLED", "False"},
      {{{"USER_TIMEOUT_ENABLED", "yes"}}, "USER_TIMEOUT_ENABLED", "yes"},
      {{{"TERMINATION_GRACE_PERIOD_SECONDS", "30s"}}, "TERMINATION_GRACE_PERIOD_SECONDS", "30s"},
      {{{"TERMINATION_GRACE_PERIOD_SECONDS", "-1"}}, "TERMINATION_GRACE_PERIOD_SECONDS", "-1"},
      {{{"CONNECTION_TERMINATION_DEADLINE", "soon"}}, "CONNECTION_TERMINATION_DEADLINE", "soon"},
      {{{"TLS12_ENABLED", "yes"}}, "TLS12_ENABLED", "yes"},
      {{{"AUTHZ_POLICY_INFO_LOGGING", "True"}}, "AUTHZ_POLICY_INFO_LOGGING", "True"},
      {{{"COMPLIANCE_POLICY", "pqc"}}, "COMPLIANCE_POLICY", "pqc"},
      {{{"RUST_LOG", "xds=loud"}}, "RUST_LOG", "xds=loud"},
      {{{"LOG_FORMAT", "xml"}}, "LOG_FORMAT", "xml"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.var);
    CAPTURE(c.value);
    std::string msg = error_of(c.env);
    CAPTURE(msg);
    CHECK(msg.starts_with(fmt::format("invalid {}=\"{}\": ", c.var, c.value)));
    CHECK(msg.find('\n') == std::string::npos);
    CHECK(msg.size() > c.var.size() + c.value.size() + 14);  // says what was expected
  }
}

TEST_CASE("error messages say what was expected") {
  CHECK(error_of({{"POOL_MAX_STREAMS_PER_CONNECTION", "abc"}}) ==
        R"(invalid POOL_MAX_STREAMS_PER_CONNECTION="abc": expected an integer from 1 to 65535)");
  CHECK(error_of({{"ENABLE_PROXY", "yes"}}) ==
        R"(invalid ENABLE_PROXY="yes": expected true or false)");
  CHECK(error_of({{"PROXY_MODE", "Shared"}}) ==
        R"(invalid PROXY_MODE="Shared": expected shared or dedicated)");
  CHECK(error_of({{"SECRET_TTL", "1 fortnight"}}) ==
        R"(invalid SECRET_TTL="1 fortnight": expected a duration such as 5s, 500ms or 1h30m )"
        R"((unknown unit "fortnight"; use ns, us, ms, s, m, h, d, w, mon or y))");
}

TEST_CASE("long or multi-line values are shortened and escaped in error messages") {
  std::string yaml(200, 'x');
  yaml += "\nmore";
  std::string msg = error_of({{"LOCAL_XDS_PATH", yaml}, {"LOCAL_XDS", "a: b"}});
  CHECK(msg.find('\n') == std::string::npos);
  CHECK(msg.size() < 200);
  CHECK(msg.find("\"...") != std::string::npos);
}

TEST_CASE("the first bad variable is reported even when several are bad") {
  std::string msg = error_of({{"PROXY_MODE", "weird"}, {"LOG_FORMAT", "xml"}});
  CHECK(msg.starts_with("invalid PROXY_MODE="));
}

// --- proxy mode ---

TEST_CASE("dedicated mode requires PROXY_WORKLOAD_INFO") {
  std::string msg = error_of({{"PROXY_MODE", "dedicated"}});
  CHECK(msg.find("PROXY_WORKLOAD_INFO") != std::string::npos);
  CHECK(msg.find("dedicated") != std::string::npos);
  CHECK(msg.find('\n') == std::string::npos);
}

TEST_CASE("dedicated mode takes namespace/name/service-account and drops the default packet mark") {
  Config c =
      must_build({{"PROXY_MODE", "dedicated"}, {"PROXY_WORKLOAD_INFO", "default/web-0/web"}});
  CHECK(c.proxy_mode == ProxyMode::kDedicated);
  CHECK(c.proxy_workload_info == ProxyWorkloadInfo{"default", "web-0", "web"});
  CHECK_FALSE(c.packet_mark.has_value());

  Config marked = must_build({{"PROXY_MODE", "dedicated"},
                              {"PROXY_WORKLOAD_INFO", "default/web-0/web"},
                              {"PACKET_MARK", "7"}});
  CHECK(marked.packet_mark == 7u);
}

TEST_CASE("workload info needs exactly three non-empty parts") {
  CHECK(parse_workload_info("ns/name/sa").value() == ProxyWorkloadInfo{"ns", "name", "sa"});
  for (const char* bad :
       {"", "ns", "ns/name", "ns/name/sa/extra", "/name/sa", "ns//sa", "ns/name/", "//"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_workload_info(bad));
    CHECK_FALSE(build({{"PROXY_MODE", "dedicated"}, {"PROXY_WORKLOAD_INFO", bad}}));
  }
}

TEST_CASE("shared mode ignores PROXY_WORKLOAD_INFO, as Istio does") {
  Config c = must_build({{"PROXY_WORKLOAD_INFO", "garbage"}});
  CHECK_FALSE(c.proxy_workload_info.has_value());
  CHECK(c.packet_mark == 1337u);
}

// --- control plane ---

TEST_CASE("istiod defaults to its in-cluster name when KUBERNETES_SERVICE_HOST is set") {
  Config c = must_build({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}});
  CHECK(c.xds_address == "https://istiod.istio-system.svc:15012");
  CHECK(c.ca_address == "https://istiod.istio-system.svc:15012");
  // Presence is what counts, as with Rust's env::var.
  CHECK(must_build({{"KUBERNETES_SERVICE_HOST", ""}}).xds_address ==
        "https://istiod.istio-system.svc:15012");
}

TEST_CASE("an address without a scheme gets https:// and one with a scheme is kept") {
  CHECK(must_build({{"XDS_ADDRESS", "istiod-rev0.istio-system-2:15012"}}).xds_address ==
        "https://istiod-rev0.istio-system-2:15012");
  CHECK(must_build({{"XDS_ADDRESS", "http://127.0.0.1:15010"}}).xds_address ==
        "http://127.0.0.1:15010");
  CHECK(must_build({{"CA_ADDRESS", "ca.example.com:443"}}).ca_address ==
        "https://ca.example.com:443");
}

TEST_CASE("an empty XDS_ADDRESS or CA_ADDRESS disables that client") {
  Config c = must_build({{"XDS_ADDRESS", ""}, {"CA_ADDRESS", ""}});
  CHECK_FALSE(c.xds_address.has_value());
  CHECK_FALSE(c.ca_address.has_value());
}

TEST_CASE("FAKE_CA turns the CA client off and ignores CA_ADDRESS") {
  Config c = must_build({{"FAKE_CA", "true"}, {"CA_ADDRESS", "not a uri"}});
  CHECK(c.fake_ca);
  CHECK_FALSE(c.ca_address.has_value());
  CHECK(c.xds_address.has_value());
}

TEST_CASE("control plane addresses are validated like hyper's Uri") {
  CHECK(parse_control_plane_uri("istiod:15012").value() == "https://istiod:15012");
  CHECK(parse_control_plane_uri("[::1]:15012").value() == "https://[::1]:15012");
  CHECK(parse_control_plane_uri("https://istiod.istio-system.svc:15012").value() ==
        "https://istiod.istio-system.svc:15012");
  CHECK(parse_control_plane_uri("HTTPS://istiod/").value() == "HTTPS://istiod/");
  CHECK(parse_control_plane_uri("istiod").value() == "https://istiod");
  for (const char* bad :
       {"", "https://", "https://:15012", "ftp://istiod", "bad host", "istiod:abc", "istiod:99999",
        "istiod:", "istiod/path", "https://[::1", "https://[zz]:1"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_control_plane_uri(bad));
  }
}

TEST_CASE("PROXY_CONFIG supplies the xDS address, ports, concurrency and metadata") {
  const std::string pc =
      R"({"discoveryAddress": "istiod-rev0.istio-system-2:15012", "proxyAdminPort": 15999,
      "statsPort": 15888, "proxyMetadata": {"ISTIO_META_BAR": "bar", "NO_PREFIX": "x", "FOO": "from-pc"}})";
  Config c = must_build({{"PROXY_CONFIG", pc}, {"ISTIO_META_FOO", "from-env"}});
  CHECK(c.xds_address == "https://istiod-rev0.istio-system-2:15012");
  CHECK(c.admin_port == 15999);
  CHECK(c.stats_port == 15888);
  CHECK(c.proxy_metadata.at("BAR") == "bar");
  CHECK(c.proxy_metadata.at("NO_PREFIX") == "x");
  CHECK(c.proxy_metadata.at("FOO") == "from-env");  // the environment wins

  CHECK(must_build({{"PROXY_CONFIG", pc}, {"XDS_ADDRESS", "https://other:1"}}).xds_address ==
        "https://other:1");
  CHECK(must_build({{"PROXY_CONFIG", "concurrency: 3"}}).worker_threads == 3);
  CHECK(must_build({{"PROXY_CONFIG", ""}}).admin_port == 15000);
  CHECK(must_build({{"PROXY_CONFIG", "unknownField: 1"}}).admin_port == 15000);
  CHECK_FALSE(build({{"PROXY_CONFIG", "[1, 2]"}}));
  CHECK_FALSE(build({{"PROXY_CONFIG", "{unclosed"}}));
  CHECK_FALSE(build({{"PROXY_CONFIG", "proxyMetadata: [a]"}}));
  CHECK(error_of({{"PROXY_CONFIG", "discoveryAddress: bad host"}})
            .starts_with(R"(invalid PROXY_CONFIG discoveryAddress="bad host": )"));
}

TEST_CASE("root certificates follow Istio: an existing file, SYSTEM, or inline PEM") {
  const std::string pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  Config c = must_build({{"XDS_ROOT_CA", "/etc/roots.pem"}, {"CA_ROOT_CA", "SYSTEM"}}, 8,
                        {"/etc/roots.pem"});
  CHECK(c.xds_root_cert == RootCert{RootCert::Kind::kFile, "/etc/roots.pem"});
  CHECK(c.ca_root_cert == RootCert{RootCert::Kind::kSystem, ""});
  Config inline_pem = must_build({{"XDS_ROOT_CA", pem}});
  CHECK(inline_pem.xds_root_cert == RootCert{RootCert::Kind::kInlinePem, pem});
}

TEST_CASE("AUTH_TOKEN is a file when it exists, otherwise the token itself") {
  CHECK(must_build({}, 8, {"./var/run/secrets/tokens/istio-token"}).auth ==
        AuthSource{AuthSource::Kind::kTokenFile, "./var/run/secrets/tokens/istio-token"});
  CHECK(must_build({{"AUTH_TOKEN", "/tok"}}, 8, {"/tok"}).auth ==
        AuthSource{AuthSource::Kind::kTokenFile, "/tok"});
  CHECK(must_build({{"AUTH_TOKEN", "eyJhbGci.payload.sig"}}).auth ==
        AuthSource{AuthSource::Kind::kStaticToken, "eyJhbGci.payload.sig"});
}

TEST_CASE("LOCAL_XDS_PATH and LOCAL_XDS are mutually exclusive") {
  CHECK(must_build({{"LOCAL_XDS_PATH", "/cfg.yaml"}}).local_xds ==
        LocalXds{LocalXds::Kind::kFile, "/cfg.yaml"});
  CHECK(must_build({{"LOCAL_XDS", "workloads: []"}}).local_xds ==
        LocalXds{LocalXds::Kind::kInline, "workloads: []"});
  std::string msg = error_of({{"LOCAL_XDS_PATH", "/cfg.yaml"}, {"LOCAL_XDS", "workloads: []"}});
  CHECK(msg.find("LOCAL_XDS_PATH") != std::string::npos);
  CHECK(msg.find("only one") != std::string::npos);
}

TEST_CASE("ISTIO_META_CLUSTER_ID takes precedence over CLUSTER_ID") {
  CHECK(must_build({{"CLUSTER_ID", "east"}}).cluster_id == "east");
  CHECK(must_build({{"CLUSTER_ID", "east"}, {"ISTIO_META_CLUSTER_ID", "west"}}).cluster_id ==
        "west");
  CHECK(must_build({{"ISTIO_META_CLUSTER_ID", "west"}}).cluster_id == "west");
  CHECK(must_build({{"ISTIO_META_CLUSTER_ID", "west"}}).proxy_metadata.at("CLUSTER_ID") == "west");
}

TEST_CASE("XDS_HEADER_ and CA_HEADER_ variables become lower-case gRPC metadata") {
  Config c = must_build(
      {{"XDS_HEADER_HEADER_FOO", "foo"}, {"XDS_HEADER_X-Tenant", "t1"}, {"CA_HEADER_BAZ", "baz"}});
  CHECK(c.xds_headers == std::vector<Header>{{"header_foo", "foo"}, {"x-tenant", "t1"}});
  CHECK(c.ca_headers == std::vector<Header>{{"baz", "baz"}});
}

TEST_CASE("bad header names fail and bad header values fail without echoing the value") {
  CHECK(error_of({{"XDS_HEADER_", "x"}}).find("XDS_HEADER_") != std::string::npos);
  CHECK(error_of({{"CA_HEADER_TRACE-BIN", "x"}}).find("CA_HEADER_TRACE-BIN") != std::string::npos);
  CHECK(error_of({{"XDS_HEADER_A(B", "x"}}).find("XDS_HEADER_A(B") != std::string::npos);
  std::string msg = error_of({{"XDS_HEADER_AUTHORIZATION", "Bearer secret\n"}});
  CHECK(msg.find("XDS_HEADER_AUTHORIZATION") != std::string::npos);
  CHECK(msg.find("secret") == std::string::npos);
}

TEST_CASE(
    "ISTIO_META_ and ISTIO_METAJSON_ variables become proxy metadata with the prefix stripped") {
  Config c = must_build(
      {{"ISTIO_META_FOO", "foo"}, {"ISTIO_METAJSON_LABELS", R"({"app":"x"})"}, {"NOT_META", "x"}});
  CHECK(c.proxy_metadata == std::map<std::string, std::string>{{"FOO", "foo"}});
  CHECK(c.metadata_json == std::map<std::string, std::string>{{"LABELS", R"({"app":"x"})"}});
}

// --- DNS proxy ---

TEST_CASE("the DNS proxy is on unless ISTIO_META_DNS_CAPTURE is anything but true") {
  CHECK(must_build({}).dns_proxy_enabled);
  CHECK(must_build({{"ISTIO_META_DNS_CAPTURE", "true"}}).dns_proxy_enabled);
  CHECK(must_build({{"ISTIO_META_DNS_CAPTURE", "TRUE"}}).dns_proxy_enabled);
  CHECK_FALSE(must_build({{"ISTIO_META_DNS_CAPTURE", "false"}}).dns_proxy_enabled);
  CHECK_FALSE(must_build({{"ISTIO_META_DNS_CAPTURE", "yes"}}).dns_proxy_enabled);
  CHECK_FALSE(must_build({{"ISTIO_META_DNS_CAPTURE", ""}}).dns_proxy_enabled);
  CHECK_FALSE(must_build({{"PROXY_CONFIG", "proxyMetadata: {ISTIO_META_DNS_CAPTURE: 'false'}"}})
                  .dns_proxy_enabled);
}

TEST_CASE("on-demand xDS is refused while the DNS proxy is on") {
  std::string msg = error_of({{"XDS_ON_DEMAND", "true"}});
  CHECK(msg.starts_with(R"(invalid XDS_ON_DEMAND="true": )"));
  CHECK(msg.find("DNS") != std::string::npos);
  Config c = must_build({{"XDS_ON_DEMAND", "true"}, {"ISTIO_META_DNS_CAPTURE", "false"}});
  CHECK(c.xds_on_demand);
  CHECK_FALSE(c.dns_proxy_enabled);
}

TEST_CASE("turning off both the proxy and the DNS proxy is an error") {
  CHECK(must_build({{"ENABLE_PROXY", "false"}}).dns_proxy_enabled);
  std::string msg = error_of({{"ENABLE_PROXY", "false"}, {"ISTIO_META_DNS_CAPTURE", "false"}});
  CHECK(msg.starts_with(R"(invalid ENABLE_PROXY="false": )"));
}

TEST_CASE("DNS proxy addresses are localhost:PORT, IPv4:PORT or [IPv6]:PORT") {
  CHECK(parse_dns_proxy_addr("localhost:15053").value() == DnsProxyAddr{true, "", 15053});
  CHECK(parse_dns_proxy_addr("127.0.0.1:53").value() == DnsProxyAddr{false, "127.0.0.1", 53});
  CHECK(parse_dns_proxy_addr("[::1]:53").value() == DnsProxyAddr{false, "::1", 53});
  CHECK(parse_dns_proxy_addr("0.0.0.0:0").value().port == 0);
  CHECK(parse_dns_proxy_addr("[::1]:53").value().to_string() == "[::1]:53");
  CHECK(parse_dns_proxy_addr("localhost:1").value().to_string() == "localhost:1");
  for (const char* bad : {"not-an-address", "localhost:99999", "localhost:", "::1:53", "[::1]53",
                          "1.2.3:53", "example.com:53", "127.0.0.1", "01.2.3.4:53", ""}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_dns_proxy_addr(bad));
  }
  CHECK(must_build({{"ISTIO_META_DNS_PROXY_ADDR", "localhost:5353"}}).dns_proxy_addr ==
        DnsProxyAddr{true, "", 5353});
}

// --- drain deadline ---

TEST_CASE("the drain deadline comes from the grace period with a margin and never underflows") {
  CHECK(drain_deadline_from_grace_period(0) == 1s);  // Istio computes 0 - 1 in a u64 here
  CHECK(drain_deadline_from_grace_period(1) == 1s);
  CHECK(drain_deadline_from_grace_period(2) == 1s);
  CHECK(drain_deadline_from_grace_period(5) == 4s);
  CHECK(drain_deadline_from_grace_period(10) == 9s);
  CHECK(drain_deadline_from_grace_period(11) == 6s);
  CHECK(drain_deadline_from_grace_period(30) == 25s);
  CHECK(drain_deadline_from_grace_period(UINT64_MAX) > 1s);

  CHECK(must_build({{"TERMINATION_GRACE_PERIOD_SECONDS", "0"}}).drain_deadline == 1s);
  CHECK(must_build({{"TERMINATION_GRACE_PERIOD_SECONDS", "30"}}).drain_deadline == 25s);
}

TEST_CASE("an explicit CONNECTION_TERMINATION_DEADLINE wins over the grace period") {
  CHECK(must_build({{"CONNECTION_TERMINATION_DEADLINE", "20s"},
                    {"TERMINATION_GRACE_PERIOD_SECONDS", "30"}})
            .drain_deadline == 20s);
  CHECK(must_build({{"CONNECTION_TERMINATION_DEADLINE", "0s"}}).drain_deadline == 0s);
  CHECK(must_build({{"CONNECTION_TERMINATION_DEADLINE", "1500ms"}}).drain_deadline == 1500ms);
}

// --- worker threads (Istio's test_parse_worker_threads, with the CPU count as input) ---

TEST_CASE("worker threads: fixed counts and percentages of the CPU count") {
  CHECK(threads({{"ZTUNNEL_WORKER_THREADS", "4"}}) == 4);
  CHECK(threads({{"ZTUNNEL_CPU_LIMIT", "8"}, {"ZTUNNEL_WORKER_THREADS", "50%"}}) == 4);
  CHECK(threads({{"ZTUNNEL_CPU_LIMIT", "16"}, {"ZTUNNEL_WORKER_THREADS", "30%"}}) ==
        5);  // 4.8 rounds up
  CHECK(threads({{"ZTUNNEL_CPU_LIMIT", "4"}, {"ZTUNNEL_WORKER_THREADS", "10%"}}) ==
        1);  // 0.4 rounds up
  CHECK(threads({{"ZTUNNEL_CPU_LIMIT", "4"}}) == 2);
  CHECK(threads({{"ZTUNNEL_WORKER_THREADS", "0"}, {"ZTUNNEL_CPU_LIMIT", "6"}}) ==
        6);  // 0 = all cores
  CHECK(threads({{"ZTUNNEL_WORKER_THREADS", "0"}}, 12) == 12);
}

TEST_CASE(
    "worker threads: the CPU count is the resource limit, else ZTUNNEL_CPU_LIMIT, else the "
    "machine's") {
  CHECK(threads({{"ZTUNNEL_WORKER_THREADS", "100%"}}, 24) == 24);
  CHECK(threads({{"ZTUNNEL_WORKER_THREADS", "100%"}, {"ZTUNNEL_CPU_LIMIT", "12"}}, 24) == 12);
  CHECK(threads({{"ZTUNNEL_WORKER_THREADS", "100%"},
                 {"ZTUNNEL_CPU_LIMIT", "12"},
                 {"ZTUNNEL_RESOURCE_CPU_LIMIT", "3"}},
                24) == 3);
}

TEST_CASE("worker threads: an explicit CPU limit is the default, even below 2, rounded up") {
  CHECK(threads({{"ZTUNNEL_RESOURCE_CPU_LIMIT", "16"}}) == 16);
  CHECK(threads({{"ZTUNNEL_RESOURCE_CPU_LIMIT", "1"}}) == 1);
  CHECK(threads({{"ZTUNNEL_RESOURCE_CPU_LIMIT", "500m"}}) == 1);
  CHECK(threads({{"ZTUNNEL_RESOURCE_CPU_LIMIT", "2500m"}}) == 3);
  CHECK(threads({{"ZTUNNEL_RESOURCE_CPU_LIMIT", "1.5"}}) == 2);
}

TEST_CASE(
    "worker threads: without a limit, a quarter of the CPUs, at least 2 and at least the request") {
  CHECK(threads({{"ZTUNNEL_CPU_LIMIT", "32"}}) == 8);
  CHECK(threads({}, 8) == 2);
  CHECK(threads({}, 64) == 16);
  CHECK(threads({}, 13) == 4);  // ceil(3.25)
  CHECK(threads({}, 0) == 2);   // an unknown CPU count still starts
  CHECK(threads({{"ZTUNNEL_RESOURCE_CPU_REQUEST", "8"}}, 8) == 8);
  CHECK(threads({{"ZTUNNEL_RESOURCE_CPU_REQUEST", "8"}}, 64) == 16);
  CHECK(threads({{"ZTUNNEL_RESOURCE_CPU_REQUEST", "1"}}, 8) == 2);
}

TEST_CASE("worker threads: the limit is the count and the request only a floor") {
  CHECK(threads({{"ZTUNNEL_RESOURCE_CPU_LIMIT", "16"}, {"ZTUNNEL_RESOURCE_CPU_REQUEST", "4"}}) ==
        16);
  CHECK(threads({{"ZTUNNEL_RESOURCE_CPU_LIMIT", "4"}, {"ZTUNNEL_RESOURCE_CPU_REQUEST", "8"}}) == 8);
}

TEST_CASE("worker threads: ProxyConfig concurrency, where 0 means all cores") {
  CHECK(threads({{"PROXY_CONFIG", "concurrency: 0"}, {"ZTUNNEL_CPU_LIMIT", "6"}}) == 6);
  CHECK(threads({{"PROXY_CONFIG", "concurrency: 5"}, {"ZTUNNEL_RESOURCE_CPU_LIMIT", "2"}}) == 5);
  CHECK(threads({{"PROXY_CONFIG", "concurrency: 5"}, {"ZTUNNEL_WORKER_THREADS", "3"}}) == 3);
}

TEST_CASE("worker threads: absurd counts are refused") {
  CHECK(threads({{"ZTUNNEL_WORKER_THREADS", "4096"}}) == 4096);
  CHECK_FALSE(build({{"ZTUNNEL_WORKER_THREADS", "4097"}}));
  CHECK_FALSE(build({{"ZTUNNEL_WORKER_THREADS", "0%"}}));
}

// --- HTTP/2 ---

TEST_CASE("the connection window must be larger than the stream window") {
  CHECK(must_build(
            {{"HTTP2_STREAM_WINDOW_SIZE", "1048576"}, {"HTTP2_CONNECTION_WINDOW_SIZE", "1048577"}})
            .http2_connection_window_size == 1048577);
  std::string equal = error_of(
      {{"HTTP2_STREAM_WINDOW_SIZE", "4194304"}, {"HTTP2_CONNECTION_WINDOW_SIZE", "4194304"}});
  CHECK(equal.starts_with(R"(invalid HTTP2_CONNECTION_WINDOW_SIZE="4194304": )"));
  CHECK(equal.find("HTTP2_STREAM_WINDOW_SIZE (4194304)") != std::string::npos);
  // Raising only the stream window past the default connection window is caught too.
  CHECK(error_of({{"HTTP2_STREAM_WINDOW_SIZE", "33554432"}})
            .starts_with("invalid HTTP2_CONNECTION_WINDOW_SIZE="));
}

TEST_CASE("HTTP/2 sizes stay within RFC 9113 limits") {
  CHECK(must_build({{"HTTP2_FRAME_SIZE", "16777215"}}).http2_frame_size == 16777215);
  CHECK(must_build({{"HTTP2_CONNECTION_WINDOW_SIZE", "2147483647"}}).http2_connection_window_size ==
        2147483647);
  CHECK_FALSE(build({{"HTTP2_CONNECTION_WINDOW_SIZE", "2147483648"}}));
  CHECK_FALSE(build({{"HTTP2_STREAM_WINDOW_SIZE", "0"}}));
}

TEST_CASE("INPOD_UDS must fit in sockaddr_un") {
  CHECK(must_build({{"INPOD_UDS", "/" + std::string(106, 'a')}}).inpod_uds.size() == 107);
  CHECK_FALSE(build({{"INPOD_UDS", "/" + std::string(107, 'a')}}));
}

TEST_CASE("TLS12_ENABLED and AUTHZ_POLICY_INFO_LOGGING treat empty as off") {
  Config c = must_build({{"TLS12_ENABLED", ""}, {"AUTHZ_POLICY_INFO_LOGGING", "false"}});
  CHECK_FALSE(c.tls12_enabled);
  CHECK_FALSE(c.authz_policy_info_logging);
}

TEST_CASE("ztunnel's own identity needs namespace, service account and pod name") {
  Config c = must_build(
      {{"POD_NAMESPACE", "istio-system"}, {"SERVICE_ACCOUNT", "ztunnel"}, {"POD_NAME", "zt-1"}});
  CHECK(c.self_identity() == "spiffe://cluster.local/ns/istio-system/sa/ztunnel");
  CHECK_FALSE(must_build({{"POD_NAMESPACE", "istio-system"}, {"SERVICE_ACCOUNT", "ztunnel"}})
                  .self_identity());
}

TEST_CASE("an empty CRL_PATH means no CRL checking") {
  CHECK_FALSE(must_build({{"CRL_PATH", ""}}).crl_path.has_value());
}

// --- value parsers ---

TEST_CASE("durations accept duration-str's additive forms") {
  CHECK(parse_duration("24h").value() == 24h);
  CHECK(parse_duration("5s").value() == 5s);
  CHECK(parse_duration("500ms").value() == 500ms);
  CHECK(parse_duration("5m").value() == 5min);
  CHECK(parse_duration("1h30m").value() == 90min);
  CHECK(parse_duration("100us").value() == 100us);
  CHECK(parse_duration("100\xc2\xb5s").value() == 100us);
  CHECK(parse_duration("7ns").value() == 7ns);
  CHECK(parse_duration("1h 30m").value() == 90min);
  CHECK(parse_duration("1h+30m").value() == 90min);
  CHECK(parse_duration(" 1m + 31 ").value() == 91s);
  CHECK(parse_duration("1m31").value() == 91s);  // a bare number is seconds
  CHECK(parse_duration("30").value() == 30s);
  CHECK(parse_duration("0").value() == 0s);
  CHECK(parse_duration("5 s").value() == 5s);
  CHECK(parse_duration("2H").value() == 2h);
  CHECK(parse_duration("1hr").value() == 1h);
  CHECK(parse_duration("3 minutes").value() == 3min);
  CHECK(parse_duration("2sec").value() == 2s);
  CHECK(parse_duration("1d").value() == 24h);
  CHECK(parse_duration("1w").value() == 168h);
  CHECK(parse_duration("1mon").value() == 720h);
  CHECK(parse_duration("1y").value() == 8760h);
}

TEST_CASE("durations reject garbage, negatives, fractions and overflow") {
  for (const char* bad : {"", " ", "-5s", "5x", "1.5s", "s", "+5s", "5s+", "1m*60", "abc", "5s!",
                          "1h30mm", "99999999999999999999s", "300y"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_duration(bad));
  }
}

TEST_CASE("durations format compactly and parse back") {
  CHECK(format_duration(24h) == "24h");
  CHECK(format_duration(90min) == "1h30m");
  CHECK(format_duration(500ms) == "500ms");
  CHECK(format_duration(0s) == "0s");
  CHECK(format_duration(1500us) == "1ms500us");
  for (Duration d :
       {Duration(24h), Duration(5s), Duration(90min), Duration(1500us), Duration(7ns)}) {
    CHECK(parse_duration(format_duration(d)).value() == d);
  }
}

TEST_CASE("booleans are exactly true or false, as Rust parses them") {
  CHECK(parse_bool("true").value());
  CHECK_FALSE(parse_bool("false").value());
  for (const char* bad : {"", "True", "FALSE", "1", "0", "yes", " true"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_bool(bad));
  }
}

TEST_CASE("unsigned integers are plain digits within a range") {
  CHECK(parse_unsigned("0", 0, 10).value() == 0);
  CHECK(parse_unsigned("10", 0, 10).value() == 10);
  CHECK(parse_unsigned("007", 0, 10).value() == 7);
  CHECK(parse_unsigned("18446744073709551615", 0, UINT64_MAX).value() == UINT64_MAX);
  for (const char* bad : {"", "11", "-1", "+1", " 1", "1 ", "1.0", "0x1", "18446744073709551616"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_unsigned(bad, 0, 10));
  }
  CHECK(parse_unsigned("x", 1, 5).error().message == "expected an integer from 1 to 5");
  CHECK(parse_unsigned("x", 1, UINT64_MAX).error().message == "expected a positive integer");
}

TEST_CASE("CPU quantities round up to whole CPUs") {
  CHECK(parse_cpu_quantity("2").value() == 2);
  CHECK(parse_cpu_quantity("1.5").value() == 2);
  CHECK(parse_cpu_quantity("500m").value() == 1);
  CHECK(parse_cpu_quantity("2500m").value() == 3);
  CHECK(parse_cpu_quantity("1000m").value() == 1);
  CHECK(parse_cpu_quantity("1001m").value() == 2);
  CHECK(parse_cpu_quantity("0.1").value() == 1);
  CHECK(parse_cpu_quantity(".5").value() == 1);
  CHECK(parse_cpu_quantity("4.").value() == 4);
  for (const char* bad :
       {"", "0", "0m", "0.0", "-1", "1Gi", "m", "abc", "1e3", "1.2.3", "9999999999"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_cpu_quantity(bad));
  }
}

TEST_CASE("percentages of the CPU count round up and are at least 1") {
  CHECK(parse_percent_of("50%", 8).value() == 4);
  CHECK(parse_percent_of("30%", 16).value() == 5);
  CHECK(parse_percent_of("10%", 4).value() == 1);
  CHECK(parse_percent_of("100%", 7).value() == 7);
  CHECK(parse_percent_of("12.5%", 8).value() == 1);
  CHECK(parse_percent_of("25%", 12).value() == 3);  // exact: no floating-point round-up to 4
  CHECK(parse_percent_of("1%", 0).value() == 1);
  for (const char* bad : {"0%", "100.5%", "101%", "-5%", "%", "abc%", "50", "50 %"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_percent_of(bad, 8));
  }
}

// --- describe and help ---

TEST_CASE("describe prints every setting as key: value lines and hides secrets") {
  Config c = must_build({{"AUTH_TOKEN", "super-secret-token"},
                         {"XDS_HEADER_AUTHORIZATION", "Bearer hidden"},
                         {"ISTIO_META_FOO", "bar"},
                         {"LOCAL_XDS", "workloads: []"}});
  std::string d = c.describe();
  CHECK(d.find("super-secret-token") == std::string::npos);
  CHECK(d.find("hidden") == std::string::npos);
  CHECK(d.find("auth: static token <redacted, 18 bytes>\n") != std::string::npos);
  CHECK(d.find("xds_headers: {authorization: <redacted>}\n") != std::string::npos);
  CHECK(d.find("proxy_metadata: {FOO: bar}\n") != std::string::npos);
  CHECK(d.find("local_xds: inline YAML (13 bytes)\n") != std::string::npos);
  CHECK(d.find("secret_ttl: 24h\n") != std::string::npos);
  CHECK(d.find("drain_deadline: 5s\n") != std::string::npos);
  CHECK(d.find("xds_address: https://localhost:15012\n") != std::string::npos);
  CHECK(d.find("dns_proxy_addr: localhost:15053\n") != std::string::npos);
  CHECK(d.find("worker_threads: 2\n") != std::string::npos);
  CHECK(d.find("illegal_ports: [15008, 15006, 15001]\n") != std::string::npos);
  CHECK(d.find("network: \"\"\n") != std::string::npos);
  // Every line is `key: value`.
  size_t start = 0;
  int lines = 0;
  while (start < d.size()) {
    size_t end = d.find('\n', start);
    REQUIRE(end != std::string::npos);
    std::string line = d.substr(start, end - start);
    CAPTURE(line);
    CHECK(line.find(": ") != std::string::npos);
    start = end + 1;
    ++lines;
  }
  CHECK(lines > 50);
}

TEST_CASE("help lists the commands and every supported variable, one line each") {
  std::string h = help_text();
  CHECK(h.find("ztunnel [proxy|version|help]") != std::string::npos);
  for (const char* var : {"PROXY_MODE",
                          "PROXY_WORKLOAD_INFO",
                          "ENABLE_PROXY",
                          "INPOD_UDS",
                          "INPOD_PORT_REUSE",
                          "PACKET_MARK",
                          "IPV6_ENABLED",
                          "ENABLE_ORIG_SRC",
                          "LOCALHOST_APP_TUNNEL",
                          "ENABLE_RESPONSE_BAGGAGE",
                          "UNSTABLE_ENABLE_SOCKS5",
                          "KUBERNETES_SERVICE_HOST",
                          "XDS_ADDRESS",
                          "CA_ADDRESS",
                          "FAKE_CA",
                          "XDS_ROOT_CA",
                          "CA_ROOT_CA",
                          "ALT_XDS_HOSTNAME",
                          "ALT_CA_HOSTNAME",
                          "AUTH_TOKEN",
                          "LOCAL_XDS_PATH",
                          "LOCAL_XDS",
                          "XDS_ON_DEMAND",
                          "XDS_HEADER_<K>",
                          "CA_HEADER_<K>",
                          "CLUSTER_ID",
                          "ISTIO_META_CLUSTER_ID",
                          "CLUSTER_DOMAIN",
                          "TRUST_DOMAIN",
                          "NETWORK",
                          "POD_NAME",
                          "POD_NAMESPACE",
                          "SERVICE_ACCOUNT",
                          "NODE_NAME",
                          "INSTANCE_IP",
                          "PREFERED_SERVICE_NAMESPACE",
                          "SECRET_TTL",
                          "CRL_PATH",
                          "ISTIO_META_<K>",
                          "ISTIO_METAJSON_<K>",
                          "ISTIO_META_ISTIO_VERSION",
                          "ISTIO_META_DNS_CAPTURE",
                          "ISTIO_META_DNS_PROXY_ADDR",
                          "PROXY_CONFIG",
                          "ZTUNNEL_WORKER_THREADS",
                          "ZTUNNEL_CPU_LIMIT",
                          "ZTUNNEL_RESOURCE_CPU_LIMIT",
                          "ZTUNNEL_RESOURCE_CPU_REQUEST",
                          "POOL_MAX_STREAMS_PER_CONNECTION",
                          "POOL_UNUSED_RELEASE_TIMEOUT",
                          "HTTP2_STREAM_WINDOW_SIZE",
                          "HTTP2_CONNECTION_WINDOW_SIZE",
                          "HTTP2_FRAME_SIZE",
                          "KEEPALIVE_ENABLED",
                          "KEEPALIVE_TIME",
                          "KEEPALIVE_INTERVAL",
                          "KEEPALIVE_RETRIES",
                          "USER_TIMEOUT_ENABLED",
                          "TERMINATION_GRACE_PERIOD_SECONDS",
                          "CONNECTION_TERMINATION_DEADLINE",
                          "TLS12_ENABLED",
                          "AUTHZ_POLICY_INFO_LOGGING",
                          "RUST_LOG",
                          "LOG_FORMAT"}) {
    CAPTURE(var);
    CHECK(h.find(fmt::format("\n  {} ", var)) != std::string::npos);
  }
}

}  // namespace ztunnel::config
