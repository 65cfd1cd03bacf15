// Snapshot lookups and the single-writer builder that turns an Update into the next snapshot.
#include "state/store.h"

#include <algorithm>
#include <set>
#include <tuple>
#include <utility>

#include "core/log.h"

namespace ztunnel::state {

namespace {

constexpr std::string_view kLog = "state";

NetworkAddress index_key(const NetworkAddress& a) { return {a.network, canonical_ip(a.ip)}; }

bool same_service(const Service& a, const Service& b) {
  return a.namespace_ == b.namespace_ && a.hostname == b.hostname;
}

// Istio's preference when several workloads claim one IP: pods are hard to
// spoof and HBONE workloads carry more mesh context.
int address_rank(const Workload& w) {
  bool pod = w.uid.find("//Pod/") != std::string::npos;
  bool hbone = w.protocol == Protocol::kHbone;
  return (pod ? 2 : 0) + (hbone ? 1 : 0);
}

// Among candidates sharing a VIP or hostname: the first in the caller's
// namespace, else the last canonical one, else the first (Istio's
// ServiceMatch fold).
ServicePtr best_match(const std::vector<ServicePtr>& candidates,
                      std::optional<std::string_view> caller_namespace) {
  ServicePtr canonical;
  ServicePtr first;
  for (const auto& s : candidates) {
    if (caller_namespace && !s->visible_to(*caller_namespace)) {
      log::debug(kLog, "service {}/{} not visible to namespace {}", s->namespace_, s->hostname,
                 *caller_namespace);
      continue;
    }
    if (caller_namespace && s->namespace_ == *caller_namespace) return s;
    if (s->canonical) {
      canonical = s;
    } else if (!first) {
      first = s;
    }
  }
  return canonical ? canonical : first;
}

template <class T>
std::vector<std::shared_ptr<const T>> sorted_values(
    const CowMap<std::string, std::shared_ptr<const T>, StringHash>& map) {
  std::vector<std::pair<std::string_view, std::shared_ptr<const T>>> items;
  items.reserve(map.size());
  map.for_each(
      [&](const std::string& k, const std::shared_ptr<const T>& v) { items.emplace_back(k, v); });
  std::sort(items.begin(), items.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::shared_ptr<const T>> out;
  out.reserve(items.size());
  for (auto& [k, v] : items) out.push_back(std::move(v));
  return out;
}

}  // namespace

// --- lookups ---------------------------------------------------------------

WorkloadPtr Snapshot::workload_by_uid(std::string_view uid) const {
  const WorkloadPtr* w = workloads_by_uid_.find(uid);
  return w ? *w : nullptr;
}

WorkloadPtr Snapshot::workload_by_address(const NetworkAddress& address) const {
  const auto* list = workloads_by_address_.find(index_key(address));
  if (!list || list->empty()) return nullptr;
  const WorkloadPtr* best = &list->front();
  int best_rank = address_rank(**best);
  for (const auto& w : *list) {
    // `>=`: among equals the latest update wins, as with Istio's max_by_key.
    int rank = address_rank(*w);
    if (rank >= best_rank) {
      best = &w;
      best_rank = rank;
    }
  }
  return *best;
}

WorkloadPtr Snapshot::find_workload(std::string_view namespace_, std::string_view name,
                                    std::string_view service_account, std::string_view node) const {
  const auto* list = workloads_by_name_.find(service_key(namespace_, name));
  if (!list) return nullptr;
  for (auto it = list->rbegin(); it != list->rend(); ++it) {
    const Workload& w = **it;
    if (w.service_account == service_account && (node.empty() || w.node == node)) return *it;
  }
  return nullptr;
}

ServicePtr Snapshot::service_by_key(std::string_view ns_hostname) const {
  const ServicePtr* s = services_by_key_.find(ns_hostname);
  return s ? *s : nullptr;
}

ServicePtr Snapshot::service_by_hostname(const NamespacedHostname& name) const {
  return service_by_key(name.to_string());
}

std::vector<ServicePtr> Snapshot::services_by_hostname(std::string_view hostname) const {
  const auto* list = services_by_hostname_.find(hostname);
  return list ? *list : std::vector<ServicePtr>{};
}

ServicePtr Snapshot::best_service_by_hostname(
    std::string_view hostname, std::optional<std::string_view> caller_namespace) const {
  const auto* list = services_by_hostname_.find(hostname);
  return list ? best_match(*list, caller_namespace) : nullptr;
}

std::vector<ServicePtr> Snapshot::services_by_vip(const NetworkAddress& vip) const {
  const auto* list = services_by_vip_.find(index_key(vip));
  return list ? *list : std::vector<ServicePtr>{};
}

ServicePtr Snapshot::best_service_by_vip(const NetworkAddress& vip,
                                         std::optional<std::string_view> caller_namespace) const {
  NetworkAddress key = index_key(vip);
  if (const auto* list = services_by_vip_.find(key)) {
    // An exact VIP hidden from this caller falls through to the CIDR VIPs.
    if (auto s = best_match(*list, caller_namespace)) return s;
  }
  if (!cidr_vips_) return nullptr;
  // Lexicographic: caller's namespace beats a longer prefix, which beats
  // canonical; the first entry wins a full tie.
  using Rank = std::tuple<bool, uint8_t, bool>;
  ServicePtr best;
  Rank best_rank{};
  for (const auto& entry : *cidr_vips_) {
    if (entry.cidr.network != key.network || !entry.cidr.cidr.contains(key.ip)) continue;
    const Service& s = *entry.service;
    if (caller_namespace && !s.visible_to(*caller_namespace)) continue;
    Rank rank{caller_namespace && s.namespace_ == *caller_namespace, entry.cidr.cidr.prefix_len,
              s.canonical};
    if (!best || rank > best_rank) {
      best = entry.service;
      best_rank = rank;
    }
  }
  return best;
}

std::vector<ServicePtr> Snapshot::services_of(const Workload& workload) const {
  std::vector<ServicePtr> out;
  for (const auto& [key, ports] : workload.services) {
    if (auto s = service_by_key(key)) out.push_back(std::move(s));
  }
  return out;
}

std::optional<Address> Snapshot::find_address(
    const NetworkAddress& address, std::optional<std::string_view> caller_namespace) const {
  if (auto w = workload_by_address(address)) return Address(std::move(w));
  if (auto s = best_service_by_vip(address, caller_namespace)) return Address(std::move(s));
  return std::nullopt;
}

std::optional<Address> Snapshot::find_hostname(const NamespacedHostname& name) const {
  if (auto s = service_by_hostname(name)) return Address(std::move(s));
  WorkloadPtr found;
  workloads_by_uid_.for_each([&](const std::string&, const WorkloadPtr& w) {
    if (!found && w->hostname == name.hostname && w->namespace_ == name.namespace_) found = w;
  });
  if (found) return Address(std::move(found));
  return std::nullopt;
}

std::map<std::string, EndpointMap> Snapshot::staged_endpoints() const {
  std::map<std::string, EndpointMap> out;
  contributed_endpoints_.for_each(
      [&](const std::string& key, const std::shared_ptr<EndpointSet>& eps) {
        if (!services_by_key_.find(key)) out.emplace(key, *eps);
      });
  return out;
}

std::size_t Snapshot::staged_service_count() const {
  std::size_t n = 0;
  contributed_endpoints_.for_each([&](const std::string& key, const std::shared_ptr<EndpointSet>&) {
    if (!services_by_key_.find(key)) ++n;
  });
  return n;
}

PolicyPtr Snapshot::policy(std::string_view key) const {
  const PolicyPtr* p = policies_by_key_.find(key);
  return p ? *p : nullptr;
}

std::vector<PolicyPtr> Snapshot::policies_in_namespace(std::string_view namespace_) const {
  std::vector<PolicyPtr> out;
  if (const auto* set = policies_by_namespace_.find(namespace_)) {
    out.reserve((*set)->size());
    for (const auto& [key, p] : **set) out.push_back(p);
  }
  return out;
}

std::vector<PolicyPtr> Snapshot::policies_for(const Workload& workload) const {
  std::vector<PolicyPtr> out;
  std::set<std::string_view> seen;
  auto add = [&](const PolicyPtr& p, std::string_view key) {
    if (seen.insert(key).second) out.push_back(p);
  };
  for (std::string_view ns : {std::string_view(workload.namespace_), std::string_view()}) {
    if (const auto* set = policies_by_namespace_.find(ns)) {
      for (const auto& [key, p] : **set) add(p, key);
    }
  }
  for (const auto& key : workload.authorization_policies) {
    const PolicyPtr* p = policies_by_key_.find(key);
    if (!p) {
      // Usually a transient ordering gap: the workload arrived before its policy.
      log::warn(kLog, "workload {} lists unknown policy {}, skipping", workload.uid, key);
      continue;
    }
    add(*p, key);
  }
  return out;
}

std::vector<WorkloadPtr> Snapshot::workloads() const { return sorted_values(workloads_by_uid_); }
std::vector<ServicePtr> Snapshot::services() const { return sorted_values(services_by_key_); }
std::vector<PolicyPtr> Snapshot::policies() const { return sorted_values(policies_by_key_); }

// --- building the next snapshot -----------------------------------------------

// Applies one Update to a private copy of a snapshot. Service values depend
// on workloads (their endpoints), so services touched by the batch are
// collected and rebuilt once each in finish().
class SnapshotBuilder {
 public:
  // `base` is the builder's own copy; a Snapshot is tens of KB of shard
  // pointers, so it lives on the heap, not the writer's stack.
  explicit SnapshotBuilder(std::shared_ptr<Snapshot> base) : snapshot_(std::move(base)) {}

  void upsert_workload(Workload workload);
  void upsert_service(Service service);
  void upsert_policy(Policy policy);
  void remove_address(const std::string& name);
  void remove_policy(const std::string& key);
  std::shared_ptr<const Snapshot> finish(uint64_t version);

 private:
  // A service whose value must be recomputed. `replaced` with a null `base`
  // means removed; without `replaced` only its endpoints changed.
  struct Pending {
    bool replaced = false;
    ServicePtr base;
  };

  void remove_workload(const WorkloadPtr& old);
  void add_contribution(const std::string& key, EndpointPtr endpoint);
  void remove_contribution(const std::string& key, const std::string& uid);
  // `declared` plus the health-filtered endpoints workloads contribute.
  ServicePtr with_endpoints(const Service& declared, const std::string& key) const;
  void index_service(const ServicePtr& s);
  void unindex_service(const Service& s);
  void reindex_in_place(const ServicePtr& s);
  std::vector<Snapshot::CidrEntry>& cidr_vips();
  void remove_policy_from_namespace(const Policy& p);

  std::shared_ptr<Snapshot> snapshot_;
  Snapshot& next_ = *snapshot_;
  std::map<std::string, Pending> pending_;  // by service key
};

void SnapshotBuilder::upsert_workload(Workload workload) {
  auto w = std::make_shared<const Workload>(std::move(workload));
  if (const WorkloadPtr* old = next_.workloads_by_uid_.find(w->uid)) {
    WorkloadPtr keep = *old;  // remove_workload erases the slot `old` points into
    remove_workload(keep);
  }
  next_.workloads_by_uid_.set(w->uid, w);
  // A host-network workload shares the node's IP; indexing it would capture
  // traffic meant for the node or for other host-network pods.
  if (w->network_mode != NetworkMode::kHostNetwork) {
    for (const auto& ip : w->addresses) {
      next_.workloads_by_address_[index_key({w->network, ip})].push_back(w);
    }
  }
  // Nameless workloads (some WorkloadEntries) cannot be a proxy's own
  // workload; leaving them out keeps one huge "ns/" entry from forming.
  if (!w->name.empty()) next_.workloads_by_name_[service_key(w->namespace_, w->name)].push_back(w);
  for (auto& [key, endpoint] : endpoints_of(*w)) {
    add_contribution(key, std::make_shared<const Endpoint>(std::move(endpoint)));
  }
}

void SnapshotBuilder::remove_workload(const WorkloadPtr& old) {
  auto drop_from = [&old](auto& map, const auto& key) {
    auto* list = map.find_mutable(key);
    if (!list) return;
    std::erase_if(*list, [&](const WorkloadPtr& w) { return w->uid == old->uid; });
    if (list->empty()) map.erase(key);
  };
  next_.workloads_by_uid_.erase(old->uid);
  if (old->network_mode != NetworkMode::kHostNetwork) {
    for (const auto& ip : old->addresses)
      drop_from(next_.workloads_by_address_, index_key({old->network, ip}));
  }
  if (!old->name.empty())
    drop_from(next_.workloads_by_name_, service_key(old->namespace_, old->name));
  for (const auto& [key, ports] : old->services) remove_contribution(key, old->uid);
}

void SnapshotBuilder::add_contribution(const std::string& key, EndpointPtr endpoint) {
  auto& set = next_.contributed_endpoints_[key];
  if (!set) {
    set = std::make_shared<Snapshot::EndpointSet>();
  } else if (set.use_count() != 1) {
    set = std::make_shared<Snapshot::EndpointSet>(*set);
  }
  std::string uid = endpoint->workload_uid;
  set->insert_or_assign(std::move(uid), std::move(endpoint));
  pending_.try_emplace(key);
}

void SnapshotBuilder::remove_contribution(const std::string& key, const std::string& uid) {
  auto* set = next_.contributed_endpoints_.find_mutable(key);
  if (!set || !(*set)->contains(uid)) return;
  if (set->use_count() != 1) *set = std::make_shared<Snapshot::EndpointSet>(**set);
  (*set)->erase(uid);
  if ((*set)->empty()) next_.contributed_endpoints_.erase(key);
  pending_.try_emplace(key);
}

void SnapshotBuilder::upsert_service(Service service) {
  std::string key = service.key();
  pending_[key] = Pending{true, std::make_shared<const Service>(std::move(service))};
}

void SnapshotBuilder::remove_address(const std::string& name) {
  if (const WorkloadPtr* w = next_.workloads_by_uid_.find(name)) {
    WorkloadPtr keep = *w;
    remove_workload(keep);
    return;
  }
  auto slash = name.find('/');
  if (slash == std::string::npos) {
    log::warn(kLog, "cannot remove {}: no such workload uid, and not namespace/hostname", name);
    return;
  }
  // Namespaces and hostnames never contain '/', so this is an unknown
  // workload uid; Istio skips it quietly too.
  if (name.find('/', slash + 1) != std::string::npos) {
    log::debug(kLog, "cannot remove {}: no such workload uid", name);
    return;
  }
  auto it = pending_.find(name);
  bool upserted_in_batch = it != pending_.end() && it->second.replaced && it->second.base;
  if (!upserted_in_batch && !next_.services_by_key_.find(name)) {
    log::warn(kLog, "cannot remove service {}: not found", name);
    return;
  }
  pending_[name] = Pending{true, nullptr};
}

void SnapshotBuilder::upsert_policy(Policy policy) {
  auto p = std::make_shared<const Policy>(std::move(policy));
  std::string key = p->key();
  if (const PolicyPtr* old = next_.policies_by_key_.find(key)) {
    PolicyPtr keep = *old;
    remove_policy_from_namespace(*keep);
  }
  next_.policies_by_key_.set(key, p);
  if (p->scope == PolicyScope::kWorkloadSelector) return;
  // GLOBAL policies live under "" whatever their own namespace.
  std::string ns = p->scope == PolicyScope::kGlobal ? std::string() : p->namespace_;
  auto& set = next_.policies_by_namespace_[ns];
  if (!set) {
    set = std::make_shared<Snapshot::PolicySet>();
  } else if (set.use_count() != 1) {
    set = std::make_shared<Snapshot::PolicySet>(*set);
  }
  (*set)[key] = p;
}

void SnapshotBuilder::remove_policy(const std::string& key) {
  const PolicyPtr* old = next_.policies_by_key_.find(key);
  if (!old) {
    log::debug(kLog, "cannot remove policy {}: not found", key);
    return;
  }
  PolicyPtr keep = *old;
  remove_policy_from_namespace(*keep);
  next_.policies_by_key_.erase(key);
}

void SnapshotBuilder::remove_policy_from_namespace(const Policy& p) {
  if (p.scope == PolicyScope::kWorkloadSelector) return;
  std::string ns = p.scope == PolicyScope::kGlobal ? std::string() : p.namespace_;
  auto* set = next_.policies_by_namespace_.find_mutable(ns);
  if (!set) return;
  if (set->use_count() != 1) *set = std::make_shared<Snapshot::PolicySet>(**set);
  (*set)->erase(p.key());
  if ((*set)->empty()) next_.policies_by_namespace_.erase(ns);
}

ServicePtr SnapshotBuilder::with_endpoints(const Service& declared, const std::string& key) const {
  auto s = std::make_shared<Service>(declared);
  if (const auto* contributed = next_.contributed_endpoints_.find(key)) {
    for (const auto& [uid, endpoint] : **contributed) {
      if (s->accepts_endpoint(endpoint->status)) s->endpoints.insert_or_assign(uid, endpoint);
    }
  }
  return s;
}

std::vector<Snapshot::CidrEntry>& SnapshotBuilder::cidr_vips() {
  auto& list = next_.cidr_vips_;
  if (!list) {
    list = std::make_shared<std::vector<Snapshot::CidrEntry>>();
  } else if (list.use_count() != 1) {
    list = std::make_shared<std::vector<Snapshot::CidrEntry>>(*list);
  }
  return *list;
}

// A replaced service goes to the end of every shared list, as in Istio.
void SnapshotBuilder::index_service(const ServicePtr& s) {
  next_.services_by_key_.set(s->key(), s);
  next_.services_by_hostname_[s->hostname].push_back(s);
  for (const auto& vip : s->vips) {
    auto& list = next_.services_by_vip_[index_key(vip)];
    // A service listing one VIP twice is indexed once.
    if (std::none_of(list.begin(), list.end(), [&](const ServicePtr& o) { return o == s; })) {
      list.push_back(s);
    }
  }
  if (!s->cidr_vips.empty()) {
    auto& cidrs = cidr_vips();
    for (const auto& c : s->cidr_vips) cidrs.push_back({c, s});
  }
}

void SnapshotBuilder::unindex_service(const Service& s) {
  auto drop_from = [&s](auto& map, const auto& key) {
    auto* list = map.find_mutable(key);
    if (!list) return;
    std::erase_if(*list, [&](const ServicePtr& o) { return same_service(*o, s); });
    if (list->empty()) map.erase(key);
  };
  next_.services_by_key_.erase(s.key());
  drop_from(next_.services_by_hostname_, s.hostname);
  for (const auto& vip : s.vips) drop_from(next_.services_by_vip_, index_key(vip));
  if (!s.cidr_vips.empty()) {
    std::erase_if(cidr_vips(), [&](const auto& e) { return same_service(*e.service, s); });
  }
}

// Only endpoints changed: swap the value in place so list order is kept.
void SnapshotBuilder::reindex_in_place(const ServicePtr& s) {
  auto swap_in = [&s](std::vector<ServicePtr>* list) {
    if (!list) return;
    for (auto& o : *list) {
      if (same_service(*o, *s)) o = s;
    }
  };
  next_.services_by_key_.set(s->key(), s);
  swap_in(next_.services_by_hostname_.find_mutable(s->hostname));
  for (const auto& vip : s->vips) swap_in(next_.services_by_vip_.find_mutable(index_key(vip)));
  if (!s->cidr_vips.empty()) {
    for (auto& e : cidr_vips()) {
      if (same_service(*e.service, *s)) e.service = s;
    }
  }
}

std::shared_ptr<const Snapshot> SnapshotBuilder::finish(uint64_t version) {
  for (auto& [key, pending] : pending_) {
    const ServicePtr* found = next_.services_by_key_.find(key);
    ServicePtr old = found ? *found : nullptr;
    if (!pending.replaced) {
      // No service yet: the endpoints stay staged.
      if (!old) continue;
      const ServicePtr* declared = next_.declared_services_.find(key);
      reindex_in_place(with_endpoints(declared ? **declared : *old, key));
      continue;
    }
    if (old) unindex_service(*old);
    if (!pending.base) {
      next_.declared_services_.erase(key);
      continue;
    }
    next_.declared_services_.set(key, pending.base);
    index_service(with_endpoints(*pending.base, key));
  }
  next_.version_ = version;
  return std::move(snapshot_);
}

// --- Store -------------------------------------------------------------------

Store::Store() : current_(std::make_shared<const Snapshot>()) {}

void Store::apply(Update update) {
  std::lock_guard lock(writer_mutex_);
  std::shared_ptr<const Snapshot> current = snapshot();
  // `current` stays referenced while building, so every shard the builder
  // shares with it has use_count > 1 and gets cloned before any write.
  SnapshotBuilder builder(update.replace_all ? std::make_shared<Snapshot>()
                                             : std::make_shared<Snapshot>(*current));
  for (auto& w : update.upserted_workloads) builder.upsert_workload(std::move(w));
  for (auto& s : update.upserted_services) builder.upsert_service(std::move(s));
  for (auto& p : update.upserted_policies) builder.upsert_policy(std::move(p));
  for (const auto& name : update.removed_addresses) builder.remove_address(name);
  for (const auto& key : update.removed_policies) builder.remove_policy(key);
  std::shared_ptr<const Snapshot> next = builder.finish(current->version() + 1);
  {
    std::lock_guard swap_lock(current_mutex_);
    current_ = next;
  }
  for (const auto& listener : listeners_) listener(next);
  // `current` goes out of scope here, outside current_mutex_, so freeing
  // what only the old snapshot held never delays a reader.
}

void Store::add_listener(Listener listener) {
  std::lock_guard lock(writer_mutex_);
  listeners_.push_back(std::move(listener));
}

}  // namespace ztunnel::state
