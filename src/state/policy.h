// L4 authorization policies as plain values (Istio's Authorization resource).
// Evaluation lives in rbac/; this is only the shape and its key.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "state/address.h"

namespace ztunnel::state {

enum class PolicyScope { kGlobal, kNamespace, kWorkloadSelector };
enum class PolicyAction { kAllow, kDeny };

std::string_view enum_name(PolicyScope v);
std::string_view enum_name(PolicyAction v);

struct StringMatch {
  enum class Kind { kExact, kPrefix, kSuffix, kPresence };
  Kind kind = Kind::kExact;
  std::string value;  // unused for kPresence

  static StringMatch exact(std::string v) { return {Kind::kExact, std::move(v)}; }
  static StringMatch prefix(std::string v) { return {Kind::kPrefix, std::move(v)}; }
  static StringMatch suffix(std::string v) { return {Kind::kSuffix, std::move(v)}; }
  static StringMatch presence() { return {Kind::kPresence, {}}; }

  // kPresence means "non-empty".
  bool matches(std::string_view candidate) const;

  friend bool operator==(const StringMatch&, const StringMatch&) = default;
};

// A (namespace, service account) pair; the trust domain is not compared.
struct ServiceAccountMatch {
  std::string namespace_;
  std::string service_account;

  friend bool operator==(const ServiceAccountMatch&, const ServiceAccountMatch&) = default;
};

// Within a Match the kinds are ANDed and the values of one kind ORed; a
// not_* list matches when none of its values do. An empty list is no
// constraint.
struct Match {
  std::vector<StringMatch> namespaces;
  std::vector<StringMatch> not_namespaces;
  std::vector<StringMatch> principals;  // compared without the "spiffe://" prefix
  std::vector<StringMatch> not_principals;
  std::vector<Cidr> source_ips;
  std::vector<Cidr> not_source_ips;
  std::vector<Cidr> destination_ips;
  std::vector<Cidr> not_destination_ips;
  std::vector<uint16_t> destination_ports;
  std::vector<uint16_t> not_destination_ports;
  std::vector<ServiceAccountMatch> service_accounts;
  std::vector<ServiceAccountMatch> not_service_accounts;

  // A Match with no constraint at all is skipped by evaluation (it does not
  // match everything).
  bool empty() const;

  friend bool operator==(const Match&, const Match&) = default;
};

// Matches ORed.
struct Clause {
  std::vector<Match> matches;
  friend bool operator==(const Clause&, const Clause&) = default;
};

// Clauses ANDed; a policy's rules are ORed.
struct Rule {
  std::vector<Clause> clauses;
  friend bool operator==(const Rule&, const Rule&) = default;
};

struct Policy {
  std::string name;
  std::string namespace_;
  PolicyScope scope = PolicyScope::kGlobal;
  PolicyAction action = PolicyAction::kAllow;
  bool dry_run = false;
  std::vector<Rule> rules;

  // "ns/name": the xDS resource name and what workloads list.
  std::string key() const { return namespace_ + "/" + name; }

  friend bool operator==(const Policy&, const Policy&) = default;
};

}  // namespace ztunnel::state
