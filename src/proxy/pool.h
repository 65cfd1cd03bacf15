// HBONE connection pool: one per proxy instance, on one executor (no locks).
//
// Connections are keyed by (source identity, sorted expected identities,
// destination endpoint, source IP), as Istio's pool (src/proxy/pool.rs) keys
// them. open() reuses a usable session with a free stream slot (at most
// max_streams_per_connection and never more than the peer allows), else
// connects; at most one connect per key is in flight and other callers for
// that key wait for it, then reuse its session. Sessions that stopped being
// usable (GOAWAY, closed) are dropped. An idle session is drained after
// spare_release_grace when another usable session for its key has free
// stream slots (a burst's extra connections), else after
// unused_release_timeout (the last one per key).
//
// Threads: every member must be called on the pool's executor.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "h2/options.h"
#include "h2/session.h"
#include "identity/provider.h"
#include "net/socket.h"
#include "state/identity.h"
#include "tls/context.h"

namespace ztunnel::proxy {

struct PoolKey {
  state::Identity source;
  std::vector<state::Identity> expected;  // sorted (make_pool_key sorts them)
  boost::asio::ip::tcp::endpoint destination;
  std::optional<boost::asio::ip::address> source_ip;

  friend bool operator==(const PoolKey&, const PoolKey&) = default;
  friend bool operator<(const PoolKey& a, const PoolKey& b);
};

PoolKey make_pool_key(state::Identity source, std::vector<state::Identity> expected,
                      boost::asio::ip::tcp::endpoint destination,
                      std::optional<boost::asio::ip::address> source_ip = std::nullopt);

struct PoolOptions {
  uint32_t max_streams_per_connection = 100;  // POOL_MAX_STREAMS_PER_CONNECTION
  std::chrono::steady_clock::duration unused_release_timeout = std::chrono::minutes(5);
  // How long a spare connection (idle, while another for its key has free
  // stream slots) is kept. Each pooled connection keeps ~140 KiB (TLS,
  // nghttp2 state) while idle; a burst of 10,000 streams leaves 100 of them.
  // New streams for the key go to the other connection, so releasing a spare
  // never makes a caller wait for a connect; 1 s lets a burst's stragglers
  // settle without holding the memory for minutes. Istio's pool never
  // reuses a connection that reached its stream cap: it closes as soon as
  // its streams end.
  std::chrono::steady_clock::duration spare_release_grace = std::chrono::seconds(1);
};

// Connected, handshaken, and run() already spawned on the pool's executor.
using HboneConnector =
    std::function<boost::asio::awaitable<core::Result<h2::ClientSession>>(PoolKey)>;

// The production connector: SocketFactory::connect, a TLS 1.3 client
// handshake presenting the source identity's certificate and accepting only
// the key's expected identities (deadline `handshake_timeout`), then a
// ClientSession whose run() is spawned on the socket's executor.
struct ConnectorInputs {
  std::shared_ptr<const net::SocketFactory> sockets;
  std::shared_ptr<identity::CertificateProvider> certificates;
  tls::TlsOptions tls;
  h2::SessionOptions session = h2::SessionOptions::client_defaults();
  std::chrono::steady_clock::duration handshake_timeout = std::chrono::seconds(10);
};
HboneConnector make_hbone_connector(ConnectorInputs inputs);

class HbonePool {
 public:
  HbonePool(boost::asio::any_io_executor executor, PoolOptions options, HboneConnector connector);
  HbonePool(const HbonePool&) = delete;
  HbonePool& operator=(const HbonePool&) = delete;
  ~HbonePool();

  // Opens a CONNECT stream to `authority` on a pooled connection for `key`.
  // A non-200 response comes back as a Response with that status; failures
  // to connect or to open a stream as an error. `early_data` goes right
  // behind the CONNECT (ClientSession::open_stream); a retry on another
  // connection sends it again, so it must stay valid until this completes.
  boost::asio::awaitable<core::Result<h2::Response>> open(
      PoolKey key, std::string authority, h2::Headers headers,
      boost::asio::const_buffer early_data = {});

  // Usable sessions held (after dropping unusable ones).
  std::size_t connection_count();
  std::size_t connection_count(const PoolKey& key);

  // Closes every session; later open() calls connect afresh.
  void shutdown();

 private:
  struct Connection;
  struct Entry {
    std::vector<std::shared_ptr<Connection>> connections;
    bool connecting = false;
    // Waiters for the in-flight connect park on this timer; it is cancelled
    // when the connect ends.
    std::shared_ptr<boost::asio::steady_timer> connected;
    // Counts finished connects; a waiter compares it to learn whether the
    // connect it waited for is the one whose outcome is recorded here.
    std::uint64_t connects_finished = 0;
    std::optional<core::Error> last_connect_error;
  };

  Entry& entry_for(const PoolKey& key);
  void prune(Entry& entry);
  std::shared_ptr<Connection> pick(Entry& entry);
  void watch_idle(std::shared_ptr<Connection> connection, std::weak_ptr<Entry> entry);

  boost::asio::any_io_executor executor_;
  PoolOptions options_;
  HboneConnector connector_;
  // Entries are shared with the idle watchers, which may outlive the pool.
  std::map<PoolKey, std::shared_ptr<Entry>> entries_;
};

}  // namespace ztunnel::proxy
