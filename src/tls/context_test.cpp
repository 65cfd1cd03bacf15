// ClientContextCache: one client context per local identity, rebuilt on rotation.
#include "tls/context.h"

#include "support/cert_fixtures.h"
#include "support/testing.h"

namespace ztunnel::tls {
namespace {

using testing::spiffe;
using testing::TestCa;

TEST_CASE("the client context cache hands out one context per identity and certificate") {
  TestCa ca = TestCa::root();
  auto cert = testing::workload(ca, spiffe("frontend", "client-sa"));
  ClientContextCache cache;
  auto first = cache.get(cert);
  auto second = cache.get(cert);
  REQUIRE(first);
  REQUIRE(second);
  CHECK(*first == *second);
  CHECK((*first)->certificate() == cert);
  CHECK(cache.size() == 1);
}

TEST_CASE("a rotated certificate gets a new client context and the old one is not reused") {
  TestCa ca = TestCa::root();
  auto old_cert = testing::workload(ca, spiffe("frontend", "client-sa"));
  auto new_cert = testing::workload(ca, spiffe("frontend", "client-sa"));
  ClientContextCache cache;
  auto before = cache.get(old_cert);
  auto after = cache.get(new_cert);
  REQUIRE(before);
  REQUIRE(after);
  CHECK(*before != *after);
  CHECK((*after)->certificate() == new_cert);
  CHECK(cache.size() == 1);
  auto again = cache.get(new_cert);
  REQUIRE(again);
  CHECK(*again == *after);
}

TEST_CASE("client contexts of different identities are kept apart") {
  TestCa ca = TestCa::root();
  auto a = testing::workload(ca, spiffe("ns", "a"));
  auto b = testing::workload(ca, spiffe("ns", "b"));
  ClientContextCache cache;
  auto ctx_a = cache.get(a);
  auto ctx_b = cache.get(b);
  REQUIRE(ctx_a);
  REQUIRE(ctx_b);
  CHECK(*ctx_a != *ctx_b);
  CHECK((*ctx_b)->certificate() == b);
  CHECK(cache.size() == 2);
}

TEST_CASE("an identity whose certificate expired is dropped when another one is added") {
  TestCa ca = TestCa::root();
  auto gone = testing::workload(ca, spiffe("ns", "gone"));
  auto live = testing::workload(ca, spiffe("ns", "live"));
  TimePoint now = std::chrono::system_clock::now();
  TlsOptions options;
  options.clock = [&now] { return now; };
  ClientContextCache cache(options);
  REQUIRE(cache.get(gone));
  now = gone->not_after() + std::chrono::hours(1);
  REQUIRE(cache.get(live));
  // `live` expired as well by this clock, but the entry just built stays.
  CHECK(cache.size() == 1);
}

TEST_CASE("the client context cache refuses a missing certificate") {
  ClientContextCache cache;
  CHECK_FALSE(cache.get(nullptr));
}

}  // namespace
}  // namespace ztunnel::tls
