// Unit tests for the App's local config loading: the initial load and the SIGHUP reload path.
#include "app/app.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "support/testing.h"

namespace ztunnel::app {
namespace {

// A LOCAL_XDS_PATH file in a fresh temporary directory.
struct ConfigFile {
  std::string dir;
  std::string path;
  ConfigFile() {
    char pattern[] = "/tmp/ztunnel-app-test-XXXXXX";
    REQUIRE(::mkdtemp(pattern) != nullptr);
    dir = pattern;
    path = dir + "/config.yaml";
  }
  ~ConfigFile() {
    ::unlink(path.c_str());
    ::rmdir(dir.c_str());
  }
  void write(const std::string& text) const { std::ofstream(path) << text; }
};

constexpr const char* kOnePolicy = R"(workloads:
- {uid: vms/a, name: a, namespace: vms, workloadIps: [10.0.0.1]}
policies:
- {name: deny, namespace: vms, scope: Namespace, action: Deny, rules: [[[{destinationPorts: [80]}]]]}
)";

config::Config config_for(const ConfigFile& file) {
  config::Config c;
  c.local_xds = config::LocalXds{config::LocalXds::Kind::kFile, file.path};
  return c;
}

TEST_CASE("a reload replaces the whole state with the file's new contents") {
  ConfigFile file;
  file.write(kOnePolicy);
  App app(config_for(file));
  REQUIRE(app.load_local_config());
  CHECK(app.store().snapshot()->policy_count() == 1);

  file.write("workloads:\n- {uid: vms/b, name: b, namespace: vms, workloadIps: [10.0.0.2]}\n");
  REQUIRE(app.apply_local_config("reloaded"));
  auto snapshot = app.store().snapshot();
  CHECK(snapshot->policy_count() == 0);
  CHECK(snapshot->workload_by_uid("vms/a") == nullptr);  // replaced, not merged
  CHECK(snapshot->workload_by_uid("vms/b") != nullptr);
}

TEST_CASE("a reload of a broken file fails and leaves the running state untouched") {
  ConfigFile file;
  file.write(kOnePolicy);
  App app(config_for(file));
  REQUIRE(app.load_local_config());
  const auto before = app.store().snapshot();

  file.write("policies: [[[not yaml\n");
  CHECK_FALSE(app.apply_local_config("reloaded"));
  // Valid YAML that fails conversion (a policy defined twice) is refused too.
  file.write(std::string(kOnePolicy) +
             "- {name: deny, namespace: vms, scope: Namespace, action: Allow}\n");
  CHECK_FALSE(app.apply_local_config("reloaded"));
  CHECK(app.store().snapshot() == before);  // not even an empty apply
}

}  // namespace
}  // namespace ztunnel::app
