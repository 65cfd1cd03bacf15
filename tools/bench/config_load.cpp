// Loads a local-config YAML the way App::load_local_config does (parse, convert,
// apply) and prints the CPU time and RSS of each phase, so the config-scale
// workload can be profiled (perf, callgrind) without starting a proxy.
//
//   build-bench/tools/bench/config_load FILE [repeat]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "state/store.h"
#include "xds/local_config.h"

namespace {

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE [repeat]\n", argv[0]);
    return 2;
  }
  const int repeat = argc > 2 ? std::atoi(argv[2]) : 1;
  for (int i = 0; i < repeat; ++i) {
    ztunnel::state::Store store;
    double t0 = cpu_seconds();
    auto parsed = ztunnel::xds::read_local_config(argv[1]);
    if (!parsed) {
      std::fprintf(stderr, "parse: %s\n", parsed.error().message.c_str());
      return 1;
    }
    double t1 = cpu_seconds();
    auto update = ztunnel::xds::to_state_update(*parsed);
    if (!update) {
      std::fprintf(stderr, "convert: %s\n", update.error().message.c_str());
      return 1;
    }
    double t2 = cpu_seconds();
    store.apply(std::move(*update));
    double t3 = cpu_seconds();
    auto snapshot = store.snapshot();
    std::printf("parse %.3f s, convert %.3f s, apply %.3f s, total %.3f CPU-s; RSS %.1f MiB; "
                "workloads=%zu services=%zu policies=%zu\n",
                t1 - t0, t2 - t1, t3 - t2, t3 - t0, rss_mib(), snapshot->workload_count(),
                snapshot->service_count(), snapshot->policy_count());
  }
  return 0;
}
