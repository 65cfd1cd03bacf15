// L4 authorization evaluation (see rbac.h).
#include "rbac/rbac.h"

namespace ztunnel::rbac {

Decision evaluate(std::span<const state::PolicyPtr>, const Connection&) {
  return {true, "", "no allow policies", {}};
}

Decision authorize(const state::Snapshot& snapshot, const state::Workload& destination,
                   const Connection& connection) {
  auto policies = snapshot.policies_for(destination);
  return evaluate(policies, connection);
}

bool matches(const state::Policy&, const Connection&) { return false; }

std::string Explanation::to_text() const { return decision.reason; }
std::string Explanation::to_json() const { return "{}"; }

Explanation explain(std::span<const state::PolicyPtr> policies, const Connection& connection) {
  return {evaluate(policies, connection), {}};
}

Explanation explain(const state::Snapshot& snapshot, const state::Workload& destination,
                    const Connection& connection) {
  auto policies = snapshot.policies_for(destination);
  return explain(policies, connection);
}

}  // namespace ztunnel::rbac
