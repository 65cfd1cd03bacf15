// Unit tests for log filters and line rendering.
#include "core/log.h"

#include <atomic>
#include <thread>

#include "support/testing.h"

namespace ztunnel::log {

TEST_CASE("a bare level sets the default for every target") {
  auto f = Filter::parse("debug");
  REQUIRE(f);
  CHECK(f->level_for("xds") == Level::kDebug);
  CHECK(f->level_for("") == Level::kDebug);
}

TEST_CASE("target directives override the default, longest prefix first") {
  auto f = Filter::parse("warn,xds=debug,xds::client=trace,access=off");
  REQUIRE(f);
  CHECK(f->level_for("proxy") == Level::kWarn);
  CHECK(f->level_for("xds") == Level::kDebug);
  CHECK(f->level_for("xds::client") == Level::kTrace);
  CHECK(f->level_for("xds.other") == Level::kDebug);
  CHECK(f->level_for("xdsx") == Level::kWarn);
  CHECK(f->level_for("access") == Level::kOff);
  CHECK(f->most_verbose() == Level::kTrace);
}

TEST_CASE("Istio's default RUST_LOG string parses") {
  auto f = Filter::parse("hickory_server::server=off,info");
  REQUIRE(f);
  CHECK(f->level_for("hickory_server::server") == Level::kOff);
  CHECK(f->level_for("proxy") == Level::kInfo);
}

TEST_CASE("a bad level in a filter is an error naming it") {
  auto f = Filter::parse("xds=loud");
  REQUIRE_FALSE(f);
  CHECK(f.error().message.find("loud") != std::string::npos);
  CHECK_FALSE(Filter::parse("=debug"));
}

TEST_CASE("levels and formats parse case-insensitively where Istio allows") {
  CHECK(*parse_level("WARN") == Level::kWarn);
  CHECK(*parse_level("warning") == Level::kWarn);
  CHECK(*parse_format("json") == Format::kJson);
  CHECK(*parse_format("plain") == Format::kPlain);
  CHECK_FALSE(parse_format("xml"));
}

TEST_CASE("JSON lines escape values and carry scope, level and fields") {
  Logger l;
  l.set_format(Format::kJson);
  std::string line = l.render(Level::kInfo, "access", "connection \"complete\"",
                              {{"src.addr", "10.0.0.1:80"}, {"note", "a\nb"}});
  CHECK(line.starts_with("{\"level\":\"info\",\"time\":\""));
  CHECK(line.find("\"scope\":\"access\"") != std::string::npos);
  CHECK(line.find("\"message\":\"connection \\\"complete\\\"\"") != std::string::npos);
  CHECK(line.find("\"src.addr\":\"10.0.0.1:80\"") != std::string::npos);
  CHECK(line.find("\"note\":\"a\\nb\"") != std::string::npos);
  CHECK(line.ends_with("}\n"));
}

TEST_CASE("plain lines quote only ambiguous values") {
  Logger l;
  std::string line = l.render(Level::kWarn, "proxy", "denied", {{"a", "x"}, {"b", "two words"}});
  CHECK(line.find("\twarn\tproxy\tdenied a=x b=\"two words\"\n") != std::string::npos);
}

TEST_CASE("the logger's filter can be swapped at runtime") {
  Logger l;
  CHECK_FALSE(l.enabled(Level::kDebug, "xds"));
  l.set_filter(*Filter::parse("info,xds=debug"));
  CHECK(l.enabled(Level::kDebug, "xds"));
  CHECK_FALSE(l.enabled(Level::kDebug, "proxy"));
  CHECK(l.filter()->spec() == "info,xds=debug");
}

TEST_CASE("enabled() reads filters while another thread swaps them, and sees the last one") {
  // Run under AddressSanitizer in CI: a reader that kept a swapped-out
  // filter past its life would be reported there.
  Logger l;
  const Filter debug_xds = *Filter::parse("warn,xds=debug");
  const Filter quiet_xds = *Filter::parse("debug,xds=error");
  std::atomic<bool> done{false};
  std::thread swapper([&] {
    for (int i = 0; i < 2000; ++i) l.set_filter(i % 2 ? debug_xds : quiet_xds);
    done = true;
  });
  int reads = 0;
  while (!done.load() || reads == 0) {
    (void)l.enabled(Level::kDebug, "xds");
    (void)l.enabled(Level::kInfo, "proxy");
    ++reads;
  }
  swapper.join();
  CHECK(reads > 0);
  CHECK(l.filter()->spec() == "warn,xds=debug");
  CHECK(l.enabled(Level::kDebug, "xds"));
  CHECK_FALSE(l.enabled(Level::kInfo, "proxy"));
}

}  // namespace ztunnel::log
