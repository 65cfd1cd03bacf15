// App: start-up sequence and the wait for a termination signal.
#include "app/app.h"

#include <sys/resource.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <string_view>

#include "app/memory.h"
#include "app/workers.h"
#include "core/log.h"
#include "core/version.h"
#include "identity/builtin_ca.h"
#include "identity/file_provider.h"
#include "net/socket.h"
#include "proxy/authorization.h"
#include "proxy/connection_tracker.h"
#include "proxy/hbone_address.h"
#include "proxy/inbound.h"
#include "proxy/inbound_plaintext.h"
#include "proxy/outbound.h"
#include "proxy/pool.h"
#include "rbac/rbac.h"
#include "xds/local_config.h"

namespace ztunnel::app {

App::App(config::Config config) : config_(std::move(config)) {}

core::Result<void> App::load_local_config() { return apply_local_config("initialized"); }

core::Result<void> App::apply_local_config(std::string_view event) {
  if (!config_.local_xds) return {};
  const config::LocalXds& source = *config_.local_xds;
  auto parsed = source.kind == config::LocalXds::Kind::kFile
                    ? xds::read_local_config(source.value)
                    : xds::parse_local_config(source.value, "LOCAL_XDS");
  if (!parsed) return parsed.error();
  auto update = xds::to_state_update(*parsed);
  if (!update) return update.error();
  // Parsing and conversion are done before anything is applied, so a bad
  // file leaves the running state exactly as it was.
  store_.apply(std::move(*update));
  auto snapshot = store_.snapshot();
  log::logger().write(log::Level::kInfo, "xds", fmt::format("local config {}", event),
                      {{"workloads", std::to_string(snapshot->workload_count())},
                       {"services", std::to_string(snapshot->service_count())},
                       {"policies", std::to_string(snapshot->policy_count())}});
  return {};
}

boost::asio::awaitable<void> App::reload_on_sighup() {
  // Our extension: Istio reads local config once. SIGHUP lets an operator
  // without a control plane change workloads and policies at run time.
  boost::asio::signal_set hangup(co_await boost::asio::this_coro::executor, SIGHUP);
  for (;;) {
    auto [ec, signal_number] =
        co_await hangup.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec) co_return;
    if (!config_.local_xds || config_.local_xds->kind != config::LocalXds::Kind::kFile) {
      log::warn("xds", "SIGHUP: no LOCAL_XDS_PATH to reload");
      continue;
    }
    if (auto reloaded = apply_local_config("reloaded"); !reloaded) {
      log::error("xds", "SIGHUP: local config {} not reloaded, keeping the current state: {}",
                 config_.local_xds->value, reloaded.error().message);
    }
  }
}

int App::run() {
  // SIGHUP reloads the local config once the main loop runs; until then its
  // default action would kill a process that is still starting.
  std::signal(SIGHUP, SIG_IGN);
  log::info("app", "starting ztunnel-cpp {} ({}, {})", core::kVersion, core::kGitRevision,
            core::kBuildProfile);
  log::info("app", "configuration:\n{}", config_.describe());

  if (auto loaded = load_local_config(); !loaded) {
    log::error("app", "failed to load local config: {}", loaded.error().message);
    return 1;
  }
  // The YAML tree and protos of the load are gone; their pages would stay resident.
  release_free_memory();
  if (config_.xds_address) {
    log::warn("xds", "XDS_ADDRESS={} is set but this build has no xDS client yet; "
              "set XDS_ADDRESS=\"\" and use LOCAL_XDS_PATH", *config_.xds_address);
  }
  boost::asio::io_context main_context;
  // The data plane (STYLE.md "Threads"): each worker owns a copy of the
  // listeners, its HBONE pool and every connection it accepts. Declared
  // before the listeners, so they are destroyed first.
  Workers workers(std::max<uint32_t>(config_.worker_threads, 1));
  std::vector<DedicatedProxy> listeners;
  std::shared_ptr<identity::CertificateProvider> certificates;
  const bool proxy_on = config_.proxy_enabled && config_.proxy_mode == config::ProxyMode::kDedicated;
  if (config_.proxy_enabled && !proxy_on) {
    log::warn("app", "shared (in-pod) mode is not implemented yet: no proxy listeners");
  }
  if (proxy_on) {
    auto provider = make_certificate_provider(main_context.get_executor());
    if (!provider) {
      log::error("app", "{}", provider.error().message);
      return 1;
    }
    certificates = *provider;
    auto started = start_dedicated_proxy(workers, certificates);
    if (!started) {
      log::error("app", "{}", started.error().message);
      return 1;
    }
    listeners = std::move(*started);
  }
  workers.start();

  boost::asio::signal_set signals(main_context, SIGINT, SIGTERM);
  int exit_code = 0;
  signals.async_wait([&](const boost::system::error_code& ec, int signal_number) {
    if (ec) {
      exit_code = 1;
      return;
    }
    log::info("app", "received signal {}, shutting down", signal_number);
    // Certificate renewal loops also run here: stop rather than wait for them.
    main_context.stop();
  });
  boost::asio::co_spawn(main_context, reload_on_sighup(), boost::asio::detached);
  // Closed connections leave free chunks among live ones; give them back,
  // with the reactor state each worker kept for their sockets.
  std::vector<boost::asio::io_context*> worker_contexts;
  for (std::size_t i = 0; i < workers.size(); ++i) worker_contexts.push_back(&workers.context(i));
  boost::asio::co_spawn(main_context,
                        release_free_memory_periodically(std::chrono::seconds(1), 1 << 20,
                                                         std::move(worker_contexts)),
                        boost::asio::detached);
  log::info("app", "ready");
  main_context.run();

  // Proxied connections may still be copying: 200 ms, then the workers stop.
  workers.stop([&listeners](std::size_t i) { if (i < listeners.size()) listeners[i].stop(); },
               std::chrono::milliseconds(200));
  return exit_code;
}

void App::DedicatedProxy::stop() {
  if (outbound) outbound->stop();
  if (inbound) inbound->stop();
  if (plaintext) plaintext->stop();
}

core::Result<std::shared_ptr<identity::CertificateProvider>> App::make_certificate_provider(
    boost::asio::any_io_executor executor) {
  const auto ttl = std::chrono::duration_cast<std::chrono::seconds>(config_.secret_ttl);
  if (config_.cert_dir) {
    auto provider = identity::FileCertificateProvider::create(
        identity::CertificateFiles::in_directory(*config_.cert_dir));
    if (!provider) return provider.error();
    (*provider)->start(executor);
    log::info("app", "workload certificate from files in {}", *config_.cert_dir);
    return std::shared_ptr<identity::CertificateProvider>(*provider);
  }
  std::shared_ptr<const identity::BuiltinCa> ca;
  if (config_.ca_dir) {
    const std::filesystem::path dir = *config_.ca_dir;
    auto loaded = identity::BuiltinCa::from_files(dir / "ca-cert.pem", dir / "ca-key.pem");
    if (!loaded) return loaded.error();
    ca = *loaded;
    log::info("app", "workload certificates from the built-in CA in {}", dir.string());
  } else if (config_.fake_ca) {
    auto generated = identity::BuiltinCa::generate(config_.trust_domain,
                                                   std::chrono::system_clock::now());
    if (!generated) return generated.error();
    ca = *generated;
    log::warn("app", "FAKE_CA: a CA generated at start-up; only peers sharing it can connect");
  } else {
    return core::make_error(
        "dedicated mode needs certificates: set ZTUNNEL_CA_DIR, ZTUNNEL_CERT_DIR or FAKE_CA=true "
        "(this build has no CA client yet)");
  }
  auto provider = identity::BuiltinCaProvider::create(ca, ttl);
  provider->start(executor);
  return std::shared_ptr<identity::CertificateProvider>(provider);
}

core::Result<std::vector<App::DedicatedProxy>> App::start_dedicated_proxy(
    Workers& workers, std::shared_ptr<identity::CertificateProvider> certificates) {
  if (!config_.proxy_workload_info) return core::make_error("dedicated mode needs PROXY_WORKLOAD_INFO");
  const auto& info = *config_.proxy_workload_info;
  auto local = store_.snapshot()->find_workload(info.namespace_name, info.name, info.service_account);
  if (!local) {
    return core::make_error("PROXY_WORKLOAD_INFO " + info.namespace_name + "/" + info.name + "/" +
                            info.service_account + " is not a workload in the local config");
  }
  if (auto cert = certificates->fetch(local->identity()); !cert) {
    return core::make_error("no certificate for " + local->identity().to_spiffe() + ": " +
                            cert.error().message);
  }

  net::SocketOptions socket_options;
  socket_options.mark = config_.packet_mark;
  socket_options.keepalive.enabled = config_.keepalive_enabled;
  socket_options.keepalive.time = std::chrono::duration_cast<std::chrono::seconds>(config_.keepalive_time);
  socket_options.keepalive.interval =
      std::chrono::duration_cast<std::chrono::seconds>(config_.keepalive_interval);
  socket_options.keepalive.retries = config_.keepalive_retries;
  socket_options.keepalive.user_timeout = config_.user_timeout_enabled;
  // Every worker listens on the same ports; the kernel hashes each new
  // connection to one of them (REDIRECT'ed ones included: the lookup after
  // NAT sees the group like any other). With one worker a second ztunnel on
  // the ports should still fail to bind, so the option is off.
  socket_options.reuse_port = workers.size() > 1;
  auto sockets = std::make_shared<const net::SocketFactory>(socket_options);

  proxy::ProxyInputs inputs;
  inputs.config = &config_;
  inputs.store = &store_;
  inputs.sockets = sockets;
  inputs.certificates = certificates;
  inputs.workload = info;
  // L4 authorization over whatever the store holds when a connection asks.
  inputs.authorize = [store = &store_](const proxy::AuthorizationRequest& request) {
    return rbac::authorize(*store->snapshot(), *request.destination_workload,
                           proxy::rbac_connection(request));
  };
  // IPv4 wildcard: SO_ORIGINAL_DST of IPv4 traffic on a dual-stack socket is
  // not handled yet.
  const auto any = boost::asio::ip::address_v4::any();
  auto listen = [&](uint16_t port, std::string_view what)
      -> core::Result<std::vector<boost::asio::ip::tcp::acceptor>> {
    auto acceptors = listen_on_each(*sockets, workers, {any, port});
    if (!acceptors) {
      return core::make_error("listen on " + std::string(what) + " port " + std::to_string(port) +
                              ": " + acceptors.error().message());
    }
    return std::move(*acceptors);
  };
  auto outbound_acceptors = listen(config::kOutboundPort, "outbound");
  if (!outbound_acceptors) return outbound_acceptors.error();
  auto inbound_acceptors = listen(config::kInboundPort, "inbound");
  if (!inbound_acceptors) return inbound_acceptors.error();
  auto plaintext_acceptors = listen(config::kInboundPlaintextPort, "inbound plaintext");
  if (!plaintext_acceptors) return plaintext_acceptors.error();

  proxy::ConnectorInputs connector;
  connector.sockets = sockets;
  connector.certificates = certificates;
  connector.tls.tls12_enabled = config_.tls12_enabled;
  connector.session.stream_window = config_.http2_stream_window_size;
  connector.session.connection_window = config_.http2_connection_window_size;
  connector.session.max_frame_size = config_.http2_frame_size;

  std::vector<DedicatedProxy> proxies(workers.size());
  for (std::size_t i = 0; i < workers.size(); ++i) {
    DedicatedProxy& p = proxies[i];
    boost::asio::io_context& worker = workers.context(i);
    proxy::ProxyInputs worker_inputs = inputs;
    // The worker's open inbound connections are re-checked against every
    // snapshot the store publishes, on this worker (the store calls listeners
    // on the writer's thread).
    auto connections =
        std::make_shared<proxy::ConnectionTracker>(config_.authz_policy_info_logging);
    worker_inputs.connections = connections;
    // Re-checked against the state current when the re-check runs, not the
    // one that triggered it: a connection admitted under a newer snapshot
    // must not be judged by an older one. Publishes that arrive while a
    // re-check is queued are covered by it.
    auto recheck_queued = std::make_shared<std::atomic<bool>>(false);
    store_.add_listener([weak = std::weak_ptr<proxy::ConnectionTracker>(connections),
                         executor = worker.get_executor(), store = &store_,
                         recheck_queued](const std::shared_ptr<const state::Snapshot>&) {
      if (weak.expired()) return;  // the proxy has stopped
      if (recheck_queued->exchange(true)) return;
      boost::asio::post(executor, [weak, store, recheck_queued] {
        // Cleared before the snapshot is read: a publish after this point
        // queues another re-check.
        recheck_queued->store(false);
        if (auto tracker = weak.lock()) tracker->recheck(*store->snapshot());
      });
    });
    // Each Outbound makes its own HBONE pool on its worker.
    p.outbound = proxy::Outbound::create(worker_inputs, std::move((*outbound_acceptors)[i]),
                                         proxy::make_hbone_connector(connector));
    p.inbound = proxy::Inbound::create(worker_inputs, std::move((*inbound_acceptors)[i]));
    p.plaintext =
        proxy::InboundPlaintext::create(worker_inputs, std::move((*plaintext_acceptors)[i]));
    boost::asio::co_spawn(worker, p.outbound->run(), boost::asio::detached);
    boost::asio::co_spawn(worker, p.inbound->run(), boost::asio::detached);
    boost::asio::co_spawn(worker, p.plaintext->run(), boost::asio::detached);
  }
  log::info("app", "dedicated proxy for {} on {} worker thread(s): outbound on {}, inbound (HBONE) "
            "on {}, inbound plaintext on {}",
            local->identity().to_spiffe(), workers.size(),
            proxy::format_endpoint(proxies[0].outbound->local_endpoint()),
            proxy::format_endpoint(proxies[0].inbound->local_endpoint()),
            proxy::format_endpoint(proxies[0].plaintext->local_endpoint()));
  return proxies;
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
