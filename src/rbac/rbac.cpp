// L4 authorization evaluation (see rbac.h), following Istio's src/rbac.rs and
// ProxyState::assert_rbac in src/state.rs.
//
// Checked against Istio, case by case:
// - a policy with no rules matches nothing;
// - a rule with no clauses matches (every clause of nothing holds);
// - a clause with no matches matches;
// - a Match with every field empty is skipped, so a clause whose matches are
//   all empty does not match;
// - the principal is compared as the SPIFFE id without "spiffe://"; with no
//   identity no principal pattern holds (not even Exact "" or Prefix ""), so
//   not_principals holds: the STRICT policy's not_principals:[presence]
//   matches plaintext and denies it;
// - the namespace of a connection without identity is "" (Istio's
//   unwrap_or_default), so Exact "" and Prefix "" do hold for it;
// - a service account never matches without identity; its trust domain is not
//   compared.
#include "rbac/rbac.h"

#include "core/json.h"

#include <fmt/format.h>

#include <algorithm>
#include <string_view>

namespace ztunnel::rbac {
namespace {

using state::Cidr;
using state::IpAddress;
using state::PolicyAction;
using state::ServiceAccountMatch;
using state::StringMatch;

// What a Match is compared against, derived once per connection.
struct Subject {
  bool has_identity = false;
  std::string principal;  // "td/ns/NS/sa/SA"; "" without identity
  std::string namespace_;
  std::string service_account;
  IpAddress source_ip;
  IpAddress destination_ip;
  uint16_t port = 0;
};

Subject subject_of(const Connection& c) {
  Subject s;
  if (c.source_identity) {
    s.has_identity = true;
    const auto& id = *c.source_identity;
    s.principal = fmt::format("{}/ns/{}/sa/{}", id.trust_domain, id.namespace_, id.service_account);
    s.namespace_ = id.namespace_;
    s.service_account = id.service_account;
  }
  // Istio canonicalizes both socket addresses before building its RBAC
  // connection, so a dual-stack socket's ::ffff:a.b.c.d is compared as a.b.c.d.
  s.source_ip = state::canonical_ip(c.source_ip);
  s.destination_ip = state::canonical_ip(c.destination_ip);
  s.port = c.destination_port;
  return s;
}

// Istio's IpNet::contains: a prefix only contains addresses of its own family.
// This is deliberately narrower than state::Cidr::contains, which also
// compares an IPv4 address against an IPv6 prefix in its mapped form: in
// Istio "::/0" or "::ffff:0:0/96" never matches an IPv4 peer. The address is
// already canonical, so an IPv4-mapped peer is IPv4 here.
bool cidr_holds(const Cidr& cidr, const IpAddress& canonical) {
  if (cidr.address.is_v4() != canonical.is_v4()) return false;
  return cidr.contains(canonical);
}

bool principal_holds(const StringMatch& m, const Subject& s) {
  return s.has_identity && m.matches(s.principal);
}

bool service_account_holds(const ServiceAccountMatch& m, const Subject& s) {
  return s.has_identity && m.namespace_ == s.namespace_ && m.service_account == s.service_account;
}

// --- descriptions for explain() ----------------------------------------------

std::string describe(const StringMatch& m) {
  switch (m.kind) {
    case StringMatch::Kind::kExact:
      return fmt::format("exact \"{}\"", m.value);
    case StringMatch::Kind::kPrefix:
      return fmt::format("prefix \"{}\"", m.value);
    case StringMatch::Kind::kSuffix:
      return fmt::format("suffix \"{}\"", m.value);
    case StringMatch::Kind::kPresence:
      return "presence";
  }
  return "?";
}
std::string describe(const Cidr& c) { return c.to_string(); }
std::string describe(uint16_t port) { return std::to_string(port); }
std::string describe(const ServiceAccountMatch& m) {
  return fmt::format("{}/{}", m.namespace_, m.service_account);
}

template <typename T>
std::string describe_list(const std::vector<T>& values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ", ";
    out += describe(values[i]);
  }
  return out + "]";
}

// One field of a Match: positive values any-of, negative values none-of, an
// empty list no constraint. On failure, `why` (when given) says which list
// failed and the connection's value.
// `field` names the connection's value ("principal"), `list` the Match
// field ("principals").
// `value` is only called to explain a failure, so evaluate() builds no strings.
template <typename T, typename Pred, typename Value>
bool field_holds(std::string_view field, std::string_view list, Value value,
                 const std::vector<T>& positive, const std::vector<T>& negative, Pred pred,
                 std::string* why) {
  if (!positive.empty() && std::none_of(positive.begin(), positive.end(), pred)) {
    if (why) *why = fmt::format("{} {} not in {}", field, value(), describe_list(positive));
    return false;
  }
  if (!negative.empty()) {
    auto hit = std::find_if(negative.begin(), negative.end(), pred);
    if (hit != negative.end()) {
      if (why) *why = fmt::format("{} {} in not_{} [{}]", field, value(), list, describe(*hit));
      return false;
    }
  }
  return true;
}

// The connection's value of each field, as explain() prints it.
std::string quoted_or_none(const Subject& s, std::string_view v) {
  return s.has_identity ? fmt::format("\"{}\"", v) : std::string("(none: no identity)");
}

// Every non-empty field must hold. `why` gets the first field that failed.
bool match_holds(const state::Match& m, const Subject& s, std::string* why) {
  // Istio evaluates in this order; the order only matters for which failure
  // explain() reports.
  auto ip_pred = [](const IpAddress& ip) {
    return [&ip](const Cidr& c) { return cidr_holds(c, ip); };
  };
  if (!field_holds(
          "destination_ip", "destination_ips", [&] { return s.destination_ip.to_string(); },
          m.destination_ips, m.not_destination_ips, ip_pred(s.destination_ip), why)) {
    return false;
  }
  if (!field_holds(
          "source_ip", "source_ips", [&] { return s.source_ip.to_string(); }, m.source_ips,
          m.not_source_ips, ip_pred(s.source_ip), why)) {
    return false;
  }
  if (!field_holds(
          "destination_port", "destination_ports", [&] { return std::to_string(s.port); },
          m.destination_ports, m.not_destination_ports, [&](uint16_t p) { return p == s.port; },
          why)) {
    return false;
  }
  if (!field_holds(
          "service_account", "service_accounts",
          [&] { return quoted_or_none(s, fmt::format("{}/{}", s.namespace_, s.service_account)); },
          m.service_accounts, m.not_service_accounts,
          [&](const ServiceAccountMatch& sa) { return service_account_holds(sa, s); }, why)) {
    return false;
  }
  if (!field_holds(
          "principal", "principals", [&] { return quoted_or_none(s, s.principal); }, m.principals,
          m.not_principals, [&](const StringMatch& p) { return principal_holds(p, s); }, why)) {
    return false;
  }
  if (!field_holds(
          "namespace", "namespaces", [&] { return quoted_or_none(s, s.namespace_); }, m.namespaces,
          m.not_namespaces, [&](const StringMatch& n) { return n.matches(s.namespace_); }, why)) {
    return false;
  }
  return true;
}

// A clause holds when any of its non-empty matches does, or when it has no
// matches at all. With `detail`, says which match held or why each failed.
bool clause_holds(const state::Clause& clause, const Subject& s, std::string* detail) {
  if (clause.matches.empty()) {
    if (detail) *detail = "no matches (holds)";
    return true;
  }
  std::string failures;
  for (std::size_t k = 0; k < clause.matches.size(); ++k) {
    const state::Match& m = clause.matches[k];
    std::string why;
    bool holds = false;
    if (m.empty()) {
      why = "empty (skipped)";
    } else {
      holds = match_holds(m, s, detail ? &why : nullptr);
    }
    if (holds) {
      if (detail) *detail = fmt::format("match {}", k);
      return true;
    }
    if (detail) {
      if (!failures.empty()) failures += "; ";
      failures += fmt::format("match {}: {}", k, why);
    }
  }
  if (detail) *detail = "no match: " + failures;
  return false;
}

// Rules ORed, clauses ANDed. With `steps`, records the matching rule's
// clauses, or for each rule the first clause that failed.
bool policy_matches(const state::Policy& policy, const Subject& s,
                    std::vector<std::string>* steps) {
  if (policy.rules.empty()) {
    if (steps) steps->push_back("no rules: matches nothing");
    return false;
  }
  for (std::size_t i = 0; i < policy.rules.size(); ++i) {
    const state::Rule& rule = policy.rules[i];
    if (rule.clauses.empty()) {
      if (steps) steps->push_back(fmt::format("rule {}: no clauses: matches every connection", i));
      return true;
    }
    bool rule_holds = true;
    std::string held;  // "clause 0: match 1, clause 1: ..." for a matching rule
    for (std::size_t j = 0; j < rule.clauses.size(); ++j) {
      std::string detail;
      if (!clause_holds(rule.clauses[j], s, steps ? &detail : nullptr)) {
        if (steps) steps->push_back(fmt::format("rule {}, clause {}: {}", i, j, detail));
        rule_holds = false;
        break;  // clauses are ANDed: the first failure decides the rule
      }
      if (steps) held += fmt::format("{}clause {}: {}", held.empty() ? "" : ", ", j, detail);
    }
    if (rule_holds) {
      if (steps) steps->push_back(fmt::format("rule {}: matched ({})", i, held));
      return true;
    }
  }
  return false;
}

// assert_rbac's order: dry-run policies are evaluated only to be reported;
// any enforced DENY that matches denies; with no enforced ALLOW the
// connection is allowed; else an enforced ALLOW must match.
Decision decide(std::span<const state::PolicyPtr> policies, const Subject& s,
                std::vector<PolicyTrace>* traces) {
  Decision d;
  const state::Policy* deny = nullptr;
  const state::Policy* allow = nullptr;
  bool any_allow = false;
  for (const auto& p : policies) {
    if (!p) continue;
    // explain() evaluates every policy so operators see each one; evaluate()
    // stops looking once the outcome can no longer change.
    const bool needed =
        traces || p->dry_run ||
        (p->action == PolicyAction::kDeny ? deny == nullptr : deny == nullptr && allow == nullptr);
    if (!p->dry_run && p->action == PolicyAction::kAllow) any_allow = true;
    if (!needed) continue;
    PolicyTrace* trace = nullptr;
    if (traces) {
      trace = &traces->emplace_back();
      trace->policy = p->key();
      trace->action = p->action;
      trace->dry_run = p->dry_run;
    }
    const bool matched = policy_matches(*p, s, trace ? &trace->steps : nullptr);
    if (trace) trace->matched = matched;
    if (p->dry_run) {
      d.dry_run.push_back(DryRunOutcome{p->key(), p->action, matched});
    } else if (matched && p->action == PolicyAction::kDeny && !deny) {
      deny = p.get();
    } else if (matched && p->action == PolicyAction::kAllow && !allow) {
      allow = p.get();
    }
  }
  if (deny) {
    d.allowed = false;
    d.policy = deny->key();
    d.reason = "explicitly denied by: " + d.policy;
  } else if (!any_allow) {
    d.reason = "no allow policies";
  } else if (allow) {
    d.policy = allow->key();
    d.reason = "allowed by: " + d.policy;
  } else {
    d.allowed = false;
    d.reason = "allow policies exist, but none allowed";
  }
  return d;
}

}  // namespace

Decision evaluate(std::span<const state::PolicyPtr> policies, const Connection& connection) {
  return decide(policies, subject_of(connection), nullptr);
}

Decision authorize(const state::Snapshot& snapshot, const state::Workload& destination,
                   const Connection& connection) {
  const auto policies = snapshot.policies_for(destination);
  return evaluate(policies, connection);
}

bool matches(const state::Policy& policy, const Connection& connection) {
  return policy_matches(policy, subject_of(connection), nullptr);
}

Explanation explain(std::span<const state::PolicyPtr> policies, const Connection& connection) {
  Explanation e;
  e.decision = decide(policies, subject_of(connection), &e.policies);
  return e;
}

Explanation explain(const state::Snapshot& snapshot, const state::Workload& destination,
                    const Connection& connection) {
  const auto policies = snapshot.policies_for(destination);
  return explain(policies, connection);
}

std::string Explanation::to_text() const {
  std::string out =
      fmt::format("{}: {}\n", decision.allowed ? "allowed" : "denied", decision.reason);
  if (policies.empty()) out += "no policies apply\n";
  for (const auto& p : policies) {
    out += fmt::format("policy {} ({}{}): {}\n", p.policy, state::enum_name(p.action),
                       p.dry_run ? ", dry-run" : "", p.matched ? "matched" : "no match");
    for (const auto& step : p.steps) out += fmt::format("  {}\n", step);
  }
  return out;
}

std::string Explanation::to_json() const {
  std::string out = "{\"allowed\":";
  out += decision.allowed ? "true" : "false";
  out += ",\"policy\":";
  core::append_json_string(out, decision.policy);
  out += ",\"reason\":";
  core::append_json_string(out, decision.reason);
  out += ",\"dry_run\":[";
  for (std::size_t i = 0; i < decision.dry_run.size(); ++i) {
    const auto& d = decision.dry_run[i];
    if (i > 0) out += ',';
    out += "{\"policy\":";
    core::append_json_string(out, d.policy);
    out += fmt::format(",\"action\":\"{}\",\"matched\":{}}}", state::enum_name(d.action),
                       d.matched ? "true" : "false");
  }
  out += "],\"policies\":[";
  for (std::size_t i = 0; i < policies.size(); ++i) {
    const auto& p = policies[i];
    if (i > 0) out += ',';
    out += "{\"policy\":";
    core::append_json_string(out, p.policy);
    out += fmt::format(",\"action\":\"{}\",\"dry_run\":{},\"matched\":{},\"steps\":[",
                       state::enum_name(p.action), p.dry_run ? "true" : "false",
                       p.matched ? "true" : "false");
    for (std::size_t j = 0; j < p.steps.size(); ++j) {
      if (j > 0) out += ',';
      core::append_json_string(out, p.steps[j]);
    }
    out += "]}";
  }
  out += "]}";
  return out;
}

}  // namespace ztunnel::rbac
