// What both inbound listeners share about L4 authorization: the request's
// rbac attributes, Istio's wording for denials, and the decision's log lines.
#pragma once

#include <string>
#include <string_view>

#include "proxy/inputs.h"
#include "rbac/rbac.h"
#include "state/types.h"

namespace ztunnel::proxy {

// Istio's access-log errors (proxy.rs Error): the first is followed by the
// decision's reason, the second is the whole text for a late rejection.
inline constexpr std::string_view kPolicyRejection = "connection closed due to policy rejection: ";
inline constexpr std::string_view kPolicyChange = "connection closed due to policy change";

rbac::Connection rbac_connection(const AuthorizationRequest& request);

// Istio's form for a connection in authorization logs:
// "src-ip:port(identity)->dst-ip:port (workload uid)".
std::string describe(const AuthorizationRequest& request);

// The decision and every dry-run outcome, at DEBUG, or INFO when
// AUTHZ_POLICY_INFO_LOGGING=true (Istio's authpol_log). Dry-run policies are
// never enforced; these lines are their only effect. The lines name the
// connection as describe(request) does; nothing is formatted when they are
// filtered out (the usual case: one decision per connection).
void log_decision(const rbac::Decision& decision, const AuthorizationRequest& request,
                  bool info_level);

}  // namespace ztunnel::proxy
