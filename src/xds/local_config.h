// Local config (LOCAL_XDS_PATH / LOCAL_XDS): Istio ztunnel's YAML format, read
// into the same xDS resources istiod would send, so one conversion path serves both.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "authorization.pb.h"
#include "core/error.h"
#include "state/store.h"
#include "workload.pb.h"

namespace ztunnel::xds {

// Endpoints written directly under a service's `endpoints:` key. xDS has no
// such field (endpoints come from workloads), so they travel beside the protos.
struct LocalEndpoint {
  std::string service_key;  // "namespace/hostname"
  std::string workload_uid;
  std::vector<std::pair<uint32_t, uint32_t>> ports;  // service port -> target port
  bool healthy = true;
};

// A parsed file: resources in file order, each with where it was written.
struct LocalConfig {
  std::vector<istio::workload::Workload> workloads;
  std::vector<std::string> workload_origins;  // "file:line:column"
  std::vector<istio::workload::Service> services;
  std::vector<std::string> service_origins;
  std::vector<LocalEndpoint> endpoints;
  std::vector<istio::security::Authorization> policies;
  std::vector<std::string> policy_origins;
};

// Parses YAML text. `origin` names the source in errors (a path, or
// "LOCAL_XDS"). Unknown keys, wrong types and bad values fail with the
// position of the offending node.
core::Result<LocalConfig> parse_local_config(std::string_view text, std::string_view origin);

// Reads and parses a file.
core::Result<LocalConfig> read_local_config(const std::string& path);

// Converts every resource with the xDS conversion rules into one update that
// replaces the whole state, as Istio's local client does on load.
core::Result<state::Update> to_state_update(const LocalConfig& config);

}  // namespace ztunnel::xds
