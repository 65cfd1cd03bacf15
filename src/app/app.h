// Wiring: turns a Config into running servers and waits for shutdown.
//
// Threading: run() owns the main thread and its io_context (admin side: signals,
// state loading, certificate renewal). The data plane runs on
// config.worker_threads workers (app/workers.h), each with its own copy of
// the listeners and its own HBONE pool.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "app/workers.h"
#include "config/config.h"
#include "core/error.h"
#include "identity/provider.h"
#include "state/store.h"

namespace ztunnel::proxy {
class Outbound;
class Inbound;
class InboundPlaintext;
}  // namespace ztunnel::proxy

namespace ztunnel::app {

class App {
 public:
  explicit App(config::Config config);

  // Loads the initial state (local config file), then serves until SIGINT or
  // SIGTERM. Returns the process exit code; start-up failures are logged.
  int run();

  // Reads LOCAL_XDS / LOCAL_XDS_PATH into the store; exposed for tests.
  core::Result<void> load_local_config();
  // The same, as a replace-all update of a running store; on any error the
  // store is left untouched. `event` completes the log line ("reloaded").
  core::Result<void> apply_local_config(std::string_view event);

  const state::Store& store() const { return store_; }

 private:
  // ZTUNNEL_CERT_DIR, ZTUNNEL_CA_DIR or FAKE_CA, in that order.
  core::Result<std::shared_ptr<identity::CertificateProvider>> make_certificate_provider(
      boost::asio::any_io_executor executor);
  // The listeners of dedicated mode on one worker (each worker has its own).
  struct DedicatedProxy {
    std::shared_ptr<proxy::Outbound> outbound;             // 15001
    std::shared_ptr<proxy::Inbound> inbound;               // 15008 (HBONE)
    std::shared_ptr<proxy::InboundPlaintext> plaintext;    // 15006
    void stop();
  };
  // One DedicatedProxy per worker, listeners in SO_REUSEPORT groups.
  core::Result<std::vector<DedicatedProxy>> start_dedicated_proxy(
      Workers& workers, std::shared_ptr<identity::CertificateProvider> certificates);
  // Re-reads LOCAL_XDS_PATH on every SIGHUP until the io_context stops.
  boost::asio::awaitable<void> reload_on_sighup();

  const config::Config config_;
  state::Store store_;
};

// Raises the soft open-file limit to the hard limit: a node proxy holds two
// sockets per proxied connection and the default 1024 runs out fast.
void raise_fd_limit();

}  // namespace ztunnel::app
