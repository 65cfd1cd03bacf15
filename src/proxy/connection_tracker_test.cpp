// Unit tests for the connection tracker: registration lifetime, and re-checks that revoke only
// what the new snapshot denies.
#include "proxy/connection_tracker.h"

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <utility>
#include <variant>

#include "net/copy.h"
#include "net/socket.h"
#include "support/run_coro.h"
#include "support/workloads.h"

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
  return testing::namespace_deny_of_port(std::move(name), "ns", port);
}

AuthorizationRequest request_to(uint16_t port, state::WorkloadPtr destination) {
  AuthorizationRequest r;
  r.source_identity = state::Identity{"cluster.local", "ns", "client"};
  r.source = asio::ip::tcp::endpoint(asio::ip::make_address("10.0.0.1"), 40000);
  r.destination = asio::ip::tcp::endpoint(asio::ip::make_address("10.0.0.2"), port);
  r.destination_workload = std::move(destination);
  return r;
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
    return tracker.track(request_to(port, store.snapshot()->workload_by_uid(kUid)));
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

TEST_CASE("a revocation runs the connection's close callback; an allowed connection's never runs") {
  Fixture f;
  auto denied = f.track(80);
  auto allowed = f.track(81);
  int denied_closes = 0;
  int allowed_closes = 0;
  denied.on_revoke([&] { ++denied_closes; });
  allowed.on_revoke([&] { ++allowed_closes; });
  f.apply({deny_port("no-80", 80)});
  CHECK(f.tracker.recheck(*f.store.snapshot()) == 1);
  CHECK(denied_closes == 1);
  CHECK(allowed_closes == 0);
  // A later re-check does not close it again.
  CHECK(f.tracker.recheck(*f.store.snapshot()) == 0);
  CHECK(denied_closes == 1);
}

TEST_CASE("a callback handed over after the revocation runs at once; an empty registration ignores it") {
  Fixture f;
  auto late = f.track(80);
  f.apply({deny_port("no-80", 80)});
  CHECK(f.tracker.recheck(*f.store.snapshot()) == 1);
  int closes = 0;
  late.on_revoke([&] { ++closes; });
  CHECK(closes == 1);
  ConnectionTracker::Registration none;
  none.on_revoke([&] { ++closes; });
  CHECK(closes == 1);
  CHECK_FALSE(none.is_revoked());
}

TEST_CASE("a close that ends another tracked connection does not break the re-check") {
  Fixture f;
  auto first = std::make_unique<ConnectionTracker::Registration>(f.track(80));
  auto second = std::make_unique<ConnectionTracker::Registration>(f.track(80));
  int closes = 0;
  // Whichever is closed first destroys the other's registration, as a
  // connection ending synchronously would.
  first->on_revoke([&] { ++closes; second.reset(); });
  second->on_revoke([&] { ++closes; first.reset(); });
  f.apply({deny_port("no-80", 80)});
  CHECK(f.tracker.recheck(*f.store.snapshot()) == 2);
  CHECK(closes == 1);
  CHECK(f.tracker.size() == 1);
}

TEST_CASE("revoking a live copy ends it: both sockets aborted, the copy returns its counts") {
  Fixture f;
  testing::run_coro([&](asio::io_context& io) -> asio::awaitable<void> {
    // Two connected pairs stand in for client<->proxy and proxy<->server.
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    asio::ip::tcp::socket client(io), server(io);
    asio::ip::tcp::socket downstream(io), upstream(io);
    co_await client.async_connect(acceptor.local_endpoint(), asio::use_awaitable);
    downstream = co_await acceptor.async_accept(asio::use_awaitable);
    co_await upstream.async_connect(acceptor.local_endpoint(), asio::use_awaitable);
    server = co_await acceptor.async_accept(asio::use_awaitable);

    auto registration = f.track(80);
    registration.on_revoke([&] {
      net::abort(downstream);
      net::abort(upstream);
    });
    co_await asio::async_write(client, asio::buffer("ping", 4), asio::use_awaitable);
    // The policy lands while the copy runs.
    asio::steady_timer later(io, std::chrono::milliseconds(20));
    later.async_wait([&](boost::system::error_code) {
      f.apply({deny_port("no-80", 80)});
      f.tracker.recheck(*f.store.snapshot());
    });
    const auto start = std::chrono::steady_clock::now();
    const net::CopyResult copied = co_await net::copy_bidirectional(downstream, upstream);
    CHECK(registration.is_revoked());
    CHECK(copied.a_to_b == 4);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  });
}

}  // namespace
}  // namespace ztunnel::proxy
