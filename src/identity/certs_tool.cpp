// ztunnel-certs commands: init-ca and issue, on top of BuiltinCa.
#include "identity/certs_tool.h"

#include <fcntl.h>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <optional>

#include "identity/builtin_ca.h"
#include "tls/spiffe.h"
#include "tls/x509.h"

namespace ztunnel::identity::certs_tool {
namespace {

namespace fs = std::filesystem;

// Writes to a temporary file beside `path`, then renames over it.
core::Result<void> write_atomically(const fs::path& path, std::string_view content, mode_t mode) {
  fs::path tmp = path;
  tmp += fmt::format(".tmp.{}", ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    return core::make_error(fmt::format("cannot create {}: {}", tmp.string(), std::strerror(errno)));
  }
  bool ok = ::fchmod(fd, mode) == 0;  // umask must not widen or narrow the mode
  size_t done = 0;
  while (ok && done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  int saved = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) saved = errno;
    ::unlink(tmp.c_str());
    return core::make_error(fmt::format("cannot write {}: {}", path.string(), std::strerror(saved)));
  }
  return {};
}

core::Result<void> ensure_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return core::make_error(fmt::format("cannot create {}: {}", dir.string(), ec.message()));
  return {};
}

std::string format_time(std::chrono::system_clock::time_point t) {
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(std::chrono::system_clock::to_time_t(t)));
}

// core::Error is constructible from a string too, so say which one we mean.
core::Result<std::string> text(std::string s) {
  return core::Result<std::string>(boost::system::in_place_value, std::move(s));
}

}  // namespace

core::Result<std::chrono::seconds> parse_duration(std::string_view text) {
  if (text.empty()) return core::make_error("empty duration");
  std::chrono::seconds total{0};
  std::string_view rest = text;
  while (!rest.empty()) {
    size_t digits = 0;
    while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') ++digits;
    if (digits == 0 || digits > 9 || digits == rest.size()) {
      return core::make_error(fmt::format("'{}' is not a duration like 720h or 1h30m", text));
    }
    int64_t value = 0;
    for (size_t i = 0; i < digits; ++i) value = value * 10 + (rest[i] - '0');
    int64_t unit = 0;
    switch (rest[digits]) {
      case 'd': unit = 86400; break;
      case 'h': unit = 3600; break;
      case 'm': unit = 60; break;
      case 's': unit = 1; break;
      default: return core::make_error(fmt::format("'{}': unknown unit '{}'", text, rest[digits]));
    }
    total += std::chrono::seconds(value * unit);
    rest.remove_prefix(digits + 1);
  }
  return total;
}

core::Result<std::string> init_ca(const InitCaOptions& options) {
  if (auto td = tls::parse_spiffe_id(fmt::format("spiffe://{}/ns/a/sa/b", options.trust_domain));
      !td) {
    return core::make_error(fmt::format("invalid trust domain '{}'", options.trust_domain));
  }
  fs::path cert_path = options.dir / "ca-cert.pem";
  fs::path key_path = options.dir / "ca-key.pem";
  if (!options.force && (fs::exists(cert_path) || fs::exists(key_path))) {
    return core::make_error(fmt::format(
        "{} already holds a CA; pass --force to replace it (every issued certificate "
        "will stop verifying)", options.dir.string()));
  }
  auto ca = BuiltinCa::generate(options.trust_domain, std::chrono::system_clock::now(),
                                options.validity);
  if (!ca) return ca.error();
  if (auto ok = ensure_dir(options.dir); !ok) return ok.error();
  // Key first: a cert without its key is useless, a key without its cert is inert.
  if (auto ok = write_atomically(key_path, (*ca)->key_pem(), 0600); !ok) return ok.error();
  if (auto ok = write_atomically(cert_path, (*ca)->cert_pem(), 0644); !ok) return ok.error();
  return text(fmt::format("wrote {} and {} (trust domain {}, valid until {})\n", cert_path.string(),
                     key_path.string(), options.trust_domain,
                          format_time(tls::not_after(*(*ca)->certificate()))));
}

core::Result<std::string> issue(const IssueOptions& options) {
  auto id = tls::parse_spiffe_id(options.identity);
  if (!id) return id.error();
  auto ca = BuiltinCa::from_files(options.ca_dir / "ca-cert.pem", options.ca_dir / "ca-key.pem");
  if (!ca) return ca.error();
  auto cert = (*ca)->issue(*id, options.ttl, std::chrono::system_clock::now());
  if (!cert) return cert.error();
  if (auto ok = ensure_dir(options.out); !ok) return ok.error();
  // Root and chain before the key: a provider polling mid-write sees a
  // mismatched key at worst, which it rejects and retries.
  if (auto ok = write_atomically(options.out / "root-cert.pem", (*ca)->root_pem(), 0644); !ok) {
    return ok.error();
  }
  if (auto ok = write_atomically(options.out / "cert-chain.pem", (*cert)->chain_pem(), 0644); !ok) {
    return ok.error();
  }
  if (auto ok = write_atomically(options.out / "key.pem", (*cert)->key_pem(), 0600); !ok) {
    return ok.error();
  }
  return text(fmt::format("issued {} (serial {}, valid until {}) into {}\n", id->to_spiffe(),
                     tls::serial_hex(*(*cert)->leaf()), format_time((*cert)->not_after()),
                          options.out.string()));
}

std::string_view usage() {
  return "usage:\n"
         "  ztunnel-certs init-ca --dir DIR [--trust-domain TD] [--validity 87600h] [--force]\n"
         "      writes DIR/ca-cert.pem and DIR/ca-key.pem (a self-signed ECDSA P-256 CA)\n"
         "  ztunnel-certs issue --ca-dir DIR --identity spiffe://TD/ns/NS/sa/SA --out DIR\n"
         "                      [--ttl 720h]\n"
         "      writes DIR/cert-chain.pem, DIR/key.pem and DIR/root-cert.pem\n";
}

core::Result<std::string> run(std::span<const std::string_view> args) {
  auto bad = [](std::string_view why) {
    return core::make_error(fmt::format("ztunnel-certs: {}\n{}", why, usage()));
  };
  if (args.empty()) return bad("no command");
  std::string_view command = args[0];
  if (command == "help" || command == "--help" || command == "-h") return text(std::string(usage()));

  // --flag VALUE or --flag=VALUE; --force is the only bare flag.
  std::map<std::string, std::string, std::less<>> flags;
  for (size_t i = 1; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (!arg.starts_with("--")) return bad(fmt::format("unexpected argument '{}'", arg));
    arg.remove_prefix(2);
    if (auto eq = arg.find('='); eq != std::string_view::npos) {
      flags[std::string(arg.substr(0, eq))] = std::string(arg.substr(eq + 1));
    } else if (arg == "force") {
      flags["force"] = "true";
    } else if (i + 1 < args.size()) {
      flags[std::string(arg)] = std::string(args[++i]);
    } else {
      return bad(fmt::format("--{} needs a value", arg));
    }
  }
  auto take = [&flags](std::string_view name) -> std::optional<std::string> {
    auto it = flags.find(name);
    if (it == flags.end()) return std::nullopt;
    std::string value = std::move(it->second);
    flags.erase(it);
    return value;
  };

  core::Result<std::string> result = core::make_error("unreachable");
  if (command == "init-ca") {
    InitCaOptions o;
    auto dir = take("dir");
    if (!dir) return bad("init-ca needs --dir");
    o.dir = *dir;
    if (auto td = take("trust-domain")) o.trust_domain = *td;
    if (auto v = take("validity")) {
      auto d = parse_duration(*v);
      if (!d) return bad(d.error().message);
      o.validity = *d;
    }
    o.force = take("force").has_value();
    if (!flags.empty()) return bad(fmt::format("unknown flag --{}", flags.begin()->first));
    result = init_ca(o);
  } else if (command == "issue") {
    IssueOptions o;
    auto ca_dir = take("ca-dir");
    auto identity = take("identity");
    auto out = take("out");
    if (!ca_dir || !identity || !out) return bad("issue needs --ca-dir, --identity and --out");
    o.ca_dir = *ca_dir;
    o.identity = *identity;
    o.out = *out;
    if (auto t = take("ttl")) {
      auto d = parse_duration(*t);
      if (!d) return bad(d.error().message);
      o.ttl = *d;
    }
    if (!flags.empty()) return bad(fmt::format("unknown flag --{}", flags.begin()->first));
    result = issue(o);
  } else {
    return bad(fmt::format("unknown command '{}'", command));
  }
  if (!result) return core::make_error("ztunnel-certs: " + result.error().message);
  return result;
}

}  // namespace ztunnel::identity::certs_tool
