// Workloads and policies the proxy tests stand up again and again.
#pragma once

#include <boost/asio/ip/address.hpp>

#include <cstdint>
#include <string>
#include <utility>

#include "state/types.h"

namespace ztunnel::testing {

// vms/local: the HBONE workload a dedicated-mode test proxy runs as, at
// `address` (loopback by default), service account "local", trust domain
// cluster.local.
inline state::Workload local_hbone_workload(
    boost::asio::ip::address address = boost::asio::ip::make_address("127.0.0.1")) {
  state::Workload local;
  local.uid = "vms/local";
  local.name = "local";
  local.namespace_ = "vms";
  local.service_account = "local";
  local.trust_domain = "cluster.local";
  local.protocol = state::Protocol::kHbone;
  local.addresses = {address};
  return local;
}

// A namespace-scoped AuthorizationPolicy in `ns` that denies destination `port`.
inline state::Policy namespace_deny_of_port(std::string name, std::string ns, uint16_t port) {
  state::Policy deny;
  deny.name = std::move(name);
  deny.namespace_ = std::move(ns);
  deny.scope = state::PolicyScope::kNamespace;
  deny.action = state::PolicyAction::kDeny;
  state::Match match;
  match.destination_ports = {port};
  deny.rules = {state::Rule{{state::Clause{{match}}}}};
  return deny;
}

}  // namespace ztunnel::testing
