// Builds Config from environment variables: one small parser per value type, then
// Istio's derived rules (defaults that depend on other variables, cross-checks).
#include "config/config.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <system_error>

namespace ztunnel::config {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kDefaultRootCertPath = "./var/run/secrets/istio/root-cert.pem";
constexpr std::string_view kDefaultTokenPath = "./var/run/secrets/tokens/istio-token";
constexpr std::string_view kIstioMetaPrefix = "ISTIO_META_";
constexpr std::string_view kIstioMetaJsonPrefix = "ISTIO_METAJSON_";
constexpr std::string_view kXdsHeaderPrefix = "XDS_HEADER_";
constexpr std::string_view kCaHeaderPrefix = "CA_HEADER_";

constexpr uint32_t kDefaultWorkerThreads = 2;
// A typo such as 4000 for 40 should fail rather than start thousands of threads.
constexpr uint64_t kMaxWorkerThreads = 4096;
// h2 limits: RFC 9113 §6.5.2 (frame size) and §6.9.1 (windows are at most 2^31-1).
constexpr uint64_t kMaxH2Window = (1ull << 31) - 1;
constexpr uint64_t kMinH2FrameSize = 16384;
constexpr uint64_t kMaxH2FrameSize = (1ull << 24) - 1;
// Linux rejects TCP_KEEPIDLE/TCP_KEEPINTVL outside 1..32767 s and TCP_KEEPCNT outside
// 1..127; Istio would only find out per connection, so check at start-up.
constexpr Duration kMaxKeepaliveSeconds = std::chrono::seconds(32767);
constexpr uint64_t kMaxKeepaliveRetries = 127;
// sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
constexpr size_t kMaxUdsPathLength = 107;
// Largest whole-second count that still fits a Duration (int64 nanoseconds).
constexpr uint64_t kMaxDurationSeconds =
    static_cast<uint64_t>(std::numeric_limits<Duration::rep>::max()) / 1'000'000'000;

core::Error fail(std::string message) { return core::Error(std::move(message)); }

// Builds the value side of a Result<std::string> explicitly, which reads clearer next to
// the many error returns around it.
core::Result<std::string> ok(std::string value) {
  return {boost::system::in_place_value, std::move(value)};
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
char to_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = to_lower(c);
  return out;
}

// Values in messages are escaped and shortened so an error stays one readable line,
// even for inline YAML or PEM.
std::string quote(std::string_view value) {
  constexpr size_t kMax = 64;
  std::string out = "\"";
  for (size_t i = 0; i < value.size() && i < kMax; ++i) {
    unsigned char c = static_cast<unsigned char>(value[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += fmt::format("\\x{:02x}", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out += value.size() > kMax ? "\"..." : "\"";
  return out;
}

core::Error invalid(std::string_view name, std::string_view value, std::string_view why) {
  return fail(fmt::format("invalid {}={}: {}", name, quote(value), why));
}

// Reads variables into fields, keeping the first error; parsing continues after one (the
// parsers are pure) so from_env can report once at the end without a check per line.
class Reader {
 public:
  explicit Reader(const Environment& env) : env_(env) {}

  // Parses variable `name` into `field` when it is set; the default stays otherwise.
  template <class Field, class Parse>
  void set(std::string_view name, Field& field, Parse&& parse) {
    if (auto raw = env_.get(name)) check(name, *raw, field, parse);
  }

  // Same, for a value that came from somewhere other than the variable itself.
  template <class Field, class Parse>
  void check(std::string_view name, std::string_view raw, Field& field, Parse&& parse) {
    auto parsed = parse(raw);
    if (!parsed) {
      record(invalid(name, raw, parsed.error().message));
    } else {
      field = std::move(*parsed);
    }
  }

  void record(core::Error e) {
    if (!error_) error_ = std::move(e);
  }
  bool failed() const { return error_.has_value(); }
  const core::Error& error() const { return *error_; }

 private:
  const Environment& env_;
  std::optional<core::Error> error_;
};

// A non-negative decimal such as `12`, `1.5` or `.5`, kept exact as mantissa / scale.
struct Decimal {
  uint64_t mantissa = 0;
  uint64_t scale = 1;
};

// Bounded digit counts keep every later product well inside 64 bits.
std::optional<Decimal> parse_decimal(std::string_view s) {
  constexpr int kMaxIntDigits = 9;
  constexpr int kMaxFracDigits = 6;
  Decimal d;
  size_t i = 0;
  int int_digits = 0;
  int frac_digits = 0;
  for (; i < s.size() && is_digit(s[i]); ++i) {
    if (d.mantissa == 0 && s[i] == '0') continue;  // leading zeros do not count
    if (++int_digits > kMaxIntDigits) return std::nullopt;
    d.mantissa = d.mantissa * 10 + static_cast<uint64_t>(s[i] - '0');
  }
  bool any_digit = i > 0;
  if (i < s.size() && s[i] == '.') {
    for (++i; i < s.size() && is_digit(s[i]); ++i) {
      if (++frac_digits > kMaxFracDigits) return std::nullopt;
      d.mantissa = d.mantissa * 10 + static_cast<uint64_t>(s[i] - '0');
      d.scale *= 10;
      any_digit = true;
    }
  }
  if (!any_digit || i != s.size()) return std::nullopt;
  return d;
}

uint64_t ceil_div(uint64_t a, uint64_t b) { return a / b + (a % b != 0 ? 1 : 0); }

bool is_ip_literal(std::string_view text, int family) {
  if (text.empty() || text.size() > 64) return false;
  std::string s(text);
  unsigned char buf[16];
  return inet_pton(family, s.c_str(), buf) == 1;
}

// RFC 9110 tchar: what an HTTP field name may contain.
bool is_token_char(char c) {
  return is_alpha(c) || is_digit(c) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// What a gRPC ASCII metadata value (and so any header we send) may contain.
bool is_header_value(std::string_view v) {
  return std::all_of(v.begin(), v.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return (u >= 0x20 && u < 0x7f) || c == '\t';
  });
}

bool is_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    std::string_view label = name.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
      return false;
    for (char c : label) {
      if (!is_alpha(c) && !is_digit(c) && c != '-') return false;
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

// --- per-variable parsers (errors say what was expected) ---

core::Result<std::string> any_string(std::string_view text) { return ok(std::string(text)); }

core::Result<ProxyMode> parse_proxy_mode(std::string_view text) {
  if (text == "shared") return ProxyMode::kShared;
  if (text == "dedicated") return ProxyMode::kDedicated;
  return fail("expected shared or dedicated");
}

core::Result<uint32_t> parse_u32(std::string_view text) {
  auto v = parse_unsigned(text, 0, std::numeric_limits<uint32_t>::max());
  if (!v) return v.error();
  return static_cast<uint32_t>(*v);
}

// Istio compares these with == "true", so any other value silently means off; here only
// `false` and the empty string do, so a typo such as `True` is caught.
core::Result<bool> parse_flag(std::string_view text) {
  if (text.empty()) return false;
  return parse_bool(text);
}

core::Result<std::string> parse_uds_path(std::string_view text) {
  if (text.empty() || text.size() > kMaxUdsPathLength) {
    return fail(fmt::format("expected a unix socket path of 1 to {} bytes", kMaxUdsPathLength));
  }
  return ok(std::string(text));
}

core::Result<std::string> parse_header_safe(std::string_view text) {
  if (!is_header_value(text)) return fail("expected printable ASCII (it is sent in a header)");
  return ok(std::string(text));
}

core::Result<std::string> parse_dns_domain(std::string_view text) {
  if (!is_dns_name(text)) return fail("expected a DNS name such as cluster.local");
  return ok(std::string(text));
}

core::Result<std::string> parse_trust_domain(std::string_view text) {
  bool valid =
      !text.empty() && text.size() <= 255 && std::all_of(text.begin(), text.end(), [](char c) {
        return is_alpha(c) || is_digit(c) || c == '.' || c == '-' || c == '_';
      });
  if (!valid)
    return fail(
        "expected a SPIFFE trust domain such as cluster.local (letters, digits, '.', '-', '_')");
  return ok(std::string(text));
}

// Kubernetes object names (pod, namespace, service account, node) end up in SPIFFE IDs
// and xDS node ids, where a '/' or a space would change their meaning.
core::Result<std::string> parse_object_name(std::string_view text) {
  bool valid = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f && c != '/';
  });
  if (!valid) return fail("expected a Kubernetes object name (no spaces or '/')");
  return ok(std::string(text));
}

core::Result<std::string> parse_ip(std::string_view text) {
  if (!is_ip_literal(text, AF_INET) && !is_ip_literal(text, AF_INET6)) {
    return fail("expected an IPv4 or IPv6 address");
  }
  return ok(std::string(text));
}

core::Result<Duration> parse_positive_seconds(std::string_view text) {
  auto d = parse_duration(text);
  if (!d) return d;
  if (*d < 1s) return fail("expected a duration of at least 1s, such as 24h");
  return d;
}

core::Result<Duration> parse_keepalive_duration(std::string_view text) {
  auto d = parse_duration(text);
  if (!d) return d;
  if (*d < 1s || *d > kMaxKeepaliveSeconds) {
    return fail("expected a duration from 1s to 32767s (the kernel's keepalive limits)");
  }
  return d;
}

core::Result<uint32_t> parse_worker_threads(std::string_view text, uint32_t cpus) {
  if (text.ends_with('%')) return parse_percent_of(text, cpus);
  auto n = parse_unsigned(text, 0, kMaxWorkerThreads);
  if (!n) {
    return fail(fmt::format(
        "expected a thread count up to {}, a percentage of CPUs such as 50%, or 0 for all CPUs",
        kMaxWorkerThreads));
  }
  return *n == 0 ? cpus : static_cast<uint32_t>(*n);
}

// The subset of Istio's ProxyConfig that ztunnel reads (from PROXY_CONFIG).
struct ProxyConfig {
  std::optional<std::string> discovery_address;
  std::optional<uint16_t> proxy_admin_port;
  std::optional<uint16_t> stats_port;
  std::optional<uint16_t> concurrency;
  std::map<std::string, std::string> proxy_metadata;  // ISTIO_META_ prefix stripped
};

core::Result<ProxyConfig> parse_proxy_config_fields(const YAML::Node& root) {
  ProxyConfig pc;
  auto u16 = [](const YAML::Node& node,
                std::string_view key) -> core::Result<std::optional<uint16_t>> {
    if (node.IsNull()) return std::optional<uint16_t>{};
    auto v = parse_unsigned(node.IsScalar() ? node.Scalar() : std::string(), 0, 65535);
    if (!v) return fail(fmt::format("{}: expected an integer from 0 to 65535", key));
    return std::optional<uint16_t>(static_cast<uint16_t>(*v));
  };
  for (const auto& entry : root) {
    const std::string key = entry.first.Scalar();
    const YAML::Node& value = entry.second;
    if (key == "discoveryAddress") {
      if (value.IsNull()) continue;
      if (!value.IsScalar()) return fail("discoveryAddress: expected a string");
      pc.discovery_address = value.Scalar();
    } else if (key == "proxyAdminPort" || key == "statsPort" || key == "concurrency") {
      auto v = u16(value, key);
      if (!v) return v.error();
      (key == "proxyAdminPort" ? pc.proxy_admin_port
       : key == "statsPort"    ? pc.stats_port
                               : pc.concurrency) = *v;
    } else if (key == "proxyMetadata") {
      if (value.IsNull()) continue;
      if (!value.IsMap()) return fail("proxyMetadata: expected a map of strings");
      for (const auto& kv : value) {
        if (!kv.second.IsScalar()) return fail("proxyMetadata: expected a map of strings");
        std::string k = kv.first.Scalar();
        if (k.starts_with(kIstioMetaPrefix)) k.erase(0, kIstioMetaPrefix.size());
        pc.proxy_metadata[k] = kv.second.Scalar();
      }
    }
    // Other ProxyConfig fields are legal and ignored, as in Istio.
  }
  return pc;
}

core::Result<ProxyConfig> parse_proxy_config(std::string_view text) {
  constexpr std::string_view kExpected = "expected a YAML or JSON ProxyConfig";
  if (text.empty()) return ProxyConfig{};
  // yaml-cpp reports errors by exception; they stop here and become a Result.
  try {
    YAML::Node root = YAML::Load(std::string(text));
    if (root.IsNull()) return ProxyConfig{};
    if (!root.IsMap()) return fail(fmt::format("{} mapping", kExpected));
    auto pc = parse_proxy_config_fields(root);
    if (!pc) return fail(fmt::format("{} ({})", kExpected, pc.error().message));
    return pc;
  } catch (const YAML::Exception& e) {
    return fail(fmt::format("{} ({})", kExpected, e.msg));
  }
}

// Istio: an existing path wins, then SYSTEM; anything else is taken as inline PEM. Text
// that is neither a file nor PEM is rejected here rather than failing at the first TLS
// handshake with a PEM parse error.
core::Result<RootCert> parse_root_cert(std::string_view text, const PathExists& exists) {
  if (!text.empty() && exists(std::string(text)))
    return RootCert{RootCert::Kind::kFile, std::string(text)};
  if (text == "SYSTEM") return RootCert{RootCert::Kind::kSystem, ""};
  if (text.find("-----BEGIN") != std::string_view::npos) {
    return RootCert{RootCert::Kind::kInlinePem, std::string(text)};
  }
  return fail("expected an existing file, SYSTEM, or inline PEM");
}

void read_headers(const Environment& env, std::string_view prefix, std::vector<Header>& out,
                  Reader& r) {
  for (auto& [key, value] : env.with_prefix(prefix)) {
    std::string var = fmt::format("{}{}", prefix, key);
    std::string name = lower(key);
    if (name.empty() || !std::all_of(name.begin(), name.end(), is_token_char) ||
        name.ends_with("-bin")) {
      r.record(fail(
          fmt::format("invalid variable name {}: expected {}<gRPC metadata key> (letters, digits, "
                      "'-', '_', not ending in -bin)",
                      var, prefix)));
      continue;
    }
    // Header values are often credentials, so the message leaves the value out.
    if (!is_header_value(value)) {
      r.record(fail(fmt::format(
          "invalid {} (value not shown): expected printable ASCII for a gRPC metadata value",
          var)));
      continue;
    }
    out.push_back(Header{std::move(name), std::move(value)});
  }
}

std::string yaml_scalar(std::string_view s) {
  bool plain = !s.empty() && s.find(": ") == std::string_view::npos && s.front() != ' ' &&
               s.back() != ' ' && std::all_of(s.begin(), s.end(), [](char c) {
                 auto u = static_cast<unsigned char>(c);
                 return u > 0x20 && u < 0x7f && c != '#' && c != '"' && c != '\'' && c != '{' &&
                        c != '}' && c != '[' && c != ']' && c != ',';
               });
  if (plain) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string opt(const std::optional<std::string>& v) { return v ? yaml_scalar(*v) : "~"; }
std::string_view yes_no(bool b) { return b ? "true" : "false"; }

// One row of help_text(): every supported variable, its default and what it does.
struct VariableDoc {
  std::string_view name;
  std::string_view default_value;
  std::string_view meaning;
};

constexpr VariableDoc kVariables[] = {
    {"PROXY_MODE", "shared",
     "shared (in-pod, one ztunnel for many pods) or dedicated (one workload)"},
    {"PROXY_WORKLOAD_INFO", "-",
     "namespace/name/service-account of the workload; required when dedicated"},
    {"ENABLE_PROXY", "true", "run the outbound/inbound proxy listeners"},
    {"INPOD_UDS", "/var/run/ztunnel/ztunnel.sock",
     "unix socket of istio-cni's ZDS server (shared mode)"},
    {"INPOD_PORT_REUSE", "true",
     "SO_REUSEPORT on in-pod listeners so an old and new ztunnel overlap"},
    {"PACKET_MARK", "1337 (shared), unset (dedicated)", "SO_MARK on every socket opened for a pod"},
    {"IPV6_ENABLED", "true", "bind dual-stack [::] instead of 0.0.0.0; answer AAAA in DNS"},
    {"ENABLE_ORIG_SRC", "unset (auto)",
     "true: require original-source spoofing; false: never spoof"},
    {"LOCALHOST_APP_TUNNEL", "true", "send app-tunnel traffic to the workload over loopback"},
    {"ENABLE_RESPONSE_BAGGAGE", "true", "add baggage to HBONE responses and read it from requests"},
    {"UNSTABLE_ENABLE_SOCKS5", "false", "serve SOCKS5 on 127.0.0.1:15080"},
    {"KUBERNETES_SERVICE_HOST", "-",
     "istiod is https://istiod.istio-system.svc:15012 when this is set, else "
     "https://localhost:15012"},
    {"XDS_ADDRESS", "istiod",
     "xDS server; empty disables xDS; https:// is added when no scheme is given"},
    {"CA_ADDRESS", "istiod", "CA server; empty disables the CA client"},
    {"FAKE_CA", "false", "use built-in self-signed certificates (testing); ignores CA_ADDRESS"},
    {"XDS_ROOT_CA", "./var/run/secrets/istio/root-cert.pem",
     "xDS trust roots: a file, SYSTEM, or inline PEM"},
    {"CA_ROOT_CA", "./var/run/secrets/istio/root-cert.pem",
     "CA trust roots: a file, SYSTEM, or inline PEM"},
    {"ALT_XDS_HOSTNAME", "-", "extra DNS SAN accepted on istiod's xDS certificate"},
    {"ALT_CA_HOSTNAME", "-", "extra DNS SAN accepted on the CA's certificate"},
    {"AUTH_TOKEN", "./var/run/secrets/tokens/istio-token",
     "xDS/CA bearer token: a file (re-read per request) or the token; the default only if it "
     "exists"},
    {"LOCAL_XDS_PATH", "-", "YAML file of local workloads/services (exclusive with LOCAL_XDS)"},
    {"LOCAL_XDS", "-", "the same YAML, inline"},
    {"XDS_ON_DEMAND", "false",
     "subscribe to addresses on demand (needs ISTIO_META_DNS_CAPTURE=false)"},
    {"XDS_HEADER_<K>", "-", "extra gRPC metadata <k> on the xDS stream"},
    {"CA_HEADER_<K>", "-", "extra gRPC metadata <k> on certificate requests"},
    {"CLUSTER_ID", "Kubernetes", "cluster id sent to the CA and istiod"},
    {"ISTIO_META_CLUSTER_ID", "-", "overrides CLUSTER_ID"},
    {"CLUSTER_DOMAIN", "cluster.local", "DNS suffix of the cluster"},
    {"TRUST_DOMAIN", "cluster.local", "trust domain of ztunnel's own SPIFFE identity"},
    {"NETWORK", "\"\"", "network this node is on (multi-network routing)"},
    {"POD_NAME", "-", "ztunnel's pod name (xDS node; own identity with the next two)"},
    {"POD_NAMESPACE", "-", "ztunnel's namespace"},
    {"SERVICE_ACCOUNT", "-", "ztunnel's service account"},
    {"NODE_NAME", "-", "node name (certificate prefetch, xDS node metadata)"},
    {"INSTANCE_IP", "1.1.1.1", "ztunnel's pod IP, used in the xDS node id"},
    {"PREFERED_SERVICE_NAMESPACE", "-", "namespace preferred after the local one in DNS (sic)"},
    {"SECRET_TTL", "24h", "requested certificate lifetime (duration, at least 1s)"},
    {"CRL_PATH", "-", "certificate revocation list file; empty disables CRL checks"},
    {"ZTUNNEL_CA_DIR", "-",
     "(ztunnel-cpp) built-in CA dir (ca-cert.pem, ca-key.pem from `ztunnel-certs init-ca`)"},
    {"ZTUNNEL_CERT_DIR", "-",
     "(ztunnel-cpp) workload cert dir: cert-chain.pem, key.pem, root-cert.pem"},
    {"ISTIO_META_<K>", "-", "proxy metadata <K> sent to istiod"},
    {"ISTIO_METAJSON_<K>", "-", "JSON proxy metadata <K> sent to istiod"},
    {"ISTIO_META_ISTIO_VERSION", "unknown", "Istio version reported in build info"},
    {"ISTIO_META_DNS_CAPTURE", "true", "DNS proxy on unless set to anything but true (any case)"},
    {"ISTIO_META_DNS_PROXY_ADDR", "localhost:15053",
     "DNS proxy address: localhost:PORT or IP:PORT"},
    {"PROXY_CONFIG", "-",
     "YAML/JSON ProxyConfig: discoveryAddress, proxyAdminPort, statsPort, concurrency, "
     "proxyMetadata"},
    {"ZTUNNEL_WORKER_THREADS", "auto",
     "N threads, P% of CPUs, or 0 for all; auto: the CPU limit, else max(25% of CPUs, request, 2)"},
    {"ZTUNNEL_CPU_LIMIT", "logical CPUs", "CPU count used for percentages and defaults"},
    {"ZTUNNEL_RESOURCE_CPU_LIMIT", "-",
     "pod CPU limit (500m, 1.5, 2): the default thread count; wins as CPU count"},
    {"ZTUNNEL_RESOURCE_CPU_REQUEST", "-", "pod CPU request: raises the default thread count"},
    {"POOL_MAX_STREAMS_PER_CONNECTION", "100", "HBONE streams per pooled connection (1-65535)"},
    {"POOL_UNUSED_RELEASE_TIMEOUT", "5m", "close pooled connections idle this long"},
    {"HTTP2_STREAM_WINDOW_SIZE", "4194304", "h2 stream flow-control window (bytes)"},
    {"HTTP2_CONNECTION_WINDOW_SIZE", "16777216",
     "h2 connection window; must exceed the stream window"},
    {"HTTP2_FRAME_SIZE", "1048576", "h2 max frame size (16384-16777215)"},
    {"KEEPALIVE_ENABLED", "true", "TCP keepalive on proxied sockets"},
    {"KEEPALIVE_TIME", "180s", "TCP_KEEPIDLE"},
    {"KEEPALIVE_INTERVAL", "180s", "TCP_KEEPINTVL"},
    {"KEEPALIVE_RETRIES", "9", "TCP_KEEPCNT (1-127)"},
    {"USER_TIMEOUT_ENABLED", "false", "TCP_USER_TIMEOUT = time + retries x interval"},
    {"TERMINATION_GRACE_PERIOD_SECONDS", "-",
     "pod grace period; drain deadline = s-5 if s>10, else s-1, at least 1s"},
    {"CONNECTION_TERMINATION_DEADLINE", "5s", "drain deadline; overrides the grace-period rule"},
    {"TLS12_ENABLED", "false", "also accept TLS 1.2 (ECDHE AES-GCM suites)"},
    {"AUTHZ_POLICY_INFO_LOGGING", "false", "log authorization decisions at info"},
    {"RUST_LOG", "info", "log filter: level or target=level,... (as Istio)"},
    {"LOG_FORMAT", "plain", "plain or json"},
};

}  // namespace

// --- Environment ---

Environment Environment::from_process() {
  Map vars;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view kv(*entry);
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    vars.emplace(std::string(kv.substr(0, eq)),
                 std::string(kv.substr(eq + 1)));  // first wins, as getenv
  }
  return Environment(std::move(vars));
}

std::optional<std::string> Environment::get(std::string_view name) const {
  auto it = vars_.find(name);
  if (it == vars_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::pair<std::string, std::string>> Environment::with_prefix(
    std::string_view prefix) const {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto it = vars_.lower_bound(prefix); it != vars_.end() && it->first.starts_with(prefix);
       ++it) {
    out.emplace_back(it->first.substr(prefix.size()), it->second);
  }
  return out;
}

// --- small value types ---

std::string_view to_string(ProxyMode mode) {
  return mode == ProxyMode::kShared ? "shared" : "dedicated";
}

std::string DnsProxyAddr::to_string() const {
  if (localhost) return fmt::format("localhost:{}", port);
  if (ip.find(':') != std::string::npos) return fmt::format("[{}]:{}", ip, port);
  return fmt::format("{}:{}", ip, port);
}

// --- parsers ---

core::Result<Duration> parse_duration(std::string_view text) {
  constexpr std::string_view kExpected = "expected a duration such as 5s, 500ms or 1h30m";
  constexpr std::string_view kMicro = "\xc2\xb5";  // U+00B5 MICRO SIGN, as duration-str accepts
  constexpr int64_t kSecond = 1'000'000'000;
  constexpr int64_t kDay = 86400 * kSecond;
  struct Unit {
    std::string_view name;
    int64_t nanos;
  };
  static constexpr Unit kUnits[] = {
      {"ns", 1},
      {"nsec", 1},
      {"nanosecond", 1},
      {"nanoseconds", 1},
      {"us", 1000},
      {"usec", 1000},
      {"usecond", 1000},
      {"microsecond", 1000},
      {"microseconds", 1000},
      {"\xc2\xb5s", 1000},
      {"\xc2\xb5sec", 1000},
      {"\xc2\xb5second", 1000},
      {"ms", 1'000'000},
      {"msec", 1'000'000},
      {"millisecond", 1'000'000},
      {"milliseconds", 1'000'000},
      {"s", kSecond},
      {"sec", kSecond},
      {"second", kSecond},
      {"seconds", kSecond},
      {"m", 60 * kSecond},
      {"min", 60 * kSecond},
      {"minute", 60 * kSecond},
      {"minutes", 60 * kSecond},
      {"h", 3600 * kSecond},
      {"hr", 3600 * kSecond},
      {"hour", 3600 * kSecond},
      {"hours", 3600 * kSecond},
      {"d", kDay},
      {"day", kDay},
      {"days", kDay},
      {"w", 7 * kDay},
      {"week", 7 * kDay},
      {"weeks", 7 * kDay},
      {"mon", 30 * kDay},
      {"month", 30 * kDay},
      {"months", 30 * kDay},
      {"y", 365 * kDay},
      {"year", 365 * kDay},
      {"years", 365 * kDay},
  };
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

  size_t i = 0;
  auto skip_spaces = [&] {
    while (i < text.size() &&
           (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
      ++i;
  };
  int64_t total = 0;
  int terms = 0;
  skip_spaces();
  while (i < text.size()) {
    if (terms > 0 && text[i] == '+') {
      ++i;
      skip_spaces();
    }
    if (i >= text.size() || !is_digit(text[i])) return fail(std::string(kExpected));
    int64_t count = 0;
    for (; i < text.size() && is_digit(text[i]); ++i) {
      int digit = text[i] - '0';
      if (count > (kMax - digit) / 10) return fail(fmt::format("{} (too large)", kExpected));
      count = count * 10 + digit;
    }
    skip_spaces();
    size_t unit_start = i;
    while (i < text.size()) {
      if (is_alpha(text[i])) {
        ++i;
      } else if (text.substr(i).starts_with(kMicro)) {
        i += kMicro.size();
      } else {
        break;
      }
    }
    std::string unit = lower(text.substr(unit_start, i - unit_start));
    int64_t unit_nanos = unit.empty() ? kSecond : 0;  // a bare number is seconds
    for (const Unit& u : kUnits) {
      if (u.name == unit) unit_nanos = u.nanos;
    }
    if (unit_nanos == 0) {
      return fail(fmt::format("{} (unknown unit \"{}\"; use ns, us, ms, s, m, h, d, w, mon or y)",
                              kExpected, unit));
    }
    if (count > (kMax - total) / unit_nanos) return fail(fmt::format("{} (too large)", kExpected));
    total += count * unit_nanos;
    ++terms;
    skip_spaces();
  }
  if (terms == 0) return fail(std::string(kExpected));
  return Duration(total);
}

std::string format_duration(Duration d) {
  if (d.count() == 0) return "0s";
  struct Part {
    int64_t nanos;
    std::string_view suffix;
  };
  static constexpr Part kParts[] = {
      {3'600'000'000'000, "h"}, {60'000'000'000, "m"}, {1'000'000'000, "s"},
      {1'000'000, "ms"},        {1'000, "us"},         {1, "ns"}};
  std::string out;
  int64_t rest = d.count();
  if (rest < 0) {
    out = "-";
    rest = -rest;
  }
  for (const Part& p : kParts) {
    if (rest >= p.nanos) {
      out += fmt::format("{}{}", rest / p.nanos, p.suffix);
      rest %= p.nanos;
    }
  }
  return out;
}

core::Result<bool> parse_bool(std::string_view text) {
  if (text == "true") return true;
  if (text == "false") return false;
  return fail("expected true or false");
}

core::Result<uint64_t> parse_unsigned(std::string_view text, uint64_t min, uint64_t max) {
  auto expected = [&] {
    if (max == std::numeric_limits<uint64_t>::max()) {
      return fail(min == 0   ? "expected a non-negative integer"
                  : min == 1 ? "expected a positive integer"
                             : fmt::format("expected an integer of at least {}", min));
    }
    return fail(fmt::format("expected an integer from {} to {}", min, max));
  };
  if (text.empty()) return expected();
  uint64_t v = 0;
  for (char c : text) {
    if (!is_digit(c)) return expected();
    auto digit = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - digit) / 10) return expected();
    v = v * 10 + digit;
  }
  if (v < min || v > max) return expected();
  return v;
}

core::Result<uint32_t> parse_cpu_quantity(std::string_view text) {
  constexpr std::string_view kExpected = "expected a positive CPU quantity such as 2, 1.5 or 500m";
  bool millis = text.ends_with('m');
  auto d = parse_decimal(millis ? text.substr(0, text.size() - 1) : text);
  if (!d || d->mantissa == 0) return fail(std::string(kExpected));
  uint64_t scale = millis ? d->scale * 1000 : d->scale;
  return static_cast<uint32_t>(ceil_div(d->mantissa, scale));  // < 10^9 by parse_decimal's bound
}

core::Result<uint32_t> parse_percent_of(std::string_view text, uint32_t total) {
  constexpr std::string_view kExpected =
      "expected a percentage above 0% and at most 100%, such as 50%";
  if (!text.ends_with('%')) return fail(std::string(kExpected));
  auto p = parse_decimal(text.substr(0, text.size() - 1));
  if (!p || p->mantissa == 0 || p->mantissa > 100 * p->scale) return fail(std::string(kExpected));
  // Exact integer arithmetic: Istio's f64 can round 4.0000000001 up to 5.
  uint64_t threads = ceil_div(static_cast<uint64_t>(total) * p->mantissa, 100 * p->scale);
  return static_cast<uint32_t>(std::max<uint64_t>(threads, 1));
}

core::Result<DnsProxyAddr> parse_dns_proxy_addr(std::string_view text) {
  constexpr std::string_view kExpected = "expected localhost:PORT, IPv4:PORT or [IPv6]:PORT";
  DnsProxyAddr addr;
  std::string_view port;
  if (text.starts_with("localhost:")) {
    addr.localhost = true;
    port = text.substr(10);
  } else if (text.starts_with('[')) {
    size_t close = text.find("]:");
    if (close == std::string_view::npos || !is_ip_literal(text.substr(1, close - 1), AF_INET6)) {
      return fail(std::string(kExpected));
    }
    addr.localhost = false;
    addr.ip = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || !is_ip_literal(text.substr(0, colon), AF_INET)) {
      return fail(std::string(kExpected));
    }
    addr.localhost = false;
    addr.ip = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
  }
  auto p = parse_unsigned(port, 0, 65535);
  if (!p) return fail(std::string(kExpected));
  addr.port = static_cast<uint16_t>(*p);
  return addr;
}

core::Result<std::string> parse_control_plane_uri(std::string_view text) {
  constexpr std::string_view kExpected = "expected http(s)://host[:port] or host[:port]";
  if (text.empty() || !std::all_of(text.begin(), text.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u > 0x20 && u < 0x7f;
      })) {
    return fail(std::string(kExpected));
  }
  std::string_view rest = text;
  bool has_scheme = false;
  if (size_t sep = text.find("://"); sep != std::string_view::npos) {
    std::string scheme = lower(text.substr(0, sep));
    if (scheme != "http" && scheme != "https")
      return fail(fmt::format("{} (unsupported scheme)", kExpected));
    rest = text.substr(sep + 3);
    has_scheme = true;
  }
  size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  // Like hyper's Uri, a path is allowed only after an explicit scheme.
  if (!has_scheme && end != std::string_view::npos) return fail(std::string(kExpected));
  std::string_view host = authority;
  std::string_view port;
  if (authority.starts_with('[')) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos ||
        !is_ip_literal(authority.substr(1, close - 1), AF_INET6)) {
      return fail(std::string(kExpected));
    }
    host = authority.substr(0, close + 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return fail(std::string(kExpected));
      port = after.substr(1);
      if (port.empty()) return fail(std::string(kExpected));
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) return fail(std::string(kExpected));
  }
  bool host_ok =
      !host.empty() && (host.front() == '[' || std::all_of(host.begin(), host.end(), [](char c) {
                          return is_alpha(c) || is_digit(c) || c == '.' || c == '-' || c == '_';
                        }));
  if (!host_ok) return fail(std::string(kExpected));
  if (!port.empty() && !parse_unsigned(port, 0, 65535))
    return fail(fmt::format("{} (bad port)", kExpected));
  return ok(has_scheme ? std::string(text) : fmt::format("https://{}", text));
}

core::Result<ProxyWorkloadInfo> parse_workload_info(std::string_view text) {
  size_t first = text.find('/');
  size_t second = first == std::string_view::npos ? first : text.find('/', first + 1);
  if (second == std::string_view::npos || text.find('/', second + 1) != std::string_view::npos ||
      first == 0 || second == first + 1 || second + 1 == text.size()) {
    return fail("expected namespace/name/service-account, each part non-empty");
  }
  return ProxyWorkloadInfo{std::string(text.substr(0, first)),
                           std::string(text.substr(first + 1, second - first - 1)),
                           std::string(text.substr(second + 1))};
}

Duration drain_deadline_from_grace_period(uint64_t grace_seconds) {
  grace_seconds = std::min(grace_seconds, kMaxDurationSeconds);
  // Drain finishes a few seconds before Kubernetes' SIGKILL so the last connections
  // are closed cleanly; short grace periods keep less margin.
  uint64_t margin = grace_seconds > 10 ? 5 : 1;
  uint64_t secs = grace_seconds > margin ? grace_seconds - margin : 0;
  return std::chrono::seconds(static_cast<int64_t>(std::max<uint64_t>(secs, 1)));
}

// --- Config ---

core::Result<Config> Config::from_env(const Environment& env, unsigned cpu_count,
                                      const PathExists& path_exists) {
  PathExists exists = path_exists;
  if (!exists) {
    exists = [](const std::string& path) {
      std::error_code ec;
      return std::filesystem::exists(path, ec);
    };
  }
  Config c;
  Reader r(env);

  // PROXY_CONFIG first: it supplies defaults (xDS address, metadata, concurrency) that
  // the individual variables override.
  ProxyConfig pc;
  r.set("PROXY_CONFIG", pc, parse_proxy_config);
  c.admin_port = pc.proxy_admin_port.value_or(kAdminPort);
  c.stats_port = pc.stats_port.value_or(kStatsPort);
  c.proxy_metadata = pc.proxy_metadata;
  for (auto& [key, value] : env.with_prefix(kIstioMetaPrefix)) {
    if (!key.empty()) c.proxy_metadata[key] = value;
  }
  for (auto& [key, value] : env.with_prefix(kIstioMetaJsonPrefix)) {
    if (!key.empty()) c.metadata_json[key] = value;
  }
  c.istio_version = env.get("ISTIO_META_ISTIO_VERSION");

  // Mode. A dedicated ztunnel serves exactly one workload, which it must be told.
  r.set("PROXY_MODE", c.proxy_mode, parse_proxy_mode);
  if (c.proxy_mode == ProxyMode::kDedicated) {
    c.packet_mark.reset();  // only in-pod mode needs the mark
    if (!env.contains("PROXY_WORKLOAD_INFO")) {
      r.record(
          fail("missing PROXY_WORKLOAD_INFO: PROXY_MODE=\"dedicated\" requires "
               "PROXY_WORKLOAD_INFO=namespace/name/service-account"));
    }
    r.set("PROXY_WORKLOAD_INFO", c.proxy_workload_info, parse_workload_info);
  }
  r.set("PACKET_MARK", c.packet_mark, parse_u32);
  r.set("ENABLE_PROXY", c.proxy_enabled, parse_bool);
  r.set("INPOD_UDS", c.inpod_uds, parse_uds_path);
  r.set("INPOD_PORT_REUSE", c.inpod_port_reuse, parse_bool);
  r.set("IPV6_ENABLED", c.ipv6_enabled, parse_bool);
  r.set("ENABLE_ORIG_SRC", c.enable_original_source, parse_bool);
  r.set("LOCALHOST_APP_TUNNEL", c.localhost_app_tunnel, parse_bool);
  r.set("ENABLE_RESPONSE_BAGGAGE", c.enable_response_baggage, parse_bool);
  r.set("UNSTABLE_ENABLE_SOCKS5", c.socks5_enabled, parse_bool);

  // DNS proxy: Istio turns it on unless DNS_CAPTURE metadata says anything but "true".
  auto metadata_var = [&](std::string_view key) {
    std::string var = fmt::format("{}{}", kIstioMetaPrefix, key);
    return env.contains(var) ? var : fmt::format("PROXY_CONFIG proxyMetadata {}", key);
  };
  if (auto it = c.proxy_metadata.find("DNS_CAPTURE"); it != c.proxy_metadata.end()) {
    c.dns_proxy_enabled = lower(it->second) == "true";
  }
  if (auto it = c.proxy_metadata.find("DNS_PROXY_ADDR"); it != c.proxy_metadata.end()) {
    r.check(metadata_var("DNS_PROXY_ADDR"), it->second, c.dns_proxy_addr, parse_dns_proxy_addr);
  }

  // Control plane. Both addresses default to istiod, found by its in-cluster name
  // when running in Kubernetes.
  const std::string default_istiod = env.contains("KUBERNETES_SERVICE_HOST")
                                         ? "https://istiod.istio-system.svc:15012"
                                         : "https://localhost:15012";
  std::string xds_var = "XDS_ADDRESS";
  std::optional<std::string> xds = env.get(xds_var);
  if (!xds && pc.discovery_address) {
    xds = pc.discovery_address;
    xds_var = "PROXY_CONFIG discoveryAddress";
  }
  if (!xds) xds = default_istiod;
  if (!xds->empty()) r.check(xds_var, *xds, c.xds_address, parse_control_plane_uri);

  r.set("FAKE_CA", c.fake_ca, parse_bool);
  if (!c.fake_ca) {
    std::string ca = env.get("CA_ADDRESS").value_or(default_istiod);
    if (!ca.empty()) r.check("CA_ADDRESS", ca, c.ca_address, parse_control_plane_uri);
  }

  auto root_cert = [&](std::string_view text) { return parse_root_cert(text, exists); };
  c.xds_root_cert = RootCert{RootCert::Kind::kFile, std::string(kDefaultRootCertPath)};
  c.ca_root_cert = c.xds_root_cert;
  r.set("XDS_ROOT_CA", c.xds_root_cert, root_cert);
  r.set("CA_ROOT_CA", c.ca_root_cert, root_cert);
  r.set("ALT_XDS_HOSTNAME", c.alt_xds_hostname, parse_dns_domain);
  r.set("ALT_CA_HOSTNAME", c.alt_ca_hostname, parse_dns_domain);

  if (auto token = env.get("AUTH_TOKEN")) {
    // The value is a secret when it is not a path: never echo it.
    if (token->empty()) {
      r.record(fail("invalid AUTH_TOKEN=\"\": expected a token file path or a token"));
    } else if (exists(*token)) {
      c.auth = AuthSource{AuthSource::Kind::kTokenFile, *token};
    } else {
      c.auth = AuthSource{AuthSource::Kind::kStaticToken, *token};
    }
  } else if (exists(std::string(kDefaultTokenPath))) {
    c.auth = AuthSource{AuthSource::Kind::kTokenFile, std::string(kDefaultTokenPath)};
  }

  auto local_path = env.get("LOCAL_XDS_PATH");
  auto local_inline = env.get("LOCAL_XDS");
  if (local_path && local_inline) {
    r.record(invalid("LOCAL_XDS_PATH", *local_path,
                     "LOCAL_XDS is also set; set only one of LOCAL_XDS_PATH and LOCAL_XDS"));
  } else if (local_path) {
    if (local_path->empty()) r.record(invalid("LOCAL_XDS_PATH", "", "expected a file path"));
    c.local_xds = LocalXds{LocalXds::Kind::kFile, *local_path};
  } else if (local_inline) {
    c.local_xds = LocalXds{LocalXds::Kind::kInline, *local_inline};
  }
  r.set("XDS_ON_DEMAND", c.xds_on_demand, parse_bool);
  read_headers(env, kXdsHeaderPrefix, c.xds_headers, r);
  read_headers(env, kCaHeaderPrefix, c.ca_headers, r);

  // Identity and placement.
  if (env.contains("ISTIO_META_CLUSTER_ID")) {
    r.set("ISTIO_META_CLUSTER_ID", c.cluster_id, parse_header_safe);
  } else {
    r.set("CLUSTER_ID", c.cluster_id, parse_header_safe);
  }
  r.set("CLUSTER_DOMAIN", c.cluster_domain, parse_dns_domain);
  r.set("TRUST_DOMAIN", c.trust_domain, parse_trust_domain);
  r.set("NETWORK", c.network, parse_header_safe);
  r.set("POD_NAME", c.pod_name, parse_object_name);
  r.set("POD_NAMESPACE", c.pod_namespace, parse_object_name);
  r.set("SERVICE_ACCOUNT", c.service_account, parse_object_name);
  r.set("NODE_NAME", c.node_name, parse_object_name);
  r.set("INSTANCE_IP", c.instance_ip, parse_ip);
  r.set("PREFERED_SERVICE_NAMESPACE", c.prefered_service_namespace, any_string);
  r.set("SECRET_TTL", c.secret_ttl, parse_positive_seconds);
  if (auto crl = env.get("CRL_PATH"); crl && !crl->empty()) c.crl_path = *crl;
  if (auto dir = env.get("ZTUNNEL_CA_DIR"); dir && !dir->empty()) c.ca_dir = *dir;
  if (auto dir = env.get("ZTUNNEL_CERT_DIR"); dir && !dir->empty()) c.cert_dir = *dir;

  // Worker threads (Istio's default_worker_threads / parse_worker_threads). An explicit
  // CPU limit is the CPU count; otherwise ZTUNNEL_CPU_LIMIT, otherwise the machine's.
  std::optional<uint32_t> resource_limit;
  std::optional<uint32_t> resource_request;
  std::optional<uint32_t> cpu_limit;
  r.set("ZTUNNEL_RESOURCE_CPU_LIMIT", resource_limit, parse_cpu_quantity);
  r.set("ZTUNNEL_RESOURCE_CPU_REQUEST", resource_request, parse_cpu_quantity);
  r.set("ZTUNNEL_CPU_LIMIT", cpu_limit, [](std::string_view t) -> core::Result<uint32_t> {
    auto v = parse_unsigned(t, 1, std::numeric_limits<uint32_t>::max());
    if (!v) return v.error();
    return static_cast<uint32_t>(*v);
  });
  const uint32_t cpus = resource_limit.value_or(cpu_limit.value_or(std::max(cpu_count, 1u)));
  const uint32_t request = resource_request.value_or(0);
  if (pc.concurrency) {
    c.worker_threads = *pc.concurrency > 0 ? *pc.concurrency : cpus;  // 0 = all cores
  } else if (resource_limit) {
    c.worker_threads = std::max(*resource_limit, request);  // honoured even below 2
  } else {
    c.worker_threads = std::max({(cpus + 3) / 4, request, kDefaultWorkerThreads});
  }
  r.set("ZTUNNEL_WORKER_THREADS", c.worker_threads,
        [&](std::string_view t) { return parse_worker_threads(t, cpus); });
  c.worker_threads = std::max(c.worker_threads, 1u);

  // Pool and HTTP/2.
  auto u32_in = [](uint64_t min, uint64_t max) {
    return [min, max](std::string_view t) -> core::Result<uint32_t> {
      auto v = parse_unsigned(t, min, max);
      if (!v) return v.error();
      return static_cast<uint32_t>(*v);
    };
  };
  r.set("POOL_MAX_STREAMS_PER_CONNECTION", c.pool_max_streams_per_connection, u32_in(1, 65535));
  r.set("POOL_UNUSED_RELEASE_TIMEOUT", c.pool_unused_release_timeout, parse_duration);
  bool windows_ok = !r.failed();
  r.set("HTTP2_STREAM_WINDOW_SIZE", c.http2_stream_window_size, u32_in(1, kMaxH2Window));
  r.set("HTTP2_CONNECTION_WINDOW_SIZE", c.http2_connection_window_size, u32_in(1, kMaxH2Window));
  windows_ok = windows_ok && !r.failed();
  r.set("HTTP2_FRAME_SIZE", c.http2_frame_size, u32_in(kMinH2FrameSize, kMaxH2FrameSize));
  // With equal windows one stream whose reader stalls can take the whole connection
  // window and block every other stream on it.
  if (windows_ok && c.http2_connection_window_size <= c.http2_stream_window_size) {
    r.record(invalid(
        "HTTP2_CONNECTION_WINDOW_SIZE", std::to_string(c.http2_connection_window_size),
        fmt::format("expected more than HTTP2_STREAM_WINDOW_SIZE ({}) so one stream cannot use up "
                    "the connection window",
                    c.http2_stream_window_size)));
  }

  // Sockets.
  r.set("KEEPALIVE_TIME", c.keepalive_time, parse_keepalive_duration);
  r.set("KEEPALIVE_INTERVAL", c.keepalive_interval, parse_keepalive_duration);
  r.set("KEEPALIVE_RETRIES", c.keepalive_retries, u32_in(1, kMaxKeepaliveRetries));
  r.set("KEEPALIVE_ENABLED", c.keepalive_enabled, parse_bool);
  r.set("USER_TIMEOUT_ENABLED", c.user_timeout_enabled, parse_bool);

  // Drain deadline: an explicit deadline wins over the one derived from the grace period.
  std::optional<Duration> deadline;
  std::optional<uint64_t> grace;
  r.set("CONNECTION_TERMINATION_DEADLINE", deadline, parse_duration);
  r.set("TERMINATION_GRACE_PERIOD_SECONDS", grace,
        [](std::string_view t) { return parse_unsigned(t, 0, kMaxDurationSeconds); });
  if (deadline) {
    c.drain_deadline = *deadline;
  } else if (grace) {
    c.drain_deadline = drain_deadline_from_grace_period(*grace);
  }

  // TLS and logging.
  r.set("TLS12_ENABLED", c.tls12_enabled, parse_flag);
  r.set("AUTHZ_POLICY_INFO_LOGGING", c.authz_policy_info_logging, parse_flag);
  if (auto policy = env.get("COMPLIANCE_POLICY"); policy && !policy->empty()) {
    // Ignoring "pqc" would silently downgrade key exchange; refuse instead.
    r.record(invalid("COMPLIANCE_POLICY", *policy,
                     "no compliance policy is supported by ztunnel-cpp yet"));
  }
  r.set("RUST_LOG", c.log_filter, [](std::string_view t) -> core::Result<std::string> {
    auto f = log::Filter::parse(t);
    if (!f) return f.error();
    return ok(std::string(t));
  });
  r.set("LOG_FORMAT", c.log_format, log::parse_format);

  if (r.failed()) return r.error();

  // Cross-checks, as Istio's validate_config.
  if (c.dns_proxy_enabled && c.xds_on_demand) {
    return invalid("XDS_ON_DEMAND", "true",
                   "on-demand xDS does not work with the DNS proxy; set "
                   "ISTIO_META_DNS_CAPTURE=false to use it");
  }
  if (!c.proxy_enabled && !c.dns_proxy_enabled) {
    return invalid(
        "ENABLE_PROXY", "false",
        "the DNS proxy is off too (ISTIO_META_DNS_CAPTURE), so ztunnel would run no servers");
  }
  return c;
}

std::vector<uint16_t> Config::illegal_ports() const {
  std::vector<uint16_t> ports(kIllegalPorts.begin(), kIllegalPorts.end());
  if (socks5_enabled) ports.push_back(kSocks5Port);
  return ports;
}

std::optional<std::string> Config::self_identity() const {
  if (!pod_name || !pod_namespace || !service_account) return std::nullopt;
  return fmt::format("spiffe://{}/ns/{}/sa/{}", trust_domain, *pod_namespace, *service_account);
}

std::string Config::describe() const {
  std::string out;
  auto line = [&out](std::string_view key, std::string_view value) {
    out += fmt::format("{}: {}\n", key, value);
  };
  auto map_line = [&](std::string_view key, const std::map<std::string, std::string>& m) {
    std::string v = "{";
    for (const auto& [k, val] : m)
      v += fmt::format("{}{}: {}", v.size() > 1 ? ", " : "", yaml_scalar(k), yaml_scalar(val));
    line(key, v + "}");
  };
  auto headers_line = [&](std::string_view key, const std::vector<Header>& hs) {
    std::string v = "{";
    for (const auto& h : hs) v += fmt::format("{}{}: <redacted>", v.size() > 1 ? ", " : "", h.name);
    line(key, v + "}");
  };
  auto root_cert = [](const RootCert& rc) {
    switch (rc.kind) {
      case RootCert::Kind::kFile:
        return fmt::format("file {}", yaml_scalar(rc.value));
      case RootCert::Kind::kSystem:
        return std::string("system");
      case RootCert::Kind::kInlinePem:
        return fmt::format("inline PEM ({} bytes)", rc.value.size());
    }
    return std::string();
  };

  line("proxy_mode", to_string(proxy_mode));
  line("proxy_workload_info",
       proxy_workload_info
           ? fmt::format("{}/{}/{}", proxy_workload_info->namespace_name, proxy_workload_info->name,
                         proxy_workload_info->service_account)
           : "~");
  line("proxy_enabled", yes_no(proxy_enabled));
  line("dns_proxy_enabled", yes_no(dns_proxy_enabled));
  line("dns_proxy_addr", dns_proxy_addr.to_string());
  line("inpod_uds", yaml_scalar(inpod_uds));
  line("inpod_port_reuse", yes_no(inpod_port_reuse));
  line("packet_mark", packet_mark ? std::to_string(*packet_mark) : "~");
  line("ipv6_enabled", yes_no(ipv6_enabled));
  line("enable_original_source", enable_original_source ? yes_no(*enable_original_source) : "auto");
  line("localhost_app_tunnel", yes_no(localhost_app_tunnel));
  line("enable_response_baggage", yes_no(enable_response_baggage));
  line("socks5_enabled", yes_no(socks5_enabled));
  line("ports", fmt::format("{{outbound: {}, inbound_plaintext: {}, inbound: {}, readiness: {}, "
                            "admin: {}, stats: {}}}",
                            kOutboundPort, kInboundPlaintextPort, kInboundPort, kReadinessPort,
                            admin_port, stats_port));
  line("illegal_ports", fmt::format("[{}]", fmt::join(illegal_ports(), ", ")));
  line("xds_address", opt(xds_address));
  line("ca_address", opt(ca_address));
  line("fake_ca", yes_no(fake_ca));
  line("xds_root_cert", root_cert(xds_root_cert));
  line("ca_root_cert", root_cert(ca_root_cert));
  line("alt_xds_hostname", opt(alt_xds_hostname));
  line("alt_ca_hostname", opt(alt_ca_hostname));
  switch (auth.kind) {
    case AuthSource::Kind::kNone:
      line("auth", "none");
      break;
    case AuthSource::Kind::kTokenFile:
      line("auth", fmt::format("token file {}", yaml_scalar(auth.value)));
      break;
    case AuthSource::Kind::kStaticToken:
      line("auth", fmt::format("static token <redacted, {} bytes>", auth.value.size()));
      break;
  }
  if (!local_xds) {
    line("local_xds", "~");
  } else if (local_xds->kind == LocalXds::Kind::kFile) {
    line("local_xds", fmt::format("file {}", yaml_scalar(local_xds->value)));
  } else {
    line("local_xds", fmt::format("inline YAML ({} bytes)", local_xds->value.size()));
  }
  line("xds_on_demand", yes_no(xds_on_demand));
  headers_line("xds_headers", xds_headers);
  headers_line("ca_headers", ca_headers);
  line("cluster_id", yaml_scalar(cluster_id));
  line("cluster_domain", yaml_scalar(cluster_domain));
  line("trust_domain", yaml_scalar(trust_domain));
  line("network", yaml_scalar(network));
  line("pod_name", opt(pod_name));
  line("pod_namespace", opt(pod_namespace));
  line("service_account", opt(service_account));
  line("node_name", opt(node_name));
  line("instance_ip", yaml_scalar(instance_ip));
  line("self_identity", opt(self_identity()));
  line("prefered_service_namespace", opt(prefered_service_namespace));
  line("secret_ttl", format_duration(secret_ttl));
  line("crl_path", opt(crl_path));
  line("ca_dir", opt(ca_dir));
  line("cert_dir", opt(cert_dir));
  map_line("proxy_metadata", proxy_metadata);
  map_line("metadata_json", metadata_json);
  line("istio_version", opt(istio_version));
  line("worker_threads", std::to_string(worker_threads));
  line("pool_max_streams_per_connection", std::to_string(pool_max_streams_per_connection));
  line("pool_unused_release_timeout", format_duration(pool_unused_release_timeout));
  line("http2_stream_window_size", std::to_string(http2_stream_window_size));
  line("http2_connection_window_size", std::to_string(http2_connection_window_size));
  line("http2_frame_size", std::to_string(http2_frame_size));
  line("keepalive_enabled", yes_no(keepalive_enabled));
  line("keepalive_time", format_duration(keepalive_time));
  line("keepalive_interval", format_duration(keepalive_interval));
  line("keepalive_retries", std::to_string(keepalive_retries));
  line("user_timeout_enabled", yes_no(user_timeout_enabled));
  line("drain_deadline", format_duration(drain_deadline));
  line("tls12_enabled", yes_no(tls12_enabled));
  line("authz_policy_info_logging", yes_no(authz_policy_info_logging));
  line("log_filter", yaml_scalar(log_filter));
  line("log_format", log_format == log::Format::kJson ? "json" : "plain");
  return out;
}

std::string help_text() {
  size_t name_width = 0;
  size_t default_width = 0;
  for (const auto& v : kVariables) {
    name_width = std::max(name_width, v.name.size());
    default_width = std::max(default_width, v.default_value.size());
  }
  std::string out =
      "Usage: ztunnel [proxy|version|help]\n"
      "\n"
      "Commands:\n"
      "  proxy    start the proxy (the default)\n"
      "  version  print the version\n"
      "  help     print this help\n"
      "\n"
      "Configuration comes from environment variables, with Istio ztunnel's names:\n";
  out += fmt::format("  {:<{}}  {:<{}}  {}\n", "VARIABLE", name_width, "DEFAULT", default_width,
                     "MEANING");
  for (const auto& v : kVariables) {
    out += fmt::format("  {:<{}}  {:<{}}  {}\n", v.name, name_width, v.default_value, default_width,
                       v.meaning);
  }
  out += "Durations: 5s, 500ms, 1h30m (ns, us, ms, s, m, h, d); a bare number is seconds.\n";
  return out;
}

}  // namespace ztunnel::config
