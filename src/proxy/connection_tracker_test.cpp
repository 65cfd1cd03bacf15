// Unit tests for the connection tracker: registration lifetime, and re-checks that revoke only
// what the new snapshot denies.
#include "proxy/connection_tracker.h"

#include <doctest/doctest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <utility>
#include <variant>

#include "support/run_coro.h"

namespace ztunnel::proxy {
namespace {

namespace asio = boost::asio;

constexpr const char* kUid = "cluster1//Pod/ns/server";

state::Workload server(std::vector<std::string> policy_keys = {}) {
  state::Workload w;
  w.uid = kUid;
  w.name = "server";
  w.namespace_ = "ns";
  w.service_account = "server";
  w.trust_domain = "cluster.local";
  w.addresses = {asio::ip::make_address("10.0.0.2")};
  w.authorization_policies = std::move(policy_keys);
  return w;
}

// A namespace DENY of one destination port.
state::Policy deny_port(std::string name, uint16_t port) {
  state::Policy p;
  p.name = std::move(name);
  p.namespace_ = "ns";
  p.scope = state::PolicyScope::kNamespace;
  p.action = state::PolicyAction::kDeny;
  state::Match m;
  m.destination_ports = {port};
  p.rules = {state::Rule{{state::Clause{{m}}}}};
  return p;
}

rbac::Connection connection_to(uint16_t port) {
  rbac::Connection c;
  c.source_identity = state::Identity{"cluster.local", "ns", "client"};
  c.source_ip = asio::ip::make_address("10.0.0.1");
  c.destination_ip = asio::ip::make_address("10.0.0.2");
  c.destination_port = port;
  return c;
}

struct Fixture {
  state::Store store;
  asio::io_context io;
  ConnectionTracker tracker;

  Fixture() { apply({}, {server()}); }
  void apply(std::vector<state::Policy> policies, std::vector<state::Workload> workloads = {}) {
    state::Update u;
    u.upserted_policies = std::move(policies);
    u.upserted_workloads = std::move(workloads);
    store.apply(std::move(u));
  }
  ConnectionTracker::Registration track(uint16_t port) {
    return tracker.track(io.get_executor(), connection_to(port),
                         store.snapshot()->workload_by_uid(kUid), "test:" + std::to_string(port));
  }
};

TEST_CASE("a registration is tracked until it is destroyed or moved out and destroyed") {
  Fixture f;
  {
    auto a = f.track(80);
    CHECK(f.tracker.size() == 1);
    auto b = f.track(81);
    CHECK(f.tracker.size() == 2);
    ConnectionTracker::Registration moved = std::move(a);
    CHECK(f.tracker.size() == 2);
    b = std::move(moved);  // b's own entry is released by the assignment
    CHECK(f.tracker.size() == 1);
  }
  CHECK(f.tracker.size() == 0);
}

TEST_CASE("a re-check revokes only the connections the new policies deny") {
  Fixture f;
  auto denied = f.track(80);
  auto allowed = f.track(81);
  CHECK(f.tracker.recheck(*f.store.snapshot()) == 0);  // nothing applies yet

  f.apply({deny_port("no-80", 80)});
  CHECK(f.tracker.recheck(*f.store.snapshot()) == 1);
  CHECK(denied.is_revoked());
  CHECK(denied.reason() == "explicitly denied by: ns/no-80");
  CHECK_FALSE(allowed.is_revoked());
  CHECK(allowed.reason().empty());

  // Already revoked: not counted twice.
  CHECK(f.tracker.recheck(*f.store.snapshot()) == 0);
  CHECK(f.tracker.size() == 2);
}

TEST_CASE("a re-check uses the workload's current policy list, not the one it connected with") {
  Fixture f;
  // A WORKLOAD_SELECTOR policy only applies once the workload lists it.
  state::Policy selected = deny_port("selected", 80);
  selected.scope = state::PolicyScope::kWorkloadSelector;
  f.apply({selected});
  auto registration = f.track(80);
  CHECK(f.tracker.recheck(*f.store.snapshot()) == 0);

  f.apply({}, {server({"ns/selected"})});
  CHECK(f.tracker.recheck(*f.store.snapshot()) == 1);
  CHECK(registration.is_revoked());
}

TEST_CASE("revoked() completes when a re-check denies the connection, and beats a long copy") {
  Fixture f;
  testing::run_coro([&](asio::io_context& io) -> asio::awaitable<void> {
    using namespace asio::experimental::awaitable_operators;
    auto registration = f.tracker.track(io.get_executor(), connection_to(80),
                                        f.store.snapshot()->workload_by_uid(kUid), "test");
    // The policy lands while the "copy" (a long timer) is running.
    asio::steady_timer later(io, std::chrono::milliseconds(20));
    later.async_wait([&](boost::system::error_code) {
      f.apply({deny_port("no-80", 80)});
      f.tracker.recheck(*f.store.snapshot());
    });
    asio::steady_timer copy(io, std::chrono::seconds(10));
    const auto start = std::chrono::steady_clock::now();
    auto winner = co_await (copy.async_wait(asio::use_awaitable) || registration.revoked());
    CHECK(winner.index() == 1);
    CHECK(registration.is_revoked());
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
    // Revoked before the race started: completes at once.
    auto again = co_await (copy.async_wait(asio::use_awaitable) || registration.revoked());
    CHECK(again.index() == 1);
  });
}

TEST_CASE("revoked() of an allowed connection loses to its partner and reports no revocation") {
  Fixture f;
  testing::run_coro([&](asio::io_context& io) -> asio::awaitable<void> {
    using namespace asio::experimental::awaitable_operators;
    auto registration = f.tracker.track(io.get_executor(), connection_to(81),
                                        f.store.snapshot()->workload_by_uid(kUid), "test");
    f.apply({deny_port("no-80", 80)});
    CHECK(f.tracker.recheck(*f.store.snapshot()) == 0);
    asio::steady_timer copy(io, std::chrono::milliseconds(20));
    auto winner = co_await (copy.async_wait(asio::use_awaitable) || registration.revoked());
    CHECK(winner.index() == 0);
    CHECK_FALSE(registration.is_revoked());
    // An empty registration is never revoked either.
    ConnectionTracker::Registration none;
    asio::steady_timer short_copy(io, std::chrono::milliseconds(5));
    auto empty = co_await (short_copy.async_wait(asio::use_awaitable) || none.revoked());
    CHECK(empty.index() == 0);
  });
}

}  // namespace
}  // namespace ztunnel::proxy
