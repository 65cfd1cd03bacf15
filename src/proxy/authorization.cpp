// Authorization attributes, descriptions and decision logging for the inbound listeners.
#include "proxy/authorization.h"

#include <fmt/format.h>

#include "core/log.h"
#include "proxy/hbone_address.h"

namespace ztunnel::proxy {

rbac::Connection rbac_connection(const AuthorizationRequest& request) {
  rbac::Connection connection;
  connection.source_identity = request.source_identity;
  // Policies are written with plain IPv4 CIDRs; a v4-mapped peer must match them.
  connection.source_ip = state::canonical_ip(request.source.address());
  connection.destination_ip = state::canonical_ip(request.destination.address());
  connection.destination_port = request.destination.port();
  return connection;
}

std::string describe(const AuthorizationRequest& request) {
  return fmt::format("{}({})->{} ({})", format_endpoint(request.source),
                     request.source_identity ? request.source_identity->to_spiffe() : "none",
                     format_endpoint(request.destination),
                     request.destination_workload ? request.destination_workload->uid : "-");
}

void log_decision(const rbac::Decision& decision, const AuthorizationRequest& request,
                  bool info_level) {
  const log::Level level = info_level ? log::Level::kInfo : log::Level::kDebug;
  log::Logger& logger = log::logger();
  if (!logger.enabled(level, "authz")) return;
  const std::string connection = describe(request);
  bool dry_run_allows = false;
  bool dry_run_allow_matched = false;
  for (const auto& outcome : decision.dry_run) {
    const bool deny = outcome.action == state::PolicyAction::kDeny;
    if (!deny) {
      dry_run_allows = true;
      dry_run_allow_matched = dry_run_allow_matched || outcome.matched;
    }
    if (!outcome.matched) continue;
    logger.write(level, "authz", deny ? "dry-run: deny policy match" : "dry-run: allow policy match",
                 {{"policy", outcome.policy}, {"connection", connection}});
  }
  // Allowed only because the unmatched ALLOWs are dry-run: enforcing them
  // would deny this connection, which is what an operator trying them wants to know.
  if (decision.allowed && decision.policy.empty() && dry_run_allows && !dry_run_allow_matched) {
    logger.write(level, "authz", "dry-run: no allow policies match",
                 {{"connection", connection}});
  }
  logger.write(level, "authz", decision.allowed ? "connection allowed" : "connection denied",
               {{"policy", decision.policy.empty() ? "-" : decision.policy},
                {"reason", decision.reason},
                {"connection", connection}});
}

}  // namespace ztunnel::proxy
