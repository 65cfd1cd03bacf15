// FileCertificateProvider: loads Istio's file layout, reloads on change, keeps the last good.
#include "identity/file_provider.h"

#include <boost/asio/io_context.hpp>

#include <filesystem>

#include "support/cert_fixtures.h"
#include "support/testing.h"

namespace ztunnel::identity {
namespace {

using namespace std::chrono_literals;
using testing::spiffe;
using testing::TempDir;
using testing::TestCa;
namespace fs = std::filesystem;

// Writes a certificate set in Istio's layout, in place (same inodes), and
// moves each mtime forward so a rewrite within one clock tick still shows.
void write_set(const TempDir& dir, const std::string& chain, const std::string& key,
               const std::string& roots) {
  static auto stamp = fs::file_time_type::clock::now();
  stamp += 1s;
  for (auto [name, content] : {std::pair{"cert-chain.pem", &chain}, std::pair{"key.pem", &key},
                               std::pair{"root-cert.pem", &roots}}) {
    fs::last_write_time(dir.write(name, *content), stamp);
  }
}

void write_leaf(const TempDir& dir, const TestCa& ca, const std::string& id) {
  auto leaf = ca.issue(id);
  write_set(dir, leaf.cert_pem(), leaf.key_pem(), ca.root_pem());
}

state::Identity parse(const std::string& id) { return *state::Identity::parse(id); }

TEST_CASE("the file provider serves the identity found in Istio's three files") {
  TestCa ca = TestCa::root();
  TempDir dir;
  write_leaf(dir, ca, spiffe("vm", "node-a"));
  auto provider = FileCertificateProvider::create(CertificateFiles::in_directory(dir.path()));
  REQUIRE(provider);
  auto cert = (*provider)->fetch(parse(spiffe("vm", "node-a")));
  REQUIRE(cert);
  CHECK((*cert)->identity().service_account == "node-a");
  auto other = (*provider)->fetch(parse(spiffe("vm", "node-b")));
  REQUIRE_FALSE(other);
  CHECK(other.error().message.find("node-a") != std::string::npos);
}

TEST_CASE("a missing or invalid file set is a start-up error naming the file") {
  TempDir dir;
  auto missing = FileCertificateProvider::create(CertificateFiles::in_directory(dir.path()));
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message.find("cert-chain.pem") != std::string::npos);

  TestCa ca = TestCa::root();
  auto leaf = ca.issue(spiffe("vm", "node-a"));
  write_set(dir, leaf.cert_pem(), "garbage", ca.root_pem());
  auto bad_key = FileCertificateProvider::create(CertificateFiles::in_directory(dir.path()));
  REQUIRE_FALSE(bad_key);
  CHECK(bad_key.error().message.find("private key") != std::string::npos);
}

TEST_CASE("the file provider reloads rewritten files and announces the rotation") {
  TestCa ca = TestCa::root();
  TempDir dir;
  write_leaf(dir, ca, spiffe("vm", "node-a"));
  auto provider = *FileCertificateProvider::create(CertificateFiles::in_directory(dir.path()));
  CertPtr before = provider->current();
  std::vector<CertPtr> rotated;
  auto subscription =
      provider->on_rotation([&](const state::Identity&, const CertPtr& c) { rotated.push_back(c); });

  CHECK_FALSE(provider->poll());  // nothing changed
  write_leaf(dir, ca, spiffe("vm", "node-a"));
  CHECK(provider->poll());
  CHECK(provider->current() != before);
  REQUIRE(rotated.size() == 1);
  CHECK(rotated[0] == provider->current());
  CHECK_FALSE(provider->poll());
}

TEST_CASE("a broken rewrite keeps the previous certificate until the files are fixed") {
  TestCa ca = TestCa::root();
  TempDir dir;
  auto leaf = ca.issue(spiffe("vm", "node-a"));
  write_set(dir, leaf.cert_pem(), leaf.key_pem(), ca.root_pem());
  auto provider = *FileCertificateProvider::create(CertificateFiles::in_directory(dir.path()));
  CertPtr good = provider->current();

  // Half-way through a rotation: new chain, old key.
  auto next = ca.issue(spiffe("vm", "node-a"));
  write_set(dir, next.cert_pem(), leaf.key_pem(), ca.root_pem());
  CHECK_FALSE(provider->poll());
  CHECK(provider->current() == good);
  CHECK(provider->fetch(good->identity()));

  write_set(dir, "garbage", "garbage", "garbage");
  CHECK_FALSE(provider->poll());
  CHECK(provider->current() == good);

  write_set(dir, next.cert_pem(), next.key_pem(), ca.root_pem());
  CHECK(provider->poll());
  CHECK(provider->current() != good);
}

TEST_CASE("a symlink swap, as Kubernetes secret volumes do, is picked up") {
  TestCa ca = TestCa::root();
  TempDir dir;
  fs::create_directories(dir.path() / "v1");
  fs::create_directories(dir.path() / "v2");
  for (auto [version, sa] : {std::pair{"v1", "one"}, std::pair{"v2", "two"}}) {
    auto leaf = ca.issue(spiffe("vm", sa));
    dir.write(std::string(version) + "/cert-chain.pem", leaf.cert_pem());
    dir.write(std::string(version) + "/key.pem", leaf.key_pem());
    dir.write(std::string(version) + "/root-cert.pem", ca.root_pem());
  }
  fs::create_directory_symlink("v1", dir.path() / "data");
  auto provider =
      *FileCertificateProvider::create(CertificateFiles::in_directory(dir.path() / "data"));
  CHECK(provider->current()->identity().service_account == "one");

  fs::create_directory_symlink("v2", dir.path() / "data.new");
  fs::rename(dir.path() / "data.new", dir.path() / "data");
  CHECK(provider->poll());
  CHECK(provider->current()->identity().service_account == "two");
}

TEST_CASE("start polls on the executor until the provider is stopped") {
  TestCa ca = TestCa::root();
  TempDir dir;
  write_leaf(dir, ca, spiffe("vm", "node-a"));
  auto provider = *FileCertificateProvider::create(CertificateFiles::in_directory(dir.path()));
  CertPtr before = provider->current();

  boost::asio::io_context io;
  provider->start(io.get_executor(), 10ms);
  write_leaf(dir, ca, spiffe("vm", "node-a"));
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (provider->current() == before && std::chrono::steady_clock::now() < deadline) {
    io.run_one_for(50ms);
  }
  CHECK(provider->current() != before);

  provider->stop();
  io.run_for(50ms);  // the loop notices the stop at its next tick and ends
  CHECK(io.stopped());
}

}  // namespace
}  // namespace ztunnel::identity
