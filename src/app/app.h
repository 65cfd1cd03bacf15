// Wiring: turns a Config into running servers and waits for shutdown.
//
// Threading: run() owns the main thread and its io_context (admin side: signals,
// state loading). Data-plane workers arrive with the proxy listeners.
#pragma once

#include <memory>

#include "config/config.h"
#include "core/error.h"
#include "state/store.h"

namespace ztunnel::app {

class App {
 public:
  explicit App(config::Config config);

  // Loads the initial state (local config file), then serves until SIGINT or
  // SIGTERM. Returns the process exit code; start-up failures are logged.
  int run();

  // Reads LOCAL_XDS / LOCAL_XDS_PATH into the store; exposed for tests.
  core::Result<void> load_local_config();

  const state::Store& store() const { return store_; }

 private:
  const config::Config config_;
  state::Store store_;
};

// Raises the soft open-file limit to the hard limit: a node proxy holds two
// sockets per proxied connection and the default 1024 runs out fast.
void raise_fd_limit();

}  // namespace ztunnel::app
