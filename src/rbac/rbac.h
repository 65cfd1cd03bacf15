// L4 authorization: decides whether an inbound connection is allowed by the
// policies that apply to its destination workload, with Istio's semantics.
// Pure: no I/O, no executor; callers log and count the decision.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "state/address.h"
#include "state/identity.h"
#include "state/policy.h"
#include "state/store.h"
#include "state/types.h"

namespace ztunnel::rbac {

// The attributes of one inbound connection a decision is made on.
struct Connection {
  std::optional<state::Identity> source_identity;  // none for plaintext: no principal, namespace or service account
  state::IpAddress source_ip;
  state::IpAddress destination_ip;
  uint16_t destination_port = 0;
};

struct DryRunOutcome {
  std::string policy;  // "ns/name"
  state::PolicyAction action = state::PolicyAction::kAllow;
  bool matched = false;  // the policy's rules matched this connection
};

struct Decision {
  bool allowed = true;
  // The deciding policy's key: the matching DENY, or the matching ALLOW; "" otherwise.
  std::string policy;
  // Istio's wording: "explicitly denied by: ns/name", "allow policies exist, but none
  // allowed"; for allows "allowed by: ns/name" or "no allow policies".
  std::string reason;
  std::vector<DryRunOutcome> dry_run;  // every dry-run policy that applied, for the caller to log
};

// Pure: the decision over the policies that apply to the destination workload.
Decision evaluate(std::span<const state::PolicyPtr> policies, const Connection& connection);
// The policies the snapshot says apply to `destination` (Snapshot::policies_for), evaluated.
Decision authorize(const state::Snapshot& snapshot, const state::Workload& destination,
                   const Connection& connection);
// Does one policy's rule set match (ignores action and dry_run)?
bool matches(const state::Policy& policy, const Connection& connection);

// Explain: for operators debugging "why was I denied". The decision plus, per
// applicable policy, whether it matched and why: which rule/clause/match
// matched, or for each rule the first clause that failed and which field of
// which match failed with the connection's value (e.g. "rule 0, clause 1: no
// match: match 0: principal \"cluster.local/ns/a/sa/x\" not in [exact
// \"cluster.local/ns/b/sa/y\"]").
struct PolicyTrace {
  std::string policy;
  state::PolicyAction action = state::PolicyAction::kAllow;
  bool dry_run = false;
  bool matched = false;
  std::vector<std::string> steps;
};

struct Explanation {
  Decision decision;
  std::vector<PolicyTrace> policies;
  std::string to_text() const;
  std::string to_json() const;
};

Explanation explain(std::span<const state::PolicyPtr> policies, const Connection& connection);
Explanation explain(const state::Snapshot& snapshot, const state::Workload& destination,
                    const Connection& connection);

}  // namespace ztunnel::rbac
