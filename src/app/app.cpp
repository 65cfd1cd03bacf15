// App: start-up sequence and the wait for a termination signal.
#include "app/app.h"

#include <sys/resource.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>

#include "core/log.h"
#include "core/version.h"
#include "xds/local_config.h"

namespace ztunnel::app {

App::App(config::Config config) : config_(std::move(config)) {}

core::Result<void> App::load_local_config() {
  if (!config_.local_xds) return {};
  const config::LocalXds& source = *config_.local_xds;
  auto parsed = source.kind == config::LocalXds::Kind::kFile
                    ? xds::read_local_config(source.value)
                    : xds::parse_local_config(source.value, "LOCAL_XDS");
  if (!parsed) return parsed.error();
  auto update = xds::to_state_update(*parsed);
  if (!update) return update.error();
  store_.apply(std::move(*update));
  auto snapshot = store_.snapshot();
  log::logger().write(log::Level::kInfo, "xds", "local config initialized",
                      {{"workloads", std::to_string(snapshot->workload_count())},
                       {"services", std::to_string(snapshot->service_count())},
                       {"policies", std::to_string(snapshot->policy_count())}});
  return {};
}

int App::run() {
  log::info("app", "starting ztunnel-cpp {} ({}, {})", core::kVersion, core::kGitRevision,
            core::kBuildProfile);
  log::info("app", "configuration:\n{}", config_.describe());

  if (auto loaded = load_local_config(); !loaded) {
    log::error("app", "failed to load local config: {}", loaded.error().message);
    return 1;
  }
  if (config_.xds_address) {
    log::warn("xds", "XDS_ADDRESS={} is set but this build has no xDS client yet; "
              "set XDS_ADDRESS=\"\" and use LOCAL_XDS_PATH", *config_.xds_address);
  }
  log::warn("app", "proxy listeners are not implemented yet: running in local-config mode only");

  boost::asio::io_context main_context;
  boost::asio::signal_set signals(main_context, SIGINT, SIGTERM);
  int exit_code = 0;
  signals.async_wait([&](const boost::system::error_code& ec, int signal_number) {
    if (ec) {
      exit_code = 1;
      return;
    }
    log::info("app", "received signal {}, shutting down", signal_number);
  });
  log::info("app", "ready");
  main_context.run();
  return exit_code;
}

void raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur >= limit.rlim_max) return;
  const rlim_t before = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) == 0) {
    log::debug("app", "raised open file limit from {} to {}", before, limit.rlim_cur);
  }
}

}  // namespace ztunnel::app
