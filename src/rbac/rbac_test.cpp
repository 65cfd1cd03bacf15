// Table-driven tests of L4 authorization against Istio's semantics (src/rbac.rs, assert_rbac).
#include "rbac/rbac.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <string>
#include <vector>

#include "support/testing.h"

// The tables build Matches with designated initializers naming only the
// fields a case sets; GCC 12 warns about every field left to its default.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace ztunnel::rbac {
namespace {

using state::Cidr;
using state::Clause;
using state::Match;
using state::Policy;
using state::PolicyAction;
using state::PolicyPtr;
using state::PolicyScope;
using state::Rule;
using state::ServiceAccountMatch;
using state::StringMatch;

state::IpAddress ip(const char* text) { return boost::asio::ip::make_address(text); }
Cidr cidr(const char* text) { return *Cidr::parse(text); }

StringMatch exact(std::string v) { return StringMatch::exact(std::move(v)); }
StringMatch prefix(std::string v) { return StringMatch::prefix(std::move(v)); }
StringMatch suffix(std::string v) { return StringMatch::suffix(std::move(v)); }
StringMatch presence() { return StringMatch::presence(); }

// An mTLS connection from spiffe://TD/ns/NS/sa/SA.
Connection mtls(std::string ns = "default", std::string sa = "app", const char* src = "10.0.0.1",
                const char* dst = "10.0.0.2", uint16_t port = 8080, std::string td = "cluster.local") {
  return Connection{state::Identity{std::move(td), std::move(ns), std::move(sa)}, ip(src), ip(dst), port};
}
Connection plaintext(const char* src = "10.0.0.1", const char* dst = "10.0.0.2", uint16_t port = 8080) {
  return Connection{std::nullopt, ip(src), ip(dst), port};
}
Connection with_port(Connection c, uint16_t port) {
  c.destination_port = port;
  return c;
}

Policy policy(std::string name, PolicyAction action, std::vector<Rule> rules, std::string ns = "ns") {
  Policy p;
  p.name = std::move(name);
  p.namespace_ = std::move(ns);
  p.scope = PolicyScope::kNamespace;
  p.action = action;
  p.rules = std::move(rules);
  return p;
}
Policy allow(std::string name, std::vector<Rule> rules) {
  return policy(std::move(name), PolicyAction::kAllow, std::move(rules));
}
Policy deny(std::string name, std::vector<Rule> rules) {
  return policy(std::move(name), PolicyAction::kDeny, std::move(rules));
}
Policy dry(Policy p) {
  p.dry_run = true;
  return p;
}
// One rule of one clause of one match: the common shape.
std::vector<Rule> only(Match m) { return {Rule{{Clause{{std::move(m)}}}}}; }

std::vector<PolicyPtr> ptrs(const std::vector<Policy>& policies) {
  std::vector<PolicyPtr> out;
  for (const auto& p : policies) out.push_back(std::make_shared<const Policy>(p));
  return out;
}

// The four outcomes, in Istio's wording.
struct Expect {
  bool allowed;
  std::string reason;
};
Expect allowed_by(const std::string& key) { return {true, "allowed by: " + key}; }
Expect denied_by(const std::string& key) { return {false, "explicitly denied by: " + key}; }
const Expect kNoAllowPolicies{true, "no allow policies"};
const Expect kNoneAllowed{false, "allow policies exist, but none allowed"};

// --- one Match against one connection ----------------------------------------

struct MatchCase {
  const char* name;
  Match match;
  Connection connection;
  bool matches;
};

// Every field and every not_* field, matching and not; the default mTLS
// connection is cluster.local/ns/default/sa/app, 10.0.0.1 -> 10.0.0.2:8080.
std::vector<MatchCase> match_cases() {
  return {
      // principals: the SPIFFE id without "spiffe://"
      {"principal exact", Match{.principals = {exact("cluster.local/ns/default/sa/app")}}, mtls(), true},
      {"principal exact with the spiffe:// scheme never matches",
       Match{.principals = {exact("spiffe://cluster.local/ns/default/sa/app")}}, mtls(), false},
      {"principal exact, other service account",
       Match{.principals = {exact("cluster.local/ns/default/sa/other")}}, mtls(), false},
      {"principal exact, other trust domain", Match{.principals = {exact("cluster.local/ns/default/sa/app")}},
       mtls("default", "app", "10.0.0.1", "10.0.0.2", 8080, "other.td"), false},
      {"principal exact is case sensitive", Match{.principals = {exact("Cluster.local/ns/default/sa/app")}},
       mtls(), false},
      {"principal prefix", Match{.principals = {prefix("cluster.local/ns/default/")}}, mtls(), true},
      {"principal prefix, other namespace", Match{.principals = {prefix("cluster.local/ns/prod/")}}, mtls(),
       false},
      {"principal suffix", Match{.principals = {suffix("/sa/app")}}, mtls(), true},
      {"principal suffix, other", Match{.principals = {suffix("/sa/ap")}}, mtls(), false},
      {"principal presence with an identity", Match{.principals = {presence()}}, mtls(), true},
      {"principal presence without an identity", Match{.principals = {presence()}}, plaintext(), false},
      {"principal exact \"\" without an identity", Match{.principals = {exact("")}}, plaintext(), false},
      {"principal prefix \"\" without an identity", Match{.principals = {prefix("")}}, plaintext(), false},
      {"principal prefix \"\" with an identity", Match{.principals = {prefix("")}}, mtls(), true},
      {"principals are any-of",
       Match{.principals = {exact("cluster.local/ns/x/sa/y"), exact("cluster.local/ns/default/sa/app")}},
       mtls(), true},
      {"not_principals exact hit", Match{.not_principals = {exact("cluster.local/ns/default/sa/app")}}, mtls(),
       false},
      {"not_principals exact miss", Match{.not_principals = {exact("cluster.local/ns/default/sa/other")}},
       mtls(), true},
      {"not_principals presence without an identity holds",
       Match{.not_principals = {presence()}}, plaintext(), true},
      {"not_principals presence with an identity fails", Match{.not_principals = {presence()}}, mtls(),
       false},
      {"not_principals is none-of", Match{.not_principals = {exact("a/ns/b/sa/c"), suffix("/sa/app")}}, mtls(),
       false},
      {"principals and not_principals both must hold",
       Match{.principals = {prefix("cluster.local/")}, .not_principals = {suffix("/sa/app")}}, mtls(), false},
      // literal text: no globbing, no regex
      {"principal prefix \"*\" is a literal star", Match{.principals = {prefix("*")}}, mtls(), false},
      {"principal exact with a literal star matches a star account",
       Match{.principals = {exact("cluster.local/ns/default/sa/*")}}, mtls("default", "*"), true},
      {"principal exact with a star does not glob", Match{.principals = {exact("cluster.local/ns/default/sa/*")}},
       mtls(), false},
      {"principal \".\" is not a regex wildcard", Match{.principals = {exact("cluster.local/ns/default/sa/ap.")}},
       mtls(), false},
      {"principal suffix \".\" is literal", Match{.principals = {suffix(".local/ns/default/sa/app")}}, mtls(),
       true},
      {"principal with a backslash matches literally",
       Match{.principals = {exact("cluster.local/ns/default/sa/a\\b")}}, mtls("default", "a\\b"), true},
      {"principal backslash is not an escape", Match{.principals = {exact("cluster.local/ns/default/sa/a\\b")}},
       mtls("default", "ab"), false},
      {"principal \".*\" prefix is literal", Match{.principals = {prefix(".*")}}, mtls(), false},

      // namespaces: from the identity; "" without one
      {"namespace exact", Match{.namespaces = {exact("default")}}, mtls(), true},
      {"namespace exact, other", Match{.namespaces = {exact("other")}}, mtls(), false},
      {"namespace prefix", Match{.namespaces = {prefix("def")}}, mtls(), true},
      {"namespace suffix", Match{.namespaces = {suffix("ult")}}, mtls(), true},
      {"namespace suffix, other", Match{.namespaces = {suffix("prod")}}, mtls(), false},
      {"namespace presence", Match{.namespaces = {presence()}}, mtls(), true},
      {"namespace presence without an identity", Match{.namespaces = {presence()}}, plaintext(), false},
      {"namespace exact \"\" holds without an identity (Istio compares \"\")",
       Match{.namespaces = {exact("")}}, plaintext(), true},
      {"namespace exact without an identity", Match{.namespaces = {exact("default")}}, plaintext(), false},
      {"not_namespaces hit", Match{.not_namespaces = {exact("default")}}, mtls(), false},
      {"not_namespaces miss", Match{.not_namespaces = {exact("other")}}, mtls(), true},
      {"not_namespaces prefix hit", Match{.not_namespaces = {prefix("de")}}, mtls(), false},
      {"not_namespaces presence without an identity", Match{.not_namespaces = {presence()}}, plaintext(), true},
      {"not_namespaces without an identity holds for a named namespace",
       Match{.not_namespaces = {exact("other")}}, plaintext(), true},
      {"namespace prefix \"de.\" is literal", Match{.namespaces = {prefix("de.")}}, mtls(), false},
      {"namespace exact \"*\" is literal", Match{.namespaces = {exact("*")}}, mtls(), false},
      {"namespace exact \"*\" matches a namespace named *", Match{.namespaces = {exact("*")}}, mtls("*"), true},

      // service accounts: namespace and name, trust domain ignored
      {"service account", Match{.service_accounts = {{"default", "app"}}}, mtls(), true},
      {"service account, other name", Match{.service_accounts = {{"default", "other"}}}, mtls(), false},
      {"service account, other namespace", Match{.service_accounts = {{"other", "app"}}}, mtls(), false},
      {"service account without an identity", Match{.service_accounts = {{"", ""}}}, plaintext(), false},
      {"service account ignores the trust domain", Match{.service_accounts = {{"default", "app"}}},
       mtls("default", "app", "10.0.0.1", "10.0.0.2", 8080, "other.td"), true},
      {"service accounts are any-of", Match{.service_accounts = {{"x", "y"}, {"default", "app"}}}, mtls(), true},
      {"not_service_accounts hit", Match{.not_service_accounts = {{"default", "app"}}}, mtls(), false},
      {"not_service_accounts miss", Match{.not_service_accounts = {{"default", "other"}}}, mtls(), true},
      {"not_service_accounts without an identity holds", Match{.not_service_accounts = {{"default", "app"}}},
       plaintext(), true},

      // source IPs
      {"source /8 contains", Match{.source_ips = {cidr("10.0.0.0/8")}}, mtls(), true},
      {"source /8 excludes", Match{.source_ips = {cidr("10.0.0.0/8")}}, mtls("default", "app", "11.0.0.1"),
       false},
      {"source /32 exact", Match{.source_ips = {cidr("10.0.0.1/32")}}, mtls(), true},
      {"source /32 other", Match{.source_ips = {cidr("10.0.0.3/32")}}, mtls(), false},
      {"source 0.0.0.0/0 matches any IPv4", Match{.source_ips = {cidr("0.0.0.0/0")}},
       plaintext("203.0.113.9"), true},
      {"source 0.0.0.0/0 does not match IPv6", Match{.source_ips = {cidr("0.0.0.0/0")}}, plaintext("fd00::1"),
       false},
      {"source ::/0 matches IPv6", Match{.source_ips = {cidr("::/0")}}, plaintext("fd00::1"), true},
      {"source ::/0 does not match IPv4 (Istio's IpNet)", Match{.source_ips = {cidr("::/0")}}, plaintext(),
       false},
      {"source first address of a /24", Match{.source_ips = {cidr("192.168.1.0/24")}},
       plaintext("192.168.1.0"), true},
      {"source last address of a /24", Match{.source_ips = {cidr("192.168.1.0/24")}},
       plaintext("192.168.1.255"), true},
      {"source just below a /24", Match{.source_ips = {cidr("192.168.1.0/24")}}, plaintext("192.168.0.255"),
       false},
      {"source just above a /24", Match{.source_ips = {cidr("192.168.1.0/24")}}, plaintext("192.168.2.0"),
       false},
      {"source inside a /31", Match{.source_ips = {cidr("10.0.0.0/31")}}, plaintext("10.0.0.1"), true},
      {"source outside a /31", Match{.source_ips = {cidr("10.0.0.0/31")}}, plaintext("10.0.0.2"), false},
      {"source IPv6 /64", Match{.source_ips = {cidr("fd00::/64")}}, plaintext("fd00::1"), true},
      {"source IPv6 last address of a /64", Match{.source_ips = {cidr("fd00::/64")}},
       plaintext("fd00::ffff:ffff:ffff:ffff"), true},
      {"source IPv6 next /64", Match{.source_ips = {cidr("fd00::/64")}}, plaintext("fd00:0:0:1::"), false},
      {"source IPv6 /128", Match{.source_ips = {cidr("fd00::1/128")}}, plaintext("fd00::1"), true},
      {"source IPv6 /128 other", Match{.source_ips = {cidr("fd00::1/128")}}, plaintext("fd00::2"), false},
      {"IPv4-mapped source against an IPv4 CIDR", Match{.source_ips = {cidr("10.0.0.0/8")}},
       plaintext("::ffff:10.0.0.1"), true},
      {"IPv4-mapped source outside an IPv4 CIDR", Match{.source_ips = {cidr("10.0.0.0/8")}},
       plaintext("::ffff:11.0.0.1"), false},
      {"IPv4 source against a mapped IPv6 CIDR does not match (Istio)",
       Match{.source_ips = {cidr("::ffff:10.0.0.0/104")}}, plaintext("10.0.0.1"), false},
      {"IPv4-mapped source against a mapped IPv6 CIDR does not match (canonicalized first)",
       Match{.source_ips = {cidr("::ffff:10.0.0.0/104")}}, plaintext("::ffff:10.0.0.1"), false},
      {"source IPs are any-of", Match{.source_ips = {cidr("172.16.0.0/12"), cidr("10.0.0.1")}}, plaintext(),
       true},
      {"not_source_ips hit", Match{.not_source_ips = {cidr("10.0.0.0/8")}}, plaintext(), false},
      {"not_source_ips miss", Match{.not_source_ips = {cidr("10.0.0.0/8")}}, plaintext("11.0.0.1"), true},
      {"not_source_ips hit by a mapped source", Match{.not_source_ips = {cidr("10.0.0.0/8")}},
       plaintext("::ffff:10.9.9.9"), false},
      {"not_source_ips ::/0 does not exclude IPv4", Match{.not_source_ips = {cidr("::/0")}}, plaintext(), true},

      // destination IPs
      {"destination /32", Match{.destination_ips = {cidr("10.0.0.2/32")}}, mtls(), true},
      {"destination /32 other", Match{.destination_ips = {cidr("10.0.0.3/32")}}, mtls(), false},
      {"destination mapped against IPv4 CIDR", Match{.destination_ips = {cidr("10.0.0.0/24")}},
       plaintext("10.0.0.1", "::ffff:10.0.0.2"), true},
      {"destination IPv6", Match{.destination_ips = {cidr("fd00::/120")}}, plaintext("fd00::1", "fd00::2"),
       true},
      {"destination IPv6 outside", Match{.destination_ips = {cidr("fd00::/120")}},
       plaintext("fd00::1", "fd00::1:2"), false},
      {"not_destination_ips hit", Match{.not_destination_ips = {cidr("10.0.0.2/32")}}, mtls(), false},
      {"not_destination_ips miss", Match{.not_destination_ips = {cidr("10.0.0.3/32")}}, mtls(), true},

      // destination ports
      {"port", Match{.destination_ports = {8080}}, mtls(), true},
      {"port other", Match{.destination_ports = {9090}}, mtls(), false},
      {"ports are any-of", Match{.destination_ports = {80, 8080}}, mtls(), true},
      {"port 65535", Match{.destination_ports = {65535}}, with_port(mtls(), 65535), true},
      {"not_destination_ports hit", Match{.not_destination_ports = {8080}}, mtls(), false},
      {"not_destination_ports miss", Match{.not_destination_ports = {9090}}, mtls(), true},
      {"port and not_port of one value", Match{.destination_ports = {8080}, .not_destination_ports = {8080}},
       mtls(), false},

      // fields within one Match are ANDed
      {"principal holds but port does not",
       Match{.principals = {presence()}, .destination_ports = {9090}}, mtls(), false},
      {"namespace, source and port all hold",
       Match{.namespaces = {exact("default")}, .source_ips = {cidr("10.0.0.0/8")}, .destination_ports = {8080}},
       mtls(), true},
      {"service account holds but source is excluded",
       Match{.not_source_ips = {cidr("10.0.0.1")}, .service_accounts = {{"default", "app"}}}, mtls(), false},
  };
}

TEST_CASE("each match field and its not_ form, against one connection") {
  for (const auto& c : match_cases()) {
    const std::string name = c.name;
    CAPTURE(name);
    CHECK(matches(allow("p", only(c.match)), c.connection) == c.matches);
    // The same Match decides an ALLOW and a DENY policy consistently.
    auto as_allow = ptrs({allow("p", only(c.match))});
    Decision a = evaluate(as_allow, c.connection);
    CHECK(a.allowed == c.matches);
    CHECK(a.reason == (c.matches ? "allowed by: ns/p" : kNoneAllowed.reason));
    auto as_deny = ptrs({deny("p", only(c.match))});
    Decision d = evaluate(as_deny, c.connection);
    CHECK(d.allowed == !c.matches);
    CHECK(d.reason == (c.matches ? "explicitly denied by: ns/p" : kNoAllowPolicies.reason));
  }
}

// --- whole decisions -----------------------------------------------------------

struct DecisionCase {
  const char* name;
  std::vector<Policy> policies;
  Connection connection;
  Expect expect;
};

const Match kPort8080{.destination_ports = {8080}};
const Match kPort9090{.destination_ports = {9090}};
const Match kOtherNamespace{.namespaces = {exact("other")}};

// istiod's static STRICT policy: DENY anything without a principal. Sent as
// WORKLOAD_SELECTOR in the root namespace and listed by STRICT workloads.
Policy static_strict() {
  Policy p = policy("istio_converted_static_strict", PolicyAction::kDeny, only(Match{.not_principals = {presence()}}),
                    "istio-system");
  p.scope = PolicyScope::kWorkloadSelector;
  return p;
}

// istiod's converted_peer_authentication_<name> policies (authorization.go,
// convertPeerAuthentication). istiod's Group is our Rule and its Rules our
// Clause: a Group's Rules are ANDed, the Matches in a Rules ORed.
//
// Workload STRICT with PERMISSIVE ports: one Group whose first Rules is the
// STRICT not_principals:[presence], then one not_destination_ports:[P] per
// PERMISSIVE port. Denied: no principal AND not any PERMISSIVE port.
Policy strict_with_permissive_ports(std::vector<uint16_t> ports) {
  Rule rule;
  rule.clauses.push_back(Clause{{Match{.not_principals = {presence()}}}});
  for (uint16_t p : ports) rule.clauses.push_back(Clause{{Match{.not_destination_ports = {p}}}});
  Policy out = policy("converted_peer_authentication_pa", PolicyAction::kDeny, {rule});
  out.scope = PolicyScope::kWorkloadSelector;
  return out;
}
// Workload mode UNSET under a STRICT namespace or mesh policy: the port
// exemptions come first and the STRICT clause is merged in last.
Policy unset_under_strict_with_permissive_port(uint16_t port) {
  Rule rule{{Clause{{Match{.not_destination_ports = {port}}}}, Clause{{Match{.not_principals = {presence()}}}}}};
  Policy out = policy("converted_peer_authentication_pa", PolicyAction::kDeny, {rule});
  out.scope = PolicyScope::kWorkloadSelector;
  return out;
}
// Workload PERMISSIVE with STRICT ports: one Group per STRICT port, each one
// Match {not_principals:[presence], destination_ports:[P]}. Groups are ORed,
// so every STRICT port stays strict (istio#54146).
Policy permissive_with_strict_ports(std::vector<uint16_t> ports) {
  std::vector<Rule> rules;
  for (uint16_t p : ports) {
    rules.push_back(Rule{{Clause{{Match{.not_principals = {presence()}, .destination_ports = {p}}}}}});
  }
  Policy out = policy("converted_peer_authentication_pa", PolicyAction::kDeny, rules);
  out.scope = PolicyScope::kWorkloadSelector;
  return out;
}

const std::string kStrictKey = "istio-system/istio_converted_static_strict";
const std::string kPaKey = "ns/converted_peer_authentication_pa";

std::vector<DecisionCase> decision_cases() {
  return {
      {"no policies allow", {}, mtls(), kNoAllowPolicies},
      {"no policies allow plaintext", {}, plaintext(), kNoAllowPolicies},

      // rules ORed, clauses ANDed, matches ORed
      {"a clause holds when any match does", {allow("p", {Rule{{Clause{{kOtherNamespace, kPort8080}}}}})},
       mtls(), allowed_by("ns/p")},
      {"a clause fails when no match does", {allow("p", {Rule{{Clause{{kOtherNamespace, kPort9090}}}}})},
       mtls(), kNoneAllowed},
      {"a rule holds when all its clauses do",
       {allow("p", {Rule{{Clause{{kPort8080}}, Clause{{Match{.namespaces = {exact("default")}}}}}}})}, mtls(),
       allowed_by("ns/p")},
      {"a rule fails when one clause fails", {allow("p", {Rule{{Clause{{kPort8080}}, Clause{{kOtherNamespace}}}}})},
       mtls(), kNoneAllowed},
      {"a policy holds when any rule does", {allow("p", {Rule{{Clause{{kPort9090}}}}, Rule{{Clause{{kPort8080}}}}})},
       mtls(), allowed_by("ns/p")},
      {"a policy fails when every rule fails",
       {allow("p", {Rule{{Clause{{kPort9090}}}}, Rule{{Clause{{kOtherNamespace}}}}})}, mtls(), kNoneAllowed},

      // empty rule lists, rules, clauses and matches
      {"an ALLOW with no rules matches nothing", {allow("p", {})}, mtls(), kNoneAllowed},
      {"a DENY with no rules matches nothing", {deny("p", {})}, plaintext(), kNoAllowPolicies},
      {"an ALLOW with one empty rule matches everything", {allow("p", {Rule{}})}, plaintext(), allowed_by("ns/p")},
      {"a DENY with one empty rule denies everything", {deny("p", {Rule{}})}, mtls(), denied_by("ns/p")},
      {"a clause with no matches holds", {allow("p", {Rule{{Clause{}}}})}, plaintext(), allowed_by("ns/p")},
      {"a clause whose only match is empty fails", {allow("p", only(Match{}))}, mtls(), kNoneAllowed},
      {"a DENY whose only match is empty denies nothing", {deny("p", only(Match{}))}, mtls(), kNoAllowPolicies},
      {"an empty match is skipped, the next one decides", {allow("p", {Rule{{Clause{{Match{}, kPort8080}}}}})},
       mtls(), allowed_by("ns/p")},
      {"an empty match is skipped, and so nothing holds", {allow("p", {Rule{{Clause{{Match{}, kPort9090}}}}})},
       mtls(), kNoneAllowed},
      {"an empty clause does not rescue a failing one", {allow("p", {Rule{{Clause{}, Clause{{kPort9090}}}}})},
       mtls(), kNoneAllowed},
      {"an empty rule after a failing one still matches", {allow("p", {Rule{{Clause{{kPort9090}}}}, Rule{}})},
       mtls(), allowed_by("ns/p")},

      // DENY before ALLOW
      {"a matching DENY wins over a matching ALLOW", {allow("a", only(kPort8080)), deny("d", only(kPort8080))},
       mtls(), denied_by("ns/d")},
      {"a DENY listed after the ALLOW still wins", {allow("a", {Rule{}}), deny("d", only(kPort8080))}, mtls(),
       denied_by("ns/d")},
      {"a DENY that does not match leaves the ALLOW", {deny("d", only(kPort9090)), allow("a", only(kPort8080))},
       mtls(), allowed_by("ns/a")},
      {"a DENY alone that does not match allows", {deny("d", only(kPort9090))}, mtls(), kNoAllowPolicies},
      {"the first matching DENY is named", {deny("d1", only(kPort9090)), deny("d2", {Rule{}}), deny("d3", {Rule{}})},
       mtls(), denied_by("ns/d2")},
      {"the first matching ALLOW is named", {allow("a1", only(kPort9090)), allow("a2", only(kPort8080))}, mtls(),
       allowed_by("ns/a2")},
      {"no ALLOW matches", {allow("a1", only(kPort9090)), allow("a2", only(kOtherNamespace))}, mtls(),
       kNoneAllowed},

      // dry-run: evaluated, never enforced
      {"a matching dry-run DENY is not enforced", {dry(deny("d", {Rule{}}))}, mtls(), kNoAllowPolicies},
      {"a dry-run ALLOW does not make allow policies exist", {dry(allow("a", only(kPort9090)))}, mtls(),
       kNoAllowPolicies},
      {"a matching dry-run ALLOW does not allow", {dry(allow("a", {Rule{}})), allow("b", only(kPort9090))}, mtls(),
       kNoneAllowed},
      {"a matching dry-run DENY does not override an ALLOW", {dry(deny("d", {Rule{}})), allow("a", only(kPort8080))},
       mtls(), allowed_by("ns/a")},
      {"an enforced DENY wins over a dry-run ALLOW", {dry(allow("a", {Rule{}})), deny("d", {Rule{}})}, mtls(),
       denied_by("ns/d")},

      // STRICT: istiod's static policy
      {"STRICT denies plaintext", {static_strict()}, plaintext(), denied_by(kStrictKey)},
      {"STRICT allows mTLS", {static_strict()}, mtls(), kNoAllowPolicies},
      {"STRICT denies plaintext over IPv6", {static_strict()}, plaintext("fd00::1", "fd00::2"),
       denied_by(kStrictKey)},
      {"STRICT plus an ALLOW for another namespace", {static_strict(), allow("a", only(kOtherNamespace))}, mtls(),
       kNoneAllowed},
      {"STRICT plus a matching ALLOW", {static_strict(), allow("a", only(Match{.namespaces = {exact("default")}}))},
       mtls(), allowed_by("ns/a")},
      {"STRICT wins over an ALLOW for everything", {allow("a", {Rule{}}), static_strict()}, plaintext(),
       denied_by(kStrictKey)},

      // STRICT workload with PERMISSIVE port 9000 (static policy not sent)
      {"STRICT workload: plaintext to its PERMISSIVE port", {strict_with_permissive_ports({9000})},
       plaintext("10.0.0.1", "10.0.0.2", 9000), kNoAllowPolicies},
      {"STRICT workload: plaintext to another port", {strict_with_permissive_ports({9000})}, plaintext(),
       denied_by(kPaKey)},
      {"STRICT workload: mTLS to another port", {strict_with_permissive_ports({9000})}, mtls(), kNoAllowPolicies},
      {"STRICT workload: mTLS to the PERMISSIVE port", {strict_with_permissive_ports({9000})},
       with_port(mtls(), 9000), kNoAllowPolicies},
      {"STRICT workload, two PERMISSIVE ports: the second", {strict_with_permissive_ports({9000, 9001})},
       plaintext("10.0.0.1", "10.0.0.2", 9001), kNoAllowPolicies},
      {"STRICT workload, two PERMISSIVE ports: a third port", {strict_with_permissive_ports({9000, 9001})},
       plaintext("10.0.0.1", "10.0.0.2", 9002), denied_by(kPaKey)},
      {"UNSET workload under STRICT namespace: PERMISSIVE port", {unset_under_strict_with_permissive_port(9000)},
       plaintext("10.0.0.1", "10.0.0.2", 9000), kNoAllowPolicies},
      {"UNSET workload under STRICT namespace: other port", {unset_under_strict_with_permissive_port(9000)},
       plaintext(), denied_by(kPaKey)},
      {"UNSET workload under STRICT namespace: mTLS", {unset_under_strict_with_permissive_port(9000)}, mtls(),
       kNoAllowPolicies},

      // PERMISSIVE workload with STRICT ports 8080 and 8443 (istio#54146)
      {"PERMISSIVE workload: plaintext to STRICT port 8080", {permissive_with_strict_ports({8080, 8443})},
       plaintext(), denied_by(kPaKey)},
      {"PERMISSIVE workload: plaintext to STRICT port 8443", {permissive_with_strict_ports({8080, 8443})},
       plaintext("10.0.0.1", "10.0.0.2", 8443), denied_by(kPaKey)},
      {"PERMISSIVE workload: plaintext to another port", {permissive_with_strict_ports({8080, 8443})},
       plaintext("10.0.0.1", "10.0.0.2", 9000), kNoAllowPolicies},
      {"PERMISSIVE workload: mTLS to STRICT port 8443", {permissive_with_strict_ports({8080, 8443})},
       with_port(mtls(), 8443), kNoAllowPolicies},

      // no identity
      {"plaintext against an ALLOW on principals", {allow("a", only(Match{.principals = {presence()}}))},
       plaintext(), kNoneAllowed},
      {"plaintext against an ALLOW on not_namespaces is allowed (namespace is \"\")",
       {allow("a", only(Match{.not_namespaces = {exact("kube-system")}}))}, plaintext(), allowed_by("ns/a")},
      {"plaintext against a DENY on a service account", {deny("d", only(Match{.service_accounts = {{"", ""}}}))},
       plaintext(), kNoAllowPolicies},
      {"plaintext against an ALLOW on source IPs", {allow("a", only(Match{.source_ips = {cidr("10.0.0.0/8")}}))},
       plaintext(), allowed_by("ns/a")},
  };
}

TEST_CASE("decisions over sets of policies follow assert_rbac") {
  for (const auto& c : decision_cases()) {
    const std::string name = c.name;
    CAPTURE(name);
    auto policies = ptrs(c.policies);
    Decision d = evaluate(policies, c.connection);
    CHECK(d.allowed == c.expect.allowed);
    CHECK(d.reason == c.expect.reason);
    // The deciding policy is named only when one decided.
    const bool named = c.expect.reason.starts_with("allowed by: ") ||
                       c.expect.reason.starts_with("explicitly denied by: ");
    CHECK(d.policy.empty() == !named);
    if (named) CHECK(c.expect.reason.ends_with(d.policy));
    // explain() reaches the same decision.
    Explanation e = explain(policies, c.connection);
    CHECK(e.decision.allowed == d.allowed);
    CHECK(e.decision.reason == d.reason);
    CHECK(e.policies.size() == policies.size());
  }
}

TEST_CASE("the table has at least 120 cases") {
  CHECK(match_cases().size() + decision_cases().size() >= 120);
}

TEST_CASE("every dry-run policy is reported with whether it matched") {
  auto policies = ptrs({dry(deny("dd", only(kPort8080))), dry(allow("da", only(kPort9090))),
                        deny("d", only(kPort8080)), dry(deny("dd2", only(kOtherNamespace)))});
  Decision d = evaluate(policies, mtls());
  CHECK_FALSE(d.allowed);
  CHECK(d.policy == "ns/d");
  REQUIRE(d.dry_run.size() == 3);
  CHECK(d.dry_run[0].policy == "ns/dd");
  CHECK(d.dry_run[0].action == PolicyAction::kDeny);
  CHECK(d.dry_run[0].matched);
  CHECK(d.dry_run[1].policy == "ns/da");
  CHECK(d.dry_run[1].action == PolicyAction::kAllow);
  CHECK_FALSE(d.dry_run[1].matched);
  CHECK(d.dry_run[2].policy == "ns/dd2");
  CHECK_FALSE(d.dry_run[2].matched);
}

TEST_CASE("enforced policies are not reported as dry-run") {
  auto policies = ptrs({allow("a", {Rule{}}), deny("d", only(kPort9090))});
  CHECK(evaluate(policies, mtls()).dry_run.empty());
}

TEST_CASE("a null policy pointer is ignored") {
  std::vector<PolicyPtr> policies{nullptr, std::make_shared<const Policy>(deny("d", {Rule{}}))};
  CHECK(evaluate(policies, mtls()).reason == "explicitly denied by: ns/d");
}

// --- explain -------------------------------------------------------------------

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST_CASE("explain names the failing field with the connection's value") {
  Rule rule{{Clause{{Match{.namespaces = {exact("a")}}}},
             Clause{{Match{.principals = {exact("cluster.local/ns/b/sa/y")}}}}}};
  auto policies = ptrs({allow("p", {rule})});
  Explanation e = explain(policies, mtls("a", "x"));
  CHECK_FALSE(e.decision.allowed);
  REQUIRE(e.policies.size() == 1);
  CHECK_FALSE(e.policies[0].matched);
  REQUIRE(e.policies[0].steps.size() == 1);
  CHECK(e.policies[0].steps[0] ==
        "rule 0, clause 1: no match: match 0: principal \"cluster.local/ns/a/sa/x\" not in "
        "[exact \"cluster.local/ns/b/sa/y\"]");
  std::string text = e.to_text();
  CHECK(contains(text, "denied: allow policies exist, but none allowed"));
  CHECK(contains(text, "policy ns/p (allow): no match"));
  CHECK(contains(text, "rule 0, clause 1: no match"));
}

TEST_CASE("explain shows the deciding policy, rule, clause and match") {
  auto policies = ptrs({allow("a", only(kPort8080)),
                        deny("d", {Rule{{Clause{{kPort9090}}}}, Rule{{Clause{{kOtherNamespace, kPort8080}}}}})});
  Explanation e = explain(policies, mtls());
  CHECK(e.decision.reason == "explicitly denied by: ns/d");
  REQUIRE(e.policies.size() == 2);
  // Every applicable policy is traced, even once the decision is known.
  CHECK(e.policies[0].policy == "ns/a");
  CHECK(e.policies[0].matched);
  CHECK(e.policies[1].policy == "ns/d");
  CHECK(e.policies[1].matched);
  REQUIRE(e.policies[1].steps.size() == 2);
  CHECK(e.policies[1].steps[0] == "rule 0, clause 0: no match: match 0: destination_port 8080 not in [9090]");
  CHECK(e.policies[1].steps[1] == "rule 1: matched (clause 0: match 1)");
  std::string text = e.to_text();
  CHECK(contains(text, "denied: explicitly denied by: ns/d"));
  CHECK(contains(text, "policy ns/d (deny): matched"));
  CHECK(contains(text, "rule 1: matched (clause 0: match 1)"));
}

TEST_CASE("explain describes not_* hits, empty matches and missing identities") {
  auto policies = ptrs({static_strict(), allow("e", only(Match{})), allow("r", {}),
                        allow("s", only(Match{.service_accounts = {{"default", "app"}}}))});
  Explanation e = explain(policies, plaintext());
  CHECK(e.decision.reason == "explicitly denied by: " + kStrictKey);
  REQUIRE(e.policies.size() == 4);
  CHECK(e.policies[0].steps == std::vector<std::string>{"rule 0: matched (clause 0: match 0)"});
  CHECK(e.policies[1].steps == std::vector<std::string>{"rule 0, clause 0: no match: match 0: empty (skipped)"});
  CHECK(e.policies[2].steps == std::vector<std::string>{"no rules: matches nothing"});
  CHECK(e.policies[3].steps ==
        std::vector<std::string>{"rule 0, clause 0: no match: match 0: service_account (none: no identity) "
                                 "not in [default/app]"});
  Explanation m = explain(policies, mtls());
  CHECK(m.policies[0].steps ==
        std::vector<std::string>{
            "rule 0, clause 0: no match: match 0: principal \"cluster.local/ns/default/sa/app\" in "
            "not_principals [presence]"});
}

TEST_CASE("explain marks dry-run policies and empty rules") {
  auto policies = ptrs({dry(deny("d", {Rule{}})), allow("c", {Rule{{Clause{}}}})});
  Explanation e = explain(policies, mtls());
  CHECK(e.decision.allowed);
  CHECK(e.decision.reason == "allowed by: ns/c");
  CHECK(e.policies[0].dry_run);
  CHECK(e.policies[0].steps == std::vector<std::string>{"rule 0: no clauses: matches every connection"});
  CHECK(e.policies[1].steps == std::vector<std::string>{"rule 0: matched (clause 0: no matches (holds))"});
  CHECK(contains(e.to_text(), "policy ns/d (deny, dry-run): matched"));
  CHECK(contains(explain(std::vector<PolicyPtr>{}, mtls()).to_text(), "no policies apply"));
}

TEST_CASE("explain's JSON parses and carries the decision and every trace") {
  Policy odd = allow("quote\"and\\slash", only(Match{.principals = {exact("a\"b\nc")}}));
  auto policies = ptrs({odd, dry(deny("d", {Rule{}}))});
  std::string json = explain(policies, mtls()).to_json();
  YAML::Node n = YAML::Load(json);  // JSON is YAML; yaml-cpp checks the syntax
  REQUIRE(n.IsMap());
  CHECK(n["allowed"].as<bool>() == false);
  CHECK(n["policy"].as<std::string>() == "");
  CHECK(n["reason"].as<std::string>() == "allow policies exist, but none allowed");
  REQUIRE(n["dry_run"].size() == 1);
  CHECK(n["dry_run"][0]["policy"].as<std::string>() == "ns/d");
  CHECK(n["dry_run"][0]["action"].as<std::string>() == "deny");
  CHECK(n["dry_run"][0]["matched"].as<bool>());
  REQUIRE(n["policies"].size() == 2);
  CHECK(n["policies"][0]["policy"].as<std::string>() == "ns/quote\"and\\slash");
  CHECK(n["policies"][0]["dry_run"].as<bool>() == false);
  CHECK(n["policies"][0]["matched"].as<bool>() == false);
  CHECK(contains(n["policies"][0]["steps"][0].as<std::string>(), "a\"b\nc"));
  CHECK(n["policies"][1]["dry_run"].as<bool>());
}

// --- scope, through a real store -------------------------------------------------

state::Workload workload(std::string uid, std::string ns, std::vector<std::string> policies) {
  state::Workload w;
  w.uid = std::move(uid);
  w.name = w.uid;
  w.namespace_ = std::move(ns);
  w.addresses.push_back(ip("10.0.0.2"));
  w.authorization_policies = std::move(policies);
  return w;
}

Policy scoped(Policy p, PolicyScope scope, std::string ns) {
  p.scope = scope;
  p.namespace_ = std::move(ns);
  return p;
}

TEST_CASE("authorize applies global, namespace and listed policies only") {
  state::Store store;
  state::Update u;
  // Listed: the static STRICT policy, one selector policy, and a key that
  // does not exist (skipped, as Istio does).
  u.upserted_workloads.push_back(
      workload("app-1", "app", {kStrictKey, "app/listed-allow", "app/does-not-exist"}));
  u.upserted_workloads.push_back(workload("other-1", "other", {}));
  // GLOBAL from the root namespace, as istiod sends it, and one with "".
  u.upserted_policies.push_back(scoped(deny("global-deny", only(Match{.namespaces = {exact("evil")}})),
                                       PolicyScope::kGlobal, "istio-system"));
  u.upserted_policies.push_back(
      scoped(deny("global-deny-2", only(Match{.namespaces = {exact("evil2")}})), PolicyScope::kGlobal, ""));
  u.upserted_policies.push_back(static_strict());
  u.upserted_policies.push_back(
      scoped(allow("ns-allow", only(Match{.namespaces = {exact("client")}})), PolicyScope::kNamespace, "app"));
  u.upserted_policies.push_back(scoped(allow("listed-allow", only(Match{.service_accounts = {{"tools", "debug"}}})),
                                       PolicyScope::kWorkloadSelector, "app"));
  // Same namespace, WORKLOAD_SELECTOR, not listed by app-1: must not apply.
  u.upserted_policies.push_back(scoped(deny("unlisted-deny", {Rule{}}), PolicyScope::kWorkloadSelector, "app"));
  // Another namespace's NAMESPACE policy: must not apply to app-1.
  u.upserted_policies.push_back(
      scoped(deny("other-deny", only(Match{.namespaces = {exact("client")}})), PolicyScope::kNamespace, "other"));
  store.apply(std::move(u));
  auto snap = store.snapshot();
  auto app = snap->workload_by_uid("app-1");
  auto other = snap->workload_by_uid("other-1");
  REQUIRE(app);
  REQUIRE(other);

  struct Case {
    const char* name;
    const state::Workload& destination;
    Connection connection;
    Expect expect;
  };
  const std::vector<Case> cases = {
      {"namespace ALLOW", *app, mtls("client"), allowed_by("app/ns-allow")},
      {"listed selector ALLOW", *app, mtls("tools", "debug"), allowed_by("app/listed-allow")},
      {"neither ALLOW matches", *app, mtls("tools", "other"), kNoneAllowed},
      {"listed static STRICT denies plaintext", *app, plaintext(), denied_by(kStrictKey)},
      {"GLOBAL in the root namespace applies", *app, mtls("evil"), denied_by("istio-system/global-deny")},
      {"GLOBAL stored under \"\" applies", *app, mtls("evil2"), denied_by("/global-deny-2")},
      {"GLOBAL applies to another namespace's workload", *other, mtls("evil"),
       denied_by("istio-system/global-deny")},
      {"another namespace's NAMESPACE policy applies there", *other, mtls("client"), denied_by("other/other-deny")},
      {"no STRICT where it is not listed", *other, plaintext(), kNoAllowPolicies},
  };
  for (const auto& c : cases) {
    const std::string name = c.name;
    CAPTURE(name);
    Decision d = authorize(*snap, c.destination, c.connection);
    CHECK(d.allowed == c.expect.allowed);
    CHECK(d.reason == c.expect.reason);
  }

  // The explanation lists exactly the policies that apply.
  Explanation e = explain(*snap, *app, mtls("client"));
  std::vector<std::string> keys;
  for (const auto& t : e.policies) keys.push_back(t.policy);
  std::sort(keys.begin(), keys.end());
  CHECK(keys == std::vector<std::string>{"/global-deny-2", "app/listed-allow", "app/ns-allow",
                                         "istio-system/global-deny", kStrictKey});
  // The other workload lists nothing: no STRICT, no selector policies.
  keys.clear();
  for (const auto& t : explain(*snap, *other, plaintext()).policies) keys.push_back(t.policy);
  std::sort(keys.begin(), keys.end());
  CHECK(keys == std::vector<std::string>{"/global-deny-2", "istio-system/global-deny", "other/other-deny"});
}

TEST_CASE("a workload without policies in an empty namespace is allowed") {
  state::Store store;
  state::Update u;
  u.upserted_workloads.push_back(workload("lonely", "quiet", {}));
  u.upserted_policies.push_back(scoped(deny("elsewhere", {Rule{}}), PolicyScope::kNamespace, "busy"));
  store.apply(std::move(u));
  auto snap = store.snapshot();
  Decision d = authorize(*snap, *snap->workload_by_uid("lonely"), plaintext());
  CHECK(d.allowed);
  CHECK(d.reason == "no allow policies");
}

}  // namespace
}  // namespace ztunnel::rbac
