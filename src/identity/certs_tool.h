// The logic of `ztunnel-certs`, an operator-run CA for standalone nodes (VMs without istiod).
#pragma once

#include <chrono>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "core/error.h"

namespace ztunnel::identity::certs_tool {

// Go-style durations as Istio's flags take them: "720h", "1h30m", "90s",
// plus "d" for days. No sign, no fractions.
core::Result<std::chrono::seconds> parse_duration(std::string_view text);

struct InitCaOptions {
  std::filesystem::path dir;
  std::string trust_domain = "cluster.local";
  std::chrono::seconds validity = std::chrono::hours(24 * 365 * 10);
  bool force = false;  // overwrite an existing CA
};

// Writes <dir>/ca-cert.pem (0644) and <dir>/ca-key.pem (0600). Returns a summary.
core::Result<std::string> init_ca(const InitCaOptions& options);

struct IssueOptions {
  std::filesystem::path ca_dir;
  std::string identity;  // spiffe://td/ns/NS/sa/SA
  std::filesystem::path out;
  std::chrono::seconds ttl = std::chrono::hours(720);
};

// Writes <out>/cert-chain.pem, <out>/key.pem (0600) and <out>/root-cert.pem,
// the layout FileCertificateProvider reads. Each file is replaced atomically
// (write + rename), so a running provider never reads a torn file.
core::Result<std::string> issue(const IssueOptions& options);

// Parses `args` (without the program name) and runs the command. Returns the
// text for stdout, or an error message for stderr (usage on bad arguments).
core::Result<std::string> run(std::span<const std::string_view> args);

std::string_view usage();

}  // namespace ztunnel::identity::certs_tool
