// ztunnel-certs: durations, init-ca and issue into the layout the file provider reads.
#include "identity/certs_tool.h"

#include <sys/stat.h>

#include <array>
#include <vector>

#include "identity/builtin_ca.h"
#include "identity/file_provider.h"
#include "support/cert_fixtures.h"
#include "support/testing.h"

namespace ztunnel::identity::certs_tool {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

TEST_CASE("durations parse Go-style units") {
  CHECK(*parse_duration("720h") == 720h);
  CHECK(*parse_duration("1h30m") == 90min);
  CHECK(*parse_duration("90s") == 90s);
  CHECK(*parse_duration("30d") == 24h * 30);
  for (const char* bad : {"", "h", "10", "10x", "-5h", "1.5h", "1h 30m", "9999999999h"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_duration(bad));
  }
}

int mode_of(const std::filesystem::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

TEST_CASE("init-ca then issue writes certificates the file provider loads") {
  TempDir dir;
  auto ca_dir = dir.path() / "ca";
  auto out = dir.path() / "node-a";
  auto init = init_ca({ca_dir, "example.org"});
  REQUIRE(init);
  CHECK(mode_of(ca_dir / "ca-key.pem") == 0600);
  CHECK(mode_of(ca_dir / "ca-cert.pem") == 0644);

  auto issued = issue({ca_dir, "spiffe://example.org/ns/vm/sa/node-a", out, 720h});
  REQUIRE(issued);
  CHECK(issued->find("spiffe://example.org/ns/vm/sa/node-a") != std::string::npos);
  CHECK(mode_of(out / "key.pem") == 0600);

  auto provider = FileCertificateProvider::create(CertificateFiles::in_directory(out));
  REQUIRE(provider);
  auto cert = (*provider)->current();
  CHECK(cert->identity() == state::Identity{"example.org", "vm", "node-a"});
  CHECK(cert->not_after() - cert->not_before() >= 720h);
  CHECK(cert->not_after() - cert->not_before() <= 720h + kBackdate + 1s);
  CHECK(cert->roots_pem() == BuiltinCa::from_files(ca_dir / "ca-cert.pem",
                                                   ca_dir / "ca-key.pem")
                                 .value()
                                 ->root_pem());
}

TEST_CASE("init-ca refuses to replace an existing CA without --force") {
  TempDir dir;
  REQUIRE(init_ca({dir.path(), "cluster.local"}));
  auto again = init_ca({dir.path(), "cluster.local"});
  REQUIRE_FALSE(again);
  CHECK(again.error().message.find("--force") != std::string::npos);
  InitCaOptions forced{dir.path(), "cluster.local"};
  forced.force = true;
  CHECK(init_ca(forced));
}

TEST_CASE("issue refuses an invalid identity and a missing CA") {
  TempDir dir;
  REQUIRE(init_ca({dir.path() / "ca", "cluster.local"}));
  CHECK_FALSE(issue({dir.path() / "ca", "spiffe://cluster.local/ns/a/sa/b/c", dir.path() / "o"}));
  CHECK_FALSE(issue({dir.path() / "nope", "spiffe://cluster.local/ns/a/sa/b", dir.path() / "o"}));
  CHECK_FALSE(std::filesystem::exists(dir.path() / "o" / "key.pem"));
}

TEST_CASE("the command line parses flags in both forms and reports misuse with usage") {
  TempDir dir;
  std::string ca = (dir.path() / "ca").string();
  std::string out = (dir.path() / "out").string();
  std::vector<std::string_view> init{"init-ca", "--dir", ca, "--trust-domain=td.example"};
  REQUIRE(run(init));
  std::string ca_flag = "--ca-dir=" + ca;
  std::vector<std::string_view> issue_args{"issue", ca_flag, "--identity",
                                           "spiffe://td.example/ns/n/sa/s", "--out", out,
                                           "--ttl", "2h"};
  auto issued = run(issue_args);
  REQUIRE(issued);
  CHECK(std::filesystem::exists(dir.path() / "out" / "cert-chain.pem"));

  for (std::vector<std::string_view> bad :
       {std::vector<std::string_view>{}, {"frobnicate"}, {"init-ca"}, {"init-ca", "--dir"},
        {"init-ca", "--dir", ca, "--bogus", "1"}, {"issue", "--ca-dir", ca},
        {"issue", ca_flag, "--identity", "spiffe://td.example/ns/n/sa/s", "--out", out, "--ttl",
         "soon"}}) {
    auto r = run(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("usage") != std::string::npos);
  }
}

}  // namespace
}  // namespace ztunnel::identity::certs_tool
