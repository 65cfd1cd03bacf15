// Unit tests for the snapshot store: indexes, tie-breaks, staging, removal, policies, atomicity.
#include "state/store.h"

#include <atomic>
#include <thread>

#include "support/testing.h"

namespace ztunnel::state {
namespace {

IpAddress ip(const char* text) { return boost::asio::ip::make_address(text); }
NetworkAddress addr(const char* text, std::string network = "") {
  return NetworkAddress{std::move(network), ip(text)};
}

Workload workload(std::string uid, const char* address = nullptr, std::string ns = "ns") {
  Workload w;
  w.uid = std::move(uid);
  w.name = w.uid.substr(w.uid.rfind('/') + 1);
  w.namespace_ = std::move(ns);
  if (address) w.addresses.push_back(ip(address));
  return w;
}

Service service(std::string name, std::string ns, std::vector<const char*> vips = {},
                std::vector<const char*> cidrs = {}) {
  Service s;
  s.name = name;
  s.namespace_ = ns;
  s.hostname = name + "." + ns + ".svc.cluster.local";
  for (const char* v : vips) s.vips.push_back(addr(v));
  for (const char* c : cidrs) s.cidr_vips.push_back(NetworkCidr{"", *Cidr::parse(c)});
  s.ports[80] = 8080;
  return s;
}

Policy policy(std::string name, std::string ns, PolicyScope scope,
              PolicyAction action = PolicyAction::kAllow) {
  Policy p;
  p.name = std::move(name);
  p.namespace_ = std::move(ns);
  p.scope = scope;
  p.action = action;
  return p;
}

void upsert(Store& store, Workload w) {
  Update u;
  u.upserted_workloads.push_back(std::move(w));
  store.apply(std::move(u));
}

void upsert(Store& store, Service s) {
  Update u;
  u.upserted_services.push_back(std::move(s));
  store.apply(std::move(u));
}

void remove(Store& store, std::string name) {
  Update u;
  u.removed_addresses.push_back(std::move(name));
  store.apply(std::move(u));
}

std::string name_of(const std::optional<Address>& a) {
  if (!a) return "<none>";
  if (auto* w = std::get_if<WorkloadPtr>(&*a)) return "workload " + (*w)->uid;
  return "service " + std::get<ServicePtr>(*a)->key();
}

LoadBalancer allow_all() {
  LoadBalancer lb;
  lb.health_policy = LoadBalancerHealthPolicy::kAllowAll;
  return lb;
}

const std::string kSvcKey = "ns/svc.ns.svc.cluster.local";

}  // namespace

TEST_CASE("an empty store has an empty snapshot at version zero") {
  Store store;
  auto snap = store.snapshot();
  CHECK(snap->version() == 0);
  CHECK(snap->workload_count() == 0);
  CHECK_FALSE(snap->workload_by_uid("x"));
  CHECK_FALSE(snap->find_address(addr("10.0.0.1"), std::nullopt));
  CHECK(snap->policies_for(workload("x")).empty());
}

TEST_CASE("workloads are found by uid, by network address and by name") {
  Store store;
  Workload w = workload("cluster1//Pod/ns/pod-a", "10.0.0.1");
  w.addresses.push_back(ip("fd00::1"));
  w.network = "net1";
  w.service_account = "sa";
  w.node = "node-1";
  upsert(store, w);
  auto snap = store.snapshot();
  CHECK(snap->version() == 1);
  REQUIRE(snap->workload_by_uid("cluster1//Pod/ns/pod-a"));
  CHECK(*snap->workload_by_uid("cluster1//Pod/ns/pod-a") == w);
  CHECK(snap->workload_by_address(addr("10.0.0.1", "net1")));
  CHECK(snap->workload_by_address(addr("fd00::1", "net1")));
  // The mapped spelling of the IPv4 address finds the same workload.
  CHECK(snap->workload_by_address(addr("::ffff:10.0.0.1", "net1")));
  // Same IP on another network is someone else.
  CHECK_FALSE(snap->workload_by_address(addr("10.0.0.1")));
  CHECK(snap->find_workload("ns", "pod-a", "sa"));
  CHECK(snap->find_workload("ns", "pod-a", "sa", "node-1"));
  CHECK_FALSE(snap->find_workload("ns", "pod-a", "sa", "node-2"));
  CHECK_FALSE(snap->find_workload("ns", "pod-a", "other-sa"));
  CHECK(name_of(snap->find_address(addr("10.0.0.1", "net1"), "ns")) ==
        "workload cluster1//Pod/ns/pod-a");
}

TEST_CASE("host-network workloads are not found by IP") {
  Store store;
  Workload w = workload("cluster1//Pod/ns/hostnet", "10.0.0.5");
  w.network_mode = NetworkMode::kHostNetwork;
  upsert(store, w);
  auto snap = store.snapshot();
  CHECK(snap->workload_by_uid(w.uid));
  CHECK_FALSE(snap->workload_by_address(addr("10.0.0.5")));
  CHECK_FALSE(snap->find_address(addr("10.0.0.5"), std::nullopt));
  // Removing it must not disturb an IP index it was never in.
  upsert(store, workload("other", "10.0.0.5"));
  remove(store, w.uid);
  CHECK(store.snapshot()->workload_by_address(addr("10.0.0.5"))->uid == "other");
}

TEST_CASE("overlapping workload IPs prefer a pod with HBONE, then a pod, then HBONE") {
  Store store;
  Workload entry = workload("cluster1/networking.istio.io/WorkloadEntry/ns/we", "10.0.0.1");
  Workload entry_hbone = workload("cluster1/networking.istio.io/WorkloadEntry/ns/we2", "10.0.0.1");
  entry_hbone.protocol = Protocol::kHbone;
  Workload pod = workload("cluster1//Pod/ns/pod", "10.0.0.1");
  Workload pod_hbone = workload("cluster1//Pod/ns/pod2", "10.0.0.1");
  pod_hbone.protocol = Protocol::kHbone;
  auto at = [&store] { return store.snapshot()->workload_by_address(addr("10.0.0.1"))->uid; };

  upsert(store, entry);
  CHECK(at() == entry.uid);
  upsert(store, entry_hbone);
  CHECK(at() == entry_hbone.uid);
  upsert(store, pod);
  CHECK(at() == pod.uid);
  upsert(store, pod_hbone);
  CHECK(at() == pod_hbone.uid);
  // Re-upserting a lower-ranked one does not change the winner.
  upsert(store, entry);
  CHECK(at() == pod_hbone.uid);
  remove(store, pod_hbone.uid);
  CHECK(at() == pod.uid);
  remove(store, pod.uid);
  CHECK(at() == entry_hbone.uid);
  remove(store, entry_hbone.uid);
  CHECK(at() == entry.uid);
  remove(store, entry.uid);
  CHECK_FALSE(store.snapshot()->workload_by_address(addr("10.0.0.1")));
}

TEST_CASE("among equally ranked workloads on one IP the latest update wins") {
  Store store;
  upsert(store, workload("cluster1//Pod/ns/a", "10.0.0.1"));
  upsert(store, workload("cluster1//Pod/ns/b", "10.0.0.1"));
  CHECK(store.snapshot()->workload_by_address(addr("10.0.0.1"))->uid == "cluster1//Pod/ns/b");
  upsert(store, workload("cluster1//Pod/ns/a", "10.0.0.1"));
  CHECK(store.snapshot()->workload_by_address(addr("10.0.0.1"))->uid == "cluster1//Pod/ns/a");
}

TEST_CASE("replacing a workload drops its old addresses") {
  Store store;
  upsert(store, workload("uid1", "10.0.0.1"));
  upsert(store, workload("uid1", "10.0.0.2"));
  auto snap = store.snapshot();
  CHECK(snap->workload_count() == 1);
  CHECK_FALSE(snap->workload_by_address(addr("10.0.0.1")));
  CHECK(snap->workload_by_address(addr("10.0.0.2")));
}

TEST_CASE("services are found by key, hostname and exact VIP") {
  Store store;
  upsert(store, service("svc", "ns", {"10.96.0.1", "fd00::10"}));
  auto snap = store.snapshot();
  auto s = snap->service_by_key(kSvcKey);
  REQUIRE(s);
  CHECK(s->name == "svc");
  CHECK(snap->service_by_hostname({"ns", "svc.ns.svc.cluster.local"}) == s);
  CHECK(snap->services_by_hostname("svc.ns.svc.cluster.local").size() == 1);
  CHECK(snap->best_service_by_vip(addr("10.96.0.1"), std::nullopt) == s);
  CHECK(snap->best_service_by_vip(addr("fd00::10"), "other") == s);
  CHECK(snap->services_by_vip(addr("10.96.0.1")).size() == 1);
  CHECK_FALSE(snap->best_service_by_vip(addr("10.96.0.2"), std::nullopt));
  CHECK(name_of(snap->find_address(addr("10.96.0.1"), "ns")) == "service " + kSvcKey);
}

TEST_CASE("a workload IP is found before a service VIP at the same address") {
  Store store;
  upsert(store, service("svc", "ns", {"10.0.0.1"}));
  upsert(store, workload("uid1", "10.0.0.1"));
  CHECK(name_of(store.snapshot()->find_address(addr("10.0.0.1"), "ns")) == "workload uid1");
}

TEST_CASE("a shared VIP resolves to the caller's namespace, else canonical, else first") {
  Store store;
  upsert(store, service("svc", "a", {"10.0.0.1"}));
  Service b = service("svc", "b", {"10.0.0.1"});
  upsert(store, b);
  auto best = [&store](std::optional<std::string_view> ns) {
    return store.snapshot()->best_service_by_vip(addr("10.0.0.1"), ns)->namespace_;
  };
  CHECK(best("a") == "a");
  CHECK(best("b") == "b");
  CHECK(best("c") == "a");  // first
  CHECK(best(std::nullopt) == "a");
  b.canonical = true;
  upsert(store, b);
  CHECK(best("c") == "b");  // canonical
  CHECK(best("a") == "a");  // own namespace still first
  CHECK(store.snapshot()->services_by_vip(addr("10.0.0.1")).size() == 2);
  remove(store, "a/svc.a.svc.cluster.local");
  CHECK(best("a") == "b");
}

TEST_CASE("a namespace-visible service is hidden from other namespaces' callers") {
  Store store;
  Service s = service("local", "a", {"10.0.0.1"}, {"10.1.0.0/16"});
  s.visibility = Visibility::kNamespace;
  upsert(store, s);
  auto snap = store.snapshot();
  CHECK(snap->best_service_by_vip(addr("10.0.0.1"), "a"));
  CHECK_FALSE(snap->best_service_by_vip(addr("10.0.0.1"), "b"));
  CHECK_FALSE(snap->find_address(addr("10.0.0.1"), "b"));
  // No caller namespace (e.g. inbound): visibility is not enforced.
  CHECK(snap->best_service_by_vip(addr("10.0.0.1"), std::nullopt));
  CHECK(snap->best_service_by_vip(addr("10.1.2.3"), "a"));
  CHECK_FALSE(snap->best_service_by_vip(addr("10.1.2.3"), "b"));
  CHECK(snap->best_service_by_hostname(s.hostname, "a"));
  CHECK_FALSE(snap->best_service_by_hostname(s.hostname, "b"));
  CHECK(snap->best_service_by_hostname(s.hostname, std::nullopt));
}

TEST_CASE("an exact VIP hidden by visibility falls through to a CIDR VIP") {
  Store store;
  Service exact = service("exact", "a", {"10.2.0.5"});
  exact.visibility = Visibility::kNamespace;
  upsert(store, exact);
  upsert(store, service("range", "b", {}, {"10.2.0.0/16"}));
  auto snap = store.snapshot();
  CHECK(snap->best_service_by_vip(addr("10.2.0.5"), "a")->name == "exact");
  CHECK(snap->best_service_by_vip(addr("10.2.0.5"), "b")->name == "range");
}

TEST_CASE("CIDR VIPs match by longest prefix, per family and per network") {
  Store store;
  upsert(store, service("wide", "ns", {}, {"10.0.0.0/16", "fd00::/48"}));
  upsert(store, service("narrow", "ns", {}, {"10.0.0.0/24", "fd00::/112"}));
  auto snap = store.snapshot();
  auto name = [&snap](const char* ip, std::string network = "") {
    auto s = snap->best_service_by_vip(addr(ip, std::move(network)), std::nullopt);
    return s ? s->name : std::string("<none>");
  };
  CHECK(name("10.0.0.5") == "narrow");
  CHECK(name("10.0.0.255") == "narrow");
  CHECK(name("10.0.1.5") == "wide");
  CHECK(name("10.1.0.0") == "<none>");
  CHECK(name("fd00::5") == "narrow");
  CHECK(name("fd00::1:0") == "wide");
  CHECK(name("fd01::5") == "<none>");
  CHECK(name("10.0.0.5", "other-network") == "<none>");
  CHECK(name("::ffff:10.0.0.5") == "narrow");
}

TEST_CASE("a CIDR in the caller's namespace beats a longer prefix elsewhere") {
  Store store;
  upsert(store, service("local", "ns-local", {}, {"10.0.0.0/16"}));
  upsert(store, service("global", "istio-system", {}, {"10.0.0.0/24"}));
  auto snap = store.snapshot();
  CHECK(snap->best_service_by_vip(addr("10.0.0.5"), "ns-local")->name == "local");
  CHECK(snap->best_service_by_vip(addr("10.0.0.5"), "ns-other")->name == "global");
  CHECK(snap->best_service_by_vip(addr("10.0.0.5"), std::nullopt)->name == "global");
  CHECK(snap->best_service_by_vip(addr("10.0.1.5"), "ns-other")->name == "local");
}

TEST_CASE("equal CIDRs prefer a canonical service") {
  Store store;
  upsert(store, service("first", "a", {}, {"10.0.0.0/24"}));
  Service c = service("canon", "b", {}, {"10.0.0.0/24"});
  c.canonical = true;
  upsert(store, c);
  CHECK(store.snapshot()->best_service_by_vip(addr("10.0.0.1"), "z")->name == "canon");
}

TEST_CASE("an exact VIP is preferred over a CIDR that contains it") {
  Store store;
  upsert(store, service("cidr-svc", "ns", {}, {"10.0.0.0/24"}));
  upsert(store, service("exact-svc", "ns", {"10.0.0.5"}));
  auto snap = store.snapshot();
  CHECK(snap->best_service_by_vip(addr("10.0.0.5"), "ns")->name == "exact-svc");
  CHECK(snap->best_service_by_vip(addr("10.0.0.6"), "ns")->name == "cidr-svc");
}

TEST_CASE("removing a service clears its VIPs, CIDRs and hostname") {
  Store store;
  upsert(store, service("svc", "ns", {"10.96.0.1"}, {"10.5.0.0/16"}));
  remove(store, kSvcKey);
  auto snap = store.snapshot();
  CHECK(snap->service_count() == 0);
  CHECK_FALSE(snap->best_service_by_vip(addr("10.96.0.1"), std::nullopt));
  CHECK_FALSE(snap->best_service_by_vip(addr("10.5.0.1"), std::nullopt));
  CHECK(snap->services_by_hostname("svc.ns.svc.cluster.local").empty());
}

TEST_CASE("a service upsert that changes its VIPs re-indexes them") {
  Store store;
  upsert(store, service("svc", "ns", {"10.96.0.1", "10.96.0.2"}));
  upsert(store, service("svc", "ns", {"10.96.0.2", "10.96.0.3"}));
  auto snap = store.snapshot();
  CHECK(snap->service_count() == 1);
  CHECK_FALSE(snap->best_service_by_vip(addr("10.96.0.1"), std::nullopt));
  CHECK(snap->best_service_by_vip(addr("10.96.0.2"), std::nullopt));
  CHECK(snap->best_service_by_vip(addr("10.96.0.3"), std::nullopt));
}

TEST_CASE("endpoints of a workload that arrives first are staged until its service arrives") {
  Store store;
  Workload w = workload("uid1", "10.0.0.1");
  w.services[kSvcKey] = PortMap{{80, 9090}};
  upsert(store, w);
  CHECK(store.snapshot()->staged_service_count() == 1);
  CHECK(store.snapshot()->staged_endpoints().at(kSvcKey).contains("uid1"));

  upsert(store, service("svc", "ns", {"10.96.0.1"}));
  auto snap = store.snapshot();
  CHECK(snap->staged_service_count() == 0);
  auto s = snap->service_by_key(kSvcKey);
  REQUIRE(s);
  REQUIRE(s->endpoints.size() == 1);
  CHECK(s->endpoints.at("uid1")->ports == PortMap{{80, 9090}});
  // Every index hands out the same value.
  CHECK(snap->best_service_by_vip(addr("10.96.0.1"), std::nullopt) == s);
  CHECK(snap->services_by_hostname(s->hostname).front() == s);
  CHECK(snap->services_of(*snap->workload_by_uid("uid1")) == std::vector<ServicePtr>{s});
}

TEST_CASE("a staged endpoint is dropped when its workload goes before the service arrives") {
  Store store;
  Workload w = workload("uid1", "10.0.0.1");
  w.services[kSvcKey] = PortMap{{80, 8080}};
  upsert(store, w);
  CHECK(store.snapshot()->staged_service_count() == 1);
  remove(store, "uid1");
  CHECK(store.snapshot()->staged_service_count() == 0);
  upsert(store, service("svc", "ns"));
  CHECK(store.snapshot()->service_by_key(kSvcKey)->endpoints.empty());

  // A workload that stops selecting the service un-stages too.
  Store other;
  upsert(other, w);
  upsert(other, workload("uid1", "10.0.0.1"));
  CHECK(other.snapshot()->staged_service_count() == 0);
}

TEST_CASE("unhealthy endpoints are kept only by services that allow all") {
  Store store;
  Workload sick = workload("sick");
  sick.status = HealthStatus::kUnhealthy;
  Workload well = workload("well");
  for (Workload* w : {&sick, &well}) {
    w->services["ns/svc-normal"] = PortMap{{80, 8080}};
    w->services["ns/svc-allow-unhealthy"] = PortMap{{80, 8080}};
  }
  upsert(store, sick);  // staged, before the services exist
  upsert(store, well);
  CHECK(store.snapshot()->staged_service_count() == 2);

  Service normal = service("normal", "ns", {"10.96.0.1"});
  normal.hostname = "svc-normal";
  Service lenient = service("lenient", "ns", {"10.96.0.2"});
  lenient.hostname = "svc-allow-unhealthy";
  lenient.load_balancer = allow_all();
  Update u;
  u.upserted_services = {normal, lenient};
  store.apply(u);
  auto count = [&store](const char* key) {
    return store.snapshot()->service_by_key(key)->endpoints.size();
  };
  CHECK(count("ns/svc-normal") == 1);
  CHECK(count("ns/svc-allow-unhealthy") == 2);

  // A workload turning unhealthy leaves the strict service.
  well.status = HealthStatus::kUnhealthy;
  upsert(store, well);
  CHECK(count("ns/svc-normal") == 0);
  CHECK(count("ns/svc-allow-unhealthy") == 2);

  // Switching the policy recomputes from every contributed endpoint, so the
  // unhealthy ones come back when ALLOW_ALL returns (Istio drops them for good).
  lenient.load_balancer.reset();
  upsert(store, lenient);
  CHECK(count("ns/svc-allow-unhealthy") == 0);
  lenient.load_balancer = allow_all();
  upsert(store, lenient);
  CHECK(count("ns/svc-allow-unhealthy") == 2);
}

TEST_CASE("replacing a workload replaces its endpoints") {
  Store store;
  upsert(store, service("svc", "ns"));
  Service other = service("other", "ns");
  upsert(store, other);
  Workload w = workload("uid1", "10.0.0.1");
  w.services[kSvcKey] = PortMap{{80, 8080}};
  upsert(store, w);
  CHECK(store.snapshot()->service_by_key(kSvcKey)->endpoints.at("uid1")->ports.at(80) == 8080);

  w.services[kSvcKey] = PortMap{{80, 9090}};
  upsert(store, w);
  CHECK(store.snapshot()->service_by_key(kSvcKey)->endpoints.at("uid1")->ports.at(80) == 9090);

  w.services.clear();
  w.services[other.key()] = PortMap{{80, 7070}};
  upsert(store, w);
  auto snap = store.snapshot();
  CHECK(snap->service_by_key(kSvcKey)->endpoints.empty());
  CHECK(snap->service_by_key(other.key())->endpoints.size() == 1);
}

TEST_CASE("a service upsert keeps the endpoints its workloads contributed") {
  Store store;
  upsert(store, service("svc", "ns", {"10.96.0.1"}));
  for (const char* uid : {"uid1", "uid2"}) {
    Workload w = workload(uid);
    w.services[kSvcKey] = PortMap{{80, 8080}};
    upsert(store, w);
  }
  Service changed = service("svc", "ns", {"10.96.0.1", "10.96.0.2"});
  upsert(store, changed);
  auto snap = store.snapshot();
  CHECK(snap->service_by_key(kSvcKey)->endpoints.size() == 2);
  CHECK(snap->best_service_by_vip(addr("10.96.0.2"), std::nullopt)->endpoints.size() == 2);
  remove(store, "uid1");
  CHECK(store.snapshot()->best_service_by_vip(addr("10.96.0.1"), std::nullopt)->endpoints.size() ==
        1);
}

TEST_CASE("endpoints given on a service value are kept alongside workload ones") {
  Store store;
  Service s = service("svc", "ns");
  s.endpoints["static"] = std::make_shared<const Endpoint>(
      Endpoint{"static", PortMap{{80, 80}}, HealthStatus::kUnhealthy});
  upsert(store, s);
  Workload w = workload("uid1");
  w.services[kSvcKey] = PortMap{{80, 8080}};
  upsert(store, w);
  auto eps = store.snapshot()->service_by_key(kSvcKey)->endpoints;
  CHECK(eps.size() == 2);
  CHECK(eps.contains("static"));
  remove(store, "uid1");
  CHECK(store.snapshot()->service_by_key(kSvcKey)->endpoints.size() == 1);
}

TEST_CASE("removal by name tries a workload uid first, then a service namespace/hostname") {
  Store store;
  Update u;
  u.upserted_workloads.push_back(workload("cluster1//Pod/ns/pod", "10.0.0.1"));
  u.upserted_workloads.push_back(workload("ns/svc.ns.svc.cluster.local", "10.0.0.2"));  // uid clash
  u.upserted_services.push_back(service("svc", "ns", {"10.96.0.1"}));
  store.apply(u);

  remove(store, kSvcKey);
  auto snap = store.snapshot();
  CHECK_FALSE(snap->workload_by_uid(kSvcKey));
  CHECK(snap->service_by_key(kSvcKey));  // the workload with that uid went first
  remove(store, kSvcKey);
  CHECK_FALSE(store.snapshot()->service_by_key(kSvcKey));
  remove(store, "cluster1//Pod/ns/pod");
  CHECK(store.snapshot()->workload_count() == 0);

  // Unknown names of any shape are harmless.
  uint64_t before = store.snapshot()->version();
  remove(store, "no-such-uid");
  remove(store, "ns/no-such-service");
  remove(store, "cluster1//Pod/ns/gone");
  CHECK(store.snapshot()->version() == before + 3);
}

TEST_CASE("a removed service's endpoints return when it comes back") {
  Store store;
  upsert(store, service("svc", "ns"));
  Workload w = workload("uid1");
  w.services[kSvcKey] = PortMap{{80, 8080}};
  upsert(store, w);
  remove(store, kSvcKey);
  CHECK(store.snapshot()->staged_service_count() == 1);
  upsert(store, service("svc", "ns"));
  CHECK(store.snapshot()->service_by_key(kSvcKey)->endpoints.size() == 1);
}

TEST_CASE("a batch applies upserts before removals") {
  Store store;
  Update u;
  u.upserted_workloads.push_back(workload("uid1", "10.0.0.1"));
  u.upserted_services.push_back(service("svc", "ns"));
  u.removed_addresses = {"uid1", kSvcKey};
  store.apply(u);
  auto snap = store.snapshot();
  CHECK(snap->workload_count() == 0);
  CHECK(snap->service_count() == 0);
}

TEST_CASE("replace_all starts from an empty state") {
  Store store;
  Update first;
  first.upserted_workloads.push_back(workload("old", "10.0.0.1"));
  first.upserted_services.push_back(service("old", "ns", {"10.96.0.1"}));
  first.upserted_policies.push_back(policy("old", "ns", PolicyScope::kNamespace));
  store.apply(first);

  Update second;
  second.replace_all = true;
  second.upserted_workloads.push_back(workload("new", "10.0.0.2"));
  store.apply(second);
  auto snap = store.snapshot();
  CHECK(snap->version() == 2);
  CHECK(snap->workload_count() == 1);
  CHECK(snap->workload_by_uid("new"));
  CHECK_FALSE(snap->workload_by_address(addr("10.0.0.1")));
  CHECK(snap->service_count() == 0);
  CHECK_FALSE(snap->best_service_by_vip(addr("10.96.0.1"), std::nullopt));
  CHECK(snap->policy_count() == 0);
  CHECK(snap->policies_in_namespace("ns").empty());
}

TEST_CASE("policies are indexed by key and by scope") {
  Store store;
  Update u;
  u.upserted_policies = {policy("global", "istio-system", PolicyScope::kGlobal),
                         policy("ns-wide", "ns", PolicyScope::kNamespace),
                         policy("selected", "ns", PolicyScope::kWorkloadSelector)};
  store.apply(u);
  auto snap = store.snapshot();
  CHECK(snap->policy_count() == 3);
  CHECK(snap->policy("ns/selected"));
  REQUIRE(snap->global_policies().size() == 1);
  CHECK(snap->global_policies()[0]->key() == "istio-system/global");
  REQUIRE(snap->policies_in_namespace("ns").size() == 1);
  CHECK(snap->policies_in_namespace("ns")[0]->name == "ns-wide");
  CHECK(snap->policies_in_namespace("istio-system").empty());

  // Changing scope moves it between indexes.
  Update change;
  change.upserted_policies = {policy("ns-wide", "ns", PolicyScope::kWorkloadSelector)};
  store.apply(change);
  CHECK(store.snapshot()->policies_in_namespace("ns").empty());
  Update drop;
  drop.removed_policies = {"istio-system/global", "ns/unknown"};
  store.apply(drop);
  CHECK(store.snapshot()->global_policies().empty());
  CHECK(store.snapshot()->policy_count() == 2);
}

TEST_CASE("a workload's policies are the global, its namespace's and the ones it lists") {
  Store store;
  Update u;
  u.upserted_policies = {
      policy("global", "istio-system", PolicyScope::kGlobal),
      policy("ns-wide", "ns", PolicyScope::kNamespace),
      policy("other-ns", "other", PolicyScope::kNamespace),
      policy("selected", "ns", PolicyScope::kWorkloadSelector),
      policy("unselected", "ns", PolicyScope::kWorkloadSelector, PolicyAction::kDeny)};
  store.apply(u);
  Workload w = workload("uid1", "10.0.0.1", "ns");
  w.authorization_policies = {"ns/selected", "ns/missing", "ns/ns-wide"};
  auto got = store.snapshot()->policies_for(w);
  std::vector<std::string> keys;
  for (const auto& p : got) keys.push_back(p->key());
  std::sort(keys.begin(), keys.end());
  // "ns/missing" is skipped; "ns/ns-wide" listed twice over appears once.
  CHECK(keys == std::vector<std::string>{"istio-system/global", "ns/ns-wide", "ns/selected"});
}

TEST_CASE("a snapshot taken before an update is unchanged by it") {
  Store store;
  Workload w = workload("uid1", "10.0.0.1");
  w.services[kSvcKey] = PortMap{{80, 8080}};
  Update u;
  u.upserted_workloads.push_back(w);
  u.upserted_services.push_back(service("svc", "ns", {"10.96.0.1"}));
  u.upserted_policies.push_back(policy("p", "ns", PolicyScope::kNamespace));
  store.apply(u);
  auto before = store.snapshot();
  auto svc_before = before->service_by_key(kSvcKey);

  Update change;
  change.upserted_workloads.push_back(workload("uid2", "10.0.0.2"));
  Workload moved = workload("uid1", "10.0.0.9");
  change.upserted_workloads.push_back(moved);
  change.removed_addresses.push_back(kSvcKey);
  change.removed_policies.push_back("ns/p");
  store.apply(change);

  CHECK(before->version() == 1);
  CHECK(before->workload_count() == 1);
  CHECK(before->workload_by_address(addr("10.0.0.1"))->uid == "uid1");
  CHECK_FALSE(before->workload_by_address(addr("10.0.0.9")));
  CHECK(before->service_by_key(kSvcKey) == svc_before);
  CHECK(svc_before->endpoints.size() == 1);
  CHECK(before->best_service_by_vip(addr("10.96.0.1"), std::nullopt));
  CHECK(before->policy("ns/p"));
  CHECK(before->policies_in_namespace("ns").size() == 1);

  auto after = store.snapshot();
  CHECK(after->version() == 2);
  CHECK(after->workload_count() == 2);
  CHECK(after->workload_by_address(addr("10.0.0.9"))->uid == "uid1");
  CHECK_FALSE(after->service_by_key(kSvcKey));
  CHECK_FALSE(after->policy("ns/p"));
  CHECK(after->staged_service_count() == 0);  // uid1 no longer lists the service
}

TEST_CASE("a copied CowMap is independent of the original and shares until written") {
  CowMap<std::string, int, StringHash> a;
  for (int i = 0; i < 1000; ++i) a.set("k" + std::to_string(i), i);
  CowMap<std::string, int, StringHash> b = a;
  b.set("k1", -1);
  b.erase("k2");
  b.set("new", 7);
  CHECK(*a.find(std::string_view("k1")) == 1);
  CHECK(a.find(std::string_view("k2")));
  CHECK_FALSE(a.find(std::string_view("new")));
  CHECK(a.size() == 1000);
  CHECK(*b.find(std::string_view("k1")) == -1);
  CHECK_FALSE(b.find(std::string_view("k2")));
  CHECK(b.size() == 1000);
  CHECK(a.find(std::string_view("k500")) == b.find(std::string_view("k500")));  // shared shard
  int sum = 0;
  b.for_each([&sum](const std::string&, int v) { sum += v; });
  CHECK(sum == 999 * 1000 / 2 - 1 - 2 + 7 - 1);
}

TEST_CASE("values untouched by an update are shared with the previous snapshot") {
  Store store;
  upsert(store, workload("stays", "10.0.0.1"));
  upsert(store, service("svc", "ns", {"10.96.0.1"}));
  auto before = store.snapshot();
  upsert(store, workload("new", "10.0.0.2"));
  auto after = store.snapshot();
  CHECK(before->workload_by_uid("stays") == after->workload_by_uid("stays"));
  CHECK(before->service_by_key(kSvcKey) == after->service_by_key(kSvcKey));
}

TEST_CASE("readers on other threads always see whole batches") {
  Store store;
  std::atomic<bool> done{false};
  std::atomic<int> torn{0};
  // Every batch moves both workloads to a new pair of IPs; a reader must see
  // both on the same generation.
  std::thread reader([&] {
    while (!done.load()) {
      auto snap = store.snapshot();
      auto a = snap->workload_by_uid("a");
      auto b = snap->workload_by_uid("b");
      if (!a || !b) continue;
      if (a->network != b->network) ++torn;
    }
  });
  for (int i = 0; i < 300; ++i) {
    Update u;
    for (const char* uid : {"a", "b"}) {
      Workload w = workload(uid, "10.0.0.1");
      w.network = std::to_string(i);
      u.upserted_workloads.push_back(w);
    }
    store.apply(u);
  }
  done = true;
  reader.join();
  CHECK(torn.load() == 0);
  CHECK(store.snapshot()->version() == 300);
}

TEST_CASE("listeners are told of every new snapshot") {
  Store store;
  std::vector<uint64_t> seen;
  store.add_listener(
      [&seen](const std::shared_ptr<const Snapshot>& s) { seen.push_back(s->version()); });
  upsert(store, workload("uid1"));
  remove(store, "uid1");
  CHECK(seen == std::vector<uint64_t>{1, 2});
}

TEST_CASE("a 10k-workload, 1k-service, 1k-policy batch loads in one apply") {
  Store store;
  Update u;
  for (int s = 0; s < 1000; ++s) {
    Service svc = service("svc" + std::to_string(s), "ns" + std::to_string(s % 50));
    svc.vips.push_back(NetworkAddress{"", boost::asio::ip::address_v4(0x0a600000u + s)});
    u.upserted_services.push_back(std::move(svc));
    u.upserted_policies.push_back(
        policy("p" + std::to_string(s), "ns" + std::to_string(s % 50), PolicyScope::kNamespace));
  }
  for (int i = 0; i < 10000; ++i) {
    Workload w = workload("cluster1//Pod/ns/pod-" + std::to_string(i));
    w.addresses.push_back(boost::asio::ip::address_v4(0x0a000000u + i));
    w.protocol = Protocol::kHbone;
    int s = i % 1000;
    w.services[u.upserted_services[s].key()] = PortMap{{80, 8080}};
    u.upserted_workloads.push_back(std::move(w));
  }
  store.apply(std::move(u));
  auto snap = store.snapshot();
  CHECK(snap->workload_count() == 10000);
  CHECK(snap->service_count() == 1000);
  CHECK(snap->policy_count() == 1000);
  CHECK(snap->staged_service_count() == 0);
  CHECK(snap->workloads().size() == 10000);
  CHECK(snap->workload_by_address(
      NetworkAddress{"", boost::asio::ip::address_v4(0x0a000000u + 9999)}));
  auto svc = snap->best_service_by_vip(
      NetworkAddress{"", boost::asio::ip::address_v4(0x0a600000u + 7)}, "ns7");
  REQUIRE(svc);
  CHECK(svc->endpoints.size() == 10);
  CHECK(snap->policies_in_namespace("ns7").size() == 20);

  // One more workload afterwards touches little and leaves the old snapshot whole.
  Workload extra = workload("cluster1//Pod/ns/extra", "10.200.0.1");
  extra.services[svc->key()] = PortMap{{80, 8080}};
  upsert(store, extra);
  CHECK(store.snapshot()->service_by_key(svc->key())->endpoints.size() == 11);
  CHECK(snap->service_by_key(svc->key())->endpoints.size() == 10);
}

TEST_CASE("a hostname resolves to a service first, then to a workload with that hostname") {
  Store store;
  upsert(store, service("svc", "ns"));
  Workload w = workload("uid1");
  w.hostname = "vm.example.com";
  upsert(store, w);
  auto snap = store.snapshot();
  CHECK(name_of(snap->find_hostname({"ns", "svc.ns.svc.cluster.local"})) == "service " + kSvcKey);
  CHECK(name_of(snap->find_hostname({"ns", "vm.example.com"})) == "workload uid1");
  CHECK_FALSE(snap->find_hostname({"other", "vm.example.com"}));
}

TEST_CASE("listing everything comes back sorted by key") {
  Store store;
  Update u;
  u.upserted_workloads = {workload("b"), workload("a"), workload("c")};
  u.upserted_services = {service("y", "ns"), service("x", "ns")};
  u.upserted_policies = {policy("q", "ns", PolicyScope::kGlobal),
                         policy("p", "ns", PolicyScope::kGlobal)};
  store.apply(u);
  auto snap = store.snapshot();
  std::vector<std::string> uids;
  for (const auto& w : snap->workloads()) uids.push_back(w->uid);
  CHECK(uids == std::vector<std::string>{"a", "b", "c"});
  CHECK(snap->services().front()->name == "x");
  CHECK(snap->policies().front()->name == "p");
}

}  // namespace ztunnel::state
