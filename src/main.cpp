// ztunnel entry point: `ztunnel [proxy|version|help]`; the only file outside the core library.
#include <cstdio>
#include <string_view>
#include <thread>

#include "app/app.h"
#include "app/memory.h"
#include "config/config.h"
#include "core/log.h"
#include "core/version.h"

namespace {

int usage_error(std::string_view command) {
  std::fprintf(stderr, "ztunnel: unknown command \"%.*s\"; try `ztunnel help`\n",
               static_cast<int>(command.size()), command.data());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ztunnel;
  const std::string_view command = argc > 1 ? argv[1] : "proxy";
  if (argc > 2) return usage_error(argv[2]);
  if (command == "version" || command == "--version") {
    std::printf("ztunnel-cpp %s (git %s, %s)\n", core::kVersion, core::kGitRevision, core::kBuildProfile);
    return 0;
  }
  if (command == "help" || command == "--help" || command == "-h") {
    std::fputs(config::help_text().c_str(), stdout);
    return 0;
  }
  if (command != "proxy") return usage_error(command);

  auto config = config::Config::from_env(config::Environment::from_process(),
                                         std::thread::hardware_concurrency());
  if (!config) {
    std::fprintf(stderr, "ztunnel: %s\n", config.error().message.c_str());
    return 1;
  }
  log::logger().set_format(config->log_format);
  log::logger().set_filter(*log::Filter::parse(config->log_filter));  // validated by from_env
  app::raise_fd_limit();
  app::tune_malloc();
  app::App app(std::move(*config));
  return app.run();
}
